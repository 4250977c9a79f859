"""Baselines of a study (``baselines:``): parsed, their overrides in a replicate, and checked to give
a valid trial in every condition."""
from __future__ import annotations

import re
from typing import Any

from trainables.errors import ConfigError

from .schema import Baseline, StudySpec, when_matches
from .seeds import SEED_KEYS

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
EXAMPLE = "{ce: {method.name: ce}, global: {tuned: true, method.class_adaptive: false}}"


def parse_baselines(raw: Any) -> dict[str, Baseline]:
    """``{name: {dotted.key: value, ..., tuned: bool}}`` -> Baseline objects."""

    if not isinstance(raw, dict):
        raise ConfigError(f"baselines: got {raw!r}; expected a mapping of names to trial-key overrides, e.g. {EXAMPLE}")
    out = {}
    for name, body in raw.items():
        path = f"baselines.{name}"
        if not isinstance(name, str) or not NAME.match(name) or name == "tuned":
            raise ConfigError(f"{path}: bad name {name!r}; use letters, digits, '_', '-' or '.' (not 'tuned')")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: got {body!r}; expected a mapping of dotted trial keys, e.g. {{method.name: ce}}")
        body = dict(body)
        tuned = body.pop("tuned", False)
        if not isinstance(tuned, bool):
            raise ConfigError(f"{path}.tuned: got {tuned!r}; expected true or false")
        for key in body:
            if str(key) in SEED_KEYS:
                raise ConfigError(f"{path}.{key}: set by the replication (final.seeds); remove it")
        out[name] = Baseline(set={str(k): v for k, v in body.items()}, tuned=tuned)
    return out


def representative_params(spec: StudySpec, condition: dict) -> dict[str, Any]:
    """One value per searched parameter that applies in ``condition`` (its first sample)."""

    known: dict[str, Any] = dict(condition)
    params = {}
    for key, p in spec.parameters.items():
        if p.when and not when_matches(p.when, known):
            continue
        known[key] = params[key] = p.samples()[0]
    return params


def baseline_overrides(baseline: Baseline, tuned_params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Dotted overrides of a baseline replicate (before the seed); None when it builds on the tuned
    values and there are none (no search trial finished)."""
    if baseline.tuned:
        if tuned_params is None:
            return None
        return {**tuned_params, **baseline.set}
    return dict(baseline.set)


def check_baselines(spec: StudySpec) -> None:
    """Every baseline must give a valid trial in every condition."""
    for name, b in spec.baselines.items():
        for cond in spec.condition_list():
            values = baseline_overrides(b, representative_params(spec, cond))
            try:
                spec.condition(cond).config_with(values)
            except ConfigError as exc:
                raise ConfigError(f"baselines.{name}: {exc}") from None

