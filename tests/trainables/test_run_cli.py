"""The single-trial CLI under faults: divergence, a kill before the first checkpoint, checkpoint
debris of an interrupted write, bad output locations, hostile config files; real processes, real
files (SIGKILL, not a mock)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from trainables import run as run_cli
from trainables.tune_adapter import SCRATCH_PREFIX, remove_dead_scratch

TIMING = {"images_per_s", "epoch_time_s"}


def trial_yaml(tmp_path: Path, num_train: int = 8, epochs: int = 2, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"""
dataset: {{name: synthetic, size: [32, 32], num_train: {num_train}, num_val: 4, num_test: 4}}
noise: [{{kind: morph, rate: 1.0}}]
model: {{kwargs: {{encoder_depth: 3, decoder_channels: [16, 8, 4]}}}}
train: {{epochs: {epochs}, batch_size: 4, threads: 1}}
seed: 2
""")
    return path


def lines(out: Path) -> list[dict]:
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def start(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trainables.run", str(config), "--out", str(out), "--quiet", *extra],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def one_error_line(err: str) -> str:
    err_lines = err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("error: "), err
    return err_lines[0]


# -- divergence ---------------------------------------------------------------------------------

def test_divergence_stops_the_trial_marks_it_and_exits_non_zero(tmp_path, capsys) -> None:
    config = trial_yaml(tmp_path, epochs=4)
    out = tmp_path / "run"
    assert run_cli.main([str(config), "--out", str(out), "--quiet", "--set", "train.lr=1.0e+6"]) == run_cli.EXIT_DIVERGED
    line = one_error_line(capsys.readouterr().err)
    rows = lines(out)
    last = rows[-1]
    assert last["diverged"] is True and last["train_loss"] is None
    assert last["diverged_epoch"] == last["epoch"] == len(rows) < 4  # stopped, not trained on
    assert last["diverged_reason"].startswith("non-finite train loss")
    assert all(r["train_loss"] is not None and not r.get("diverged") for r in rows[:-1])
    assert line.startswith(f"error: diverged at epoch {last['epoch']}: non-finite train loss")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] is True and summary["diverged_epoch"] == last["epoch"]
    # no checkpoint of the broken weights; the run cannot be resumed into more NaNs
    assert not (out / "checkpoints" / f"epoch_{last['epoch']:04d}").exists()
    assert run_cli.main([str(config), "--out", str(out), "--quiet", "--resume", "--set", "train.lr=1.0e+6"]) == 2
    assert "diverged at epoch" in one_error_line(capsys.readouterr().err)


# -- killed before the first checkpoint ------------------------------------------------------------

def test_killed_before_first_checkpoint_resume_starts_over_with_the_same_config(tmp_path, capsys) -> None:
    for num_train in (64, 160, 400):  # larger first epochs until the kill lands before the checkpoint
        config = trial_yaml(tmp_path, num_train=num_train)
        out = tmp_path / f"killed{num_train}"
        proc = start(config, out)
        while proc.poll() is None and not (out / "config.yaml").exists():
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "config.yaml").exists() and not list((out / "checkpoints").glob("epoch_*")):
            break
    else:
        pytest.fail("could not kill the run between writing config.yaml and its first checkpoint")

    # the folder is neither re-runnable nor (before this fix) resumable
    assert run_cli.main([str(config), "--out", str(out), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    # a different config is refused, naming the key
    assert run_cli.main([str(config), "--out", str(out), "--quiet", "--resume", "--set", "train.lr=0.5"]) == 2
    assert "train.lr" in one_error_line(capsys.readouterr().err)
    # --resume (even without CONFIG: the run's own config.yaml) starts from scratch
    assert run_cli.main(["--out", str(out), "--quiet", "--resume"]) == 0
    assert "starting the run from scratch" in capsys.readouterr().err
    reference = tmp_path / "reference"
    assert run_cli.main([str(config), "--out", str(reference), "--quiet"]) == 0
    assert lines(out) == lines(reference)  # same config, same result as a run never interrupted


def test_resume_without_a_run_refuses_naming_the_path(tmp_path, capsys) -> None:
    config = trial_yaml(tmp_path, epochs=1)
    missing = tmp_path / "nothing-here"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "checkpoints").mkdir()  # a folder, even one with a checkpoints/ dir, but no config.yaml
    for out, extra in ((missing, [str(config)]), (missing, []), (empty, [str(config)]), (empty, [])):
        assert run_cli.main([*extra, "--out", str(out), "--quiet", "--resume"]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert str(out / "config.yaml") in line and "without --resume" in line, line
    assert not missing.exists()  # nothing was trained or written
    assert sorted(p.name for p in empty.iterdir()) == ["checkpoints"]
    # through the real CLI as well: one line, status 2
    proc = subprocess.run([sys.executable, "-m", "trainables.run", "--out", str(missing), "--resume"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and str(missing) in one_error_line(proc.stderr), proc.stderr


# -- debris of an interrupted checkpoint write -------------------------------------------------------

def test_staged_checkpoint_debris_is_removed_on_resume_and_finish(tmp_path) -> None:
    config = trial_yaml(tmp_path, num_train=16, epochs=3)
    out = tmp_path / "run"
    proc = start(config, out)
    first = out / "checkpoints" / "epoch_0001" / "state.pt"
    while proc.poll() is None and not first.exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), proc.stderr.read()
    # what a kill inside save_checkpoint leaves: a staging folder with a partial state.pt.tmp,
    # a checkpoint folder that never got its state.pt, half-written metadata
    staged = out / "checkpoints" / "ckpt-k1ll3d00"
    staged.mkdir()
    data = first.read_bytes()
    (staged / "state.pt.tmp").write_bytes(data[: len(data) // 2])
    (out / "checkpoints" / "epoch_0009").mkdir()
    (out / "metrics.jsonl.tmp").write_text('{"epoch": 1')

    assert run_cli.main([str(config), "--out", str(out), "--quiet", "--resume"]) == 0
    assert not list((out / "checkpoints").glob("ckpt-*")) and not (out / "checkpoints" / "epoch_0009").exists()
    assert not list(out.glob("*.tmp"))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001", "epoch_0002", "epoch_0003"]
    reference = tmp_path / "reference"
    assert run_cli.main([str(config), "--out", str(reference), "--quiet"]) == 0
    assert lines(out) == lines(reference)


def test_dead_trials_scratch_folders_are_removed_live_ones_kept(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f"{SCRATCH_PREFIX}{dead.pid}-abcd"
    gone.mkdir()
    (gone / "state.pt.tmp").write_bytes(b"\0" * 1024)
    live = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-efgh"
    live.mkdir()
    foreign = tmp_path / f"{SCRATCH_PREFIX}other-folder"  # not one of ours: no pid in the name
    foreign.mkdir()
    assert remove_dead_scratch(str(tmp_path)) == [str(gone)]
    assert not gone.exists() and live.exists() and foreign.exists()


# -- output locations and config files ---------------------------------------------------------------

@contextlib.contextmanager
def unwritable(folder: Path):
    """A folder this process cannot write into, even as root (immutable), or skip."""
    folder.mkdir()
    immutable = False
    if os.geteuid() == 0:
        immutable = shutil.which("chattr") is not None and \
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    else:
        folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("cannot make a folder unwritable here")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_out_under_a_file_or_unwritable_is_one_line(tmp_path, capsys) -> None:
    config = trial_yaml(tmp_path)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert run_cli.main([str(config), "--out", str(blocker / "run"), "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"--out {blocker / 'run'}: {blocker} is a file, not a folder" in line
    assert run_cli.main([str(config), "--out", str(blocker), "--quiet"]) == 2
    assert "it is a file, not a folder" in one_error_line(capsys.readouterr().err)
    with unwritable(tmp_path / "locked") as locked:
        assert run_cli.main([str(config), "--out", str(locked / "run"), "--quiet"]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"--out {locked / 'run'}: no permission to write in {locked}" in line
        assert not (locked / "run").exists()


@pytest.mark.parametrize("content, needle", [
    (bytes(range(256)), "not a text file"),
    ("seed: 1\ntrain: {lr: 0.1}\nseed: 2\n".encode(), "line 3: duplicate key 'seed' (first given at line 1)"),
    ("dataset: {name: synthétique}\n".encode("latin-1"), "line 1: not UTF-8 text"),
])
def test_hostile_config_files_are_one_line_through_the_cli(tmp_path, content, needle) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    out = tmp_path / "never"
    res = subprocess.run([sys.executable, "-m", "trainables.run", str(path), "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert needle in one_error_line(res.stderr) and str(path) in res.stderr
    assert not out.exists()


def test_a_folder_given_as_the_config_is_one_line_through_the_cli(tmp_path) -> None:
    out = tmp_path / "never"
    res = subprocess.run([sys.executable, "-m", "trainables.run", str(tmp_path), "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "is a folder; give a YAML file" in one_error_line(res.stderr)
    assert not out.exists()


def test_float_spelling_on_the_command_line_is_the_value_used(tmp_path) -> None:
    config = trial_yaml(tmp_path, epochs=1)
    out = tmp_path / "run"
    assert run_cli.main([str(config), "--out", str(out), "--quiet", "--set", "train.lr=5e-3"]) == 0
    assert "lr: 0.005\n" in (out / "config.yaml").read_text()
    assert lines(out)[0]["lr"] == pytest.approx(5e-3)

