"""The cleanlab adapter (``label_issues.cleanlab_issues``): the library's own results on void-free
data, void pixels masked (never flagged, never scored, not in the thresholds), the (N, K, H, W)
layout, and a hand-made case whose flagged pixels follow from confident learning by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
from cleanlab.segmentation.filter import find_label_issues
from cleanlab.segmentation.rank import get_label_quality_scores

from trainables.label_issues import cleanlab_issues, flagged_labels

V = 255


def random_set(n=4, k=3, h=6, w=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, (n, h, w)).astype(np.uint8)
    logits = rng.normal(size=(n, k, h, w)) * 2
    np.put_along_axis(logits, labels[:, None].astype(np.intp), 1.5, axis=1)  # mostly agree with the labels
    probs = np.exp(logits)
    return labels, (probs / probs.sum(1, keepdims=True)).astype(np.float32)


def test_equals_the_library_on_void_free_data():
    labels, probs = random_set()
    got = cleanlab_issues(labels, probs)
    lab = labels.astype(int)
    # cleanlab's default batch_size (10,000 probabilities) streams these images in batches: same result
    assert np.array_equal(got.flags, find_label_issues(lab, probs, n_jobs=1, verbose=False))
    assert got.flags.any() and not got.flags.all()
    softmin, pixel = get_label_quality_scores(lab, probs, method="softmin", verbose=False)
    assert np.allclose(got.softmin, softmin, rtol=1e-6, atol=0)
    assert np.allclose(got.self_confidence, pixel)
    num, _ = get_label_quality_scores(lab, probs, method="num_pixel_issues", n_jobs=1, verbose=False)
    assert np.array_equal(got.num_pixel_issues, num)


def test_void_pixels_are_masked():
    labels, probs = random_set(seed=1)
    # two void columns per image where the model confidently predicts another class than the one
    # written there: cleanlab would flag them and they would move the class thresholds
    with_void = np.concatenate([labels, np.zeros_like(labels[..., :2])], axis=2)
    extra = np.zeros((*probs.shape[:3], 2), np.float32)
    extra[:, 1] = 0.98
    extra[:, 0] = extra[:, 2] = 0.01
    probs_void = np.concatenate([probs, extra], axis=3)
    naive = find_label_issues(with_void.astype(int), probs_void, n_jobs=1, verbose=False)
    assert naive[..., -2:].any()  # what happens without the mask
    with_void[..., -2:] = V
    got = cleanlab_issues(with_void, probs_void)
    ref = cleanlab_issues(labels, probs)  # the same images without the void columns
    assert not got.flags[..., -2:].any()
    assert np.array_equal(got.flags[..., :-2], ref.flags)
    assert np.allclose(got.softmin, ref.softmin, rtol=1e-6, atol=0)
    assert np.array_equal(got.num_pixel_issues, ref.num_pixel_issues)  # share of the labelled pixels only
    assert np.isnan(got.self_confidence[..., -2:]).all()
    # an image without labelled pixels: no score, no flag
    all_void = with_void.copy()
    all_void[0] = V
    res = cleanlab_issues(all_void, probs_void)
    assert math.isnan(res.softmin[0]) and math.isnan(res.num_pixel_issues[0]) and not res.flags[0].any()
    assert np.isfinite(res.softmin[1:]).all()


def test_hand_made_flags():
    """Two 2x4 images, classes 0/1, 8 pixels each. Labelled 1: p(1) = 0.9 everywhere, so cleanlab's
    threshold t_1 = 0.9. Labelled 0: five pixels p(0) = 0.9, two p(0) = 0.05 (the model says 1 with
    0.95 >= t_1: two issues) and one p(0) = 0.45 (argmax 1, but 0.55 < t_1: not confident). The
    issue count is 2, and the two least self-confident pixels are exactly those two."""
    labels = np.array([[[0, 0, 0, 0], [1, 1, 1, 1]], [[1, 1, 1, 1], [0, 0, 0, 0]]], np.uint8)
    p1 = np.where(labels == 1, 0.9, 0.1).astype(np.float32)
    wrong = [(0, 0, 2), (1, 1, 3)]  # (image, row, column): not symmetric, so a layout mix-up shows
    for i, r, c in wrong:
        p1[i, r, c] = 0.95
    p1[1, 1, 0] = 0.55
    probs = np.stack([1 - p1, p1], axis=1)  # (N, K, H, W)
    got = cleanlab_issues(labels, probs)
    assert sorted(map(tuple, np.argwhere(got.flags))) == wrong
    assert got.num_pixel_issues.tolist() == pytest.approx([1 - 1 / 8, 1 - 1 / 8])
    assert got.self_confidence[0, 0, 2] == pytest.approx(0.05) and got.self_confidence[0, 1, 0] == pytest.approx(0.9)
    # the model's class replaces the flagged labels, nothing else changes; void stays void
    labels_v = labels.copy()
    labels_v[0, 1, 3] = V
    argmax = probs.argmax(1).astype(np.uint8)
    flags = got.flags.copy()
    flags[0, 1, 3] = True  # a flag on void (never produced) would not write there either
    out = flagged_labels(labels_v, flags, argmax)
    assert out[0, 0, 2] == 1 and out[1, 1, 3] == 1 and out[1, 1, 0] == 0 and out[0, 1, 3] == V
    assert (out != labels_v).sum() == 2


def test_layout_and_options_are_checked():
    labels, probs = random_set(n=2, k=3, h=4, w=5)
    with pytest.raises(ValueError, match=r"\(cleanlab's pred_probs layout\)"):
        cleanlab_issues(labels, np.ascontiguousarray(probs.transpose(0, 2, 3, 1)))  # channels last
    with pytest.raises(ValueError, match="n_jobs: got 0"):
        cleanlab_issues(labels, probs, n_jobs=0)
    # a process pool computes the same flags as one process
    assert np.array_equal(cleanlab_issues(labels, probs, n_jobs=2).flags, cleanlab_issues(labels, probs).flags)
