"""Importable by its older path: the checks of every combination against the trial schema live in
:mod:`study.spec.combinations` (the metric checks in :mod:`study.spec.metric`)."""
from __future__ import annotations

from .spec.combinations import (MAX_COMBINATIONS, MAX_INT_VALUES, check_combinations, check_device,  # noqa: F401
                                combinations, validate_study)

__all__ = ["MAX_COMBINATIONS", "MAX_INT_VALUES", "check_combinations", "check_device", "combinations",
           "validate_study"]
