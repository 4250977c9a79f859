"""The keys of a study against the trial schema: every condition and parameter key is a real trial
key with valid sample values, and every ``when:`` names a condition or an earlier parameter."""
from __future__ import annotations

from typing import Any

from trainables.typed import suggest
from trainables.errors import ConfigError

from .schema import StudySpec, when_matches


def check_when(spec: StudySpec) -> None:
    seen = list(spec.conditions)
    for key, p in spec.parameters.items():
        for wkey in (p.when or {}):
            if wkey not in seen:
                valid = seen or ["(no earlier parameter or condition)"]
                raise ConfigError(f"parameters.{key}.when.{wkey}: not a condition or an earlier parameter"
                                  f"{suggest(wkey, seen)}; allowed: {', '.join(valid)}")
        seen.append(key)


def check_keys(spec: StudySpec) -> None:
    """Each condition and parameter key must be a real trial key with valid sample values: apply the
    values to the trial and parse it (errors are re-labelled with the YAML path). A condition value
    is tried with the constant parameters that apply to it (``value:`` with a matching ``when:``, or
    none): every trial of the condition has them."""
    for key, values in spec.conditions.items():
        for i, v in enumerate(values):
            known = {key: v}
            known.update({k: p.kind.value for k, p in spec.parameters.items()
                          if not p.kind.searched and (not p.when or when_matches(p.when, known))})
            _try(spec, known, f"conditions.{key}[{i}]", key)
    conditions = spec.condition_list()
    for key, p in spec.parameters.items():
        applicable = False
        for cond in conditions:
            fixed = _fixed_for(spec, key, cond)
            if fixed is None:
                continue
            applicable = True
            later = list(spec.parameters)[list(spec.parameters).index(key) + 1:]
            for label, v in p.labelled_samples():
                known = {**fixed, key: v}
                for other in later:  # parameters that this value switches on (e.g. nnpu's drop_rate)
                    q = spec.parameters[other]
                    if q.when and when_matches(q.when, known):
                        known[other] = q.samples()[0]
                _try(spec, known, f"parameters.{key}.{label}", key)
        if not applicable:
            raise ConfigError(f"parameters.{key}.when: never true for any condition")


def _fixed_for(spec: StudySpec, key: str, cond: dict) -> dict | None:
    """Condition values plus earlier parameter values that make ``key``'s ``when`` true (None if
    impossible): a representative trial in which ``key`` is sampled."""
    forced: dict[str, Any] = {}
    for wkey, wval in (spec.parameters[key].when or {}).items():
        allowed = wval if isinstance(wval, list) else [wval]
        if wkey in cond:
            if cond[wkey] not in allowed:
                return None
            continue
        src = spec.parameters[wkey]
        choices = [v for v in src.samples() if v in allowed] if src.kind.finite else allowed
        if not choices:
            return None
        forced[wkey] = choices[0]
    known = {**cond, **forced}
    for other, p in spec.parameters.items():
        if other == key:
            break
        if other in forced or (p.when and not when_matches(p.when, known)):
            continue
        known[other] = p.samples()[0]
    return known


def _try(spec: StudySpec, values: dict, where: str, key: str) -> None:
    """The trial as configured, with ``values``, must parse (errors re-labelled ``where``)."""
    try:
        spec.condition({}).config_with(values, "trial")
    except ConfigError as exc:
        msg = str(exc)
        for prefix in (f"trial.{key}: ", "--set "):
            if msg.startswith(prefix):  # the error is about this very key: name it once
                msg = msg[len(prefix):].partition(": ")[2] if prefix == "--set " else msg[len(prefix):]
        if msg.startswith("unknown key"):  # about the key, not the value: drop .min / .values[i]
            where = where[:where.index(key) + len(key)]
        raise ConfigError(f"{where}: {msg}") from None

