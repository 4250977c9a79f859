"""Shared test fixtures. Real data lives beside the repository in ../shared (never copied in)."""
from __future__ import annotations

import contextlib
import os
import subprocess
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
