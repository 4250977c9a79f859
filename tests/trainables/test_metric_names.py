"""The metric names a study may optimise (trainables.metric_names) are the names the engine
really reports: real epochs of real trials, compared both ways."""
from __future__ import annotations

import pytest

from trainables.config import parse_trial
from trainables.engine import fit
from trainables.metric_names import DIVERGED, EPOCH, EVALUATION, SUMMARY, is_metric


class Collect:
    def __init__(self):
        self.rows = []

    def report(self, metrics, checkpoint_dir, images=None):
        self.rows.append(metrics)


def run(method: dict, epochs: int = 2, lr: float = 0.01) -> list[dict]:
    cfg = parse_trial({"dataset": {"size": [32, 32], "num_train": 8, "num_val": 4, "num_test": 4},
                       "model": {"kwargs": {"encoder_depth": 3, "decoder_channels": [16, 8, 4]}},
                       "noise": [{"kind": "morph"}], "method": method,
                       "train": {"epochs": epochs, "batch_size": 4, "threads": 1, "lr": lr}})
    out = Collect()
    fit(cfg, out)
    return out.rows


@pytest.mark.parametrize("method", [{"name": "ce"}, {"name": "adele", "min_points": 1, "start_rule": "floor"},
                                    {"name": "pu", "pu_loss": "nnpu", "prior": 0.3}])
def test_every_reported_name_is_known_and_every_listed_name_is_reported(method) -> None:
    rows = run(method)
    for row in rows:
        unknown = [k for k in row if not is_metric(k)]
        assert not unknown, f"the engine reports names trainables.metric_names does not know: {unknown}"
    last = rows[-1]  # an evaluation epoch: every listed name is there
    missing = [k for k in (*EPOCH, *EVALUATION, *SUMMARY) if k not in last]
    assert not missing, f"listed in trainables.metric_names but never reported: {missing}"
    assert any(k.startswith("val_iou/") for k in last) and any(k.startswith("train_iou/") for k in last)


def test_a_diverged_epoch_reports_the_listed_diverged_names() -> None:
    rows = run({"name": "ce"}, epochs=3, lr=1e6)
    last = rows[-1]
    assert last["diverged"] is True
    assert all(k in last for k in DIVERGED) and all(is_metric(k) for k in last)


def test_names_outside_the_engine_are_not_metrics() -> None:
    for name in ("best_vall_miou", "val_iou", "val_iou/", "loss", "foo/bar", "valmiou"):
        assert not is_metric(name), name
    for name in ("best_val_miou", "val_iou/car", "loss/ce", "method/trigger/1"):
        assert is_metric(name), name
