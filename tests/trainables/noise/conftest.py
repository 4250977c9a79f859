"""Shared synthetic label maps for the noise-model tests: many separated rectangles (one instance
each, known class), a void column, background elsewhere."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from trainables.noise import NoiseContext

VOID = 255
CELL = 8  # each image is a 4 x 4 grid of 8 x 8 cells, one rectangle per cell, never touching


@dataclass
class Scene:
    masks: np.ndarray                            # uint8 [N, 32, 32]
    boxes: list[tuple[int, slice, slice]]        # (image, rows, cols) of each rectangle
    classes: np.ndarray                          # class of each rectangle

    def box_classes(self, masks: np.ndarray) -> np.ndarray:
        """The class of each rectangle in ``masks``, asserting each is still one class."""
        out = []
        for i, rows, cols in self.boxes:
            values = np.unique(masks[i, rows, cols])
            assert len(values) == 1, f"rectangle split into {values}"
            out.append(values[0])
        return np.array(out)


def make_scene(n: int, num_classes: int, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 4 * CELL, 4 * CELL), dtype=np.uint8)
    boxes, classes = [], []
    for i in range(n):
        for gy in range(4):
            for gx in range(4):
                # 1-px margin inside each cell keeps rectangles of neighbouring cells apart.
                h, w = rng.integers(2, CELL - 1, size=2)
                r = gy * CELL + 1 + rng.integers(0, CELL - 1 - h)
                c = gx * CELL + 1 + rng.integers(0, CELL - 1 - w)
                rows, cols = slice(r, r + h), slice(c, c + w)
                cls = rng.integers(1, num_classes)
                masks[i, rows, cols] = cls
                boxes.append((i, rows, cols))
                classes.append(cls)
    masks[:, :, -1] = VOID  # the last column is outside every rectangle
    return Scene(masks, boxes, np.array(classes))


@pytest.fixture
def scene() -> Scene:
    """64 images, 1024 instances of classes 1..4 (K = 5)."""
    return make_scene(64, 5)


@pytest.fixture
def ctx() -> NoiseContext:
    return NoiseContext(num_classes=5, ignore_index=VOID)


@pytest.fixture
def scene_maker():
    """``make_scene`` itself, for tests that need another size or class count."""
    return make_scene
