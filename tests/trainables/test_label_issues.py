"""The suspect ranking on hand-made label / prediction maps, checked against counts made by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from trainables.label_issues import (NOT_CONFIDENT, RANKINGS, Predictions, average_precision, cleanlab_issues, confident_labels,
                                     order_by, precision_at_k, rank_label_issues)

V = 255  # void


def one_hot_probs(pred: np.ndarray, k: int, p: float) -> np.ndarray:
    """Probabilities [N, K, H, W] with probability ``p`` on ``pred`` and the rest spread evenly."""
    probs = np.full((pred.shape[0], k, *pred.shape[1:]), (1 - p) / (k - 1), np.float32)
    np.put_along_axis(probs, pred[:, None].astype(np.intp), p, axis=1)
    return probs


def test_ranks_a_missing_object_first_with_hand_counts():
    labels = np.zeros((3, 4, 4), np.uint8)
    labels[0, :2, :2] = 1  # image 0: label and model agree on a 2x2 object
    labels[2, 0, 0] = 2  # image 2: one pixel of class 2 the model calls background
    pred = labels.copy()
    pred[1, 1:3, 1:3] = 1  # image 1: the label misses a 2x2 object of class 1
    pred[2, 0, 0] = 0
    res = rank_label_issues(labels, Predictions.from_confident(pred), num_classes=3, class_names=["bg", "a", "b"])
    assert res.order.tolist() == [1, 2, 0]
    top = res.images[0]
    assert top["index"] == 1 and top["rank"] == 1
    assert top["disagree_pixels"] == 4 and top["labelled_pixels"] == 16 and top["disagreement"] == 0.25
    assert top["removed/bg"] == 4 and top["added/a"] == 4
    assert top["removed/a"] == top["added/bg"] == top["removed/b"] == top["added/b"] == 0
    # image 1: bg IoU 12/16, class a IoU 0/4 -> mean 0.375; image 0 agrees everywhere
    assert top["iou"] == pytest.approx((12 / 16 + 0) / 2)
    assert res.images[2]["iou"] == 1.0 and res.images[2]["disagreement"] == 0.0
    assert res.images[1]["removed/b"] == 1 and res.images[1]["added/bg"] == 1
    assert "cleanlab_softmin" not in top and res.flags is None  # hard predictions only
    classes = {c["class"]: c for c in res.classes}
    assert classes["a"]["labelled_pixels"] == 4 and classes["a"]["added"] == 4 and classes["a"]["images_changed"] == 1
    assert classes["a"]["confident_pixels"] == 8  # 4 agreeing in image 0, 4 added in image 1
    assert classes["a"]["iou"] == pytest.approx(4 / 8)
    assert classes["b"]["iou"] == 0.0 and classes["b"]["removed"] == 1
    assert classes["bg"]["labelled_pixels"] == 16 * 3 - 5


def test_void_and_unconfident_pixels_never_count():
    labels = np.zeros((2, 2, 4), np.uint8)
    labels[0, 0] = V  # void row: the model disagrees there, but void is never scored
    pred = np.ones((2, 2, 4), np.uint8)  # model says class 1 everywhere
    confident = np.zeros((2, 2, 4), bool)
    confident[0] = True
    confident[1, 0, 0] = True  # image 1: only one confident pixel
    preds = Predictions(pred, confident, None)
    res = rank_label_issues(labels, preds, num_classes=2)
    s = res.scores
    assert s["labelled_pixels"].tolist() == [4, 8]
    assert s["disagree_pixels"].tolist() == [4, 1]
    assert s["disagreement"].tolist() == [1.0, 1 / 8]
    assert res.order.tolist() == [0, 1]
    assert s["iou"].tolist() == [0.0, 0.0]  # IoU uses the argmax, confident or not
    # the NOT_CONFIDENT code is no prediction even where ``confident`` says otherwise
    pred2 = np.full_like(pred, NOT_CONFIDENT)
    res2 = rank_label_issues(labels, Predictions(pred2, np.ones_like(confident), None), num_classes=2)
    assert res2.scores["disagree_pixels"].tolist() == [0, 0]
    assert all(math.isnan(v) for v in res2.scores["iou"])


def test_all_void_image_scores_zero_and_ranks_last():
    labels = np.zeros((2, 2, 2), np.uint8)
    labels[1] = V
    pred = np.ones_like(labels)
    res = rank_label_issues(labels, Predictions.from_confident(pred), num_classes=2)
    assert res.order.tolist() == [0, 1]
    assert res.images[1]["labelled_pixels"] == 0 and res.images[1]["disagreement"] == 0.0
    assert res.images[1]["iou"] is None


def test_ties_break_by_iou_then_index():
    labels = np.zeros((3, 2, 2), np.uint8)
    labels[:, 0, 0] = 1
    pred = labels.copy()
    conf = np.ones(labels.shape, bool)
    pred[0, 1, 1] = 1  # images 0 and 1 each disagree on one pixel, image 1 with a lower IoU
    pred[1, 0, 0] = 0
    pred[2, 1, 0] = 1  # image 2 as image 0 (same IoU): the index decides
    res = rank_label_issues(labels, Predictions(pred, conf, None), num_classes=2)
    assert res.scores["disagreement"].tolist() == [0.25, 0.25, 0.25]
    assert res.order.tolist() == [1, 0, 2]


def test_from_probs_tau_and_cleanlab_columns():
    labels = np.array([[[0, 1], [1, V]]], np.uint8)
    probs = np.zeros((1, 2, 2, 2), np.float32)
    probs[0, 0] = [[0.9, 0.6], [0.2, 0.5]]
    probs[0, 1] = 1 - probs[0, 0]
    p = Predictions.from_probs(probs, tau=0.7)
    assert p.argmax.tolist() == [[[0, 0], [1, 0]]]
    assert p.confident.tolist() == [[[True, False], [True, False]]]
    assert p.probs.shape == (1, 2, 2, 2)
    res = rank_label_issues(labels, p, num_classes=2)
    assert res.scores["disagree_pixels"].tolist() == [0]  # the one wrong argmax (0.6) is below tau
    row = res.images[0]
    assert {"cleanlab_softmin", "cleanlab_num_pixel_issues", "cleanlab_issue_pixels"} <= set(row)
    assert res.flags.shape == labels.shape and not res.flags[0, 1, 1]  # void is never flagged
    assert row["cleanlab_num_pixel_issues"] == pytest.approx(1 - row["cleanlab_issue_pixels"] / 3)


def test_from_probs_accepts_torch_and_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=(2, 5, 6)).transpose(0, 3, 1, 2).astype(np.float32)
    a = Predictions.from_probs(probs, 0.5)
    b = Predictions.from_probs(torch.from_numpy(probs), 0.5)
    assert np.array_equal(a.argmax, b.argmax) and np.array_equal(a.confident, b.confident)
    assert np.array_equal(a.probs, b.probs)
    both = Predictions.concat([Predictions.from_probs(probs[:1], 0.5), Predictions.from_probs(probs[1:], 0.5)])
    assert np.array_equal(both.argmax, a.argmax) and np.array_equal(both.probs, a.probs)
    with pytest.raises(ValueError, match=r"expected \[N, K, H, W\]"):
        Predictions.from_probs(probs[0], 0.5)


def test_rank_by_orders_by_the_chosen_score():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, (6, 8, 8)).astype(np.uint8)
    probs = rng.dirichlet([1, 1, 1], size=(6, 8, 8)).transpose(0, 3, 1, 2).astype(np.float32)
    preds = Predictions.from_probs(probs, 0.5)
    for name, (column, descending) in RANKINGS.items():
        res = rank_label_issues(labels, preds, 3, rank_by=name)
        s = res.scores[column][res.order]
        assert (np.diff(s) <= 0).all() if descending else (np.diff(s) >= 0).all(), name
    with pytest.raises(ValueError, match="rank_by: got 'nope'"):
        rank_label_issues(labels, preds, 3, rank_by="nope")
    with pytest.raises(ValueError, match="needs the model's probabilities"):
        rank_label_issues(labels, Predictions.from_confident(preds.argmax), 3, rank_by="cleanlab_issues")
    res = rank_label_issues(labels, preds, 3, names=[f"n{i}" for i in range(6)], files=[f"f{i}.png" for i in range(6)])
    assert [r["file"] for r in res.images] == [f"f{i}.png" for i in res.order]


def test_confident_labels_replace_only_confident_non_void():
    labels = np.array([[[0, 1, V, 2]]], np.uint8)
    pred = np.array([[[1, 1, 1, NOT_CONFIDENT]]], np.uint8)
    conf = np.array([[[True, True, True, True]]])
    out = confident_labels(labels, Predictions(pred, conf, None))
    assert out.tolist() == [[[1, 1, V, 2]]]
    assert labels.tolist() == [[[0, 1, V, 2]]]  # input untouched
    conf[0, 0, 0] = False
    assert confident_labels(labels, Predictions(pred, conf, None)).tolist() == [[[0, 1, V, 2]]]


def test_inputs_are_not_modified_and_results_repeat():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (70, 6, 5)).astype(np.uint8)  # more than one counting chunk
    labels[0, 0] = V
    probs = rng.dirichlet([1] * 4, size=(70, 6, 5)).transpose(0, 3, 1, 2)
    preds = Predictions.from_probs(probs, 0.4)
    copies = labels.copy(), preds.argmax.copy(), preds.confident.copy()
    a = rank_label_issues(labels, preds, 4)
    b = rank_label_issues(labels, preds, 4)
    assert np.array_equal(labels, copies[0]) and np.array_equal(preds.argmax, copies[1])
    assert np.array_equal(preds.confident, copies[2])
    assert a.images == b.images and a.classes == b.classes
    # chunked counts equal a direct count
    wrong = preds.confident & (labels != V) & (preds.argmax != labels)
    assert a.scores["disagree_pixels"].tolist() == wrong.reshape(70, -1).sum(1).tolist()
    assert sum(c["removed"] for c in a.classes) == int(wrong.sum())


def test_bad_input_is_an_error():
    labels = np.zeros((1, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        rank_label_issues(labels, Predictions.from_confident(np.zeros((1, 2, 3), np.uint8)), 2)
    labels[0, 0, 0] = 5
    with pytest.raises(ValueError, match="value 5"):
        rank_label_issues(labels, Predictions.from_confident(np.zeros((1, 2, 2), np.uint8)), 2)
    with pytest.raises(ValueError, match="class ids >= 2"):
        cleanlab_issues(labels, np.full((1, 2, 2, 2), 0.5))
    with pytest.raises(ValueError, match="probabilities of 2 classes for 6 classes"):
        rank_label_issues(labels, Predictions.from_probs(np.full((1, 2, 2, 2), 0.5), 0.5), 6)


def test_ranking_quality_measures_by_hand():
    relevant = np.array([True, False, True, False, False])
    order = np.array([0, 1, 2, 3, 4])  # hits at ranks 1 and 3
    assert precision_at_k(order, relevant, 2) == 0.5
    assert average_precision(order, relevant) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert average_precision(np.array([0, 2, 1, 3, 4]), relevant) == 1.0
    assert math.isnan(average_precision(order, np.zeros(5, bool)))
    assert order_by(np.array([0.1, np.nan, 0.5, 0.1])).tolist() == [2, 0, 3, 1]
    assert order_by(np.array([0.1, np.nan, 0.5, 0.1]), descending=False).tolist() == [0, 3, 2, 1]
