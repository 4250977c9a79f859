"""``synthetic``: deterministic procedural scenes, the default dataset (no files needed).

Built to reproduce the traits the noise-robust methods rely on (METHODS.md section 4), at CPU cost:
foreground classes of clearly different size and contrast, so they are learned at different epochs,
on a textured background. Each class has its own shape family, size range, colour offset from the
background and stripe texture; the later classes are smaller or thinner, and fainter. The bar is 3-4
px wide at 64 px: thin enough to be learned late, wide enough that morph noise (scaled to the object)
leaves a learnable shape (at 1.6-2.6 px it was erased or doubled on most images and never generalised). Labels are exact
(the masks the shapes were drawn from), so val/test are clean and training labels are corrupted only
by the configured noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..typed import check_range, join
from ..errors import ConfigError
from ._base import SegData, Split

# name, shape, (min, max) size as a fraction of the image side, colour offset, stripe period (px)
CLASSES = (
    ("disc", "ellipse", (0.22, 0.36), (0.45, -0.25, -0.25), 0),
    ("box", "rectangle", (0.16, 0.28), (-0.15, 0.30, -0.10), 6),
    ("triangle", "triangle", (0.12, 0.20), (-0.05, -0.10, 0.22), 4),
    ("bar", "bar", (0.09, 0.13), (0.10, 0.10, 0.02), 3),
)
DEFAULT_SIZE = (64, 64)


@dataclass
class Options:
    num_train: int = 120
    num_val: int = 40
    num_test: int = 40
    num_classes: int = 5  # background + up to 4 shape classes
    objects_per_image: int = 3  # instances drawn per image (classes sampled with replacement)
    contrast: float = 1.0  # scales every class's colour offset from the background
    background_noise: float = 0.12  # std of pixel noise, as a fraction of the 0..1 range
    seed: int = 0  # the dataset's own seed: the images do not change with the trial seed

    def validate(self, path: str) -> None:
        for key in ("num_train", "num_val", "num_test", "objects_per_image"):
            check_range(join(path, key), getattr(self, key), 1)
        check_range(join(path, "num_classes"), self.num_classes, 2, len(CLASSES) + 1)
        check_range(join(path, "contrast"), self.contrast, 0, lo_open=True)
        check_range(join(path, "background_noise"), self.background_noise, 0)


def _shape_mask(kind: str, size: float, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Binary mask of one randomly placed, rotated shape; ``size`` is a length in pixels."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    theta = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    if kind == "ellipse":
        a, b = size, size * rng.uniform(0.6, 1.0)
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    if kind == "rectangle":
        a, b = size, size * rng.uniform(0.5, 1.0)
        return (np.abs(u) <= a) & (np.abs(v) <= b)
    if kind == "triangle":  # isoceles: apex at v = -size, base at v = +size
        return (v <= size) & (v >= -size) & (np.abs(u) <= (v + size) * 0.6)
    if kind == "bar":  # long and thin: width is ``size``, length 4-6 times that
        return (np.abs(u) <= size * rng.uniform(4, 6)) & (np.abs(v) <= size / 2)
    raise AssertionError(kind)


def _background(h: int, w: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Smooth random colour field plus pixel noise, float [H, W, 3] around 0.5."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    img = np.full((h, w, 3), 0.5, np.float32) + rng.uniform(-0.1, 0.1, 3)
    for _ in range(3):  # low-frequency waves: objects cannot be found by global brightness alone
        fy, fx = rng.uniform(0.5, 3.0, 2)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
        img += wave[..., None] * rng.uniform(-0.08, 0.08, 3)
    return img + rng.normal(0, noise, (h, w, 3)).astype(np.float32)


def _scene(h: int, w: int, opts: Options, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    img = _background(h, w, rng, opts.background_noise)
    mask = np.zeros((h, w), np.uint8)
    side = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    classes = rng.integers(1, opts.num_classes, opts.objects_per_image)
    for cls in classes:  # later objects occlude earlier ones, in image and mask alike
        _, kind, (lo, hi), offset, period = CLASSES[cls - 1]
        shape = _shape_mask(kind, rng.uniform(lo, hi) * side / 2, h, w, rng)
        colour = img[shape].mean(0) if shape.any() else np.full(3, 0.5)
        fill = colour + opts.contrast * np.asarray(offset, np.float32)
        if period:
            angle = rng.uniform(0, np.pi)
            stripes = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
            fill = fill + 0.08 * opts.contrast * stripes[shape][:, None]
        img[shape] = fill + rng.normal(0, opts.background_noise, (int(shape.sum()), 3))
        mask[shape] = cls
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), mask


def _split(n: int, h: int, w: int, opts: Options, stream: int, name: str) -> Split:
    rng = np.random.default_rng([opts.seed, stream])
    pairs = [_scene(h, w, opts, rng) for _ in range(n)]
    images = np.stack([p[0] for p in pairs])
    masks = np.stack([p[1] for p in pairs])
    return Split(images, masks, [f"{name}_{i:05d}" for i in range(n)])


def load(cfg) -> SegData:
    opts: Options = cfg.options
    if cfg.root is not None:
        raise ConfigError("dataset.root: the synthetic dataset is generated, it reads no files; remove root")
    h, w = cfg.size or DEFAULT_SIZE
    limits = cfg.split_limits()
    counts = {s: min(n, limits[s] or n) for s, n in
              (("train", opts.num_train), ("val", opts.num_val), ("test", opts.num_test))}
    names = ["background"] + [c[0] for c in CLASSES[: opts.num_classes - 1]]
    return SegData(
        train=_split(counts["train"], h, w, opts, 0, "train"),
        val=_split(counts["val"], h, w, opts, 1, "val"),
        test=_split(counts["test"], h, w, opts, 2, "test"),
        class_names=names,
    )
