"""``pixel``: independent random pixel flips (ADELE code, unused in the paper).

Each non-void pixel independently, with probability ``rate``, takes a class drawn uniformly from the
K-1 classes other than its own, background included: the noise both adds and removes foreground
and is blind to instances (salt-and-pepper label noise).

Parameters: ``rate`` (0.05), in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..typed import check_range, join
from ..errors import ConfigError


@dataclass
class Params:
    rate: float = 0.05

    def validate(self, path: str) -> None:
        check_range(join(path, "rate"), self.rate, 0, 1)


def apply(masks: np.ndarray, params: Params, rng: np.random.Generator, ctx) -> np.ndarray:
    k = ctx.num_classes
    if k < 2:
        raise ConfigError(f"noise.kind: pixel needs at least two classes; this dataset has {k}")
    out = masks.copy()
    # One image at a time keeps the random draws at one image's size (CamVid: 367 x 360 x 480).
    for image in out:
        flip = (rng.random(image.shape) < params.rate) & (image != ctx.ignore_index)
        old = image[flip]
        draw = rng.integers(0, k - 1, size=old.shape)  # 0..K-2, then skip past the old class
        image[flip] = draw + (draw >= old)
    return out
