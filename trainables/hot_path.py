"""How a trial runs on its device, and the device-side accumulators of its passes.

:func:`plan_hot_path` decides, from the device, ``train.amp`` and the dataset's size: the autocast
precision (``amp: auto`` = bf16 on CUDA, off on CPU; fp16 with a GradScaler only where the GPU has no
bf16), channels_last, whether the uint8 dataset lives on the GPU (when it takes at most
``RESIDENT_FRACTION`` of the free memory; else batches are staged in pinned memory and copied
``non_blocking``), ``cudnn.benchmark``, fused optimizers and the evaluation batch size. On CPU the plan
is the engine's plain path (full precision unless ``amp: true``, data where it is, evaluation batches
of 2 x batch_size). It is pure data, so the CUDA choices are testable without a GPU.

:class:`LossSums` and :class:`ConfusionCounts` keep per-batch results where they are computed (on the
GPU) and are read once per epoch, so the batch loops never wait for the device.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .metrics import SplitMeter

RESIDENT_FRACTION = 0.25  # the dataset goes to the GPU when it needs at most this share of its free memory
EVAL_FACTOR = {"cpu": 2, "cuda": 8}  # default evaluation batch = factor x train.batch_size


@dataclass(frozen=True)
class HotPath:
    device_type: str
    amp: bool  # autocast on
    amp_dtype: torch.dtype
    grad_scaler: bool  # fp16 needs loss scaling; bf16 and full precision do not
    channels_last: bool
    resident: bool  # the uint8 images and labels live on the training device
    pin_memory: bool  # host batches are staged in pinned memory and copied non_blocking
    eval_batch_size: int
    cudnn_benchmark: bool
    fused_optimizer: bool


def resolve_amp(setting: bool | str, device_type: str, bf16_supported: bool = True) -> tuple[bool, torch.dtype, bool]:
    """(autocast on, its dtype, GradScaler on) for ``train.amp`` = auto | true | false on a device.
    auto: on for CUDA only. CUDA uses bf16 where supported, else fp16 with a GradScaler; CPU bf16."""
    if setting not in ("auto", True, False):
        raise ValueError(f"train.amp: got {setting!r}; allowed: auto, true, false")
    enabled = device_type == "cuda" if setting == "auto" else bool(setting)
    dtype = torch.bfloat16 if device_type != "cuda" or bf16_supported else torch.float16
    return enabled, dtype, enabled and dtype == torch.float16


def plan_hot_path(device: torch.device, amp: bool | str, batch_size: int, eval_batch_size: int | None,
                  data_bytes: int, *, free_bytes: int | None = None,
                  bf16_supported: bool | None = None) -> HotPath:
    """The plan for ``device``; ``free_bytes`` / ``bf16_supported`` are queried from CUDA when not
    given (pass them to plan for a GPU without one)."""
    cuda = device.type == "cuda"
    if cuda and free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    if cuda and bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    enabled, dtype, scaler = resolve_amp(amp, device.type, bool(bf16_supported))
    resident = not cuda or data_bytes <= RESIDENT_FRACTION * free_bytes
    return HotPath(device_type=device.type, amp=enabled, amp_dtype=dtype, grad_scaler=scaler,
                   channels_last=cuda, resident=resident, pin_memory=cuda and not resident,
                   eval_batch_size=eval_batch_size or EVAL_FACTOR.get(device.type, 2) * batch_size,
                   cudnn_benchmark=cuda, fused_optimizer=cuda)


def nbytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class LossSums:
    """Sample-weighted sums of per-batch scalars (the loss and a method's terms). Tensor values stay
    on their device and are summed in float64 there (the same IEEE operations, in the same order, as
    summing Python floats, so CPU results are unchanged); :meth:`means` reads them all at once."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor | float] = {}
        self.count = 0

    def add(self, values: dict[str, torch.Tensor | float], n: int) -> None:
        for key, value in values.items():
            part = value.detach().double() * n if isinstance(value, torch.Tensor) else float(value) * n
            self.sums[key] = part if key not in self.sums else self.sums[key] + part
        self.count += n

    def means(self) -> dict[str, float]:
        """The means, with one host read for all tensor sums."""
        tensors = [k for k, v in self.sums.items() if isinstance(v, torch.Tensor)]
        read = {}
        if tensors:
            first = self.sums[tensors[0]]
            read = dict(zip(tensors, torch.stack([self.sums[k].to(first.device) for k in tensors]).tolist()))
        return {k: (read[k] if k in read else v) / self.count for k, v in self.sums.items()}


class ConfusionCounts:
    """Confusion matrices of several named (prediction, target) streams, counted on the device
    (no host sync per batch: void and masked-out pixels go to a spare bin) and read once."""

    def __init__(self, names: Iterable[str], num_classes: int, ignore_index: int, device: torch.device):
        self.names = list(names)
        self.k = num_classes
        self.ignore = ignore_index
        self.bins = num_classes * num_classes + 1  # the last bin collects what does not count
        self.counts = torch.zeros(len(self.names) * self.bins, dtype=torch.int64, device=device)

    def add(self, name: str, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Count ``pred`` vs ``target`` (same shape) where ``target`` is not void (and ``mask``)."""
        valid = target != self.ignore
        if mask is not None:
            valid &= mask
        codes = torch.where(valid, target.long() * self.k + pred.long(), self.k * self.k)
        codes = codes.reshape(-1) + self.names.index(name) * self.bins
        if self.counts.device.type == "cpu":
            self.counts += torch.bincount(codes, minlength=self.counts.numel())
        else:  # CUDA's bincount reads its maximum back to the host; index_add_ does not
            self.counts.index_add_(0, codes, torch.ones_like(codes))

    def meters(self) -> dict[str, SplitMeter]:
        counts = self.counts.view(len(self.names), self.bins)[:, :-1].cpu()  # the one host read
        out = {}
        for i, name in enumerate(self.names):
            meter = SplitMeter(self.k, self.ignore)
            meter.cm = counts[i].view(self.k, self.k).clone()
            out[name] = meter
        return out


def label_quality_chunked(labels: torch.Tensor, clean: torch.Tensor, num_classes: int, ignore_index: int,
                          rows: int = 64) -> SplitMeter:
    """:func:`trainables.metrics.label_quality` (per-class IoU of a label map vs the clean labels
    over the pixels void in neither), counted ``rows`` images at a time: the int64 temporaries stay
    at a few MB instead of ~40 bytes per label pixel, and on a GPU nothing is read back per chunk."""
    counts = ConfusionCounts(["labels"], num_classes, ignore_index, labels.device)
    for i in range(0, len(labels), rows):
        part = labels[i : i + rows]
        counts.add("labels", part, clean[i : i + rows].to(labels.device), mask=part != ignore_index)
    return counts.meters()["labels"]
