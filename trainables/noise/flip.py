"""``flip_symmetric`` and ``flip_asymmetric``: instance misclassification, i -> j (LNCIS).

An instance (see ``_instances``) keeps its mask and changes class; background and void never change.

``flip_symmetric`` (``rate``, 0.4): each foreground instance, with probability ``rate``, takes a
class drawn uniformly from the OTHER foreground classes 1..K-1. It never keeps its own class and
every other class is reachable (the LNCIS script could do both wrong). Needs K-1 >= 2.

``flip_asymmetric`` (``pairs``, required; ``rate``, 0.4): ``pairs`` lists ``[src, dst]`` class ids;
each instance of a src class becomes its dst with probability ``rate``; other classes are untouched.
A two-way confusion (cat <-> dog) is two pairs; both directions read the input labels, so a flipped
instance is never flipped back. Each src appears at most once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..typed import check_range, join
from ..errors import ConfigError
from ._classes import check_foreground
from ._instances import relabel_instances


@dataclass
class SymmetricParams:
    rate: float = 0.4

    def validate(self, path: str) -> None:
        check_range(join(path, "rate"), self.rate, 0, 1)


@dataclass
class AsymmetricParams:
    pairs: tuple[tuple[int, int], ...]
    rate: float = 0.4

    def validate(self, path: str) -> None:
        check_range(join(path, "rate"), self.rate, 0, 1)
        key = join(path, "pairs")
        if not self.pairs:
            raise ConfigError(f"{key}: got no pairs; expected a list of [src, dst] class ids")
        for i, (src, dst) in enumerate(self.pairs):
            check_foreground(join(key, i), (src, dst))
            if src == dst:
                raise ConfigError(f"{join(key, i)}: got [{src}, {dst}]; src and dst must differ")
        sources = [src for src, _ in self.pairs]
        if len(set(sources)) != len(sources):
            raise ConfigError(f"{key}: got src classes {sources}; each src may appear only once")


def apply_symmetric(masks: np.ndarray, params: SymmetricParams, rng: np.random.Generator, ctx) -> np.ndarray:
    k = ctx.num_classes
    if k < 3:
        raise ConfigError(f"noise.kind: flip_symmetric needs at least two foreground classes; "
                          f"this dataset has {k - 1}")

    def other_foreground(old: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Uniform over the K-2 foreground classes other than ``old``: draw from 1..K-2 and skip
        # past ``old`` (values >= old shift up by one).
        draw = rng.integers(1, k - 1, size=old.shape)
        return draw + (draw >= old)

    return relabel_instances(masks, range(1, k), params.rate, rng, ctx.instances, other_foreground)


def apply_asymmetric(masks: np.ndarray, params: AsymmetricParams, rng: np.random.Generator, ctx) -> np.ndarray:
    check_foreground("noise.pairs", [c for pair in params.pairs for c in pair], ctx.num_classes)
    dst_of = np.zeros(256, dtype=np.int64)
    for src, dst in params.pairs:
        dst_of[src] = dst
    sources = [src for src, _ in params.pairs]
    return relabel_instances(masks, sources, params.rate, rng, ctx.instances, lambda old, _rng: dst_of[old])
