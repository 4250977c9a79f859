"""A full disk during a trial is one line and exit status 4, not a traceback: a real tiny trial on a
small tmpfs whose third checkpoint (about 5.6 MB each) does not fit."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, tmpfs
from trainables import run as run_cli
from trainables.checkpoint import load_checkpoint

CONFIG = """
dataset: {name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}
noise: [{kind: morph, rate: 1.0}]
model: {kwargs: {encoder_depth: 3, decoder_channels: [16, 8, 4]}}
train: {epochs: 4, batch_size: 4, threads: 1}
seed: 2
"""
SIZE = "14m"  # two checkpoints (2 x 5.6 MB) and the small files fit, a third does not


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "disk", SIZE) as mnt:
        yield mnt


def test_full_disk_is_one_line_exit_4_and_earlier_checkpoints_intact(tmp_path, small_disk) -> None:
    config = tmp_path / "t.yaml"
    config.write_text(CONFIG)
    out = small_disk / "run"
    proc = subprocess.run([sys.executable, "-m", "trainables.run", str(config), "--out", str(out), "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == run_cli.EXIT_DISK_FULL == 4, proc.stderr
    assert len(err) == 1 and err[0].startswith("error: disk full"), proc.stderr
    assert str(out) in err[0] and "MiB free" in err[0] and "free space, then --resume" in err[0], err[0]
    assert "Traceback" not in proc.stderr
    # no debris: no staging folder, no *.tmp, no checkpoint folder without its state.pt
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_0001", "epoch_0002"]
    assert not list(out.rglob("*.tmp")) and not list(ckpts.glob("ckpt-*"))
    assert not (out / "summary.json").exists()
    for ckpt in ckpts.iterdir():
        assert load_checkpoint(ckpt)["epoch"] >= 1
    # metrics.jsonl holds whole lines only (the failed epoch's line is dropped on resume)
    text = (out / "metrics.jsonl").read_text()
    assert text.endswith("\n") and all(ln.startswith("{") and ln.endswith("}") for ln in text.splitlines())

    # free space (move the run to a roomy disk), then --resume finishes it
    roomy = tmp_path / "roomy"
    shutil.copytree(out, roomy)
    assert run_cli.main(["--out", str(roomy), "--quiet", "--resume"]) == 0
    assert sorted(p.name for p in (roomy / "checkpoints").iterdir()) == ["epoch_0002", "epoch_0003", "epoch_0004"]
    assert (roomy / "summary.json").is_file()


def test_the_error_survives_pickling() -> None:
    """Ray hands a trial's exception to the driver pickled: it must come back as itself."""
    import pickle

    from trainables.errors import DiskFullError

    exc = pickle.loads(pickle.dumps(DiskFullError("/mnt/run", 3 * 2**20)))
    assert isinstance(exc, DiskFullError) and exc.folder == "/mnt/run" and exc.free_bytes == 3 * 2**20
    assert str(exc) == "disk full writing the run in /mnt/run (3.0 MiB free); free space, then --resume"
