"""Decoding helpers shared by the file-based loaders: read, check, map, resize, stack.

Every failure a user can cause (missing root, unreadable file, size mismatch, bad mask value,
empty split) raises :class:`DataError` with one line naming the file and what is allowed.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from ..errors import DataError
from ._base import IGNORE_INDEX, Split

T = TypeVar("T")
R = TypeVar("R")

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def one_line(exc: BaseException) -> str:
    """A library exception as ``Type: message`` on one line (user errors are printed as one line)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def require_root(root: str | None, hint: str) -> Path:
    """``dataset.root`` as an existing folder; ``hint`` says what the loader expects there."""
    if root is None:
        raise DataError(f"dataset.root: not set; {hint}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"dataset.root: {path} is not a folder; {hint}")
    return path


def _open(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    try:
        im = Image.open(path)
        im.load()  # decode now so truncated files fail here, not later
    except _READ_ERRORS as exc:
        raise DataError(f"{path}: cannot read {what} ({one_line(exc)}); "
                        "expected a valid image file") from None
    return im


def read_rgb(path: Path) -> np.ndarray:
    """uint8 [H, W, 3]; greyscale, palette and RGBA inputs become plain RGB."""
    return np.asarray(_open(path, "image").convert("RGB"))


def read_labels(path: Path) -> np.ndarray:
    """The raw 2-D values of a single-channel mask: palette PNGs give their indices, greyscale
    its grey levels. RGB masks are accepted only when grey (R == G == B), since colour-coded
    masks need a palette mapping this project does not do."""
    im = _open(path, "mask")
    arr = np.asarray(im)
    if im.mode in ("RGB", "RGBA", "LA"):
        colour = arr[..., :3] if im.mode != "LA" else arr[..., :1]
        if not (colour == colour[..., :1]).all():
            raise DataError(f"{path}: colour-coded {im.mode} mask; expected a single-channel index mask "
                            "(PNG mode P or L, pixel value = class id)")
        arr = colour[..., 0]
    if arr.dtype.kind == "f":
        raise DataError(f"{path}: floating-point {im.mode} mask; expected integer class ids")
    return arr.astype(np.uint8) if arr.dtype == bool else arr  # mode "1": 0/1 classes


def value_lut(classes: Sequence[int], void: Iterable[int] = ()) -> np.ndarray:
    """Raw value -> class id table over 0..255: ``classes[i]`` maps to i, ``void`` to
    IGNORE_INDEX, everything else to -1 (invalid)."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[list(void)] = IGNORE_INDEX
    lut[list(classes)] = np.arange(len(classes))
    return lut


def map_mask(raw: np.ndarray, lut: np.ndarray, path: Path | str, allowed: str) -> np.ndarray:
    """Apply ``lut`` to integer ``raw``; any value the table marks invalid is a DataError.
    Works on whole CT label volumes, so it avoids int64 temporaries on the valid path."""
    raw = np.asarray(raw)
    if raw.size and (raw.min() < 0 or raw.max() > 255):
        _bad_values(raw[(raw < 0) | (raw > 255)], path, allowed)
    out = lut[raw]
    if (out < 0).any():
        _bad_values(raw[out < 0], path, allowed)
    return out.astype(np.uint8)


def _bad_values(values: np.ndarray, path: Path | str, allowed: str) -> None:
    values = np.unique(values)
    shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    raise DataError(f"{path}: mask value(s) {shown} not a class or void; allowed: {allowed}")


def check_same_size(image: np.ndarray, image_path: Path, mask: np.ndarray, mask_path: Path) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(f"{mask_path}: mask is {_hw(mask)} but image {image_path} is {_hw(image)} (HxW); "
                        "image and mask must have the same size")


def _hw(a: np.ndarray) -> str:
    return f"{a.shape[0]}x{a.shape[1]}"


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of uint8 [H, W] or [H, W, 3] to ``size`` = (H, W)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_labels(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest resize (class ids must not blend); keeps dtype, int32 instance ids included."""
    if mask.shape[:2] == tuple(size):
        return mask
    h, w = mask.shape
    # sample at output pixel centres, as PIL's NEAREST does
    rows = ((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.intp)
    cols = ((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.intp)
    return mask[rows[:, None], cols[None, :]]


def load_pair(image_path: Path, mask_path: Path, lut: np.ndarray, allowed: str,
              size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Read, check and map one image/mask pair, resized to ``size`` (None: native)."""
    image = read_rgb(image_path)
    mask = map_mask(read_labels(mask_path), lut, mask_path, allowed)
    check_same_size(image, image_path, mask, mask_path)
    if size is None:
        return image, mask
    return resize_image(image, size), resize_labels(mask, size)


def decode_all(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]`` on a few threads: PIL and zlib release the GIL while decoding.
    The first error raised by any item propagates unchanged."""
    workers = min(8, os.cpu_count() or 1, max(1, len(items)))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def limit(items: list[T], n: int | None) -> list[T]:
    """The first ``n`` items (the split limit), so dropped images are never decoded."""
    return items if n is None else items[:n]


def make_split(split: str, source: str, images: list[np.ndarray], masks: list[np.ndarray],
               names: list[str], instances: list[np.ndarray] | None = None) -> Split:
    """Stack decoded items; an empty split is a DataError naming where it came from."""
    if not images:
        raise DataError(f"{source}: {split} split is empty; expected at least one image")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{source}: {split} images differ in size ({', '.join(sorted(map(str, shapes))[:3])}); "
                        "set dataset.size: [H, W] to resize them to one size")
    inst = None if instances is None else np.stack(instances).astype(np.int32)
    return Split(np.stack(images), np.stack(masks), names, inst)
