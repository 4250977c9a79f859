"""Importable by its older path (Ray pickles ``study.space.Space`` into every experiment): the
Optuna space lives in :mod:`study.spec.space`."""
from __future__ import annotations

from .spec.space import Space, make_sampler, sample, space_fn  # noqa: F401

__all__ = ["Space", "make_sampler", "sample", "space_fn"]
