"""The trial engine: one training run of one method on one noisy dataset, resumable exactly.

Per epoch: a training pass (shuffled, optionally augmented), then ONE forward pass over the
un-augmented training images that serves both the diagnostics (training IoU per class, IoU_el,
IoU_m) and the method (which may then rewrite the training labels), then val/test evaluation, then
a full checkpoint handed to the reporter with the epoch's metrics.

All randomness of an epoch (shuffle order, augmentation) comes from a generator seeded by
(seed, epoch), and the global RNG states are checkpointed too, so a resumed trial continues exactly
where it stopped.
"""
from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .augment import augment_batch
from .checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from .config import TrialConfig
from .data import SegData, create_dataset
from .errors import UserError
from .methods import MethodContext, TrainIoU, create_method
from .metrics import SplitMeter, label_miou, label_quality
from .models import create_model
from .noise import NoiseContext, apply_noise, transform_clean

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet statistics, as the
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)  # pretrained encoders expect
PANEL_IMAGES = 4  # training images shown to the reporter as (image, clean, noisy, current, prediction)


class Reporter(Protocol):
    def report(self, metrics: dict, checkpoint_dir: str, images: dict | None = None) -> None:
        """Called once per completed epoch; ``checkpoint_dir`` is deleted after this returns."""


@dataclass
class TrialData:
    """Everything a trial trains and evaluates on, as CPU tensors."""

    images: dict[str, torch.Tensor]  # split -> uint8 [N, H, W, 3]
    clean: dict[str, torch.Tensor]  # split -> uint8 [N, H, W]
    noisy: torch.Tensor  # uint8 [N, H, W], the training labels as corrupted once
    class_names: list[str]
    ignore_index: int
    noise_miou: float  # corruption level: mIoU of the noisy training labels vs the clean ones


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory. Arrays from Ray's object store are read-only; the
    engine never writes into these tensors (labels it may change are cloned first), so sharing is
    safe and spares a copy of the dataset per trial."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def prepare_data(cfg: TrialConfig, dataset: SegData | None = None) -> TrialData:
    """Decode (unless given) and corrupt the training labels once, deterministically in the seed."""
    data = dataset if dataset is not None else create_dataset(cfg.dataset)
    if len(data.train) == 0 or len(data.val) == 0 or len(data.test) == 0:
        empty = [s for s, sp in data.splits().items() if len(sp) == 0]
        raise UserError(f"dataset: split(s) {', '.join(empty)} are empty; check dataset.root and max_images")
    k = data.num_classes
    clean = {s: _tensor(transform_clean(sp.masks, cfg.noise)) for s, sp in data.splits().items()}
    ctx = NoiseContext(k, data.ignore_index, data.train.instances)
    noisy = _tensor(apply_noise(data.train.masks, cfg.noise, cfg.effective_noise_seed, ctx))
    images = {s: _tensor(sp.images) for s, sp in data.splits().items()}
    return TrialData(images, clean, noisy, list(data.class_names), data.ignore_index,
                     label_miou(noisy, clean["train"], k, data.ignore_index))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device: {name!r} requested but CUDA is not available; use cpu or auto")
    return torch.device(name)


def metric_key(name: str) -> str:
    """Class names as metric-key parts: lower case, [a-z0-9_] only."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "class"


@dataclass
class History:
    """Evaluation history behind the papers' three test numbers (best-val / max-test / last)."""

    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)

    def add(self, epoch: int, val_miou: float, test_miou: float) -> None:
        self.epochs.append(epoch)
        self.val.append(val_miou)
        self.test.append(test_miou)

    def summary(self) -> dict[str, float]:
        if not self.val:
            return {}
        best = int(np.nanargmax(self.val)) if not all(math.isnan(v) for v in self.val) else 0
        return {"best_val_miou": self.val[best], "best_val_epoch": self.epochs[best],
                "best_val": self.test[best], "max_test": float(np.nanmax(self.test)), "last": self.test[-1]}

    def state(self) -> dict:
        return {"val": list(self.val), "test": list(self.test), "epochs": list(self.epochs)}


class Trainer:
    """Holds the live objects of one trial; ``fit`` drives it epoch by epoch."""

    def __init__(self, cfg: TrialConfig, data: TrialData):
        self.cfg = cfg
        self.data = data
        self.device = resolve_device(cfg.train.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.k = len(data.class_names)
        self.ignore = data.ignore_index
        self.num_train = len(data.noisy)
        h, w = data.noisy.shape[1:]
        self.model = create_model(cfg.model, self.k).to(self.device)
        self.method = create_method(cfg.method, MethodContext(self.k, self.ignore, cfg.train.epochs,
                                                              self.num_train, (int(h), int(w))))
        t = cfg.train
        params = [p for p in self.model.parameters() if p.requires_grad]
        if t.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
        self.steps_per_epoch = math.ceil(self.num_train / t.batch_size)
        total = self.steps_per_epoch * t.epochs
        power = t.poly_power if t.schedule == "poly" else 0.0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: max(0.0, 1.0 - step / total) ** power)
        self.mean, self.std = MEAN.to(self.device), STD.to(self.device)  # once, not per batch
        self.amp = t.amp
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=t.amp and self.device.type == "cuda")
        self.labels = data.noisy.clone()  # the labels trained on now; methods may rewrite them
        self.history = History()
        self.epoch = 0  # completed epochs

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "labels": self.labels.clone(),
                "method": self.method.state_dict(), "history": self.history.state(), "rng": capture_rng()}

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        mine, theirs = _comparable(self.cfg.to_dict()), _comparable(state["config"])
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise UserError(f"{source}: checkpoint was written with a different config ({', '.join(diff[:5])} "
                            f"differ); resume with the config it was written with")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.labels = state["labels"].clone()
        self.method.load_state_dict(state["method"])
        self.history = History(**state["history"])
        self.epoch = int(state["epoch"])
        restore_rng(state["rng"])

    # -- passes -----------------------------------------------------------------------------
    def _inputs(self, images_u8: torch.Tensor) -> torch.Tensor:
        x = images_u8.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
        return (x - self.mean) / self.std

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def train_epoch(self, epoch: int, progress: bool) -> dict[str, float]:
        t = self.cfg.train
        gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        order = torch.randperm(self.num_train, generator=gen)
        self.model.train()
        sums: dict[str, float] = {}
        seen = 0
        batches = range(0, self.num_train, t.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{t.epochs}", unit="batch", leave=False)
        for start in batches:
            idx = order[start : start + t.batch_size]
            x = self._inputs(self.data.images["train"][idx])
            y = self.labels[idx].to(self.device).long()
            if t.augment:
                x, y = augment_batch(x, y, gen, self.ignore)
            self.method.begin_batch(epoch, idx, t.augment)
            with self._autocast():
                loss, terms = self.method.loss(self.model, x, y, epoch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            n = len(idx)
            seen += n
            for key, value in {"train_loss": float(loss.detach()), **terms}.items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
        return {k: v / seen for k, v in sums.items()}

    @torch.no_grad()
    def _predict(self, images_u8: torch.Tensor):
        """Yield (indices, softmax probabilities) over ``images_u8`` in evaluation batches."""
        self.model.eval()
        bs = self.cfg.train.eval_batch_size or 2 * self.cfg.train.batch_size
        for start in range(0, len(images_u8), bs):
            idx = torch.arange(start, min(start + bs, len(images_u8)))
            with self._autocast():
                logits = self.model(self._inputs(images_u8[idx]))
            yield idx, torch.softmax(logits.float(), dim=1)

    def evaluate(self, split: str) -> SplitMeter:
        meter = SplitMeter(self.k, self.ignore)
        for idx, probs in self._predict(self.data.images[split]):
            meter.update(probs.argmax(1).cpu(), self.data.clean[split][idx])
        return meter

    def train_diagnostics(self, epoch: int) -> tuple[dict[str, SplitMeter], torch.Tensor]:
        """The one extra pass over the un-augmented training images: per-class training IoU vs the
        current and the initial noisy labels, IoU_el / IoU_m on the pixels whose noisy label is
        wrong; the method observes the same probabilities."""
        meters = {name: SplitMeter(self.k, self.ignore) for name in ("current", "noisy", "el", "m")}
        clean, noisy = self.data.clean["train"], self.data.noisy
        panel = []
        for idx, probs in self._predict(self.data.images["train"]):
            pred = probs.argmax(1).cpu()
            meters["current"].update(pred, self.labels[idx])
            meters["noisy"].update(pred, noisy[idx])
            wrong = (noisy[idx] != clean[idx]) & (noisy[idx] != self.ignore) & (clean[idx] != self.ignore)
            meters["el"].update(pred[wrong], clean[idx][wrong])
            meters["m"].update(pred[wrong], noisy[idx][wrong])
            self.method.observe_train_batch(epoch, idx, probs)
            if idx[0] < PANEL_IMAGES:
                panel.append(pred[: PANEL_IMAGES - int(idx[0])])
        return meters, torch.cat(panel)[:PANEL_IMAGES].to(torch.uint8)

    def _label_changes(self, before: torch.Tensor) -> dict[str, float | None]:
        """How many training labels the method rewrote this epoch, and which share of them now
        agrees with the clean label (the precision of a label correction; None when none changed)."""
        changed = before != self.labels
        n = int(changed.sum())
        right = int((self.labels[changed] == self.data.clean["train"][changed]).sum()) if n else 0
        was_right = int((before[changed] == self.data.clean["train"][changed]).sum()) if n else 0
        return {"relabel/pixels": n, "relabel/precision": right / n if n else None,
                "relabel/net_fixed": right - was_right}

    # -- one epoch --------------------------------------------------------------------------
    def run_epoch(self, progress: bool = False, want_images: bool = False) -> tuple[dict, dict | None]:
        epoch = self.epoch
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch starts with
        t0 = time.perf_counter()
        logs = self.train_epoch(epoch, progress)
        train_time = time.perf_counter() - t0
        meters, panel_pred = self.train_diagnostics(epoch)
        before = self.labels.clone()
        self.method.on_epoch_end(epoch, self.labels, TrainIoU(meters["current"].iou, meters["noisy"].iou))
        changes = self._label_changes(before)
        self.epoch = epoch + 1
        names = [metric_key(n) for n in self.data.class_names]
        metrics: dict[str, Any] = {"epoch": self.epoch, "lr": lr,
                                   "images_per_s": self.num_train / train_time}
        metrics["train_loss"] = logs.pop("train_loss")
        metrics.update({f"loss/{k}": v for k, v in logs.items()})
        metrics["train_miou"] = meters["current"].miou
        metrics.update({f"train_iou/{n}": float(v) for n, v in zip(names, meters["current"].iou)})
        metrics["iou_el"] = meters["el"].miou
        metrics["iou_m"] = meters["m"].miou
        label_meter = label_quality(self.labels, self.data.clean["train"], self.k, self.ignore)
        metrics["label_miou"] = label_meter.miou
        metrics.update({f"label_iou/{n}": float(v) for n, v in zip(names, label_meter.iou)})
        metrics.update(changes)
        metrics["noise_miou"] = self.data.noise_miou
        if self.epoch % self.cfg.eval_every == 0 or self.epoch == self.cfg.train.epochs:
            split_miou = {}
            for split in ("val", "test"):
                meter = self.evaluate(split)
                split_miou[split] = meter.miou
                metrics[f"{split}_miou"] = meter.miou
                metrics[f"{split}_acc"] = meter.accuracy
                metrics.update({f"{split}_iou/{n}": float(v) for n, v in zip(names, meter.iou)})
            self.history.add(self.epoch, split_miou["val"], split_miou["test"])
        metrics.update(self.history.summary())
        metrics.update({f"method/{k}": v for k, v in self.method.diagnostics().items()})
        metrics["epoch_time_s"] = time.perf_counter() - t0
        images = None
        if want_images:
            n = len(panel_pred)
            images = {"image": self.data.images["train"][:n].numpy(), "clean": self.data.clean["train"][:n].numpy(),
                      "noisy": self.data.noisy[:n].numpy(), "current": self.labels[:n].numpy(),
                      "prediction": panel_pred.numpy()}
        return _jsonable(metrics), images


def _comparable(cfg_dict: dict) -> dict:
    """Flattened config without the keys that may change between a run and its resume."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = node

    walk("", cfg_dict)
    for key in ("train.device", "train.threads", "train.eval_batch_size"):
        flat.pop(key, None)
    return flat


def _jsonable(metrics: dict) -> dict:
    """Plain floats/ints/lists; NaN becomes None so JSON lines stay strict."""
    def clean(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return {k: clean(v) for k, v in metrics.items()}


def fit(cfg: TrialConfig, reporter: Reporter, *, dataset: SegData | None = None,
        resume_from: str | Path | None = None, images_every: int = 0, progress: bool = False,
        scratch_dir: str | Path | None = None) -> dict:
    """Train one trial; ``reporter.report`` is called once per completed epoch with the metrics and
    a directory holding the full resumable state (deleted after ``report`` returns, so copy or move
    it there). ``dataset``: a pre-decoded SegData (e.g. from Ray's object store); ``resume_from``: a
    checkpoint directory of an earlier fit with the same config; ``images_every``: hand the reporter
    a panel of training images every that many epochs (0: never); ``scratch_dir``: where checkpoint
    directories are staged (put it on the reporter's filesystem so moving them is a rename).
    Returns the summary (best-val / max-test / last and the last epoch's metrics)."""
    trainer = Trainer(cfg, prepare_data(cfg, dataset))
    return run_trainer(trainer, reporter, resume_from=resume_from, images_every=images_every,
                       progress=progress, scratch_dir=scratch_dir)


def run_trainer(trainer: Trainer, reporter: Reporter, *, resume_from: str | Path | None = None,
                images_every: int = 0, progress: bool = False, scratch_dir: str | Path | None = None) -> dict:
    """The epoch loop of :func:`fit` over an already built Trainer."""
    if resume_from is not None:
        trainer.load_state_dict(load_checkpoint(resume_from), str(resume_from))
    metrics: dict = {}
    while trainer.epoch < trainer.cfg.train.epochs:
        want_images = images_every > 0 and (trainer.epoch + 1) % images_every == 0
        metrics, images = trainer.run_epoch(progress, want_images)
        staging = Path(tempfile.mkdtemp(prefix="ckpt-", dir=scratch_dir))
        try:
            save_checkpoint(trainer.state_dict(), staging)
            reporter.report(metrics, str(staging), images)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {**metrics, **trainer.history.summary()}
