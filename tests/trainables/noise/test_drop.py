"""``drop``: each foreground instance becomes background with probability ``rate``."""
import numpy as np
import pytest

from trainables.config import parse_trial
from trainables.errors import ConfigError
from trainables.noise import NoiseContext
from trainables.noise.drop import Params, apply

VOID = 255


def test_rate_zero_is_identity_and_rate_one_drops_everything(scene, ctx):
    before = scene.masks.copy()
    out = apply(scene.masks, Params(rate=0.0), np.random.default_rng(0), ctx)
    np.testing.assert_array_equal(out, before)
    out = apply(scene.masks, Params(rate=1.0), np.random.default_rng(0), ctx)
    np.testing.assert_array_equal(scene.masks, before)  # input not modified
    assert out is not scene.masks
    np.testing.assert_array_equal(out, np.where(before == VOID, VOID, 0))


def test_drops_whole_instances_at_the_rate(scene, ctx):
    out = apply(scene.masks, Params(rate=0.3), np.random.default_rng(1), ctx)
    after = scene.box_classes(out)  # asserts each rectangle is wholly kept or wholly dropped
    dropped = after == 0
    assert np.array_equal(after[~dropped], scene.classes[~dropped])
    assert abs(dropped.mean() - 0.3) < 0.05  # 1024 instances: sd ~0.014
    # background and void are untouched
    outside = np.ones(scene.masks.shape, bool)
    for i, rows, cols in scene.boxes:
        outside[i, rows, cols] = False
    np.testing.assert_array_equal(out[outside], scene.masks[outside])


def test_seed_fixes_the_result(scene, ctx):
    a = apply(scene.masks, Params(rate=0.5), np.random.default_rng(3), ctx)
    b = apply(scene.masks, Params(rate=0.5), np.random.default_rng(3), ctx)
    c = apply(scene.masks, Params(rate=0.5), np.random.default_rng(4), ctx)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_diagonal_pixels_share_one_fate_but_separated_pixels_do_not():
    ctx = NoiseContext(num_classes=2, ignore_index=VOID)
    masks = np.zeros((1, 3, 5), np.uint8)
    masks[0, 0, 0] = masks[0, 1, 1] = 1  # diagonal neighbours: one instance
    masks[0, 1, 3] = 1                   # one background pixel away: a second instance
    fates = np.array([apply(masks, Params(rate=0.5), np.random.default_rng(s), ctx)[0, [0, 1, 1], [0, 1, 3]]
                      for s in range(60)])
    assert (fates[:, 0] == fates[:, 1]).all()
    assert (fates[:, 0] != fates[:, 2]).any()


def test_shipped_instance_ids_decide_what_drops_together():
    masks = np.zeros((1, 2, 4), np.uint8)
    masks[0, :, :2] = 1  # one connected square ...
    ids = np.array([[[1, 2, 0, 0], [1, 2, 0, 0]]], np.int32)  # ... that the dataset calls two objects
    ctx = NoiseContext(num_classes=2, ignore_index=VOID, instances=ids)
    fates = np.array([apply(masks, Params(rate=0.5), np.random.default_rng(s), ctx)[0, 0, :2] for s in range(60)])
    assert (fates[:, 0] != fates[:, 1]).any()


def test_rate_outside_unit_interval_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^noise\[0\]\.rate: got 1\.5; allowed range \[0, 1\]$"):
        parse_trial({"noise": [{"kind": "drop", "rate": 1.5}]})
    assert parse_trial({"noise": [{"kind": "drop"}]}).noise[0].params == Params(rate=0.5)
