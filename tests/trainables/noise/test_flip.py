"""``flip_symmetric`` / ``flip_asymmetric``: instances keep their mask and change class."""
import numpy as np
import pytest

from trainables.config import parse_trial
from trainables.errors import ConfigError
from trainables.noise import NoiseContext
from trainables.noise.flip import AsymmetricParams, SymmetricParams, apply_asymmetric, apply_symmetric

VOID = 255


def _outside(scene) -> np.ndarray:
    outside = np.ones(scene.masks.shape, bool)
    for i, rows, cols in scene.boxes:
        outside[i, rows, cols] = False
    return outside


# -- symmetric ---------------------------------------------------------------------------------

def test_symmetric_rate_one_never_keeps_own_class_and_reaches_every_other(scene, ctx):
    before = scene.masks.copy()
    out = apply_symmetric(scene.masks, SymmetricParams(rate=1.0), np.random.default_rng(0), ctx)
    np.testing.assert_array_equal(scene.masks, before)
    after = scene.box_classes(out)
    assert (after != scene.classes).all()
    assert ((after >= 1) & (after <= 4)).all()  # never background, never void
    np.testing.assert_array_equal(out[_outside(scene)], before[_outside(scene)])
    for own in range(1, 5):  # ~256 instances per class, ~85 per target: each within 40% of that
        targets = after[scene.classes == own]
        counts = np.bincount(targets, minlength=5)[1:]
        expected = len(targets) / 3
        assert counts[own - 1] == 0
        others = np.delete(counts, own - 1)
        assert (np.abs(others - expected) < 0.4 * expected).all(), (own, counts)


def test_symmetric_rate_is_the_fraction_of_instances_flipped(scene, ctx):
    out = apply_symmetric(scene.masks, SymmetricParams(rate=0.4), np.random.default_rng(1), ctx)
    assert abs((scene.box_classes(out) != scene.classes).mean() - 0.4) < 0.05


def test_symmetric_rate_zero_and_seeds(scene, ctx):
    out = apply_symmetric(scene.masks, SymmetricParams(rate=0.0), np.random.default_rng(0), ctx)
    np.testing.assert_array_equal(out, scene.masks)
    a, b, c = (apply_symmetric(scene.masks, SymmetricParams(rate=0.4), np.random.default_rng(s), ctx)
               for s in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_symmetric_with_two_foreground_classes_always_swaps(scene_maker):
    scene = scene_maker(4, 3)
    out = apply_symmetric(scene.masks, SymmetricParams(rate=1.0), np.random.default_rng(0),
                          NoiseContext(3, VOID))
    np.testing.assert_array_equal(scene.box_classes(out), 3 - scene.classes)


def test_symmetric_needs_two_foreground_classes():
    masks = np.ones((1, 2, 2), np.uint8)
    with pytest.raises(ConfigError, match="flip_symmetric needs at least two foreground classes"):
        apply_symmetric(masks, SymmetricParams(), np.random.default_rng(0), NoiseContext(2, VOID))


# -- asymmetric --------------------------------------------------------------------------------

def test_asymmetric_swap_reads_the_input_labels():
    masks = np.array([[[1, 0, 2, 0, 3],
                       [0, 0, 0, 0, VOID]]], np.uint8)
    params = AsymmetricParams(pairs=((1, 2), (2, 1)), rate=1.0)
    out = apply_asymmetric(masks, params, np.random.default_rng(0), NoiseContext(4, VOID))
    # 1 and 2 swap (the new 2 is not flipped back), 3 is in no pair, void stays
    np.testing.assert_array_equal(out, [[[2, 0, 1, 0, 3], [0, 0, 0, 0, VOID]]])


def test_asymmetric_only_touches_listed_sources(scene, ctx):
    params = AsymmetricParams(pairs=((1, 3), (2, 4)), rate=0.5)
    out = apply_asymmetric(scene.masks, params, np.random.default_rng(2), ctx)
    after = scene.box_classes(out)
    changed = after != scene.classes
    assert set(scene.classes[changed]) == {1, 2}
    np.testing.assert_array_equal(after[changed], np.where(scene.classes[changed] == 1, 3, 4))
    eligible = np.isin(scene.classes, [1, 2])
    assert abs(changed[eligible].mean() - 0.5) < 0.06  # ~512 instances: sd ~0.022
    np.testing.assert_array_equal(out[_outside(scene)], scene.masks[_outside(scene)])


def test_asymmetric_pairs_are_checked_against_the_dataset(scene, ctx):
    params = parse_trial({"noise": [{"kind": "flip_asymmetric", "pairs": [[1, 7]]}]}).noise[0].params
    with pytest.raises(ConfigError, match=r"^noise\.pairs: got class 7; allowed: foreground class ids \(1\.\.4"):
        apply_asymmetric(scene.masks, params, np.random.default_rng(0), ctx)


@pytest.mark.parametrize("pairs, message", [
    ([[0, 2]], r"^noise\[0\]\.pairs\[0\]: got class 0; allowed: foreground class ids"),
    ([[2, 2]], r"^noise\[0\]\.pairs\[0\]: got \[2, 2\]; src and dst must differ$"),
    ([[1, 2], [1, 3]], r"^noise\[0\]\.pairs: got src classes \[1, 1\]; each src may appear only once$"),
    ([[1, 2, 3]], r"^noise\[0\]\.pairs\[0\]: got 3 values; expected exactly 2$"),
    ([], r"^noise\[0\]\.pairs: got no pairs"),
])
def test_bad_pairs_are_config_errors(pairs, message):
    with pytest.raises(ConfigError, match=message):
        parse_trial({"noise": [{"kind": "flip_asymmetric", "pairs": pairs}]})


def test_pairs_are_required_and_rate_is_checked():
    with pytest.raises(ConfigError, match=r"^noise\[0\]\.pairs: required key is missing$"):
        parse_trial({"noise": [{"kind": "flip_asymmetric"}]})
    with pytest.raises(ConfigError, match=r"^noise\[0\]\.rate: got -0\.1; allowed range \[0, 1\]$"):
        parse_trial({"noise": [{"kind": "flip_symmetric", "rate": -0.1}]})
