"""Importable by its older name: the cross-section checks of a study spec live in the
:mod:`study.spec` package (``baselines``, ``keys``, ``metric``, ``seeds``)."""
from __future__ import annotations

from .spec.baselines import baseline_overrides, check_baselines, parse_baselines, representative_params  # noqa: F401
from .spec.keys import check_keys, check_when  # noqa: F401
from .spec.metric import TEST_SUMMARIES, check_selection_metric  # noqa: F401
from .spec.seeds import SEED_KEYS, check_fresh_seeds, search_seeds  # noqa: F401

check_metric = check_selection_metric  # the older name

__all__ = ['parse_baselines', 'representative_params', 'baseline_overrides', 'check_baselines', 'check_selection_metric', 'search_seeds', 'check_fresh_seeds', 'check_when', 'check_keys', 'SEED_KEYS', 'TEST_SUMMARIES', 'check_metric']
