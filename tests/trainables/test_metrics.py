"""Confusion-matrix metrics against hand-computed values."""
import math

import torch

from trainables.metrics import (SplitMeter, confusion_matrix, iou_per_class, label_miou, label_quality, mean_iou,
                                pixel_accuracy)


def test_confusion_matrix_rows_are_targets_and_void_is_skipped() -> None:
    target = torch.tensor([0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_iou_by_hand() -> None:
    cm = torch.tensor([[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    # class 0: tp 1, union 1+1+1 = 3; class 1: tp 2, union 3; class 2: tp 0, union 1
    assert iou_per_class(cm).tolist() == [1 / 3, 2 / 3, 0.0]
    assert math.isclose(mean_iou(cm), (1 / 3 + 2 / 3 + 0) / 3)
    assert math.isclose(pixel_accuracy(cm), 3 / 5)


def test_absent_class_is_nan_and_left_out_of_the_mean() -> None:
    cm = torch.tensor([[3, 0, 0], [0, 1, 0], [0, 0, 0]])
    iou = iou_per_class(cm)
    assert math.isnan(iou[2]) and iou[:2].tolist() == [1.0, 1.0]
    assert mean_iou(cm) == 1.0


def test_split_meter_pools_pixels_over_batches_not_images() -> None:
    meter = SplitMeter(2)
    meter.update(torch.tensor([[1, 1]]), torch.tensor([[1, 1]]))  # image IoU(1) = 1
    meter.update(torch.tensor([[1, 0, 0, 0]]), torch.tensor([[0, 0, 0, 0]]))  # image IoU(1) = 0 (absent)
    # pooled: class 1 tp 2, fp 1 -> 2/3; class 0 tp 3, fn 1 -> 3/4
    assert meter.iou.tolist() == [0.75, 2 / 3]


def test_label_miou_is_one_for_identical_labels_and_drops_with_corruption() -> None:
    clean = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 0]])
    assert label_miou(clean, clean, 3) == 1.0
    noisy = clean.clone()
    noisy[0, 2] = 0  # one class-1 pixel lost to background
    # class 0: tp 3, union 4; class 1: tp 1, union 2; class 2: 1
    assert math.isclose(label_miou(noisy, clean, 3), (3 / 4 + 1 / 2 + 1) / 3)


def test_label_quality_skips_void_on_either_side() -> None:
    clean = torch.tensor([[0, 1, 1, 255]])
    labels = torch.tensor([[0, 1, 255, 1]])  # the only disagreements sit on void pixels
    assert label_quality(labels, clean, 2).iou.tolist() == [1.0, 1.0]
