"""The trial engine: one training run of one method on one noisy dataset, resumable exactly.

Per epoch: a training pass (shuffled, optionally augmented), then ONE evaluation-mode pass over the
un-augmented training images that serves both the diagnostics (training IoU per class, IoU_el,
IoU_m) and the method (which may then rewrite the training labels), fused with the val/test
evaluation on evaluation epochs (every ``eval_every`` epochs and the last), then a full checkpoint
handed to the reporter with the epoch's metrics. With ``train.diagnostics: train_pass`` the
diagnostics and the method's observations come from the training pass's own (train-mode) predictions
on its un-augmented batches instead, and the evaluation pass covers val/test only.

On a GPU (``trainables.hot_path``): bf16 autocast (``train.amp: auto``), channels_last, the uint8
dataset resident on the device when it fits (else pinned, non_blocking batches), cudnn.benchmark,
fused optimizers, large evaluation batches, and no host sync inside any batch loop: losses and
confusion matrices are accumulated on the device and read once per pass.

All randomness of an epoch (shuffle order, augmentation) comes from a generator seeded by
(seed, epoch), and the global RNG states are checkpointed too, so a resumed trial continues exactly
where it stopped.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from .augment import augment_batch
from .checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from .config import TrialConfig
from .data import SegData
from .errors import UserError
from .history import History, _comparable, _jsonable
from .hot_path import ConfusionCounts, HotPath, LossSums, label_quality_chunked, plan_hot_path
from .methods import Method, MethodContext, TrainIoU, create_method
from .metrics import SplitMeter
from .models import create_model, optimizer_state_for
from .trial_data import TrialData, data_bytes, prepare_data

__all__ = ["MEAN", "STD", "EpochMeters", "History", "Reporter", "Trainer", "TrainingPass", "TrialData", "fit",
           "prepare_data", "resolve_device", "run_trainer"]

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet statistics, as the
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)  # pretrained encoders expect
PANEL_IMAGES = 4  # training images shown to the reporter as (image, clean, noisy, current, prediction)


class Reporter(Protocol):
    def report(self, metrics: dict, checkpoint_dir: str | None, images: dict | None = None) -> None:
        """Called once per completed epoch; ``checkpoint_dir`` is deleted after this returns. The
        epoch at which the trial diverged (``metrics["diverged"]``) comes without a checkpoint."""


class EpochMeters(NamedTuple):
    """What an epoch's evaluation counted: the meters (training set: ``current``, ``noisy``, ``el``,
    ``m``; then each evaluated split), the first training images' predictions (uint8, on the device;
    None without a training-set pass) and the isolation counts (None: the method has no rule)."""
    meters: dict[str, SplitMeter]
    panel: torch.Tensor | None
    isolation: IsolationCounts | None


class TrainingPass(NamedTuple):
    """One training pass: the sample-weighted mean loss and method terms (host floats) and, under
    ``train.diagnostics: train_pass``, the training-set diagnostics it counted (on the device, unread)."""
    logs: dict[str, float]
    diagnostics: TrainPassCounts | None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")  # set by Ray for a trial given a (logical) GPU
        raise UserError(f"train.device: {name!r} requested but CUDA is not available on {socket.gethostname()} "
                        f"(torch {torch.__version__}{'' if visible is None else f', CUDA_VISIBLE_DEVICES={visible}'});"
                        " use cpu or auto, or run the trial where a GPU is")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def metric_key(name: str) -> str:
    """Class names as metric-key parts: lower case, [a-z0-9_] only."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "class"


class Trainer:
    """Holds the live objects of one trial; ``fit`` drives it epoch by epoch. ``plan``: how to run
    on the device (default: :func:`~trainables.hot_path.plan_hot_path` for the config's device)."""

    def __init__(self, cfg: TrialConfig, data: TrialData, plan: HotPath | None = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.train.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        t = cfg.train
        self.plan = plan or plan_hot_path(self.device, t.amp, t.batch_size, t.eval_batch_size, data_bytes(data))
        if self.plan.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        self.k = len(data.class_names)
        self.ignore = data.ignore_index
        self.num_train = len(data.noisy)
        h, w = data.noisy.shape[1:]
        self.model = create_model(cfg.model, self.k).to(self.device)
        if self.plan.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.method = create_method(cfg.method, MethodContext(self.k, self.ignore, cfg.train.epochs,
                                                              self.num_train, (int(h), int(w))))
        # the model's parameters, then the method's own learnable tensors (own groups and rates)
        params = [{"params": [p for p in self.model.parameters() if p.requires_grad]},
                  *self.method.param_groups(self.device)]
        fused = {"fused": True} if self.plan.fused_optimizer else {}
        if t.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay,
                                             **fused)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, **fused)
        self.steps_per_epoch = math.ceil(self.num_train / t.batch_size)
        total = self.steps_per_epoch * t.epochs
        power = t.poly_power if t.schedule == "poly" else 0.0
        poly = lambda step: max(0.0, 1.0 - step / total) ** power  # noqa: E731
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(  # a method's fixed_lr group keeps its rate
            self.optimizer, [(lambda step: 1.0) if g.get("fixed_lr") else poly for g in self.optimizer.param_groups])
        self.mean, self.std = MEAN.to(self.device), STD.to(self.device)  # once, not per batch
        self.amp, self.amp_dtype = self.plan.amp, self.plan.amp_dtype
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.plan.grad_scaler)
        self.data = self._place(data)
        # the labels trained on now: a copy only for a method that may rewrite them (on_epoch_end)
        self.rewrites_labels = type(self.method).on_epoch_end is not Method.on_epoch_end
        self.labels = self.data.noisy.clone() if self.rewrites_labels else self.data.noisy
        self._noisy_quality: SplitMeter | None = None  # label quality of the noisy labels, once
        self.history = History()
        self.epoch = 0  # completed epochs
        # train.diagnostics: train_pass: counted during the training pass (TRAIN_METERS), read once
        self.diag_in_train = cfg.train.diagnostics == "train_pass"
        self.observes = type(self.method).observe_train_batch is not Method.observe_train_batch
        # a method with an isolation rule (Method.isolated): its mask scored against the injected flips
        self.isolates = type(self.method).isolated is not Method.isolated

    def _place(self, data: TrialData) -> TrialData:
        """The trial's data on the training device when the plan keeps it resident (GPU), else as
        given (host tensors, possibly shared read-only with Ray's object store)."""
        if not self.plan.resident or self.device.type == "cpu":
            return data
        move = lambda t: t.to(self.device)  # noqa: E731
        return TrialData({s: move(v) for s, v in data.images.items()}, {s: move(v) for s, v in data.clean.items()},
                         move(data.noisy), data.class_names, data.ignore_index, data.noise_miou)

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The full resumable state, to be saved before the next epoch changes it (the labels and the
        model's tensors are the live ones, not copies)."""
        return {"epoch": self.epoch, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "labels": self.labels.detach().cpu(),
                "method": self.method.state_dict(), "history": self.history.state(), "rng": capture_rng()}

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        mine, theirs = _comparable(self.cfg.to_dict()), _comparable(state["config"])
        theirs.setdefault("train.diagnostics", "eval_pass")  # written before the key existed
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise UserError(f"{source}: checkpoint was written with a different config ({', '.join(diff[:5])} "
                            f"differ); resume with the config it was written with")
        self.model.load_state_dict(state["model"])  # keys of pruned (unused) submodules are dropped
        self.optimizer.load_state_dict(optimizer_state_for(self.model, state["optimizer"], self.cfg.model, self.k))
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        labels = state["labels"].to(self.data.noisy.device, copy=True)
        # a method that never rewrites labels trains on the noisy labels themselves (no copy)
        self.labels = self.data.noisy if not self.rewrites_labels and torch.equal(labels, self.data.noisy) else labels
        self.method.load_state_dict(state["method"])
        self.history = History(**state["history"])
        self.epoch = int(state["epoch"])
        restore_rng(state["rng"])

    # -- passes -----------------------------------------------------------------------------
    def _batch(self, tensor: torch.Tensor, index: torch.Tensor | slice, device_index: torch.Tensor | slice | None = None
               ) -> torch.Tensor:
        """Rows ``index`` of a dataset tensor, on the training device: indexed there when the tensor
        is resident, else gathered on the host (staged in pinned memory on CUDA) and copied."""
        if tensor.device.type == self.device.type:
            return tensor[index if device_index is None else device_index]
        rows = tensor[index]
        if self.plan.pin_memory:
            return rows.pin_memory().to(self.device, non_blocking=True)
        return rows.to(self.device)

    def _inputs(self, images_u8: torch.Tensor) -> torch.Tensor:
        """Normalised float images from uint8 [B, H, W, 3] already on the device."""
        x = images_u8.permute(0, 3, 1, 2).float().div_(255)
        return self._layout((x - self.mean) / self.std)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.plan.channels_last else x

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def progress_bar(self, epoch: int, splits: tuple[str, ...] | None = ()):
        """One tqdm bar over a whole epoch: the training batches, then the evaluation batches (the
        diagnostics pass over the training images and ``splits``; None: training batches only);
        advanced by host-side counts only."""
        from tqdm import tqdm

        t, bs = self.cfg.train, self.plan.eval_batch_size
        passes = splits if self.diag_in_train else ("train", *(splits or ()))
        evals = 0 if splits is None else sum(math.ceil(len(self.data.images[s]) / bs) for s in passes)
        return tqdm(total=self.steps_per_epoch + evals, desc=f"epoch {epoch + 1}/{t.epochs}", unit="batch",
                    leave=False)

    def train_epoch(self, epoch: int, progress) -> dict[str, float]:
        """One training pass (:meth:`training_pass`); returns the sample-weighted mean loss and method terms."""
        return self.training_pass(epoch, progress).logs

    def training_pass(self, epoch: int, progress) -> TrainingPass:
        """One training pass: the mean loss and method terms, and under ``train.diagnostics:
        train_pass`` the training-set diagnostics counted from its own predictions. The batch loop
        never reads a device value: losses and terms are summed on the device and read once.
        ``progress``: True (a bar for this pass), a bar of :meth:`progress_bar` to advance, or False."""
        t = self.cfg.train
        gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        order = torch.randperm(self.num_train, generator=gen)
        order_dev = order.to(self.device) if self.data.noisy.device.type != "cpu" else order
        self.model.train()
        sums = LossSums()
        batches = range(0, self.num_train, t.batch_size)
        bar = progress if hasattr(progress, "update") else self.progress_bar(epoch, None) if progress else None
        diag = TrainPassDiagnostics(self, epoch) if self.diag_in_train else None
        for start in batches:
            idx, idx_dev = order[start : start + t.batch_size], order_dev[start : start + t.batch_size]
            x = self._inputs(self._batch(self.data.images["train"], idx, idx_dev))
            y = self._batch(self.labels, idx, idx_dev).long()
            if t.augment:
                x, y = augment_batch(x, y, gen, self.ignore)
                x = self._layout(x)
            self.method.begin_batch(epoch, idx, t.augment)
            with self._autocast(), (diag.watch(x) if diag is not None else contextlib.nullcontext()):
                loss, terms = self.method.loss(self.model, x, y, epoch)
            if diag is not None:
                diag.count(x, y, idx, idx_dev)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            sums.add({"train_loss": loss, **terms}, len(idx))
            if bar is not None:
                bar.update()
        if bar is not None and bar is not progress:
            bar.close()
        return TrainingPass(sums.means(), diag.result() if diag is not None else None)

    @torch.no_grad()
    def _predict(self, images_u8: torch.Tensor, bar=None):
        """Yield (start, stop, softmax probabilities) over ``images_u8`` in evaluation batches
        (advancing the progress ``bar``, if any, once per batch)."""
        self.model.eval()
        bs = self.plan.eval_batch_size
        for start in range(0, len(images_u8), bs):
            stop = min(start + bs, len(images_u8))
            with self._autocast():
                logits = self.model(self._inputs(self._batch(images_u8, slice(start, stop))))
            yield start, stop, torch.softmax(logits.float(), dim=1)
            if bar is not None:
                bar.update()

    def evaluation_pass(self, epoch: int, splits: tuple[str, ...] = ("val", "test"), train: bool = True,
                        progress=None) -> EpochMeters:
        """One evaluation-mode pass over the un-augmented training images (``train``) and the
        ``splits``. Training images: per-class IoU vs the current (meter ``current``) and the initial
        noisy labels (``noisy``), IoU_el / IoU_m (``el``, ``m``) on the pixels whose noisy label is
        wrong, and the method observes the same probabilities. Returns the meters (confusion
        matrices counted on the device, read once), the first training predictions (device) and the
        isolation counts of the method's rule on the training images (:class:`EpochMeters`).
        ``progress``: a bar of :meth:`progress_bar` advanced per batch."""
        names = (["current", "noisy", "el", "m"] if train else []) + list(splits)
        counts = ConfusionCounts(names, self.k, self.ignore, self.device)
        panel = []
        isolation = IsolationCounts(self.device) if train and self.isolates else None
        if train:
            clean, noisy = self.data.clean["train"], self.data.noisy
            for start, stop, probs in self._predict(self.data.images["train"], progress):
                rows = slice(start, stop)
                pred = probs.argmax(1)
                c, n = self._batch(clean, rows), self._batch(noisy, rows)
                wrong = (n != c) & (n != self.ignore) & (c != self.ignore)
                counts.add("current", pred, self._batch(self.labels, rows))
                counts.add("noisy", pred, n)
                counts.add("el", pred, c, wrong)
                counts.add("m", pred, n, wrong)
                self.method.observe_train_batch(epoch, torch.arange(start, stop), probs)
                if isolation is not None:
                    isolation.add(self.method.isolated(probs, self._batch(self.labels, rows).long()), wrong)
                if start < PANEL_IMAGES:
                    panel.append(pred[: PANEL_IMAGES - start])
        for split in splits:
            for start, stop, probs in self._predict(self.data.images[split], progress):
                counts.add(split, probs.argmax(1), self._batch(self.data.clean[split], slice(start, stop)))
        panel_pred = torch.cat(panel)[:PANEL_IMAGES].to(torch.uint8) if panel else None
        return EpochMeters(counts.meters(), panel_pred, isolation)

    def evaluate(self, split: str) -> SplitMeter:
        return self.evaluation_pass(-1, (split,), train=False)[0][split]

    def _label_changes(self, before: torch.Tensor | None) -> dict[str, float | None]:
        """How many training labels the method rewrote this epoch, and which share of them now
        agrees with the clean label (the precision of a label correction; None when none changed).
        ``before`` is None for a method that never rewrites labels."""
        if before is None:
            return {"relabel/pixels": 0, "relabel/precision": None, "relabel/net_fixed": 0}
        changed = before != self.labels
        n = int(changed.sum())
        clean = self.data.clean["train"]
        right = int((self.labels[changed] == clean[changed]).sum()) if n else 0
        was_right = int((before[changed] == clean[changed]).sum()) if n else 0
        return {"relabel/pixels": n, "relabel/precision": right / n if n else None,
                "relabel/net_fixed": right - was_right}

    def _label_quality(self) -> SplitMeter:
        """The training labels vs the clean ones, counted in chunks; computed once for a method
        that never rewrites labels (they stay the noisy ones)."""
        if self.rewrites_labels or self._noisy_quality is None:
            meter = label_quality_chunked(self.labels, self.data.clean["train"], self.k, self.ignore)
            if self.rewrites_labels:
                return meter
            self._noisy_quality = meter
        return self._noisy_quality

    def is_eval_epoch(self, epoch: int) -> bool:
        """Whether val/test are evaluated after (0-based) ``epoch``: every ``eval_every`` epochs and
        after the last."""
        return (epoch + 1) % self.cfg.eval_every == 0 or epoch + 1 == self.cfg.train.epochs

    # -- one epoch --------------------------------------------------------------------------
    def _diverged(self, epoch: int, lr: float, loss: float, t0: float) -> dict:
        """The metrics of an epoch whose training loss is not finite: the trial stops there."""
        self.epoch = epoch + 1
        metrics = {"epoch": self.epoch, "lr": lr, "train_loss": loss, "diverged": True,
                   "diverged_epoch": self.epoch, "diverged_reason": f"non-finite train loss ({loss})",
                   **self.history.summary(), "epoch_time_s": time.perf_counter() - t0}
        return _jsonable(metrics)

    def run_epoch(self, progress: bool = False, want_images: bool = False) -> tuple[dict, dict | None]:
        """One epoch: the training pass, the evaluation (training-set diagnostics, val/test on an
        evaluation epoch), the method's end of epoch (it may rewrite the labels), then the epoch's
        metrics and (``want_images``) the panel of training images. Returns (metrics, images)."""
        epoch = self.epoch
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch starts with
        t0 = time.perf_counter()
        splits = ("val", "test") if self.is_eval_epoch(epoch) else ()
        bar = self.progress_bar(epoch, splits) if progress else None  # the whole epoch: train + evaluation
        try:
            trained = self.training_pass(epoch, bar if bar is not None else False)
            loss = float(trained.logs["train_loss"])  # once per epoch, never per batch
            if not math.isfinite(loss):  # diverged: stop here, no evaluation of broken weights
                return self._diverged(epoch, lr, loss, t0), None
            train_time = time.perf_counter() - t0
            # (checks on the epoch's training loss go here, before the evaluation pass)
            evaluated = self.epoch_meters(epoch, splits, trained, bar)
        finally:
            if bar is not None:
                bar.close()
        changes = self.end_epoch(epoch, evaluated.meters, splits)
        label_meter = self._label_quality()
        metrics = self.epoch_metrics(lr, train_time, trained.logs, evaluated, changes, label_meter, splits)
        metrics["epoch_time_s"] = time.perf_counter() - t0
        images = self.panel_images(evaluated.panel) if want_images else None
        return _jsonable(metrics), images

    def epoch_meters(self, epoch: int, splits: tuple[str, ...], trained: TrainingPass, progress=None) -> EpochMeters:
        """The epoch's evaluation: under ``train_pass`` the training pass's counts plus an eval pass
        over ``splits`` (if any), else one eval pass over the training images and ``splits``."""
        if trained.diagnostics is None:
            return self.evaluation_pass(epoch, splits, progress=progress)
        counts, panel, isolation = trained.diagnostics
        meters = counts.meters()
        if splits:
            meters.update(self.evaluation_pass(epoch, splits, train=False, progress=progress).meters)
        return EpochMeters(meters, panel, isolation)

    def end_epoch(self, epoch: int, meters: dict[str, SplitMeter], splits: tuple[str, ...]) -> dict[str, float | None]:
        """The method's end of epoch (it may rewrite the training labels), then the epoch is
        complete (val/test, when ``splits`` has them, added to the history). Returns the label
        changes (:meth:`_label_changes`)."""
        before = self.labels.clone() if self.rewrites_labels else None
        self.method.on_epoch_end(epoch, self.labels, TrainIoU(meters["current"].iou, meters["noisy"].iou))
        changes = self._label_changes(before)
        self.epoch = epoch + 1
        if splits:
            self.history.add(self.epoch, meters["val"].miou, meters["test"].miou)
        return changes

    def epoch_metrics(self, lr: float, train_time: float, logs: dict[str, float], evaluated: EpochMeters,
                      changes: dict[str, float | None], label_meter: SplitMeter, splits: tuple[str, ...]) -> dict:
        """The metrics of the epoch just completed (:meth:`end_epoch`), in the order they are
        reported (``epoch_time_s`` is added by the caller)."""
        meters = evaluated.meters
        names = [metric_key(n) for n in self.data.class_names]
        per_class = lambda prefix, iou: {f"{prefix}/{n}": float(v) for n, v in zip(names, iou)}  # noqa: E731
        metrics: dict[str, Any] = {"epoch": self.epoch, "lr": lr, "images_per_s": self.num_train / train_time,
                                   "train_loss": logs["train_loss"]}
        metrics.update({f"loss/{k}": v for k, v in logs.items() if k != "train_loss"})
        metrics["train_miou"] = meters["current"].miou
        metrics.update(per_class("train_iou", meters["current"].iou))
        metrics["iou_el"] = meters["el"].miou
        metrics["iou_m"] = meters["m"].miou
        metrics["label_miou"] = label_meter.miou
        metrics.update(per_class("label_iou", label_meter.iou))
        metrics.update(changes)
        if evaluated.isolation is not None:
            metrics.update(evaluated.isolation.metrics())
        metrics["noise_miou"] = self.data.noise_miou
        for split in splits:
            meter = meters[split]
            metrics[f"{split}_miou"] = meter.miou
            metrics[f"{split}_acc"] = meter.accuracy
            metrics.update(per_class(f"{split}_iou", meter.iou))
        metrics.update(self.history.summary())
        metrics.update({f"method/{k}": v for k, v in self.method.diagnostics().items()})
        return metrics

    def panel_images(self, panel: torch.Tensor) -> dict[str, np.ndarray]:
        """The first training images as (image, clean, noisy, current labels, prediction), on the host."""
        n = len(panel)
        return {"image": self.data.images["train"][:n].cpu().numpy(),
                "clean": self.data.clean["train"][:n].cpu().numpy(),
                "noisy": self.data.noisy[:n].cpu().numpy(), "current": self.labels[:n].cpu().numpy(),
                "prediction": panel.cpu().numpy()}


class IsolationCounts:
    """How many training pixels a method's isolation rule (:meth:`Method.isolated`) leaves out, and
    how they match the injected flips (noisy label != clean label, both valid): ``isolation/pixels``,
    ``isolation/precision`` (share of the isolated pixels that are flipped), ``isolation/recall``
    (share of the flipped pixels that are isolated), ``isolation/flipped``; None where a share has no
    pixels. Summed on the device, read once."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(3, dtype=torch.long, device=device)  # isolated, isolated & flipped, flipped

    def add(self, isolated: torch.Tensor | None, flipped: torch.Tensor) -> None:
        if isolated is not None:
            self.sums += torch.stack([isolated.sum(), (isolated & flipped).sum(), flipped.sum()])

    def metrics(self) -> dict[str, int | float | None]:
        n, hit, flipped = self.sums.tolist()
        return {"isolation/pixels": n, "isolation/precision": hit / n if n else None,
                "isolation/recall": hit / flipped if flipped else None, "isolation/flipped": flipped}


TRAIN_METERS = ("current", "noisy", "el", "m")  # the training-set diagnostics' confusion matrices


class TrainPassDiagnostics:
    """``train.diagnostics: train_pass``: the training-set diagnostics of one training pass, from the
    logits the model gives for each (un-augmented) batch itself: a forward hook keeps the output of the
    model's call on the batch's own input tensor (for ADELE the scale-1.0 call), the batch is counted
    like :meth:`Trainer.evaluation_pass` counts it (argmax vs the current labels, the noisy labels, and
    IoU_el / IoU_m on the pixels whose noisy label is wrong) and the method observes the softmax. No
    extra forward pass, except for a batch the method never ran the model on as given (ADELE without
    scale 1.0): that batch gets an eval-mode forward of its own. Nothing is read from the device."""

    def __init__(self, trainer: Trainer, epoch: int):
        self.tr, self.epoch = trainer, epoch
        self.counts = ConfusionCounts(TRAIN_METERS, trainer.k, trainer.ignore, trainer.device)
        h, w = trainer.data.noisy.shape[1:]
        self.panel_rows = min(PANEL_IMAGES, trainer.num_train)
        # the panel's predictions (images 0..rows-1) by image index; one spare row takes the others
        self.isolation = IsolationCounts(trainer.device) if trainer.isolates else None
        self.panel = torch.zeros((self.panel_rows + 1, int(h), int(w)), dtype=torch.uint8, device=trainer.device)
        self.logits: torch.Tensor | None = None
        self._input: torch.Tensor | None = None

    @contextlib.contextmanager
    def watch(self, x: torch.Tensor):
        """Keep the model's output for input ``x`` while the method computes its loss."""
        self._input, self.logits = x, None

        def hook(module, args, output):
            if self.logits is None and args and args[0] is self._input and isinstance(output, torch.Tensor):
                self.logits = output.detach()

        handle = self.tr.model.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()
            self._input = None

    @torch.no_grad()
    def count(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, idx_dev: torch.Tensor) -> None:
        tr = self.tr
        logits = self.logits
        if logits is None:  # the method never called the model on the batch as given
            tr.model.eval()
            with tr._autocast():
                logits = tr.model(x)
            tr.model.train()
        self.logits = None
        pred = logits.argmax(1)
        c = tr._batch(tr.data.clean["train"], idx, idx_dev)
        n = tr._batch(tr.data.noisy, idx, idx_dev)
        wrong = (n != c) & (n != tr.ignore) & (c != tr.ignore)
        self.counts.add("current", pred, y)
        self.counts.add("noisy", pred, n)
        self.counts.add("el", pred, c, wrong)
        self.counts.add("m", pred, n, wrong)
        probs = torch.softmax(logits.float(), dim=1) if tr.observes or self.isolation is not None else None
        if tr.observes:
            tr.method.observe_train_batch(self.epoch, idx, probs)
        if self.isolation is not None:
            self.isolation.add(tr.method.isolated(probs, y), wrong)
        rows = torch.where(idx < self.panel_rows, idx, self.panel_rows).to(self.panel.device)  # no read
        self.panel.index_copy_(0, rows, pred.to(torch.uint8))

    def result(self) -> TrainPassCounts:
        """The counts, the panel's predictions (images 0..PANEL_IMAGES-1, uint8) and the isolation
        counts, all on the device, unread."""
        return TrainPassCounts(self.counts, self.panel[: self.panel_rows], self.isolation)


class TrainPassCounts(NamedTuple):
    """The training-set diagnostics of one training pass (:class:`TrainPassDiagnostics`), unread."""
    counts: ConfusionCounts
    panel: torch.Tensor
    isolation: IsolationCounts | None


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
        if metrics.get("diverged"):  # reported without a checkpoint: no broken weights are kept
            reporter.report(metrics, None, None)
            break
        staging = Path(tempfile.mkdtemp(prefix="ckpt-", dir=scratch_dir))
        try:
            save_checkpoint(trainer.state_dict(), staging)
            reporter.report(metrics, str(staging), images)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {**metrics, **trainer.history.summary()}
