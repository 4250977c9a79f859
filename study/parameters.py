"""Importable by its older path: the parameter kinds live in :mod:`study.spec.parameters`."""
from __future__ import annotations

from .spec.parameters import Choice, Constant, Kind, Range  # noqa: F401

__all__ = ["Choice", "Constant", "Kind", "Range"]
