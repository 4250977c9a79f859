"""Importable by its older path: the W&B Sweeps spellings live in :mod:`study.spec.sweeps`."""
from __future__ import annotations

from .spec.sweeps import HYPERBAND, METHODS, UNSUPPORTED, grid_points, translate  # noqa: F401

__all__ = ["HYPERBAND", "METHODS", "UNSUPPORTED", "grid_points", "translate"]
