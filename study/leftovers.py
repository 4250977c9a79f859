"""Ray processes a killed driver left behind, stopped before a resumed study starts its own.

A driver that starts a local Ray (``ray.init(address="local")``) owns its GCS, raylet, agents and
workers. When the driver is killed, some of them live on for a while (agents for minutes, trial
workers until they notice), competing for CPUs and still writing into trial folders. The lock
record of the dead driver names its Ray session folder; every process of this user whose command
line or open files lie in that folder belongs to it (plus their children). Nothing else is touched:
the session folder name (time stamp and pid) is unique to that driver.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from trainables.paths import pid_alive as _alive


def _uses(pid: int, sessions: tuple[str, ...]) -> bool:
    proc = Path(f"/proc/{pid}")
    try:
        args = proc.joinpath("cmdline").read_bytes().decode(errors="replace").split("\0")
        if any((a + "/").find(s) >= 0 for a in args for s in sessions):  # session_X/... or =session_X
            return True
        for fd in proc.joinpath("fd").iterdir():
            try:
                if os.readlink(fd).startswith(sessions):
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def _processes() -> dict[int, int]:
    """pid -> parent pid of this user's processes."""
    out = {}
    uid = os.getuid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            out[int(entry.name)] = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return out


def session_processes(session: str) -> list[int]:
    """Live processes of this user that belong to the Ray session folder ``session``."""
    session = str(session).rstrip("/")
    if not session or not Path("/proc").is_dir():
        return []
    sessions = tuple({session + "/", os.path.realpath(session) + "/"})
    procs = _processes()
    me = os.getpid()
    found = {pid for pid in procs if pid != me and _uses(pid, sessions)}
    children = True
    while children:  # descendants of what was found (workers of a raylet)
        children = {pid for pid, ppid in procs.items() if ppid in found and pid not in found and pid != me}
        found |= children
    return sorted(pid for pid in found if _alive(pid))


def stop_session(session: str, grace_s: float = 10.0) -> int:
    """SIGTERM every process of the session, SIGKILL what is left after ``grace_s``; returns how
    many there were."""
    pids = session_processes(session)
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.time() + wait
        while time.time() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        if not any(_alive(p) for p in pids):
            break
    return len(pids)


def stop_leftovers(previous: dict) -> int:
    """Stop the local Ray of the driver whose lock record is ``previous`` if that driver is dead;
    returns the number of processes stopped (0 when there was nothing to do)."""
    session = previous.get("ray_session")
    if not session or previous.get("host") != socket.gethostname():
        return 0
    pid = previous.get("pid")
    if isinstance(pid, int) and _alive(pid) and pid != os.getpid():
        return 0  # its driver still runs (it released the lock some other way): not ours to stop
    return stop_session(session)
