"""Before a study writes anything: can it reach its Ray cluster, and can the cluster run a trial?

``ray.init(address=...)`` retries for minutes when nothing listens at the address and fails with a
bare ``ConnectionError`` when the cluster wants an auth token this process lacks. Here the address
is first probed over TCP (a few seconds), then joined from a child process with a deadline whose
stderr tells an authentication failure apart; only a cluster that answered is joined for real.
Then each trial's ``resources`` request is compared with the nodes: a request no node can satisfy
would make Ray wait forever.
"""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time

from trainables.errors import UserError

CONNECT_TIMEOUT_S = 30.0
TCP_TIMEOUT_S = 5.0
AUTH_MARKERS = ("Unauthenticated", "InvalidAuthToken", "AuthenticationError", "token is missing or incorrect")
AUTH_HELP = ("set RAY_AUTH_MODE=token and the cluster's token: RAY_AUTH_TOKEN=<token> or RAY_AUTH_TOKEN_PATH="
             "<file> (or the file ~/.ray/auth_token); `ray get-auth-token` on the head node prints it")

_PROBE = r"""
import json, sys, ray
ray.init(address=sys.argv[1], configure_logging=False, log_to_driver=False, include_dashboard=False)
nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
print("NOISYSEG_NODES " + json.dumps(nodes), flush=True)
"""


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port``; None for forms without a port."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def check_reachable(address: str) -> None:
    """Something must listen at ``host:port`` (one line when nothing does)."""
    hp = _host_port(address)
    if hp is None:
        return
    host, port = hp
    try:
        with socket.create_connection((host, port), timeout=TCP_TIMEOUT_S):
            return
    except socket.gaierror:
        why = f"unknown host {host!r}"
    except ConnectionRefusedError:
        why = "connection refused: no Ray head listens there"
    except TimeoutError:
        why = f"no answer within {TCP_TIMEOUT_S:.0f} s (firewall or wrong host?)"
    except OSError as exc:
        why = exc.strerror or str(exc)
    raise UserError(f"--address {address}: {why}; start the head with `ray start --head --port=PORT` "
                    "or check the address (RAY_ADDRESS)")


def probe_cluster(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> list[dict]:
    """Join ``address`` from a child process; the alive nodes' resources, or one-line UserError."""
    check_reachable(address)
    proc = subprocess.Popen([sys.executable, "-c", _PROBE, address], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    err_lines: list[str] = []
    auth = threading.Event()

    def read_err() -> None:
        for line in proc.stderr:
            err_lines.append(line.rstrip())
            if any(m in line for m in AUTH_MARKERS):
                auth.set()

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    deadline = time.time() + timeout_s
    while proc.poll() is None and time.time() < deadline and not auth.is_set():
        time.sleep(0.1)
    timed_out = proc.poll() is None and not auth.is_set()
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    out = proc.stdout.read() if not timed_out else ""
    proc.stdout.close()
    reader.join(timeout=5)
    if auth.is_set() or any(m in line for line in err_lines for m in AUTH_MARKERS):
        raise UserError(f"--address {address}: the cluster refused the connection (authentication token missing "
                        f"or wrong); {AUTH_HELP}")
    for line in out.splitlines():
        if line.startswith("NOISYSEG_NODES "):
            return json.loads(line.split(" ", 1)[1])
    last = next((ln for ln in reversed(err_lines) if ln.strip()), "no output")
    why = f"no answer within {timeout_s:.0f} s" if timed_out else last.strip()[:300]
    raise UserError(f"--address {address}: cannot join the Ray cluster ({why})")


def check_resources(cpu: float, gpu: float, nodes: list[dict], where: str) -> None:
    """Some node must offer one trial's ``resources`` (Ray would wait forever otherwise)."""
    if not nodes:
        raise UserError(f"{where}: the Ray cluster has no alive node")
    if any(n.get("CPU", 0) >= cpu and n.get("GPU", 0) >= gpu for n in nodes):
        return
    have = "; ".join(f"node {i + 1}: CPU {n.get('CPU', 0):g}, GPU {n.get('GPU', 0):g}" for i, n in enumerate(nodes))
    want = []
    if not any(n.get("CPU", 0) >= cpu for n in nodes):
        want.append(f"resources.cpu: {cpu:g} per trial")
    if not any(n.get("GPU", 0) >= gpu for n in nodes):
        want.append(f"resources.gpu: {gpu:g} per trial")
    want = want or [f"resources: cpu {cpu:g} and gpu {gpu:g} together"]
    raise UserError(f"{' and '.join(want)}, but no node of the cluster has that much ({have}); lower the request "
                    "or add a node that has it")


def alive_nodes() -> list[dict]:
    """Resources of the alive nodes of the Ray this process is connected to."""
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def trial_slots(spec, resources: dict[str, float]) -> float:
    """Trials the cluster's ``resources`` hold at once at the per-trial ``spec.resources``
    (inf when a trial asks for none)."""
    fits = [resources.get("CPU", 0) / spec.resources.cpu if spec.resources.cpu else math.inf]
    if spec.resources.gpu:
        fits.append(resources.get("GPU", 0) / spec.resources.gpu)
    return min(fits)
