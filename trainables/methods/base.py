"""The method interface: everything a noise-robust method may do inside the trial engine.

A method (1) gives the loss for a training batch, (2) sees the model's predictions on the
un-augmented training images once per epoch, (3) may then rewrite the training labels, and
(4) has a state that is checkpointed. Methods never see the clean labels.

Epochs are 0-based here (``epoch`` = index of the epoch that is running or just ended).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass
class MethodContext:
    num_classes: int
    ignore_index: int
    epochs: int  # total epochs of the trial
    num_train: int  # training images
    image_size: tuple[int, int]  # (H, W)


@dataclass
class TrainIoU:
    """Per-class IoU of the epoch's predictions on the un-augmented training images, against the
    labels trained on now (``current``) and against the initial noisy labels (``noisy``). NaN
    where a class has no pixels in either prediction or label."""

    current: torch.Tensor  # float64 [K]
    noisy: torch.Tensor  # float64 [K]


class Method:
    """Base class; the ``ce`` baseline is this class with the default loss."""

    @dataclass
    class Params:
        pass

    def __init__(self, params: Any, ctx: MethodContext):
        self.params = params
        self.ctx = ctx

    # -- training ---------------------------------------------------------------------------
    def param_groups(self, device: torch.device) -> list[dict[str, Any]]:
        """The method's own learnable tensors (e.g. T-Loss's log nu), moved to ``device``, as extra
        optimiser parameter groups: dicts with ``params`` and per-group options (``lr``,
        ``weight_decay``; ``fixed_lr: True`` keeps the group off the LR schedule). Called once,
        before the engine builds the optimiser; the method checkpoints their values itself."""
        return []

    def loss(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of a batch. ``images``: normalised float [B, 3, H, W]; ``labels``: long [B, H, W]
        with ``ignore_index`` for void. Returns (scalar loss, per-batch scalars to average)."""
        logits = model(images)
        return F.cross_entropy(logits, labels, ignore_index=self.ctx.ignore_index), {}

    def begin_batch(self, epoch: int, indices: torch.Tensor, augmented: bool) -> None:
        """Called before ``loss`` with the dataset indices (long, CPU) of the training batch and
        whether the engine augmented it (then its pixels no longer align with the stored labels)."""

    # -- once per epoch ---------------------------------------------------------------------
    def observe_train_batch(self, epoch: int, indices: torch.Tensor, probs: torch.Tensor) -> None:
        """Called during the engine's evaluation pass over the un-augmented training images
        (one forward pass per epoch, shared with the metrics). ``probs``: softmax [B, K, H, W]."""

    def on_epoch_end(self, epoch: int, labels: torch.Tensor, train_iou: TrainIoU) -> None:
        """After the training-set pass. ``labels`` (uint8 [N, H, W], the labels trained on) may be
        modified in place; the engine checkpoints them."""

    def isolated(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        """The training pixels the method's rule would leave out of the loss (bool [B, H, W]) given
        the softmax ``probs`` [B, K, H, W] and the labels trained on (long [B, H, W]); None: the method
        isolates nothing. For diagnostics only (the engine scores the mask against the injected
        flips); must not change the method's state, the model or any RNG."""
        return None

    def diagnostics(self) -> dict[str, Any]:
        """Scalars / small lists describing the method's state after the epoch (for logging)."""
        return {}

    # -- checkpointing ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors, numbers, strings, lists and dicts only: loaded with ``weights_only=True``."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
