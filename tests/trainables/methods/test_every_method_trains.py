"""Every registered method trains through the real engine: synthetic data and real CamVid files."""
from __future__ import annotations

import math

import pytest
import torch

from trainables.config import parse_trial
from trainables.engine import fit
from trainables.methods import METHODS

SMALL_UNET = {"arch": "unet", "encoder": "resnet18", "kwargs": {"encoder_depth": 3, "decoder_channels": [32, 16, 8]}}


class Collect:
    def __init__(self):
        self.rows = []

    def report(self, metrics, checkpoint_dir, images=None):
        self.rows.append(metrics)


def _train(trial: dict) -> dict:
    torch.set_num_threads(2)
    reporter = Collect()
    summary = fit(parse_trial(trial), reporter)
    assert len(reporter.rows) == trial["train"]["epochs"]
    return reporter.rows[-1] | summary


def _method(name: str) -> dict:
    return {"name": name, "prior": 0.1, "pu_loss": "nnpu"} if name == "pu" else {"name": name}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_trains_on_synthetic(name: str) -> None:
    m = _train({"dataset": {"size": [32, 32], "num_train": 8, "num_val": 4, "num_test": 4},
                "noise": [{"kind": "flip_symmetric", "rate": 0.4}], "model": SMALL_UNET, "method": _method(name),
                "train": {"epochs": 2, "batch_size": 4}})
    assert math.isfinite(m["train_loss"])
    assert 0 <= m["val_miou"] <= 1 and 0 <= m["test_miou"] <= 1
    assert m["noise_miou"] < 1  # the labels really were corrupted


@pytest.mark.parametrize("name", sorted(METHODS))
def test_trains_on_a_camvid_subset_at_180x240(name: str, camvid_root) -> None:
    m = _train({"dataset": {"name": "camvid", "root": str(camvid_root), "size": [180, 240],
                            "max_images": {"train": 4, "val": 2, "test": 2}},
                "noise": [{"kind": "morph", "rate": 1.0}], "model": SMALL_UNET, "method": _method(name),
                "train": {"epochs": 1, "batch_size": 2}})
    assert math.isfinite(m["train_loss"])
    assert len([k for k in m if k.startswith("test_iou/")]) == 11  # void is not a class
