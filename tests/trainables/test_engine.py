"""The trial engine through its CLI: exact resume, results on disk, bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from trainables import run as run_cli
from trainables.checkpoint import load_checkpoint
from trainables.config import load_trial_config

TINY = str(REPO / "examples" / "tiny.yaml")
TIMING = {"images_per_s", "epoch_time_s"}


def _lines(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    assert run_cli.main([TINY, "--out", str(out), "--quiet"]) == 0
    return out


def test_resume_is_exact(uninterrupted: Path, tmp_path: Path, monkeypatch) -> None:
    """4 uninterrupted epochs == 2 epochs, a crash, --resume, 2 more: metric for metric, weight for weight."""
    out = tmp_path / "run"
    real_report = run_cli.FileReporter.report

    def crash_after_two(self, metrics, checkpoint_dir, images=None):
        real_report(self, metrics, checkpoint_dir, images)
        if metrics["epoch"] == 2:
            raise KeyboardInterrupt  # the process dies right after epoch 2 was checkpointed

    monkeypatch.setattr(run_cli.FileReporter, "report", crash_after_two)
    assert run_cli.main([TINY, "--out", str(out), "--quiet"]) == 130
    assert [m["epoch"] for m in _lines(out)] == [1, 2]
    monkeypatch.undo()

    assert run_cli.main([TINY, "--out", str(out), "--resume", "--quiet"]) == 0
    full, resumed = _lines(uninterrupted), _lines(out)
    assert [m["epoch"] for m in resumed] == [1, 2, 3, 4]
    assert resumed == full
    a = load_checkpoint(uninterrupted / "checkpoints" / "epoch_0004")
    b = load_checkpoint(out / "checkpoints" / "epoch_0004")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert torch.equal(a["labels"], b["labels"])
    strip = lambda d: {k: v for k, v in d.items() if k not in TIMING}  # noqa: E731
    assert strip(json.loads((out / "summary.json").read_text())) == \
        strip(json.loads((uninterrupted / "summary.json").read_text()))


def test_run_directory_contents(uninterrupted: Path) -> None:
    rows = _lines(uninterrupted)
    assert len(rows) == 4
    for key in ("train_loss", "lr", "train_miou", "iou_el", "iou_m", "label_miou", "noise_miou", "val_miou",
                "test_miou", "val_acc", "best_val", "max_test", "last", "train_iou/disc", "val_iou/background"):
        assert key in rows[-1], key
    # morph noise really corrupted the labels, and plain CE never changes them
    assert 0 < rows[0]["noise_miou"] < 1
    assert rows[-1]["label_miou"] == rows[0]["noise_miou"]
    assert all(r["relabel/pixels"] == 0 and r["relabel/precision"] is None for r in rows)
    assert 0 < rows[-1]["label_iou/disc"] < 1
    # the poly schedule decays the learning rate every step
    assert rows[0]["lr"] > rows[-1]["lr"] > 0
    # the summary's three test numbers follow from the per-epoch history
    tests = [r["test_miou"] for r in rows]
    vals = [r["val_miou"] for r in rows]
    summary = json.loads((uninterrupted / "summary.json").read_text())
    assert summary["max_test"] == max(tests)
    assert summary["last"] == tests[-1]
    assert summary["best_val"] == tests[vals.index(max(vals))]
    # last 3 checkpoints kept; the resolved config re-parses to the same trial
    assert sorted(p.name for p in (uninterrupted / "checkpoints").iterdir()) == ["epoch_0002", "epoch_0003", "epoch_0004"]
    assert load_trial_config(uninterrupted / "config.yaml").to_dict() == load_trial_config(TINY).to_dict()


def test_existing_run_is_never_overwritten(uninterrupted: Path, capsys) -> None:
    before = (uninterrupted / "metrics.jsonl").read_text()
    assert run_cli.main([TINY, "--out", str(uninterrupted), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (uninterrupted / "metrics.jsonl").read_text() == before


def test_resume_of_a_finished_run_does_nothing_more(uninterrupted: Path) -> None:
    before = (uninterrupted / "metrics.jsonl").read_text()
    assert run_cli.main([TINY, "--out", str(uninterrupted), "--resume", "--quiet"]) == 0
    assert (uninterrupted / "metrics.jsonl").read_text() == before


def test_resume_with_a_different_config_is_refused(uninterrupted: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "copy"
    import shutil

    shutil.copytree(uninterrupted, out)
    assert run_cli.main([TINY, "--out", str(out), "--resume", "--set", "train.lr=0.5", "--quiet"]) == 2
    assert "train.lr" in capsys.readouterr().err


@pytest.mark.parametrize("override, needle", [
    ("method.name=adel", "method.name: unknown method 'adel'"),
    ("model.arch=unett", "model.arch: unknown architecture 'unett'"),
    ("model.encoder=resnet19", "model.encoder: unknown encoder 'resnet19'"),
    ("noise.0.rate=1.5", "noise[0].rate: got 1.5; allowed range [0, 1]"),
    ("noise.0.kind=morphh", "unknown noise kind 'morphh'"),
    ("train.optimizer=adam", "train.optimizer: got 'adam'"),
    ("train.epochs=0", "train.epochs: got 0"),
    ("dataset.size=[4, 4]", "dataset.size[0]: got 4; allowed range [8, 4096]"),
    ("dataset.name=camvid", "dataset.root: not set"),
])
def test_bad_input_is_one_line_and_writes_nothing(override: str, needle: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "never"
    assert run_cli.main([TINY, "--out", str(out), "--set", override, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert not out.exists()


def test_cli_prints_no_traceback_for_user_errors(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "trainables.run", str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.yaml'}: no such config file"]


def test_study_yaml_trial_block_is_accepted(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text("name: x\ntrial:\n  method: {name: ce}\n  train: {epochs: 7}\n")
    assert load_trial_config(study).train.epochs == 7


def test_missing_dataset_root_says_where_to_get_data(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "camvid.yaml"
    cfg.write_text(f"dataset: {{name: camvid, root: {tmp_path / 'nowhere'}}}\n")
    out = tmp_path / "never"
    assert run_cli.main([str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere" in err and "CamVid" in err
    assert not out.exists()


ADELE_CORRECTING = ["--set", "method.name=adele", "--set", "method.start_rule=floor", "--set", "method.r=0.2",
                    "--set", "method.min_points=1", "--set", "method.correct_every=1", "--set", "method.scales=[0.75, 1.0]",
                    "--set", "method.size_multiple=8", "--set", "method.tau_fg=0.5", "--set", "method.tau_bg=0.5",
                    "--set", "train.epochs=5", "--set", "train.augment=false"]  # train_epoch corrections


def test_resume_is_exact_for_adele_between_corrections(tmp_path: Path, monkeypatch) -> None:
    """ADELE's state (IoU histories, trigger, corrected labels) survives a crash right after its
    trigger: the resumed run makes the same corrections as the uninterrupted one."""
    full = tmp_path / "full"
    assert run_cli.main([TINY, "--out", str(full), "--quiet", *ADELE_CORRECTING]) == 0
    rows = _lines(full)
    trigger_epoch = next(r["epoch"] for r in rows if r["method/triggered"])
    assert trigger_epoch <= 3 and all(r["relabel/pixels"] > 0 for r in rows if r["epoch"] > trigger_epoch)

    out = tmp_path / "resumed"
    real_report = run_cli.FileReporter.report

    def crash_after_trigger(self, metrics, checkpoint_dir, images=None):
        real_report(self, metrics, checkpoint_dir, images)
        if metrics["epoch"] == trigger_epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_cli.FileReporter, "report", crash_after_trigger)
    assert run_cli.main([TINY, "--out", str(out), "--quiet", *ADELE_CORRECTING]) == 130
    monkeypatch.undo()
    assert run_cli.main([TINY, "--out", str(out), "--resume", "--quiet", *ADELE_CORRECTING]) == 0
    assert _lines(out) == rows
    a = load_checkpoint(full / "checkpoints" / "epoch_0005")
    b = load_checkpoint(out / "checkpoints" / "epoch_0005")
    assert torch.equal(a["labels"], b["labels"])
