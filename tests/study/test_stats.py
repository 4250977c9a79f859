"""Replicate statistics by hand: t intervals, paired differences, verdicts; the report's premise check."""
from __future__ import annotations

import math

import pytest

from study.report import _premise_lines, learning_epoch
from study.stats import paired, summarize, verdict


def test_summary_is_mean_std_and_student_t_interval():
    s = summarize([0.1, 0.2, 0.3, None, float("nan")])  # non-finite values are ignored
    assert s.n == 3 and s.mean == pytest.approx(0.2) and s.std == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, df=2) from a table
    assert (s.lo, s.hi) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    one = summarize([0.5])
    assert (one.n, one.mean, one.std) == (1, 0.5, 0.0) and math.isnan(one.lo)
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)


def test_paired_differences_use_common_seeds_only():
    a = {1: 0.60, 2: 0.70, 3: 0.65, 4: 0.9}
    b = {1: 0.55, 2: 0.60, 3: 0.62, 5: 0.1}
    d, seeds = paired(a, b)
    assert seeds == [1, 2, 3]
    assert d.mean == pytest.approx((0.05 + 0.10 + 0.03) / 3) and d.n == 3
    # the pairing removes the seed effect the configurations share: a wide spread per configuration,
    # a narrow one in the differences
    assert summarize(a.values()).std > d.std


def test_verdicts():
    assert verdict(summarize([0.05, 0.06, 0.07])) == "better"
    assert verdict(summarize([-0.05, -0.06, -0.07])) == "worse"
    assert verdict(summarize([-0.05, 0.06, 0.01])) == "no clear difference"
    assert verdict(summarize([0.5])) == "no clear difference"  # no interval from one pair


def h(epoch, **kw):
    return {"epoch": epoch, **{k.replace("__", "/"): v for k, v in kw.items()}}


def test_learning_epochs_and_premise_table():
    run1 = [h(1, train_iou__background=0.9, train_iou__disc=0.1, train_iou__bar=0.0, iou_el=0.1, iou_m=0.1, label_miou=0.6),
            h(2, train_iou__background=0.9, train_iou__disc=0.4, train_iou__bar=0.0, iou_el=0.3, iou_m=0.1, label_miou=0.6),
            h(3, train_iou__background=0.9, train_iou__disc=0.5, train_iou__bar=0.31, iou_el=0.2, iou_m=0.4, label_miou=0.6)]
    run2 = [dict(r, **{"train_iou/bar": 0.0}) for r in run1]  # the bar is never learned in run 2
    assert learning_epoch(run1, "disc") == 2 and learning_epoch(run1, "bar") == 3
    assert learning_epoch(run2, "bar") is None
    lines = _premise_lines("c", {"ce": [run1, run2], "x": [run1]}, ["ce", "x"], {"ce": "ce", "x": "x"})
    # bar learned in 1 of 2 runs: not by most runs, so "never"; peak IoU_el at epoch 2 (0.300)
    assert lines[0] == "| c | ce | 2 | disc 2, bar never | 2 (0.300) | 0.200 / 0.400 | 0.600 |"
    assert lines[1].startswith("| c | x | 1 | disc 2, bar 3 |")
