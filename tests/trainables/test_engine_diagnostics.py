"""``train.diagnostics``: eval_pass (an eval-mode pass over the training images after the training
pass) and train_pass (the training pass's own predictions, no extra forward pass). Both give the
training IoU, IoU_el / IoU_m and the method's observations; train_pass counts exactly the logits the
training pass produced, runs one forward pass fewer per training image, and reads the device once."""
from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import REPO
from tests.trainables.test_engine_gpu_path import host_reads
from trainables import engine
from trainables.config import load_trial_config
from trainables.errors import ConfigError
from trainables.metrics import SplitMeter

TINY = str(REPO / "examples" / "tiny.yaml")
BASE = ["train.augment=false", "train.epochs=3", "train.eval_batch_size=8"]  # 16 training images, batch 4
ADELE = ["method.name=adele", "method.size_multiple=8", "method.correct_every=1", "method.r=0.0",
         "method.start_rule=floor", "method.start_floor=0.0", "method.min_points=1"]  # corrections early
TRAIN_KEYS = ("train_miou", "train_iou/disc", "iou_el", "iou_m", "label_miou")


def trainer_for(*sets: str) -> engine.Trainer:
    cfg = load_trial_config(TINY, [*BASE, *sets])
    return engine.Trainer(cfg, engine.prepare_data(cfg))


def forward_calls(trainer: engine.Trainer) -> list[int]:
    calls: list[int] = []
    trainer.model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    return calls


def test_train_pass_has_the_diagnostics_with_one_forward_pass_fewer_per_training_image() -> None:
    per_mode = {}
    for mode in ("eval_pass", "train_pass"):
        trainer = trainer_for(f"train.diagnostics={mode}")
        calls = forward_calls(trainer)
        metrics, images = trainer.run_epoch(want_images=True)
        per_mode[mode] = (calls, metrics)
        for key in TRAIN_KEYS:
            assert isinstance(metrics[key], float) and 0 <= metrics[key] <= 1, (mode, key, metrics[key])
        assert images["prediction"].shape == (4, 32, 32)
        for key in ("val_miou", "test_miou"):
            assert key in metrics
    train_batches = math.ceil(16 / 4)
    evals = {"train": math.ceil(16 / 8), "val": 1, "test": 1}  # 8 val, 8 test images, batches of 8
    assert len(per_mode["eval_pass"][0]) == train_batches + sum(evals.values())
    assert len(per_mode["train_pass"][0]) == train_batches + evals["val"] + evals["test"]
    # ce's training is the same in both modes (same seed, same batches): only train_* differ
    a, b = per_mode["eval_pass"][1], per_mode["train_pass"][1]
    assert (a["train_loss"], a["val_miou"], a["test_miou"]) == (b["train_loss"], b["val_miou"], b["test_miou"])


def test_train_pass_counts_the_training_pass_own_predictions() -> None:
    trainer = trainer_for("train.diagnostics=train_pass")
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # (dataset indices, logits) of each batch
    batch: list[torch.Tensor] = []
    begin = trainer.method.begin_batch
    trainer.method.begin_batch = lambda e, idx, aug: (batch.append(idx), begin(e, idx, aug))
    trainer.model.register_forward_hook(lambda m, args, out: seen.append((batch[-1], out.detach().clone())))
    labels = trainer.labels.clone()
    counts, panel, _ = trainer.training_pass(0, progress=False).diagnostics
    meters = counts.meters()
    ref = {n: SplitMeter(trainer.k, trainer.ignore) for n in engine.TRAIN_METERS}
    clean, noisy = trainer.data.clean["train"], trainer.data.noisy
    panel_ref = {}
    for idx, logits in seen:
        pred = logits.argmax(1)
        wrong = (noisy[idx] != clean[idx]) & (noisy[idx] != trainer.ignore) & (clean[idx] != trainer.ignore)
        ref["current"].update(pred, labels[idx])
        ref["noisy"].update(pred, noisy[idx])
        ref["el"].update(pred[wrong], clean[idx][wrong])
        ref["m"].update(pred[wrong], noisy[idx][wrong])
        panel_ref.update({int(i): p for i, p in zip(idx, pred) if i < 4})
    for name in engine.TRAIN_METERS:
        assert meters[name].cm.sum() > 0 and torch.equal(meters[name].cm, ref[name].cm), name
    assert torch.equal(panel, torch.stack([panel_ref[i] for i in range(4)]).to(torch.uint8))


@pytest.mark.parametrize("sets", [[], ADELE, [*ADELE, "method.prediction=eval_pass"]],
                         ids=["ce", "adele", "adele_eval_pass_source"])
def test_train_pass_reads_the_device_once_per_pass(sets: list[str], monkeypatch) -> None:
    trainer = trainer_for("train.diagnostics=train_pass", *sets)
    with host_reads(monkeypatch, trainer.optimizer) as seen:
        trained = trainer.training_pass(0, progress=False)
    assert seen == ["tolist"], seen  # the loss sums; the confusion counts stay on the device
    with host_reads(monkeypatch, trainer.optimizer) as seen:
        trained.diagnostics.counts.meters()
    assert seen == ["cpu"], seen


@pytest.mark.parametrize("source", ["train_epoch", "eval_pass"])
def test_adele_trains_and_corrects_under_train_pass(source: str) -> None:
    """ADELE's curves get the training IoU every epoch and its corrections have predictions, whichever
    its correction source (under train_pass, ``prediction: eval_pass`` observes the training pass)."""
    trainer = trainer_for("train.diagnostics=train_pass", *ADELE, f"method.prediction={source}")
    calls = forward_calls(trainer)
    changed = 0
    for epoch in range(3):
        metrics, _ = trainer.run_epoch()
        changed += metrics["relabel/pixels"]
        assert len(trainer.method.history) == epoch + 1
        names = [engine.metric_key(n) for n in trainer.data.class_names]
        assert trainer.method.history[-1] == pytest.approx([metrics[f"train_iou/{n}"] for n in names], nan_ok=True)
    assert changed > 0  # the labels were corrected from the training pass's predictions
    # 3 scales per training batch, val + test on each (last) evaluation epoch, no training-set pass
    assert len(calls) == 3 * (3 * 4 + 2)


def test_train_pass_with_augmentation_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        load_trial_config(TINY, ["train.diagnostics=train_pass"])  # tiny.yaml augments
    msg = str(err.value)
    assert "train.diagnostics" in msg and "train.augment" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match=r"train\.diagnostics: got 'both'"):
        load_trial_config(TINY, ["train.diagnostics=both"])


def test_train_pass_without_a_plain_call_forwards_that_batch_once_more() -> None:
    """ADELE without scale 1.0 never runs the model on the batch as given: each batch then gets one
    eval-mode forward for its diagnostics (2 scales + 1 per batch), and the counts are complete."""
    trainer = trainer_for("train.diagnostics=train_pass", *ADELE, "method.scales=[0.75, 1.5]")
    calls = forward_calls(trainer)
    trained = trainer.training_pass(0, progress=False)
    assert len(calls) == 4 * 3
    assert int(trained.diagnostics.counts.meters()["noisy"].cm.sum()) == int((trainer.data.noisy != trainer.ignore).sum())


def test_a_checkpoint_from_before_the_key_resumes_as_eval_pass() -> None:
    trainer = trainer_for()
    state = trainer.state_dict()
    del state["config"]["train"]["diagnostics"]
    trainer_for().load_state_dict(state, "old checkpoint")
    with pytest.raises(Exception, match="train.diagnostics"):
        trainer_for("train.diagnostics=train_pass").load_state_dict(state, "old checkpoint")
