"""``--list`` / ``--version`` of the single-trial CLI, and the epoch progress bar that covers the
training and the evaluation batches."""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from tests.conftest import REPO
from trainables import catalog
from trainables import run as run_cli
from trainables.config import parse_trial
from trainables.data import DATASETS
from trainables.engine import Trainer, prepare_data
from trainables.methods import METHODS
from trainables.models import architectures, encoders
from trainables.noise import NOISE_KINDS


def listed(capsys, *args: str) -> str:
    assert run_cli.main(list(args)) == 0
    return capsys.readouterr().out


def test_list_methods_shows_every_parameter_with_its_default(capsys) -> None:
    out = listed(capsys, "--list", "methods")
    for name, cls in METHODS.items():
        assert f"\n  {name}" in out
        for f in dataclasses.fields(cls.Params):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            shown = catalog._show(default)
            row = re.compile(rf"\s+{re.escape(f.name)}\s+{re.escape(shown)}(\s|$)")
            assert any(row.match(line) for line in out.splitlines()), (name, f.name, shown)
    assert "# relative-derivative threshold" in out  # the field's comment in the source
    assert "one of 'train_epoch', 'eval_pass'" in out


@pytest.mark.parametrize("what, names", [("noise", NOISE_KINDS), ("datasets", DATASETS)])
def test_list_noise_and_datasets(capsys, what, names) -> None:
    out = listed(capsys, "--list", what)
    for name in names:
        assert f"\n  {name}\n" in out or out.endswith(f"\n  {name}") or f"\n  {name}  (no" in out, name
    if what == "datasets":  # the common keys and a loader's own options
        assert "max_images" in out and "background_noise" in out and "mask_values" in out
    else:
        assert "target_area  1000" in out


def test_list_archs_and_encoders(capsys) -> None:
    out = listed(capsys, "--list", "archs")
    for name in architectures():
        assert f"\n  {name}\n" in out, name
    assert "encoder_depth" in out and "decoder_channels" in out
    out = listed(capsys, "--list", "encoders")
    names = out.split()
    assert all(e in names for e in encoders()) and "tu-<any" in out


def test_list_without_a_name_and_a_wrong_name(capsys) -> None:
    out = listed(capsys, "--list")
    assert "ce, adele, lncis" in out and "morph" in out and "--list encoders" in out
    assert run_cli.main(["--list", "noize"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --list: unknown list 'noize' (did you mean 'noise'?); "
                                               "allowed: methods, noise, datasets, archs, encoders")


def test_version_from_the_installed_distribution() -> None:
    res = subprocess.run([sys.executable, "-m", "trainables.run", "--version"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == f"noisyseg {version('noisyseg')}"


def test_progress_bar_covers_training_and_evaluation_batches() -> None:
    cfg = parse_trial({"dataset": {"name": "synthetic", "size": [32, 32], "num_train": 10, "num_val": 5,
                                   "num_test": 3},
                       "model": {"kwargs": {"encoder_depth": 3, "decoder_channels": [16, 8, 4]}},
                       "train": {"epochs": 1, "batch_size": 4, "eval_batch_size": 4, "threads": 1}})
    from trainables.data import create_dataset

    trainer = Trainer(cfg, prepare_data(cfg, create_dataset(cfg.dataset)))
    bar = trainer.progress_bar(0, ("val", "test"))
    # 3 training batches (10 images by 4), then 3 + 2 + 1 evaluation batches (train, val, test)
    assert bar.total == 3 + 3 + 2 + 1
    trainer.train_epoch(0, bar)
    assert bar.n == 3
    trainer.evaluation_pass(0, ("val", "test"), progress=bar)
    assert bar.n == bar.total
    bar.close()
