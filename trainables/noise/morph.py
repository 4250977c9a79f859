"""``morph``: boundary errors by erosion or dilation at a normalised object scale (ADELE, SegTHOR).

Exactly ``round(rate * N)`` training images, drawn without replacement, are corrupted (an exact
count keeps the corruption level of a study's noise setting free of sampling noise). Each chosen
image draws one mode (erode or dilate, equally likely) and one iteration count from ``iterations``,
shared by all its classes. For each foreground class present, its binary mask is resized (nearest)
by the factor that makes its area about ``target_area`` px, eroded or dilated with a
``kernel`` x ``kernel`` ones structure, and resized back. The boundary error is therefore
proportional to object size: every object loses or gains about the same FRACTION of its area.

Erosion only removes pixels of the class (they become background, 0); dilation only adds pixels
that were background in the input (other classes and void are never overwritten; where two classes
grow into the same pixel, the higher class id wins). Erosion treats the image border as object, so
an object cut by the border does not shrink away from it (as cv2.erode does).

Parameters: ``rate`` (1.0), ``iterations`` ([2, 3, 4]), ``target_area`` (1000), ``kernel`` (3, odd).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..typed import check_range, join
from ..errors import ConfigError


@dataclass
class Params:
    rate: float = 1.0
    iterations: tuple[int, ...] = (2, 3, 4)
    target_area: int = 1000
    kernel: int = 3

    def validate(self, path: str) -> None:
        check_range(join(path, "rate"), self.rate, 0, 1)
        if not self.iterations:
            raise ConfigError(f"{join(path, 'iterations')}: got no values; expected a list of counts >= 1")
        for i, n in enumerate(self.iterations):
            check_range(join(join(path, "iterations"), i), n, 1)
        check_range(join(path, "target_area"), self.target_area, 1)
        check_range(join(path, "kernel"), self.kernel, 1)
        if self.kernel % 2 == 0:
            raise ConfigError(f"{join(path, 'kernel')}: got {self.kernel}; expected an odd size (centred structure)")


def apply(masks: np.ndarray, params: Params, rng: np.random.Generator, ctx) -> np.ndarray:
    out = masks.copy()
    chosen = rng.choice(len(masks), size=round(params.rate * len(masks)), replace=False)
    for i in np.sort(chosen):  # draw modes and counts in image order, independent of choice order
        dilate = bool(rng.integers(2))
        iterations = int(rng.choice(params.iterations))
        out[i] = morph_image(masks[i], dilate, iterations, params.target_area, params.kernel, ctx.ignore_index)
    return out


def morph_image(mask: np.ndarray, dilate: bool, iterations: int, target_area: int, kernel: int,
                ignore_index: int) -> np.ndarray:
    """One image's mask [H, W] with every foreground class eroded or dilated (see module doc)."""
    out = mask.copy()
    classes = [c for c in np.unique(mask) if c not in (0, ignore_index)]
    for c in classes:
        binary = mask == c
        changed = _morph_class(binary, dilate, iterations, target_area, kernel)
        if dilate:
            out[changed & (mask == 0)] = c
        else:
            out[changed] = 0
    return out


def _morph_class(binary: np.ndarray, dilate: bool, iterations: int, target_area: int,
                 kernel: int) -> np.ndarray:
    """The pixels that a class with mask ``binary`` gains (dilate) or loses (erode)."""
    scale = math.sqrt(target_area / binary.sum())
    # Work in the class's bounding box, padded so the dilation fits: resizing the whole image would
    # make a 1-px object in a 360x480 image a 10^8-px array.
    reach = iterations * (kernel // 2)
    pad = math.ceil(reach / scale) + 1
    rows, cols = np.nonzero(binary)
    r0, r1 = max(rows.min() - pad, 0), min(rows.max() + pad + 1, binary.shape[0])
    c0, c1 = max(cols.min() - pad, 0), min(cols.max() + pad + 1, binary.shape[1])
    crop = binary[r0:r1, c0:c1]
    h, w = crop.shape
    big_h, big_w = max(round(h * scale), 1), max(round(w * scale), 1)
    big = _resize_nearest(crop, big_h, big_w)
    structure = np.ones((kernel, kernel), dtype=bool)
    if dilate:
        big = ndimage.binary_dilation(big, structure, iterations=iterations)
    else:
        big = ndimage.binary_erosion(big, structure, iterations=iterations, border_value=1)
    back = _resize_nearest(big, h, w)
    # The nearest round trip alone can move a boundary pixel either way; keep the change one-sided
    # so erosion only shrinks and dilation only grows.
    changed = np.zeros_like(binary)
    changed[r0:r1, c0:c1] = back & ~crop if dilate else crop & ~back
    return changed


def _resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize sampling at pixel centres (an integer upscale replicates pixels)."""
    rows = ((np.arange(height) + 0.5) * image.shape[0] / height).astype(np.int64)
    cols = ((np.arange(width) + 0.5) * image.shape[1] / width).astype(np.int64)
    return image[np.minimum(rows, image.shape[0] - 1)][:, np.minimum(cols, image.shape[1] - 1)]
