"""Importable by its older name: the cross-section checks of a study spec live in
:mod:`study.spec` (one module, no import cycle)."""
from __future__ import annotations

from .spec import (SEED_KEYS, TEST_SUMMARIES, baseline_overrides, check_baselines, check_fresh_seeds,  # noqa: F401
                   check_keys, check_selection_metric, check_when, parse_baselines, representative_params,
                   search_seeds)

check_metric = check_selection_metric  # the older name

__all__ = ['parse_baselines', 'representative_params', 'baseline_overrides', 'check_baselines', 'check_selection_metric', 'search_seeds', 'check_fresh_seeds', 'check_when', 'check_keys', 'SEED_KEYS', 'TEST_SUMMARIES', 'check_metric']
