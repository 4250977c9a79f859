"""The isolation diagnostic: how many training pixels a method's isolation rule (LNCIS's PON role)
leaves out per epoch, scored by the engine against the injected flips (noisy label != clean label),
which the method never sees. It only reads the model: every other number of the epoch is unchanged."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from trainables import engine
from trainables.config import load_trial_config

TINY = str(REPO / "examples" / "tiny.yaml")
BASE = ["train.augment=false", "train.epochs=2", "method.name=lncis"]


def trainer_for(*sets: str) -> engine.Trainer:
    cfg = load_trial_config(TINY, [*BASE, *sets])
    return engine.Trainer(cfg, engine.prepare_data(cfg))


@torch.no_grad()
def predictions(trainer: engine.Trainer) -> torch.Tensor:
    return torch.cat([p.argmax(1) for _, _, p in trainer._predict(trainer.data.images["train"])])


@pytest.mark.parametrize("mode", ["eval_pass", "train_pass"])
def test_every_flip_flipped_and_gamma_zero_isolates_the_foreground_predicted_foreground(mode: str) -> None:
    # rate 1: every foreground instance takes another class, so every labelled-foreground pixel is a
    # flip (precision 1); gamma 0: every such pixel predicted foreground is isolated (its CE > 0)
    trainer = trainer_for("noise=[{kind: flip_symmetric, rate: 1.0}]", "method.gamma=0.0",
                          f"train.diagnostics={mode}")
    noisy, clean = trainer.data.noisy.long(), trainer.data.clean["train"].long()
    flipped = (noisy != clean) & (noisy != trainer.ignore) & (clean != trainer.ignore)
    assert torch.equal(flipped, (noisy != 0) & (noisy != trainer.ignore))  # the premise of the test
    metrics, _ = trainer.run_epoch()
    assert metrics["isolation/flipped"] == int(flipped.sum()) > 0
    assert metrics["isolation/precision"] == 1.0
    if mode == "eval_pass":  # the pass ran on the model as it is after the epoch: count it again
        expected = int((flipped & (predictions(trainer) != 0)).sum())
        assert metrics["isolation/pixels"] == expected > 0
    assert metrics["isolation/recall"] == metrics["isolation/pixels"] / metrics["isolation/flipped"]


def test_a_huge_gamma_isolates_nothing() -> None:
    metrics, _ = trainer_for("noise=[{kind: flip_symmetric, rate: 0.5}]", "method.gamma=1e9").run_epoch()
    assert (metrics["isolation/pixels"], metrics["isolation/precision"], metrics["isolation/recall"]) == (0, None, 0.0)


def test_the_diagnostic_changes_no_other_number_and_methods_without_a_rule_have_none() -> None:
    sets = ("noise=[{kind: flip_symmetric, rate: 0.5}]", "method.gamma=0.5", "method.e1_frac=0.5")
    with_rule, without = trainer_for(*sets), trainer_for(*sets)
    without.isolates = False  # the same trial with the diagnostic switched off
    for _ in range(2):  # stage 1, then stage 2 (isolation in the loss)
        a, _ = with_rule.run_epoch()
        b, _ = without.run_epoch()
        iso = {k: a.pop(k) for k in list(a) if k.startswith("isolation/")}
        assert len(iso) == 4 and iso["isolation/pixels"] > 0
        a.pop("epoch_time_s"), b.pop("epoch_time_s"), a.pop("images_per_s"), b.pop("images_per_s")
        assert a == b
    for x, y in zip(with_rule.model.state_dict().values(), without.model.state_dict().values()):
        assert torch.equal(x, y)
    ce, _ = trainer_for("method.name=ce").run_epoch()
    assert not any(k.startswith("isolation/") for k in ce)
