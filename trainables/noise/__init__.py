"""Annotation-noise models (METHODS.md section 1): kind -> (Params, apply), one factory.

``NOISE_KINDS`` is a :class:`trainables.registry.Registry` (one line per built-in kind); a plugin
adds its own with ``NOISE_KINDS.register("name", NoiseKind(Params, apply))`` (docs/plugins.md).

A noise kind is a pure function ``apply(masks, params, rng, ctx) -> masks`` over the training masks
(uint8 [N, H, W]); it must not modify its input, must leave IGNORE_INDEX pixels alone, and must draw
all randomness from ``rng`` so that (dataset, noise config, seed) fixes the result. Kinds compose in
the order listed. A kind may also define ``transform_clean(masks, params) -> masks`` for changes of
the task itself that apply to the clean labels of every split (misannotate merges non-target classes
into background).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..registry import Registry
from . import drop, flip, misannotate, morph, pixel
from . import sp_guided


@dataclass
class NoiseContext:
    num_classes: int
    ignore_index: int
    instances: np.ndarray | None = None  # dataset-shipped instance ids for the train split, if any


class NoiseKind(NamedTuple):
    params: type
    apply: Callable
    transform_clean: Callable | None = None


def _check(name: str, kind) -> None:
    if not isinstance(kind, NoiseKind) or not callable(kind.apply):
        raise TypeError(f"got {kind!r}; expected trainables.noise.NoiseKind(Params, apply[, transform_clean])")


# one line per built-in kind; plugins call NOISE_KINDS.register(name, NoiseKind(Params, apply))
NOISE_KINDS: Registry[NoiseKind] = Registry("noise kind", key="kind", path="noise.kind", params=lambda k: k.params,
                                            check=_check, entries={
    "morph": NoiseKind(morph.Params, morph.apply),
    "flip_symmetric": NoiseKind(flip.SymmetricParams, flip.apply_symmetric),
    "flip_asymmetric": NoiseKind(flip.AsymmetricParams, flip.apply_asymmetric),
    "drop": NoiseKind(drop.Params, drop.apply),
    "misannotate": NoiseKind(misannotate.Params, misannotate.apply, misannotate.transform_clean),
    "pixel": NoiseKind(pixel.Params, pixel.apply),
    "sp_guided": NoiseKind(sp_guided.Params, sp_guided.apply),
})


def noise_kind(kind: str, path: str = "noise.kind") -> NoiseKind:
    return NOISE_KINDS.get(kind, path)


def transform_clean(masks: np.ndarray, specs) -> np.ndarray:
    """Apply the task changes of every noise kind that has one (identity for most)."""
    for spec in specs:
        fn = noise_kind(spec.kind).transform_clean
        if fn is not None:
            masks = fn(masks, spec.params)
    return masks


def apply_noise(masks: np.ndarray, specs, seed: int, ctx: NoiseContext) -> np.ndarray:
    """Corrupt ``masks`` with the noise kinds of ``specs`` in order; deterministic in ``seed``."""
    noisy = masks
    for position, spec in enumerate(specs):
        rng = np.random.default_rng([seed, position])
        noisy = noise_kind(spec.kind).apply(noisy, spec.params, rng, ctx)
        assert noisy.dtype == np.uint8 and noisy.shape == masks.shape
    return noisy.copy() if noisy is masks else noisy


__all__ = ["NOISE_KINDS", "NoiseContext", "NoiseKind", "apply_noise", "noise_kind", "transform_clean"]
