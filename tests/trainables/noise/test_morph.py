"""``morph``: per-image erosion or dilation at a normalised object scale."""
import time

import numpy as np
import pytest

from trainables.config import parse_trial
from trainables.errors import ConfigError
from trainables.noise import NoiseContext
from trainables.noise.morph import Params, apply, morph_image

VOID = 255


def _square(top: int, side: int, size: int = 64) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[top:top + side, top:top + side] = 1
    return mask


def _box(mask: np.ndarray, cls: int = 1) -> tuple[int, int, int, int, int]:
    """(row0, row1, col0, col1, area) of ``cls``; asserts the class is a filled rectangle."""
    rows, cols = np.nonzero(mask == cls)
    box = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
    area = (box[1] - box[0]) * (box[3] - box[2])
    assert area == len(rows)
    return (*box, area)


# -- one image, hand-computed ------------------------------------------------------------------

def test_area_equal_to_target_is_plain_morphology():
    mask = _square(20, 10)  # area 100 = target_area: scale 1, no resizing
    assert _box(morph_image(mask, True, 1, 100, 3, VOID)) == (19, 31, 19, 31, 144)
    assert _box(morph_image(mask, True, 2, 100, 3, VOID)) == (18, 32, 18, 32, 196)
    assert _box(morph_image(mask, False, 1, 100, 3, VOID)) == (21, 29, 21, 29, 64)
    assert _box(morph_image(mask, True, 1, 100, 5, VOID)) == (18, 32, 18, 32, 196)  # 5x5 kernel


def test_resized_morphology_with_an_integer_scale():
    # target 400 for area 100: scale 2, each pixel becomes a 2x2 block and pixel i is read back from
    # big pixel 2i+1. Dilating once grows the big square by one big pixel on each side, which only
    # reaches a centre (2i+1) on the top/left side: side 11.
    mask = _square(20, 10)
    assert _box(morph_image(mask, True, 1, 400, 3, VOID)) == (19, 30, 19, 30, 121)
    assert _box(morph_image(mask, True, 2, 400, 3, VOID)) == (19, 31, 19, 31, 144)
    assert _box(morph_image(mask, False, 1, 400, 3, VOID)) == (20, 29, 20, 29, 81)
    assert _box(morph_image(mask, False, 2, 400, 3, VOID)) == (21, 29, 21, 29, 64)


def test_boundary_error_is_proportional_to_object_size():
    # Normalising to one area makes the changed fraction of an object independent of its size, so
    # the changed pixel count of a 32-px square is 4x that of a 16-px square (a fixed 3x3 kernel
    # would give 2x: the boundary length ratio).
    for dilate in (True, False):
        for iterations in (2, 4):
            small, big = (_square(10, side) for side in (16, 32))
            n_small = (morph_image(small, dilate, iterations, 1000, 3, VOID) != small).sum()
            n_big = (morph_image(big, dilate, iterations, 1000, 3, VOID) != big).sum()
            assert n_small > 0 and n_big == 4 * n_small, (dilate, iterations, n_small, n_big)


def test_erosion_does_not_pull_away_from_the_image_border():
    mask = _square(0, 10)
    assert _box(morph_image(mask, False, 1, 100, 3, VOID)) == (0, 9, 0, 9, 81)


def test_dilation_only_fills_background_and_erosion_only_empties_to_background():
    mask = _square(20, 10)
    mask[20:30, 30:34] = 2     # class 2 touching the square's right side
    mask[19, 20:30] = VOID     # void along its top
    grown = morph_image(mask, True, 2, 100, 3, VOID)
    changed = grown != mask
    assert changed.sum() > 0 and (mask[changed] == 0).all()
    assert set(np.unique(grown[changed])) == {1, 2}
    shrunk = morph_image(mask, False, 2, 100, 3, VOID)
    changed = shrunk != mask
    assert changed.sum() > 0 and (shrunk[changed] == 0).all()
    assert set(np.unique(mask[changed])) == {1, 2}


# -- over a training set -----------------------------------------------------------------------

def _training_set(n: int) -> np.ndarray:
    """``n`` 64x64 masks with three 12x12 squares (classes 1..3) and a void column."""
    masks = np.zeros((n, 64, 64), np.uint8)
    masks[:, 5:17, 5:17] = 1
    masks[:, 30:42, 10:22] = 2
    masks[:, 20:32, 40:52] = 3
    masks[:, :, 0] = VOID
    return masks


CTX = NoiseContext(num_classes=4, ignore_index=VOID)


def test_rate_picks_an_exact_number_of_images():
    masks = _training_set(10)
    before = masks.copy()
    for rate, expected in ((0.0, 0), (0.5, 5), (0.3, 3), (1.0, 10)):
        out = apply(masks, Params(rate=rate), np.random.default_rng(0), CTX)
        assert (out != masks).any(axis=(1, 2)).sum() == expected
    np.testing.assert_array_equal(masks, before)


def test_one_mode_per_image_shared_by_its_classes():
    masks = _training_set(30)
    out = apply(masks, Params(), np.random.default_rng(1), CTX)
    modes = []
    for clean, noisy in zip(masks, out):
        grew = [((noisy == c) & (clean != c)).any() for c in (1, 2, 3)]
        shrank = [((clean == c) & (noisy != c)).any() for c in (1, 2, 3)]
        assert (all(grew) and not any(shrank)) or (all(shrank) and not any(grew))
        modes.append(grew[0])
    assert 5 < sum(modes) < 25  # both modes occur (p ~ 1/2 each)
    assert (out[masks == VOID] == VOID).all()


def test_seed_fixes_the_result():
    masks = _training_set(20)
    a, b, c = (apply(masks, Params(rate=0.5), np.random.default_rng(s), CTX) for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_hundreds_of_masks_take_well_under_seconds():
    masks = _training_set(300)
    start = time.perf_counter()
    apply(masks, Params(), np.random.default_rng(0), CTX)
    assert time.perf_counter() - start < 5.0  # ~0.2 s alone; loose for a shared 2-core machine


@pytest.mark.parametrize("spec, message", [
    ({"kernel": 4}, r"^noise\[0\]\.kernel: got 4; expected an odd size"),
    ({"iterations": []}, r"^noise\[0\]\.iterations: got no values"),
    ({"iterations": [2, 0]}, r"^noise\[0\]\.iterations\[1\]: got 0; allowed range \[1, inf\]$"),
    ({"target_area": 0}, r"^noise\[0\]\.target_area: got 0; allowed range \[1, inf\]$"),
    ({"rate": 1.5}, r"^noise\[0\]\.rate: got 1\.5; allowed range \[0, 1\]$"),
    ({"iteration": [2]}, r"^noise\[0\]\.iteration: unknown key \(did you mean 'iterations'\?\)"),
])
def test_bad_config_is_a_config_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_trial({"noise": [{"kind": "morph", **spec}]})


def test_defaults_follow_the_spec():
    params = parse_trial({"noise": [{"kind": "morph"}]}).noise[0].params
    assert params == Params(rate=1.0, iterations=(2, 3, 4), target_area=1000, kernel=3)
