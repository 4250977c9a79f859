"""The study spec: a study YAML -> a validated :class:`StudySpec` (``load_study`` / ``parse_study``),
and everything the rest of ``study`` asks of it. One package, by kind:

- ``schema``: the sections as dataclasses (:class:`StudySpec`, :class:`Parameter`, ...), a condition
  built once as a typed :class:`Condition` (its values, base trial and parsed TrialConfig), and the
  small rules on their values (a condition's slug, ``when:`` matching, a condition's base trial);
- ``load``: YAML and ``--set`` -> StudySpec, with the checks that span sections;
- ``parameters``: the three parameter kinds (:class:`Constant`, :class:`Choice`, :class:`Range`),
  each suggesting, enumerating, gridding and describing itself;
- ``space``: the define-by-run Optuna space of a condition and the study's sampler;
- ``sweeps``: W&B Sweeps spellings (``method: bayes``, ``early_terminate``, ...) -> ours;
- the checks, each named for what it checks: ``keys`` (condition / parameter keys and ``when:``
  against the trial schema), ``baselines``, ``seeds`` (fresh replication seeds), ``metric``
  (reported, and a validation number), ``combinations`` (every searched combination gives a
  trainable trial; :func:`validate_study`, run once before a study starts).

The older module paths (``study.space``, ``study.sweeps``, ``study.validate``, ``study.parameters``,
``study.spec_checks``) stay importable: Ray pickles ``study.space.Space`` into every experiment.
"""
from __future__ import annotations

from .baselines import baseline_overrides, check_baselines, parse_baselines, representative_params
from .combinations import check_combinations, check_device, validate_study
from .keys import check_keys, check_when
from .load import (TOP_KEYS, apply_study_overrides, check_replication, check_search, load_study,
                   parse_study)
from .metric import TEST_SUMMARIES, check_reported_metric, check_selection_metric
from .parameters import Choice, Constant, Range
from .schema import (DISTRIBUTIONS, Baseline, Condition, Final, Logging, Metric, Parameter, Resources, Scheduler,
                     Search, Storage, StudySpec, Wandb, condition_slug, get_key, set_keys, when_matches,
                     with_condition)
from .seeds import SEED_KEYS, check_fresh_seeds, search_seeds

__all__ = [
    "StudySpec", "Condition", "Metric", "Search", "Scheduler", "Resources", "Parameter", "Final", "Baseline", "Wandb",
    "Logging", "Storage", "DISTRIBUTIONS", "TOP_KEYS", "Constant", "Choice", "Range",
    "load_study", "parse_study", "apply_study_overrides",
    "condition_slug", "when_matches", "get_key", "set_keys", "with_condition",
    "parse_baselines", "representative_params", "baseline_overrides",
    "check_search", "check_replication", "check_keys", "check_when", "check_baselines",
    "check_selection_metric", "check_reported_metric", "check_fresh_seeds", "search_seeds", "SEED_KEYS",
    "TEST_SUMMARIES", "validate_study", "check_device", "check_combinations",
]
