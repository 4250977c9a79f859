"""Shared test fixtures. Real data lives beside the repository in ../shared (never copied in)."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# no wall-time calibration before each study the tests start (tests/study/test_estimate.py runs it)
os.environ.setdefault("NOISYSEG_NO_ESTIMATE", "1")


def pytest_report_header(config) -> str:
    """The host's raw-loop figure first, so a slow CI host is visible in its log (the suite's wall
    time scales with it: docs/performance.md)."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from throughput import host_figure

        return f"host: raw loop {host_figure():.0f} img/CPU-s (benchmarks/throughput.py; slow host ~30, fast ~140)"
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster() -> str:
    """One local Ray cluster (``ray start --head`` on 127.0.0.1, 2 CPUs, its own temp dir and ports)
    shared by the studies of the whole test run that need no Ray of their own: each joins it with
    ``RAY_ADDRESS`` (study.run's ``--address``) instead of starting and stopping a local Ray (a
    1-trial study: about 10% less CPU, the same numbers). Its workers import the project from this
    checkout (PYTHONPATH), as a local Ray's do, but they do not inherit a driver's environment: a
    test whose trials or workers see the driver's environment (TMPDIR, a W&B key, a wheel's
    PYTHONPATH), and a test about the driver's own local Ray (leftovers of a killed driver, Ctrl-C,
    the logical-GPU head, the two-node cluster), starts its own. Token authentication is off (a
    loopback cluster of this run only). Started on first use, stopped at the end of the session;
    yields the address."""
    temp = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # short: Ray's socket paths must fit
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_"))}
    env.update(PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    log_path = temp / "head.log"
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
           f"--port={port}", "--num-cpus=2", "--num-gpus=0", f"--object-store-memory={500 * 2**20}",
           "--include-dashboard=false", "--disable-usage-stats",
           f"--temp-dir={temp}", f"--dashboard-agent-listen-port={free_port()}"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while "Ray runtime started" not in log_path.read_text():
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"the shared Ray cluster did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        # every process of its session (`ray start --block`, GCS, raylet, agents, workers) at once
        for sig, wait in ((signal.SIGTERM, 8), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
        shutil.rmtree(temp, ignore_errors=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` (e.g. "14m") mounted at ``path`` for the block; the test is skipped where
    mounting needs root / CAP_SYS_ADMIN and there is none."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


CAMVID_ROOT = REPO.parent / "shared" / "data" / "camvid"


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """The shared CamVid copy. CI has it, so a missing copy fails there instead of skipping."""
    if not (CAMVID_ROOT / "CamVid").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CamVid not found at {CAMVID_ROOT} (CI must provide ../shared/data/camvid)")
        pytest.skip(f"CamVid not found at {CAMVID_ROOT}")
    return CAMVID_ROOT
