"""PLACEHOLDER — being written by a helper."""
from dataclasses import dataclass


@dataclass
class SymmetricParams:
    rate: float = 0.4


@dataclass
class AsymmetricParams:
    rate: float = 0.4


def apply_symmetric(masks, params, rng, ctx):
    raise NotImplementedError


def apply_asymmetric(masks, params, rng, ctx):
    raise NotImplementedError
