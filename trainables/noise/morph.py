"""PLACEHOLDER — being written by a helper."""
from dataclasses import dataclass


@dataclass
class Params:
    rate: float = 1.0


def apply(masks, params, rng, ctx):
    raise NotImplementedError("morph")


def transform_clean(masks, params):
    return masks
