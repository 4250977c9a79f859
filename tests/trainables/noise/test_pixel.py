"""``pixel``: each non-void pixel flips, with probability ``rate``, to one of the other K-1 classes."""
import numpy as np
import pytest

from trainables.config import parse_trial
from trainables.errors import ConfigError
from trainables.noise import NoiseContext
from trainables.noise.pixel import Params, apply

VOID = 255


def _masks() -> np.ndarray:
    masks = np.random.default_rng(0).integers(0, 5, size=(20, 32, 32)).astype(np.uint8)
    masks[:, :, :4] = VOID
    return masks


def test_rate_zero_is_identity_and_rate_one_changes_every_labelled_pixel(ctx):
    masks = _masks()
    before = masks.copy()
    np.testing.assert_array_equal(apply(masks, Params(rate=0.0), np.random.default_rng(0), ctx), masks)
    out = apply(masks, Params(rate=1.0), np.random.default_rng(0), ctx)
    np.testing.assert_array_equal(masks, before)
    void = masks == VOID
    assert (out[void] == VOID).all()
    assert (out[~void] != masks[~void]).all()
    assert out[~void].max() <= 4


def test_new_class_is_uniform_over_the_other_classes_background_included(ctx):
    masks = _masks()
    out = apply(masks, Params(rate=1.0), np.random.default_rng(1), ctx)
    for own in range(5):
        counts = np.bincount(out[masks == own], minlength=5)
        expected = (masks == own).sum() / 4  # ~920 per target class
        assert counts[own] == 0
        assert (np.abs(np.delete(counts, own) - expected) < 0.15 * expected).all(), (own, counts)


def test_default_rate_and_seeds(ctx):
    masks = _masks()
    params = parse_trial({"noise": [{"kind": "pixel"}]}).noise[0].params
    assert params == Params(rate=0.05)
    a, b, c = (apply(masks, params, np.random.default_rng(s), ctx) for s in (2, 2, 3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert abs((a != masks).mean() / (masks != VOID).mean() - 0.05) < 0.01  # 14k pixels: sd ~0.002


def test_needs_two_classes_and_a_rate_in_range():
    with pytest.raises(ConfigError, match="pixel needs at least two classes"):
        apply(np.zeros((1, 2, 2), np.uint8), Params(), np.random.default_rng(0), NoiseContext(1, VOID))
    with pytest.raises(ConfigError, match=r"^noise\[0\]\.rate: got 1\.01; allowed range \[0, 1\]$"):
        parse_trial({"noise": [{"kind": "pixel", "rate": 1.01}]})
