"""The search space as an Optuna define-by-run function, and the sampler of a study.

Parameters are sampled in YAML order; a parameter with ``when:`` is sampled only when the earlier
parameters / the condition have the wanted values, so TPE sees a conditional (tree-shaped) space.
Constants (``value:``) are returned, not sampled. Condition keys are fixed per Optuna study.
"""
from __future__ import annotations

from typing import Any, Callable

import optuna

from trainables.config import get_value

from .schema import Parameter, StudySpec, when_matches


def sample(trial: optuna.Trial, parameters: dict[str, Parameter], known: dict[str, Any]) -> dict[str, Any]:
    """Sample every applicable parameter into ``{dotted key: value}`` (constants included)."""
    known = dict(known)
    out: dict[str, Any] = {}
    for key, p in parameters.items():
        if p.when and not when_matches(p.when, known):
            continue
        known[key] = out[key] = p.kind.suggest(trial, key)
    return out


class Space:
    """The define-by-run function of one condition (a picklable callable, so the searcher's state
    can be checkpointed). Returns the constants; Ray merges them with the sampled values."""

    def __init__(self, spec: StudySpec, condition: dict[str, Any]):
        self.parameters = spec.parameters
        wanted = {k for p in self.parameters.values() for k in (p.when or {})}
        self.known = {k: get_value(spec.trial, k) for k in wanted}
        self.known.update(condition)

    def __call__(self, trial: optuna.Trial) -> dict:
        values = sample(trial, self.parameters, self.known)
        return {k: v for k, v in values.items() if not self.parameters[k].kind.searched}


def space_fn(spec: StudySpec, condition: dict[str, Any]) -> Callable[[optuna.Trial], dict]:
    return Space(spec, condition)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is used up: that call is
    only allowed inside ``study.optimize``, while Ray tells results through ask-and-tell. The study
    asks exactly the grid's size (``search.num_samples``), so nothing needs stopping."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    seed = spec.search.seed
    if spec.search.algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.search.algorithm == "grid":
        from .sweeps import grid_points
        return _GridSampler(grid_points(spec.parameters), seed=seed)
    # group=True: TPE models each conditional sub-space on the trials that sampled it
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=min(10, max(2, spec.search.num_samples // 3)))
