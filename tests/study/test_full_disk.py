"""A full disk in a study: the trial whose checkpoint does not fit is recorded failed with one line
naming the folder and its free space, the driver says it once (no traceback), and the study goes on
to its report. A real study on a real local Ray; the trials' scratch folder (TMPDIR, where a
checkpoint is staged) is a 4 MiB tmpfs, smaller than one checkpoint of the tiny model (~5.6 MB)."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import tmpfs

REPO = Path(__file__).resolve().parents[2]

SPACE = """
name: full
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: random, seed: 0, num_samples: 1, max_concurrent: 1}
scheduler: {type: none}
trial:
  dataset: {name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}
  model: {kwargs: {encoder_depth: 3, decoder_channels: [16, 8, 4]}}
  train: {epochs: 2, batch_size: 4, threads: 1}
final: {seeds: [5], top_k: 1}
logging: {wandb: {mode: disabled}}
"""


@pytest.fixture
def small_tmp(tmp_path):
    with tmpfs(tmp_path / "tmp", "4m") as mnt:
        yield mnt


def test_a_trial_on_a_full_disk_fails_with_one_line_and_the_study_goes_on(tmp_path, small_tmp) -> None:
    space = tmp_path / "full.yaml"
    space.write_text(textwrap.dedent(SPACE))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_"))}
    # the trials stage their checkpoints in TMPDIR; Ray's own session stays on the normal disk
    env.update(PYTHONPATH=str(REPO), TMPDIR=str(small_tmp), RAY_TMPDIR="/tmp")
    proc = subprocess.run([sys.executable, "-m", "study.run", str(space), "--storage", str(tmp_path / "runs"),
                           "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    lines = [ln for ln in out.splitlines() if "disk full" in ln]
    assert len(lines) == 1, out[-3000:]  # said once: the trial's line
    assert "failed: " in lines[0] and f"disk full writing the run in {small_tmp}" in lines[0], lines[0]
    assert "MiB free" in lines[0] and "free space, then --resume" in lines[0], lines[0]
    assert "Traceback" not in out and "Trials did not complete" not in out, out[-3000:]
    # recorded failed with that reason, and nothing of the failed write is left in the scratch
    with open(tmp_path / "runs" / "full" / "report" / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and "disk full writing the run in" in rows[0]["failure"], rows
    assert not [p for p in small_tmp.iterdir() if p.name.startswith("noisyseg-")], list(small_tmp.iterdir())
