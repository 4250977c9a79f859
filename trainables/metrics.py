"""Segmentation metrics from confusion matrices (METHODS.md section 3).

mIoU is computed from one confusion matrix over all pixels of a split, never as a mean of per-image
IoUs; void pixels count nowhere; a class with no pixels in prediction or target has IoU NaN and is
left out of the mean.
"""
from __future__ import annotations

import math

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """int64 [K, K] counts, rows = target class, columns = predicted class; void targets skipped."""
    valid = target != ignore_index
    t = target[valid].long()
    p = pred[valid].long()
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes).cpu()


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """float64 [K] IoU per class; NaN where the class is in neither prediction nor target."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))


def mean_iou(cm: torch.Tensor) -> float:
    iou = iou_per_class(cm)
    present = ~torch.isnan(iou)
    return float(iou[present].mean()) if present.any() else math.nan


def pixel_accuracy(cm: torch.Tensor) -> float:
    total = cm.sum()
    return float(cm.diag().sum().double() / total) if total > 0 else math.nan


class SplitMeter:
    """Accumulates a confusion matrix batch by batch."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.cm += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    @property
    def iou(self) -> torch.Tensor:
        return iou_per_class(self.cm)

    @property
    def miou(self) -> float:
        return mean_iou(self.cm)

    @property
    def accuracy(self) -> float:
        return pixel_accuracy(self.cm)


def label_quality(labels: torch.Tensor, clean: torch.Tensor, num_classes: int,
                  ignore_index: int = 255) -> SplitMeter:
    """Per-class IoU of a label map against the clean labels (corruption level, label quality),
    over the pixels that are void in neither."""
    both = (labels != ignore_index) & (clean != ignore_index)
    meter = SplitMeter(num_classes, ignore_index)
    meter.update(labels[both], clean[both])
    return meter


def label_miou(labels: torch.Tensor, clean: torch.Tensor, num_classes: int, ignore_index: int = 255) -> float:
    """mIoU of a label map against the clean labels."""
    return label_quality(labels, clean, num_classes, ignore_index).miou
