"""``misannotate``: non-target classes leave the task; their instances are labelled as the target."""
import numpy as np
import pytest

from trainables.config import parse_trial
from trainables.errors import ConfigError
from trainables.noise.misannotate import Params, apply, transform_clean

VOID = 255
MASKS = np.array([[[3, 3, 0, 4, VOID],
                   [0, 0, 0, 0, 1],
                   [2, 0, 3, 0, 1]]], np.uint8)  # class 3: two instances; class 4: one


def test_transform_clean_merges_nontarget_into_background():
    before = MASKS.copy()
    out = transform_clean(MASKS, Params(nontarget=(3, 4), target=1))
    np.testing.assert_array_equal(out, [[[0, 0, 0, 0, VOID], [0, 0, 0, 0, 1], [2, 0, 0, 0, 1]]])
    np.testing.assert_array_equal(MASKS, before)


def test_rate_one_labels_every_nontarget_instance_as_target(ctx):
    out = apply(MASKS, Params(nontarget=(3, 4), target=2, rate=1.0), np.random.default_rng(0), ctx)
    np.testing.assert_array_equal(out, [[[2, 2, 0, 2, VOID], [0, 0, 0, 0, 1], [2, 0, 2, 0, 1]]])


def test_rate_zero_gives_the_clean_task_labels(ctx):
    params = Params(nontarget=(3,), target=1, rate=0.0)
    out = apply(MASKS, params, np.random.default_rng(0), ctx)
    np.testing.assert_array_equal(out, transform_clean(MASKS, params))
    assert out[0, 0, 3] == 4  # a class outside nontarget stays


def test_misannotates_whole_instances_at_the_rate(scene, ctx):
    before = scene.masks.copy()
    params = Params(nontarget=(3, 4), target=1, rate=0.3)
    out = apply(scene.masks, params, np.random.default_rng(5), ctx)
    np.testing.assert_array_equal(scene.masks, before)
    after = scene.box_classes(out)
    nontarget = np.isin(scene.classes, [3, 4])
    assert set(after[nontarget]) == {0, 1}  # every nontarget instance is target or background
    np.testing.assert_array_equal(after[~nontarget], scene.classes[~nontarget])
    assert abs((after[nontarget] == 1).mean() - 0.3) < 0.06  # ~512 instances: sd ~0.02
    assert (out[before == VOID] == VOID).all()
    a = apply(scene.masks, params, np.random.default_rng(5), ctx)
    b = apply(scene.masks, params, np.random.default_rng(6), ctx)
    np.testing.assert_array_equal(out, a)
    assert not np.array_equal(out, b)


@pytest.mark.parametrize("spec, message", [
    ({"target": 1}, r"^noise\[0\]\.nontarget: required key is missing$"),
    ({"nontarget": [], "target": 1}, r"^noise\[0\]\.nontarget: got no classes"),
    ({"nontarget": [0], "target": 1}, r"^noise\[0\]\.nontarget: got class 0; allowed: foreground class ids"),
    ({"nontarget": [2, 3], "target": 3}, r"^noise\[0\]\.target: got 3, which is also in nontarget"),
    ({"nontarget": [2], "target": 1, "rate": 2}, r"^noise\[0\]\.rate: got 2\.0; allowed range \[0, 1\]$"),
])
def test_bad_config_is_a_config_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_trial({"noise": [{"kind": "misannotate", **spec}]})


def test_class_ids_are_checked_against_the_dataset(ctx):
    with pytest.raises(ConfigError, match=r"^noise\.nontarget: got class 9; allowed: foreground class ids \(1\.\.4"):
        apply(MASKS, Params(nontarget=(9,), target=1), np.random.default_rng(0), ctx)
    with pytest.raises(ConfigError, match=r"^noise\.target: got class 5;"):
        apply(MASKS, Params(nontarget=(3,), target=5), np.random.default_rng(0), ctx)
