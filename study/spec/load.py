"""Loading a study spec: the YAML (safe loader) and ``--set`` overrides -> a validated
:class:`~study.spec.schema.StudySpec`: the top-level keys, each section, then the checks that span
sections (keys, baselines, metric, seeds). Every error names the file and the YAML path."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from trainables.typed import from_dict, suggest
from trainables.config import apply_overrides, parse_trial, read_yaml
from trainables.errors import ConfigError

from . import sweeps
from .baselines import check_baselines, parse_baselines
from .keys import check_keys, check_when
from .metric import check_selection_metric
from .schema import Parameter, StudySpec
from .seeds import check_fresh_seeds

TOP_KEYS = [f for f in StudySpec.__dataclass_fields__]


def parse_study(raw: Any, source: str = "study") -> StudySpec:
    """Validate a plain dict (parsed YAML) into a StudySpec; errors read ``source: yaml.path: ...``."""
    try:
        return _parse(raw, Path(source).parent if Path(source).is_file() else None)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_study(path: str | Path, overrides: list[str] | None = None) -> StudySpec:
    """Read a study YAML (safe loader), apply ``--set key=value`` overrides, validate."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level (name, parameters, trial, ...)")
    raw = apply_overrides(raw, overrides or [])
    return parse_study(raw, str(path))


def apply_study_overrides(raw: dict, items: list[str]) -> dict:
    """``--set`` for a study: condition and parameter keys contain dots themselves, so
    ``conditions.noise.0.rate=[0.5]`` and ``parameters.method.r.max=0.9`` address them whole."""
    raw = dict(raw)
    plain = []
    for item in items:
        key, _, value = item.partition("=")
        section, _, rest = key.partition(".")
        if section not in ("conditions", "parameters") or not rest:
            plain.append(item)
            continue
        table = raw[section] = dict(raw.get(section) or {})
        name = next((k for k in sorted(table, key=len, reverse=True)
                     if rest == k or rest.startswith(k + ".")), rest)
        if rest == name:
            table[name] = yaml.safe_load(value)
        else:
            table[name] = apply_overrides(table[name] if isinstance(table[name], dict) else {},
                                          [f"{rest[len(name) + 1:]}={value}"])
    return apply_overrides(raw, plain)


def _parse(raw: Any, base: Path | None = None) -> StudySpec:
    """A validated StudySpec from a study YAML's mapping (``base``: its folder, for plugin paths):
    the top-level keys, each section, then the checks that span sections."""
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping at the top level (name, parameters, trial, ...)")
    raw = sweeps.translate(raw)  # W&B Sweeps spellings (method: bayes, early_terminate, ...)
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(f"{key}: unknown key{suggest(key, TOP_KEYS)}; allowed: {', '.join(TOP_KEYS)}")
    raw = dict(raw)
    sections = {k: raw.pop(k, None) for k in ("conditions", "parameters", "baselines", "trial", "plugins")}
    spec = from_dict(StudySpec, raw, "")
    from trainables.plugins import load as load_plugins

    spec.plugins = load_plugins(sections["plugins"], base, "plugins")  # before the trial: it may name their methods
    if not spec.name or any(c in spec.name for c in "/\\ "):
        raise ConfigError(f"name: got {spec.name!r}; use a non-empty name without slashes or spaces")
    spec.trial = parse_trial(sections["trial"] or {}, "trial").to_dict()  # errors read trial.method.r
    spec.conditions = _parse_conditions(sections["conditions"] or {})
    spec.parameters = _parse_parameters(sections["parameters"] or {}, spec.conditions)
    spec.baselines = parse_baselines(sections["baselines"] or {})
    check_search(spec)
    if spec.search.algorithm == "grid":
        spec.search.num_samples = _grid_size(spec, (raw.get("search") or {}).get("num_samples"))
    check_replication(spec)
    return spec


def _parse_conditions(conditions: Any) -> dict[str, list]:
    if not isinstance(conditions, dict):
        raise ConfigError(f"conditions: got {conditions!r}; expected a mapping of dotted trial keys to value lists")
    for key, values in conditions.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"conditions.{key}: got {values!r}; expected a non-empty list of values")
    return {str(k): v for k, v in conditions.items()}


def _parse_parameters(parameters: Any, conditions: dict[str, list]) -> dict[str, Parameter]:
    if not isinstance(parameters, dict):
        raise ConfigError(f"parameters: got {parameters!r}; expected a mapping of dotted trial keys")
    out = {}
    for key, body in parameters.items():
        if key in conditions:
            raise ConfigError(f"parameters.{key}: also a condition; a key is either searched or a condition")
        if not isinstance(body, dict):
            raise ConfigError(f"parameters.{key}: got {body!r}; expected a mapping like "
                              "{distribution: uniform, min: 0, max: 1}, {values: [...]} or {value: x}")
        out[str(key)] = from_dict(Parameter, body, f"parameters.{key}")
    return out


def _grid_size(spec: StudySpec, given: Any) -> int:
    """A grid search runs each combination once: its trial count (``search.num_samples``, if
    given, must say the same)."""
    size = math.prod(len(v) for v in sweeps.grid_points(spec.parameters).values())
    if given is not None and given != size:
        raise ConfigError(f"search.num_samples: got {given}; grid search runs each of its {size} "
                          "combinations once: remove num_samples or set it to that")
    return size


def check_search(spec: StudySpec) -> None:
    """The search against the rest: parameters need a search, ``when:`` references, every
    condition and parameter key against the trial schema."""
    if spec.search.num_samples == 0 and spec.parameters:
        raise ConfigError(f"search.num_samples: 0 (no search) with {len(spec.parameters)} searched parameters; "
                          "remove parameters: to replicate the trial as configured, or set num_samples >= 1")
    check_when(spec)
    check_keys(spec)


def check_replication(spec: StudySpec) -> None:
    """Baselines, the selection metric, fresh replication seeds, the scheduler and the storage."""
    check_baselines(spec)
    check_selection_metric(spec.metric.name)
    check_fresh_seeds(spec)
    if spec.scheduler.max_t is not None and spec.scheduler.grace_period > spec.scheduler.max_t:
        raise ConfigError(f"scheduler.grace_period: got {spec.scheduler.grace_period}; must not exceed max_t ({spec.scheduler.max_t})")
    if spec.storage.optuna is None and "://" in spec.storage.path:
        raise ConfigError(f"storage.optuna: required when storage.path is remote ({spec.storage.path}); "
                          "give an RDB URL (postgresql://...) or journal:///shared/file.log")

