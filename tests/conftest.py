"""Shared test fixtures. Real data lives beside the repository in ../shared (never copied in)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CAMVID_ROOT = REPO.parent / "shared" / "data" / "camvid"


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """The shared CamVid copy. CI has it, so a missing copy fails there instead of skipping."""
    if not (CAMVID_ROOT / "CamVid").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CamVid not found at {CAMVID_ROOT} (CI must provide ../shared/data/camvid)")
        pytest.skip(f"CamVid not found at {CAMVID_ROOT}")
    return CAMVID_ROOT
