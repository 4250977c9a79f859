"""``drop``: inexhaustive annotation, k -> 0 (PU-transfer draft).

Each foreground instance (see ``_instances``) is independently relabelled background with
probability ``rate``; the annotator missed the whole object.

Parameters: ``rate`` (0.5, the draft's "half of the positives labelled" setting), in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..typed import check_range, join
from ._instances import relabel_instances


@dataclass
class Params:
    rate: float = 0.5

    def validate(self, path: str) -> None:
        check_range(join(path, "rate"), self.rate, 0, 1)


def apply(masks: np.ndarray, params: Params, rng: np.random.Generator, ctx) -> np.ndarray:
    foreground = range(1, ctx.num_classes)
    return relabel_instances(masks, foreground, params.rate, rng, ctx.instances,
                             lambda old, _rng: np.zeros_like(old))
