"""``sp_guided``: the SP-guided noise protocol (Li et al., MICCAI 2021): alpha of the images noisy,
each by dilate / erode / affine (1/3 each) until the changed area is closest to beta x the area."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from trainables.config import parse_trial
from trainables.errors import ConfigError
from trainables.noise import NoiseContext, apply_noise
from trainables.noise.sp_guided import DIRECTIONS, Params, affine, apply, dilate, erode, rotate, sp_guided_image

VOID = 255
CTX2 = NoiseContext(num_classes=2, ignore_index=VOID)


def ellipses(n: int, size: int = 96, seed: int = 0, lo: float = 10, hi: float = 24) -> np.ndarray:
    """``n`` binary masks, one filled ellipse each: semi-axes U(lo, hi) px, any orientation, near the
    centre (room to grow and to shift)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    out = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        a, b = rng.uniform(lo, hi, 2)
        t = rng.uniform(0, np.pi)
        cy, cx = rng.uniform(size / 2 - 8, size / 2 + 8, 2)
        u = (x - cx) * np.cos(t) + (y - cy) * np.sin(t)
        v = -(x - cx) * np.sin(t) + (y - cy) * np.cos(t)
        out[i][(u / a) ** 2 + (v / b) ** 2 <= 1] = 1
    return out


def ratio(clean: np.ndarray, noisy: np.ndarray, cls: int = 1) -> float:
    """(pixels added + removed) / area of class ``cls``."""
    return float(((clean == cls) != (noisy == cls)).sum() / (clean == cls).sum())


def operation_seen(clean: np.ndarray, noisy: np.ndarray, cls: int = 1) -> str:
    added = ((noisy == cls) & (clean != cls)).any()
    removed = ((clean == cls) & (noisy != cls)).any()
    return {(True, False): "dilate", (False, True): "erode", (True, True): "affine"}.get((added, removed), "clean")


# -- the authors' functions (gaozhitong/SP_guided_Noisy_Label_Seg, data_process/noise_generation.py),
# transcribed; ``affine`` takes the rotated label and the direction instead of drawing them with
# ``random`` and skimage (not a dependency; ``rotate`` equals skimage's rotate + uint8 cast, see
# test_rotation_cuts_the_interpolated_rim)

def authors_dilate_mask(label, noise_ratio=0.2):
    max_num = label.shape[0] * label.shape[1]
    total_fg_num = (label > 0).sum()
    noisy_num = int(total_fg_num * noise_ratio)
    threshold_num = total_fg_num + noisy_num
    noisy_label = label.copy()
    while (noisy_label.sum() < threshold_num and noisy_label.sum() != max_num):
        last_label = noisy_label.copy()
        noisy_label = scipy.ndimage.binary_dilation(noisy_label, iterations=1)
    noisy_label = noisy_label.astype(np.uint8)
    last_label = last_label.astype(np.uint8)
    if noisy_label.sum() == max_num:
        noisy_label = last_label
    elif abs(last_label.sum() - threshold_num) < abs(noisy_label.sum() - threshold_num):
        noisy_label = last_label
    assert (noisy_label.sum() > 0)
    return noisy_label


def authors_erode_mask(label, noise_ratio=0.2):
    total_fg_num = (label > 0).sum()
    noisy_num = int(total_fg_num * noise_ratio)
    threshold_num = total_fg_num - noisy_num
    noisy_label = label.copy()
    while (noisy_label.sum() > threshold_num and noisy_label.sum() != 0):
        last_label = noisy_label.copy()
        noisy_label = scipy.ndimage.binary_erosion(noisy_label, iterations=1)
    noisy_label = noisy_label.astype(np.uint8)
    last_label = last_label.astype(np.uint8)
    if noisy_label.sum() == 0:
        noisy_label = last_label
    elif abs(last_label.sum() - threshold_num) < abs(noisy_label.sum() - threshold_num):
        noisy_label = last_label
    assert (noisy_label.sum() > 0)
    return noisy_label


def authors_affine(label, rotated_label, tri_func, noise_ratio=0.2, max_step=100):
    def translate_label(label, noisy_label, step, tri_func=(1, 0)):
        step_x, step_y = step * tri_func[0], step * tri_func[1]
        W, H = label.shape
        new_label = np.zeros((W + abs(step_x), H + abs(step_y)), dtype=label.dtype)
        origin_before = [step_x, step_y]
        if step_x < 0:
            origin_before[0] = abs(step_x)
        if step_y < 0:
            origin_before[1] = abs(step_y)
        new_label[origin_before[0]: origin_before[0] + W, origin_before[1]: origin_before[1] + H] = noisy_label
        new_label = new_label[:W, :H]
        noisy_num = np.logical_and(new_label == 1, label == 0).sum() + np.logical_and(new_label == 0, label == 1).sum()
        noise_rate = 1.0 * noisy_num / label.sum()
        return new_label, noise_rate

    left, right = 0, max_step
    max_count = 20; count = 0
    while (left < right):
        count += 1
        if count > max_count:
            break
        middle = (left + right) // 2
        noisy_label, noise_metric = translate_label(label, rotated_label, middle, tri_func)
        if noise_metric > noise_ratio:
            right = middle - 1
        elif noise_metric < noise_ratio:
            left = middle + 1
        else:
            break
    return noisy_label


AUTHORS_TRI_FUNCS = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, 1), (0, -1), (1, -1)]


@pytest.mark.parametrize("beta", [0.2, 0.5, 0.7])
def test_dilate_and_erode_equal_the_authors_functions(beta):
    masks = ellipses(20, seed=int(beta * 10))
    masks[3] = 0
    masks[3, 40:42, 40:43] = 1  # a 6-px object: erosion empties it at once (kept), dilation overshoots
    for m in masks:
        np.testing.assert_array_equal(dilate(m > 0, beta), authors_dilate_mask(m, beta) > 0)
        np.testing.assert_array_equal(erode(m > 0, beta), authors_erode_mask(m, beta) > 0)


def test_dilation_that_outgrows_its_box_is_redone_on_the_whole_image(monkeypatch):
    import trainables.noise.sp_guided as sp

    monkeypatch.setattr(sp, "DILATE_PAD", 0.0)  # a 2-px margin: every growth below leaves the box
    for m in ellipses(6, seed=9):
        np.testing.assert_array_equal(sp.dilate(m > 0, 0.7), authors_dilate_mask(m, 0.7) > 0)


def test_affine_with_the_authors_options_equals_their_translation_search():
    masks = ellipses(12, seed=4)
    rng = np.random.default_rng(0)
    for m in masks:
        angle = rng.uniform(-30, 30)
        rotated = rotate(m > 0, angle)
        for index, tri_func in enumerate(AUTHORS_TRI_FUNCS):
            for beta in (0.3, 0.5):
                theirs = authors_affine(m, rotated.astype(np.uint8), tri_func, beta)
                ours = affine(m > 0, beta, angle, DIRECTIONS["authors"][index], 100, pick="last")
                np.testing.assert_array_equal(ours, theirs > 0)


def test_rotation_cuts_the_interpolated_rim():
    # skimage.transform.rotate(float mask, angle).astype(uint8) (the authors' cast) keeps a pixel
    # only where its bilinear value is exactly 1; measured equal to skimage 0.26 pixel for pixel on
    # 200 ellipses (96x96, angles U(-30, 30)) and on border-touching rectangles at 0/45/90/137/180 deg.
    square = np.zeros((40, 40), bool)
    square[10:30, 10:30] = True
    assert (rotate(square, 0.0) == square).all()
    for angle in (-30.0, 17.0, 45.0):
        turned = rotate(square, angle)
        assert 0 < turned.sum() < square.sum()  # the rim is cut: the area shrinks
        assert turned[20, 20] and not turned[10, 10] and not turned[0, 0]  # centre kept, corner turned away
    assert (rotate(square, 90.0) == square).all()  # a centred square maps onto itself, exactly


@pytest.mark.parametrize("operation", ["dilate", "erode", "affine"])
def test_reached_change_ratio_is_close_to_beta(operation):
    # One dilation / erosion step, or one px of shift, changes about perimeter/area of an object, at
    # most ~0.2 for these ellipses (semi-axes >= 10 px); "closest" lands within half of that. Measured
    # (300 ellipses, beta 0.5): max |ratio - beta| 0.077 (dilate), 0.061 (erode), 0.074 (affine), and
    # the signed errors average out (|mean| <= 0.003): the closest mask lies on either side of the target.
    masks = ellipses(120, seed=11)
    rng = np.random.default_rng(2)
    beta = 0.5
    errors = []
    for m in masks:
        direction = DIRECTIONS["eight"][int(rng.integers(8))]
        noisy = sp_guided_image(m, operation, beta, VOID, angle=float(rng.uniform(-30, 30)), direction=direction)
        assert operation_seen(m, noisy) == operation
        errors.append(ratio(m, noisy) - beta)
    errors = np.array(errors)
    assert np.abs(errors).max() <= 0.1, np.abs(errors).max()
    assert abs(errors.mean()) <= 0.02, errors.mean()


def test_affine_closest_is_never_further_from_beta_than_the_authors_last_step():
    masks = ellipses(40, seed=5)
    rng = np.random.default_rng(3)
    gaps = []
    for m in masks:
        angle, direction = float(rng.uniform(-30, 30)), DIRECTIONS["eight"][int(rng.integers(8))]
        closest = abs(ratio(m, affine(m > 0, 0.5, angle, direction, 100, "closest").astype(np.uint8)) - 0.5)
        last = abs(ratio(m, affine(m > 0, 0.5, angle, direction, 100, "last").astype(np.uint8)) - 0.5)
        assert closest <= last + 1e-12
        gaps.append(last - closest)
    assert max(gaps) > 0  # the authors' last step is sometimes not the closest one


def test_operations_split_about_uniformly_over_many_images():
    masks = ellipses(300, seed=7)
    out = apply(masks, Params(alpha=1.0, beta=0.5), np.random.default_rng(0), CTX2)
    seen = [operation_seen(c, n) for c, n in zip(masks, out)]
    counts = {op: seen.count(op) for op in ("dilate", "erode", "affine")}
    assert sum(counts.values()) == 300  # every image noisy, each by exactly one kind of change
    # binomial(300, 1/3): mean 100, sd 8.2; [70, 130] is +-3.7 sd
    assert all(70 <= c <= 130 for c in counts.values()), counts


@pytest.mark.parametrize("alpha, expected", [(0.0, 0), (0.25, 10), (0.5, 20), (0.7, 28), (1.0, 40)])
def test_alpha_makes_an_exact_fraction_of_images_noisy(alpha, expected):
    masks = ellipses(40, seed=1)
    before = masks.copy()
    out = apply(masks, Params(alpha=alpha), np.random.default_rng(5), CTX2)
    assert (out != masks).any(axis=(1, 2)).sum() == expected
    np.testing.assert_array_equal(masks, before)  # the input is not modified


def test_seed_fixes_the_result():
    masks = ellipses(30, seed=2)
    spec = parse_trial({"noise": [{"kind": "sp_guided", "alpha": 0.5}]}).noise
    a, b, c = (apply_noise(masks, spec, seed, CTX2) for seed in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def _three_discs(n: int) -> np.ndarray:
    """Classes 1..3 as discs of radius 11 far apart in 128x128 images, a void band across disc 1."""
    y, x = np.mgrid[0:128, 0:128]
    masks = np.zeros((n, 128, 128), np.uint8)
    for cls, (cy, cx) in zip((1, 2, 3), ((32, 32), (32, 96), (96, 64))):
        masks[:, (y - cy) ** 2 + (x - cx) ** 2 <= 11 ** 2] = cls
    masks[:, 30:34, :64] = VOID
    return masks


def test_each_class_gets_the_images_operation_and_its_own_ratio_void_untouched():
    masks = _three_discs(24)
    ctx = NoiseContext(num_classes=4, ignore_index=VOID)
    params = Params(alpha=1.0, beta=0.5, max_shift=20, rotation_center="object")
    out = apply(masks, params, np.random.default_rng(1), ctx)
    void = masks == VOID
    assert (out[void] == VOID).all() and not (out[~void] == VOID).any()
    ops = set()
    for clean, noisy in zip(masks, out):
        per_class = {operation_seen(clean, noisy, c) for c in (1, 2, 3)}
        assert len(per_class) == 1  # one operation per image, shared by its classes
        ops |= per_class
        for c in (2, 3):  # classes away from void: the binary target is met on each
            assert abs(ratio(clean, noisy, c) - 0.5) <= 0.15
    assert ops == {"dilate", "erode", "affine"}


def test_rotation_about_the_image_centre_overshoots_on_an_off_centre_object():
    mask = _three_discs(1)[0]
    mask[mask != 2] = 0  # disc 2 alone, 45 px from the image centre
    kwargs = dict(angle=25.0, direction=(1, 0), max_shift=100)
    authors = sp_guided_image(mask, "affine", 0.5, VOID, rotation_center="image", **kwargs)
    own = sp_guided_image(mask, "affine", 0.5, VOID, rotation_center="object", **kwargs)
    assert ratio(mask, authors, 2) > 1.5  # the rotation alone moved the disc off itself
    assert abs(ratio(mask, own, 2) - 0.5) <= 0.1


def test_classes_never_overwrite_each_other_and_take_vacated_pixels():
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 5:20] = 1
    mask[10:30, 20:35] = 2  # touching class 1
    grown = sp_guided_image(mask, "dilate", 0.5, VOID)
    assert (grown[mask == 1] == 1).all() and (grown[mask == 2] == 2).all()  # only background was taken
    moved = sp_guided_image(mask, "affine", 0.5, VOID, angle=0.0, direction=(0, 1), max_shift=30)
    # both move right: class 1 enters the pixels class 2 vacated, class 2 its own new ones
    assert (moved[10:30, 20:25] == 1).any() and ((moved == 2) & (mask == 0)).any()


def test_defaults_follow_the_sheet_and_bad_config_is_a_config_error():
    params = parse_trial({"noise": [{"kind": "sp_guided"}]}).noise[0].params
    assert params == Params(alpha=0.5, beta=0.5, max_angle=30.0, max_shift=100, affine_pick="closest",
                            directions="eight", rotation_center="image")
    with pytest.raises(ConfigError, match=r"^noise\[0\]\.alpha: got 1\.5; allowed range \[0, 1\]$"):
        parse_trial({"noise": [{"kind": "sp_guided", "alpha": 1.5}]})
    with pytest.raises(ConfigError, match=r"^noise\[0\]\.bta: unknown key \(did you mean 'beta'\?\)"):
        parse_trial({"noise": [{"kind": "sp_guided", "bta": 0.5}]})
