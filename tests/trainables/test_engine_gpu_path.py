"""The engine's GPU path, exercised on the CPU: precision and device plan (the CUDA choices are pure
data, so a fake CUDA device stands in only where a real one is needed), no host read inside the
batch loops, the fused evaluation pass, channels_last, label sharing, exact resume."""
from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from trainables import engine
from trainables import run as run_cli
from trainables.checkpoint import load_checkpoint
from trainables.config import load_trial_config, parse_trial
from trainables.errors import ConfigError
from trainables.hot_path import RESIDENT_FRACTION, ConfusionCounts, LossSums, plan_hot_path, resolve_amp
from trainables.metrics import SplitMeter

TINY = str(REPO / "examples" / "tiny.yaml")
CUDA = torch.device("cuda", 0)  # only ever passed to the pure planning functions
MB = 2**20


# -- precision -------------------------------------------------------------------------------------
@pytest.mark.parametrize("setting, device, bf16, expected", [
    ("auto", "cpu", True, (False, torch.bfloat16, False)),  # CPU behaviour unchanged: full precision
    ("auto", "cuda", True, (True, torch.bfloat16, False)),  # bf16 autocast, no loss scaling
    ("auto", "cuda", False, (True, torch.float16, True)),  # no bf16 on this GPU: fp16 + GradScaler
    (True, "cpu", True, (True, torch.bfloat16, False)),  # the old `amp: true` on CPU
    (True, "cuda", True, (True, torch.bfloat16, False)),
    (False, "cuda", True, (False, torch.bfloat16, False)),
    (False, "cpu", True, (False, torch.bfloat16, False)),
])
def test_amp_resolution(setting, device, bf16, expected) -> None:
    assert resolve_amp(setting, device, bf16) == expected


def test_train_amp_takes_auto_and_the_old_booleans() -> None:
    assert parse_trial({}).train.amp == "auto"
    assert [parse_trial({"train": {"amp": v}}).train.amp for v in (True, False, "auto")] == [True, False, "auto"]
    with pytest.raises(ConfigError, match=r"train\.amp: got 'fp16'"):
        parse_trial({"train": {"amp": "fp16"}})


# -- device plan -----------------------------------------------------------------------------------
def test_cpu_plan_is_the_plain_path() -> None:
    plan = plan_hot_path(torch.device("cpu"), "auto", batch_size=8, eval_batch_size=None, data_bytes=10**12)
    assert (plan.amp, plan.grad_scaler, plan.channels_last, plan.pin_memory, plan.cudnn_benchmark,
            plan.fused_optimizer) == (False, False, False, False, False, False)
    assert plan.resident and plan.eval_batch_size == 16  # data stays where it is; 2 x batch_size as before


def test_cuda_plan_keeps_the_dataset_resident_only_when_it_fits() -> None:
    free = 1000 * MB
    fits = plan_hot_path(CUDA, "auto", 8, None, int(RESIDENT_FRACTION * free), free_bytes=free, bf16_supported=True)
    assert fits.resident and not fits.pin_memory
    assert (fits.amp, fits.amp_dtype, fits.grad_scaler) == (True, torch.bfloat16, False)
    assert fits.channels_last and fits.cudnn_benchmark and fits.fused_optimizer
    assert fits.eval_batch_size == 64  # larger evaluation batches on the GPU
    big = plan_hot_path(CUDA, "auto", 8, 24, int(RESIDENT_FRACTION * free) + 1, free_bytes=free, bf16_supported=False)
    assert not big.resident and big.pin_memory  # pinned host batches, copied non_blocking
    assert (big.amp_dtype, big.grad_scaler) == (torch.float16, True)
    assert big.eval_batch_size == 24  # a configured evaluation batch is the one used
    off = plan_hot_path(CUDA, False, 8, None, 0, free_bytes=free, bf16_supported=True)
    assert not off.amp and not off.grad_scaler


def test_trainer_follows_its_plan(tmp_path: Path) -> None:
    cfg = load_trial_config(TINY)
    trainer = engine.Trainer(cfg, engine.prepare_data(cfg))
    assert trainer.plan == plan_hot_path(torch.device("cpu"), "auto", 4, None, engine.data_bytes(trainer.data))
    assert not trainer.amp and not trainer.scaler.is_enabled()


# -- no host read inside the batch loops -----------------------------------------------------------
READS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__")


@contextmanager
def host_reads(monkeypatch, optimizer):
    """Count tensor-to-host conversions (outside optimizer.step, whose CPU step counters are host
    tensors on every device)."""
    seen: list[str] = []
    paused = [0]
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            if not paused[0]:
                seen.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    pre = optimizer.register_step_pre_hook(lambda *a: paused.__setitem__(0, paused[0] + 1))
    post = optimizer.register_step_post_hook(lambda *a: paused.__setitem__(0, paused[0] - 1))
    try:
        yield seen
    finally:
        pre.remove()
        post.remove()
        monkeypatch.undo()


METHODS = {
    "ce": [],
    "adele": ["method.name=adele", "method.scales=[0.75, 1.0, 1.5]", "method.size_multiple=8"],
    "adele_train_epoch": ["method.name=adele", "method.prediction=train_epoch", "method.size_multiple=8"],
    "lncis_stage2": ["method.name=lncis", "method.e1_frac=0.0"],
    "pu": ["method.name=pu"],
    "nnpu_estimated_prior": ["method.name=pu", "method.pu_loss=nnpu", "method.drop_rate=0.3"],
    "sce": ["method.name=sce"],
    "gce": ["method.name=gce"],
    "bootstrap_hard": ["method.name=bootstrap_hard"],
}


@pytest.mark.parametrize("variant", list(METHODS))
def test_one_host_read_per_training_pass_and_per_evaluation_pass(variant: str, monkeypatch) -> None:
    """Losses, method terms and confusion matrices stay on the device; each pass reads them once
    (4 training batches here; augmentation off: its random draws are host tensors anyway)."""
    cfg = load_trial_config(TINY, ["train.augment=false", *METHODS[variant]])
    trainer = engine.Trainer(cfg, engine.prepare_data(cfg))
    with host_reads(monkeypatch, trainer.optimizer) as seen:
        logs = trainer.train_epoch(0, progress=False)
    assert seen == ["tolist"], seen
    assert logs["train_loss"] > 0 and all(isinstance(v, float) for v in logs.values())
    with host_reads(monkeypatch, trainer.optimizer) as seen:
        trainer.evaluation_pass(0)
    assert seen == ["cpu"], seen  # the confusion matrices of train (4 meters), val and test at once


def test_loss_sums_equal_python_float_sums() -> None:
    """Summing on the device in float64 is the same arithmetic as the former Python floats."""
    torch.manual_seed(0)
    values = [torch.rand(()) * 10 for _ in range(50)]
    sizes = [int(n) for n in torch.randint(1, 9, (50,))]
    sums = LossSums()
    expected = 0.0
    for v, n in zip(values, sizes):
        sums.add({"loss": v, "const": 0.5}, n)
        expected = expected + float(v) * n
    means = sums.means()
    assert means["loss"] == expected / sum(sizes) and means["const"] == 0.5


def _reference_meters(trainer: engine.Trainer) -> dict[str, SplitMeter]:
    """The former per-batch host computation (argmax on the host, boolean-masked updates)."""
    k, ign = trainer.k, trainer.ignore
    meters = {n: SplitMeter(k, ign) for n in ("current", "noisy", "el", "m", "val", "test")}
    clean, noisy = trainer.data.clean["train"], trainer.data.noisy
    for start, stop, probs in trainer._predict(trainer.data.images["train"]):
        idx = torch.arange(start, stop)
        pred = probs.argmax(1).cpu()
        meters["current"].update(pred, trainer.labels[idx])
        meters["noisy"].update(pred, noisy[idx])
        wrong = (noisy[idx] != clean[idx]) & (noisy[idx] != ign) & (clean[idx] != ign)
        meters["el"].update(pred[wrong], clean[idx][wrong])
        meters["m"].update(pred[wrong], noisy[idx][wrong])
    for split in ("val", "test"):
        for start, stop, probs in trainer._predict(trainer.data.images[split]):
            meters[split].update(probs.argmax(1).cpu(), trainer.data.clean[split][start:stop])
    return meters


def test_fused_evaluation_pass_counts_like_per_batch_meters() -> None:
    cfg = load_trial_config(TINY, ["train.eval_batch_size=3"])  # batches that do not divide the splits
    trainer = engine.Trainer(cfg, engine.prepare_data(cfg))
    trainer.train_epoch(0, progress=False)
    fused, panel, _ = trainer.evaluation_pass(0)
    reference = _reference_meters(trainer)
    assert set(fused) == set(reference)
    for name, meter in reference.items():
        assert torch.equal(fused[name].cm, meter.cm), name
        assert meter.cm.sum() > 0, name
    first = torch.cat([p.argmax(1) for _, _, p in trainer._predict(trainer.data.images["train"][:4])])
    assert torch.equal(panel, first.to(torch.uint8))


def test_confusion_counts_skip_void_and_masked_pixels() -> None:
    counts = ConfusionCounts(["a", "b"], 3, 255, torch.device("cpu"))
    pred = torch.tensor([[0, 1, 2, 2]])
    target = torch.tensor([[0, 2, 255, 2]], dtype=torch.uint8)
    counts.add("a", pred, target)
    counts.add("b", pred, target, mask=torch.tensor([[False, True, True, True]]))
    meters = counts.meters()
    assert meters["a"].cm.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    assert meters["b"].cm.tolist() == [[0, 0, 0], [0, 0, 0], [0, 1, 1]]


def test_chunked_label_quality_equals_label_quality() -> None:
    from trainables.hot_path import label_quality_chunked
    from trainables.metrics import label_quality

    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (70, 9, 7), generator=gen, dtype=torch.uint8)
    clean = torch.randint(0, 4, (70, 9, 7), generator=gen, dtype=torch.uint8)
    labels[torch.rand(labels.shape, generator=gen) < 0.1] = 255
    clean[torch.rand(clean.shape, generator=gen) < 0.1] = 255
    chunked = label_quality_chunked(labels, clean, 4, 255, rows=16)
    assert torch.equal(chunked.cm, label_quality(labels, clean, 4, 255).cm) and chunked.cm.sum() > 0


# -- memory layout and label sharing ---------------------------------------------------------------
def test_channels_last_path_trains_on_cpu_like_the_default() -> None:
    cfg = load_trial_config(TINY, ["train.augment=true"])
    data = engine.prepare_data(cfg)
    plain = engine.Trainer(cfg, data)
    plan = dataclasses.replace(plain.plan, channels_last=True)
    fast = engine.Trainer(cfg, data, plan=plan)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.model.parameters() if p.ndim == 4)
    x = fast._inputs(data.images["train"][:2])
    assert x.is_contiguous(memory_format=torch.channels_last)
    a, b = plain.train_epoch(0, False), fast.train_epoch(0, False)
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)  # same math, other kernels


def test_labels_are_shared_unless_the_method_rewrites_them() -> None:
    cfg = load_trial_config(TINY)
    data = engine.prepare_data(cfg)
    ce = engine.Trainer(cfg, data)
    assert ce.labels.data_ptr() == data.noisy.data_ptr()  # CE never rewrites: no copy per trial
    assert ce.data.images["train"].data_ptr() == data.images["train"].data_ptr()  # host data not copied
    cfg_adele = load_trial_config(TINY, ["method.name=adele", "method.size_multiple=8", "train.augment=false"])
    adele = engine.Trainer(cfg_adele, engine.prepare_data(cfg_adele))
    assert adele.labels.data_ptr() != adele.data.noisy.data_ptr()
    assert torch.equal(adele.labels, adele.data.noisy)


# -- exact resume ----------------------------------------------------------------------------------
TIMING = {"images_per_s", "epoch_time_s"}


def _rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _crash_after(monkeypatch, epoch: int) -> None:
    real = run_cli.FileReporter.report

    def crash(self, metrics, checkpoint_dir, images=None):
        real(self, metrics, checkpoint_dir, images)
        if metrics["epoch"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_cli.FileReporter, "report", crash)


def test_resume_is_exact_with_eval_every_and_device_side_method_counters(tmp_path: Path, monkeypatch) -> None:
    """nnPU's pixel counters (its prior estimate) live on the device between epochs and val/test run
    every 3rd epoch: a crash after epoch 2 and --resume still give the uninterrupted run."""
    args = [TINY, "--quiet", "--set", "method.name=pu", "--set", "method.pu_loss=nnpu",
            "--set", "method.drop_rate=0.3", "--set", "eval_every=3"]
    full, out = tmp_path / "full", tmp_path / "resumed"
    assert run_cli.main([*args, "--out", str(full)]) == 0
    rows = _rows(full)
    assert [("val_miou" in r) for r in rows] == [False, False, True, True]  # every 3rd epoch and the last
    assert "best_val_miou" not in rows[1] and rows[2]["best_val_epoch"] == 3  # nothing evaluated yet, then epoch 3
    _crash_after(monkeypatch, 2)
    assert run_cli.main([*args, "--out", str(out)]) == 130
    monkeypatch.undo()
    assert run_cli.main([*args, "--out", str(out), "--resume"]) == 0
    assert _rows(out) == rows
    a, b = load_checkpoint(full / "checkpoints" / "epoch_0004"), load_checkpoint(out / "checkpoints" / "epoch_0004")
    assert a["method"] == b["method"] and a["method"]["valid_pixels"] > 0
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_checkpoint_of_the_unpruned_model_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    """A checkpoint written before unused encoder stages were pruned (it holds layer3/layer4 and an
    optimizer state over every parameter) resumes into the pruned model as if never interrupted."""
    full, out = tmp_path / "full", tmp_path / "old"
    assert run_cli.main([TINY, "--quiet", "--out", str(full)]) == 0
    real_create = engine.create_model
    monkeypatch.setattr(engine, "create_model", lambda cfg, k: real_create(cfg, k, prune=False))
    _crash_after(monkeypatch, 2)
    assert run_cli.main([TINY, "--quiet", "--out", str(out)]) == 130
    monkeypatch.undo()
    old = load_checkpoint(out / "checkpoints" / "epoch_0002")
    assert any(k.startswith("encoder.layer4.") for k in old["model"])
    assert run_cli.main([TINY, "--quiet", "--out", str(out), "--resume"]) == 0
    assert _rows(out) == _rows(full)
    a, b = load_checkpoint(full / "checkpoints" / "epoch_0004"), load_checkpoint(out / "checkpoints" / "epoch_0004")
    assert set(a["model"]) == set(b["model"]) and not any(k.startswith("encoder.layer4.") for k in b["model"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
