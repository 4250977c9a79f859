"""``sp_guided``: the noisy-label protocol of Li et al., "Superpixel-guided Iterative Learning from Noisy
Labels for Medical Image Segmentation" (MICCAI 2021; code: gaozhitong/SP_guided_Noisy_Label_Seg,
``data_process/noise_generation.py``), reused by T-Loss (Digital-Dermatology/t-loss,
``datasets/noise/noise_generation.py``).

Exactly ``round(alpha * N)`` training images, drawn without replacement, are noisy (an exact count, as
``morph``; the authors take ``int(alpha * N)`` of a shuffled list). Each noisy image draws one
operation, dilate / erode / affine with probability 1/3 each, and for affine one angle
U(-``max_angle``, ``max_angle``) degrees and one of 8 directions, all shared by its classes. The
operation is applied to each foreground class's binary mask until the class's changed area (pixels
added + removed) is closest to ``beta`` x its area:

- dilate: repeat a 1-step binary dilation (scipy's default cross element) while the area is below
  area + int(area x beta) and the mask does not fill the image; keep whichever of the last two masks
  is closer to that target (the one before the last when the last fills the image);
- erode: the same towards area - int(area x beta) with binary erosion (the border counts as
  background, as in scipy's default), never empty (the last non-empty mask);
- affine: rotate the mask about the image centre (``rotation_center: image``, the authors';
  ``object``: about the class's centroid), with bilinear interpolation and zeros outside, as
  ``skimage.transform.rotate``, then the authors' cast to uint8, which keeps only the pixels whose
  interpolated value is exactly 1 (the interpolated rim is cut); then shift it ``step`` px along the
  direction, with ``step`` found by the authors' bisection over [0, ``max_shift``] (at most 20 steps)
  on (added + removed) / area against ``beta``; ``affine_pick: closest`` (default) keeps the tried
  step (the bisection's final one included) whose ratio is closest to ``beta``, ``last`` keeps the
  last step tried, as the authors' code returns. The rotation alone already changes an object far
  from the image centre (it moves by up to 2 d sin(max_angle / 2), d its distance from the centre),
  so with ``rotation_center: image`` such an object can overshoot ``beta`` at step 0, where no shift
  helps; the authors' single centred objects (lungs, lesions) rarely do. ``object`` avoids it.

**Multi-class masks**: the authors' masks are binary (one foreground class, each class of JSRT a
separate binary task). Here the operation runs on each foreground class's binary mask separately, each
reaching its own target, and the results are merged: a class's lost pixels become background, then
its new pixels are written where the image is background after those removals (background in the
input or vacated by a class); other classes and void are never overwritten, and where two classes
claim one pixel the higher class id wins. The ratio is therefore met exactly on binary masks and on
separated objects; where objects touch, the written change can fall short of it. Void pixels are
never changed and never part of a class's area.

**Quirks of the authors' code** (kept out of the default): their direction list repeats (-1, 1) and
lacks (-1, -1); their shift pads on the side of the step's absolute value, so every direction moves
the mask towards +row / +column (effectively (1,0), (0,1) twice each and (1,1) four times in 8); and
one global ``random.seed(0)`` seeds every draw of every class. Here: 8 distinct directions, and the
rng of the noise spec (seeded per (noise seed, position) like every kind) draws per image in image
order. ``directions: authors`` reproduces their effective shifts.

Parameters: ``alpha`` (0.5), ``beta`` (0.5), ``max_angle`` (30), ``max_shift`` (100), ``affine_pick``
(closest | last), ``directions`` (eight | authors), ``rotation_center`` (image | object).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from ..typed import check_range, join

OPERATIONS = ("dilate", "erode", "affine")
# (row, column) unit steps; the authors' list is (cos, sin) pairs on (axis 0, axis 1)
DIRECTIONS = {"eight": ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)),
              # what their translate_label does with (1,0),(1,1),(0,1),(-1,1),(-1,0),(-1,1),(0,-1),(1,-1)
              "authors": ((1, 0), (1, 1), (0, 1), (1, 1), (1, 0), (1, 1), (0, 1), (1, 1))}
MAX_BISECTION_STEPS = 20  # the authors' max_count
# dilate's box margin, in radius gains of a disc of the object's area: the cross element grows an
# L1 ball, whose radius gain (the slowest shape's) is 1/sqrt(2 / pi) = 1.25 of that; 1.5 leaves room
DILATE_PAD = 1.5


@dataclass
class Params:
    alpha: float = 0.5  # fraction of training images that are noisy
    beta: float = 0.5  # changed area / foreground area aimed at on each noisy image
    max_angle: float = 30.0  # affine: rotation angle ~ U(-max_angle, max_angle) degrees
    max_shift: int = 100  # affine: translation searched in [0, max_shift] px
    affine_pick: Literal["closest", "last"] = "closest"  # tried step nearest beta | the authors' last one
    directions: Literal["eight", "authors"] = "eight"  # 8 distinct shifts | the authors' effective ones
    rotation_center: Literal["image", "object"] = "image"  # the authors' image centre | the class centroid

    def validate(self, path: str) -> None:
        check_range(join(path, "alpha"), self.alpha, 0, 1)
        check_range(join(path, "beta"), self.beta, 0)
        check_range(join(path, "max_angle"), self.max_angle, 0, 180)
        check_range(join(path, "max_shift"), self.max_shift, 0)


def apply(masks: np.ndarray, params: Params, rng: np.random.Generator, ctx) -> np.ndarray:
    out = masks.copy()
    chosen = rng.choice(len(masks), size=round(params.alpha * len(masks)), replace=False)
    directions = DIRECTIONS[params.directions]
    for i in np.sort(chosen):  # draw in image order, independent of the choice order
        operation = OPERATIONS[int(rng.integers(len(OPERATIONS)))]
        angle = float(rng.uniform(-params.max_angle, params.max_angle))
        direction = directions[int(rng.integers(len(directions)))]
        out[i] = sp_guided_image(masks[i], operation, params.beta, ctx.ignore_index, angle=angle,
                                 direction=direction, max_shift=params.max_shift, pick=params.affine_pick,
                                 rotation_center=params.rotation_center)
    return out


def sp_guided_image(mask: np.ndarray, operation: str, beta: float, ignore_index: int, *, angle: float = 0.0,
                    direction: tuple[int, int] = (1, 0), max_shift: int = 100, pick: str = "closest",
                    rotation_center: str = "image") -> np.ndarray:
    """One image's mask [H, W] with ``operation`` applied to each foreground class (module doc)."""
    classes = [int(c) for c in np.unique(mask) if c not in (0, ignore_index)]
    new = {}
    for c in classes:
        binary = mask == c
        if operation == "dilate":
            new[c] = dilate(binary, beta)
        elif operation == "erode":
            new[c] = erode(binary, beta)
        else:
            new[c] = affine(binary, beta, angle, direction, max_shift, pick, rotation_center)
    out = mask.copy()
    for c, b in new.items():
        out[(mask == c) & ~b] = 0
    free = out == 0  # background now: in the input, or vacated above; never another class or void
    for c, b in new.items():  # ascending ids: the higher class wins a pixel two classes claim
        out[b & free] = c
    return out


def _box(binary: np.ndarray, pad: int) -> tuple[slice, slice]:
    """The bounding box of ``binary``'s pixels grown by ``pad`` px, clipped to the image."""
    rows, cols = np.nonzero(binary.any(axis=1))[0], np.nonzero(binary.any(axis=0))[0]
    h, w = binary.shape
    return (slice(max(rows[0] - pad, 0), min(rows[-1] + pad + 1, h)),
            slice(max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)))


def _paste(binary: np.ndarray, box: tuple[slice, slice], crop: np.ndarray) -> np.ndarray:
    out = np.zeros_like(binary)
    out[box] = crop
    return out


def dilate(binary: np.ndarray, beta: float) -> np.ndarray:
    """Dilate until the area reaches area + int(area x beta); the closer of the last two masks.

    Runs in the object's box grown by about the radius gain a compact object needs (so a small
    object in a large image costs its own size); a growth that reaches the box's inner edge is redone
    on the whole image, so the result is always the whole-image one."""
    area = int(binary.sum())
    target = area + int(area * beta)
    if area >= target or area == binary.size:
        return binary
    pad = int(np.ceil(DILATE_PAD * np.sqrt(area / np.pi) * (np.sqrt(1 + beta) - 1))) + 2
    box = _box(binary, pad)
    for _ in range(2):
        inner = _inner_edges(binary.shape, box)
        last = noisy = binary[box]
        escaped = False
        while noisy.sum() < target and noisy.sum() != binary.size:
            last, noisy = noisy, ndimage.binary_dilation(noisy)
            if any(noisy[edge].any() for edge in inner):  # the next step could leave the box
                escaped = True
                break
        if not escaped:
            break
        box = (slice(0, binary.shape[0]), slice(0, binary.shape[1]))  # again, on the whole image
    if noisy.sum() == binary.size or abs(int(last.sum()) - target) < abs(int(noisy.sum()) - target):
        noisy = last
    return _paste(binary, box, noisy)


def _inner_edges(shape: tuple[int, int], box: tuple[slice, slice]) -> list[tuple]:
    """Index expressions (into the crop) of the box's edges that lie inside the image."""
    (r, c), (h, w) = box, shape
    edges = []
    if r.start > 0:
        edges.append((0, slice(None)))
    if r.stop < h:
        edges.append((-1, slice(None)))
    if c.start > 0:
        edges.append((slice(None), 0))
    if c.stop < w:
        edges.append((slice(None), -1))
    return edges


def erode(binary: np.ndarray, beta: float) -> np.ndarray:
    """Erode until the area falls to area - int(area x beta); the closer of the last two masks, never
    empty. Runs in the object's box grown by 1 px (exact: erosion never leaves it)."""
    area = int(binary.sum())
    target = area - int(area * beta)
    if area <= target or area == 0:
        return binary
    box = _box(binary, 1)
    last = noisy = binary[box]
    while noisy.sum() > target and noisy.sum() != 0:
        last, noisy = noisy, ndimage.binary_erosion(noisy)
    if noisy.sum() == 0 or abs(int(last.sum()) - target) < abs(int(noisy.sum()) - target):
        noisy = last
    return _paste(binary, box, noisy)


def affine(binary: np.ndarray, beta: float, angle: float, direction: tuple[int, int], max_shift: int,
           pick: str = "closest", rotation_center: str = "image") -> np.ndarray:
    """Rotate by ``angle`` degrees, then shift along ``direction`` by the bisection's step (module doc).
    Each tried step is scored on the rotated mask's pixel list, not on whole images."""
    centre = None
    if rotation_center == "object":
        rows, cols = np.nonzero(binary)
        centre = (float(cols.mean()), float(rows.mean()))
    rotated = rotate(binary, angle, centre)
    area = int(binary.sum())
    h, w = binary.shape
    rr, cc = np.nonzero(rotated)
    scores: dict[int, float] = {}

    def at(step: int) -> float:
        if step not in scores:
            r, c = rr + step * direction[0], cc + step * direction[1]
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            kept, hit = int(inside.sum()), int(binary[r[inside], c[inside]].sum())
            scores[step] = (area + kept - 2 * hit) / area  # (added + removed) / area
        return scores[step]

    left, right, last = 0, max_shift, None
    for _ in range(MAX_BISECTION_STEPS):  # the authors' loop: while left < right, at most 20 steps
        if left >= right:
            break
        last = (left + right) // 2
        ratio = at(last)
        if ratio > beta:
            right = last - 1
        elif ratio < beta:
            left = last + 1
        else:
            break
    if last is None:  # max_shift 0: nothing to search (the authors' loop never runs)
        last = 0
    step = last
    if pick == "closest":
        at(min(max(left, 0), max_shift))  # where the bisection ended, when it stopped before trying it
        step = min(scores, key=lambda s: (abs(scores[s] - beta), s))
    return shift(rotated, step * direction[0], step * direction[1])


def rotate(binary: np.ndarray, angle: float, centre: tuple[float, float] | None = None) -> np.ndarray:
    """``skimage.transform.rotate(binary.astype(float), angle, center=centre).astype(np.uint8) > 0``:
    rotation by ``angle`` degrees (counter-clockwise on screen) about ``centre`` (x, y), by default
    the image centre ((W - 1)/2, (H - 1)/2), bilinear interpolation with 0 outside the image, and the
    truncating cast: a pixel stays only where its interpolated value is 1, i.e. all four neighbours
    it reads are in the mask (same arithmetic as skimage's bilinear kernel, so an all-ones
    neighbourhood gives exactly 1.0). Only the output window that the object's box maps to is
    interpolated; every other output pixel reads four zeros."""
    h, w = binary.shape
    out = np.zeros_like(binary, dtype=bool)
    if not binary.any():
        return out
    cx, cy = (w / 2 - 0.5, h / 2 - 0.5) if centre is None else centre
    t = np.deg2rad(angle)
    # skimage's matrix (translate to the centre, rotate, translate back), composed in its order, so
    # that sample positions on the pixel grid (e.g. at 90 degrees) round the same way
    turn = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    m = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]]) @ (
        turn @ np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]]))
    # output window: where the inverse map sends the object's box grown by 1 px (a sample outside
    # it has four zero neighbours), plus 1 px against rounding
    rows, cols = _box(binary, 1)
    corners = np.array([[x, y, 1.0] for x in (cols.start - 1, cols.stop) for y in (rows.start - 1, rows.stop)])
    mapped = corners @ np.linalg.inv(m).T
    c0, c1 = max(int(np.floor(mapped[:, 0].min())) - 1, 0), min(int(np.ceil(mapped[:, 0].max())) + 2, w)
    r0, r1 = max(int(np.floor(mapped[:, 1].min())) - 1, 0), min(int(np.ceil(mapped[:, 1].max())) + 2, h)
    if r0 >= r1 or c0 >= c1:
        return out
    y, x = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    src_c = m[0, 0] * x + m[0, 1] * y + m[0, 2]  # the input position each output pixel reads
    src_r = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    image = binary.astype(np.float64)

    def pixel(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        values = np.zeros(r.shape)
        values[inside] = image[r[inside].astype(np.int64), c[inside].astype(np.int64)]
        return values

    fr, fc, cr, cc = np.floor(src_r), np.floor(src_c), np.ceil(src_r), np.ceil(src_c)
    dr, dc = src_r - fr, src_c - fc
    top = (1 - dc) * pixel(fr, fc) + dc * pixel(fr, cc)
    bottom = (1 - dc) * pixel(cr, fc) + dc * pixel(cr, cc)
    out[r0:r1, c0:c1] = (1 - dr) * top + dr * bottom >= 1.0
    return out


def shift(binary: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``binary`` moved by (dy, dx) px, zeros shifted in, what leaves the image lost."""
    h, w = binary.shape
    out = np.zeros_like(binary)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        binary[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out
