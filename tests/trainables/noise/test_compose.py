"""Composition through the registry: ``apply_noise`` runs kinds in order, ``transform_clean``
collects task changes, ``parse_trial`` names the kind at fault."""
import numpy as np
import pytest

from trainables.config import parse_trial
from trainables.errors import ConfigError
from trainables.noise import NoiseContext, apply_noise, transform_clean

VOID = 255
CTX = NoiseContext(num_classes=4, ignore_index=VOID)
MASKS = np.array([[[1, 0, 2, 0, 3, VOID]]], np.uint8)


def _specs(*items: dict) -> list:
    return parse_trial({"noise": list(items)}).noise


FLIP_1_TO_2 = {"kind": "flip_asymmetric", "pairs": [[1, 2]], "rate": 1.0}
MISANNOTATE_2_AS_3 = {"kind": "misannotate", "nontarget": [2], "target": 3, "rate": 1.0}


def test_kinds_apply_in_the_listed_order():
    # flip first: 1 -> 2, then every 2 (old and new) -> 3.  misannotate first: 2 -> 3, then 1 -> 2.
    out = apply_noise(MASKS, _specs(FLIP_1_TO_2, MISANNOTATE_2_AS_3), 0, CTX)
    np.testing.assert_array_equal(out, [[[3, 0, 3, 0, 3, VOID]]])
    out = apply_noise(MASKS, _specs(MISANNOTATE_2_AS_3, FLIP_1_TO_2), 0, CTX)
    np.testing.assert_array_equal(out, [[[2, 0, 3, 0, 3, VOID]]])


def test_transform_clean_applies_only_the_task_changes():
    specs = _specs(FLIP_1_TO_2, MISANNOTATE_2_AS_3, {"kind": "drop", "rate": 1.0})
    np.testing.assert_array_equal(transform_clean(MASKS, specs), [[[1, 0, 0, 0, 3, VOID]]])


def test_seed_fixes_a_composed_result(scene, ctx):
    specs = _specs({"kind": "morph", "rate": 0.5}, {"kind": "flip_symmetric", "rate": 0.3},
                   {"kind": "drop", "rate": 0.2}, {"kind": "pixel", "rate": 0.02})
    before = scene.masks.copy()
    a, b, c = (apply_noise(scene.masks, specs, seed, ctx) for seed in (0, 0, 1))
    np.testing.assert_array_equal(scene.masks, before)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a[before == VOID] == VOID).all()
    empty = apply_noise(scene.masks, [], 0, ctx)
    np.testing.assert_array_equal(empty, before)
    assert empty is not scene.masks


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"^noise\[1\]\.kind: unknown noise kind 'flip' \(did you mean "
                                          r"'flip_(a)?symmetric'\?\); allowed: morph, "
                                          r"flip_symmetric, flip_asymmetric, drop, misannotate, pixel, sp_guided$"):
        _specs({"kind": "drop"}, {"kind": "flip"})


def test_unknown_parameter_names_the_kind_entry():
    with pytest.raises(ConfigError, match=r"^noise\[0\]\.rte: unknown key \(did you mean 'rate'\?\)"):
        _specs({"kind": "drop", "rte": 0.1})
