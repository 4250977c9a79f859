"""Checks of a study spec that span sections: condition and parameter keys against the trial schema,
``when:`` references, baselines, the metric used for model selection, and replication seeds that the
search never used. Each error names the YAML path and what is allowed."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from trainables._typed import suggest
from trainables.errors import ConfigError

if TYPE_CHECKING:
    from .spec import Baseline, StudySpec

SEED_KEYS = ("seed", "noise_seed")
TEST_SUMMARIES = ("best_val", "max_test", "last")  # test mIoU numbers (the papers' summary)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
EXAMPLE = "{ce: {method.name: ce}, global: {tuned: true, method.class_adaptive: false}}"


def parse_baselines(raw: Any) -> dict[str, "Baseline"]:
    """``{name: {dotted.key: value, ..., tuned: bool}}`` -> Baseline objects."""
    from .spec import Baseline

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


def representative_params(spec: "StudySpec", condition: dict) -> dict[str, Any]:
    """One value per searched parameter that applies in ``condition`` (its first sample)."""
    from .spec import when_matches

    known: dict[str, Any] = dict(condition)
    params = {}
    for key, p in spec.parameters.items():
        if p.when and not when_matches(p.when, known):
            continue
        known[key] = params[key] = p.samples()[0]
    return params


def baseline_overrides(baseline: "Baseline", tuned_params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Dotted overrides of a baseline replicate (before the seed); None when it builds on the tuned
    values and there are none (no search trial finished)."""
    if baseline.tuned:
        if tuned_params is None:
            return None
        return {**tuned_params, **baseline.set}
    return dict(baseline.set)


def check_baselines(spec: "StudySpec") -> None:
    """Every baseline must give a valid trial in every condition."""
    from trainables.config import parse_trial

    from .spec import set_keys, with_condition

    for name, b in spec.baselines.items():
        for cond in spec.condition_list():
            values = baseline_overrides(b, representative_params(spec, cond))
            try:
                parse_trial(set_keys(with_condition(spec, cond), values), "")
            except ConfigError as exc:
                raise ConfigError(f"baselines.{name}: {exc}") from None


def check_metric(name: str) -> None:
    """Model selection (the search and the choice of the replicated configuration) uses
    validation numbers only."""
    if name in TEST_SUMMARIES or name.startswith("test_"):
        raise ConfigError(f"metric.name: {name!r} is a test score; model selection must use validation "
                          "numbers only: use best_val_miou (best validation mIoU so far) or val_miou")


def search_seeds(spec: "StudySpec") -> dict[int, str]:
    """Every seed (trial seed or noise seed) a search trial can use -> where it comes from."""
    used: dict[int, str] = {}
    trial = spec.trial
    used.setdefault(int(trial.get("seed") or 0), "trial.seed")
    if trial.get("noise_seed") is not None:
        used.setdefault(int(trial["noise_seed"]), "trial.noise_seed")
    for key in SEED_KEYS:
        for i, v in enumerate(spec.conditions.get(key, [])):
            if isinstance(v, int):
                used.setdefault(v, f"conditions.{key}[{i}]")
        p = spec.parameters.get(key)
        if p is None:
            continue
        if p.distribution is not None:
            for v in range(int(p.min), int(p.max) + 1):
                used.setdefault(v, f"parameters.{key}")
        else:
            for v in ([p.value] if p.value is not None else p.values or []):
                if isinstance(v, int):
                    used.setdefault(v, f"parameters.{key}")
    return used


def check_fresh_seeds(spec: "StudySpec") -> None:
    """Replicates must not reuse a search seed: the winning search trial would then be one of its
    own replicates (same seed, same numbers) and the ± would contain the selected run."""
    used = search_seeds(spec)
    clash = [s for s in spec.final.seeds if s in used]
    if not clash:
        return
    fresh, candidate = [], 0
    while len(fresh) < len(spec.final.seeds):
        if candidate not in used:
            fresh.append(candidate)
        candidate += 1
    where = ", ".join(f"{s} ({used[s]})" for s in clash)
    raise ConfigError(f"final.seeds: {where} also seeded the search; replication needs fresh seeds so that "
                      f"the selected trial is not one of its own replicates: use e.g. {fresh}")


def check_when(spec: "StudySpec") -> None:
    seen = list(spec.conditions)
    for key, p in spec.parameters.items():
        for wkey in (p.when or {}):
            if wkey not in seen:
                valid = seen or ["(no earlier parameter or condition)"]
                raise ConfigError(f"parameters.{key}.when.{wkey}: not a condition or an earlier parameter"
                                  f"{suggest(wkey, seen)}; allowed: {', '.join(valid)}")
        seen.append(key)


def check_keys(spec: "StudySpec") -> None:
    """Each condition and parameter key must be a real trial key with valid sample values: apply the
    values to the trial and parse it (errors are re-labelled with the YAML path)."""
    from .spec import when_matches
    for key, values in spec.conditions.items():
        for i, v in enumerate(values):
            _try(spec.trial, {key: v}, f"conditions.{key}[{i}]", key)
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
                _try(spec.trial, known, f"parameters.{key}.{label}", key)
        if not applicable:
            raise ConfigError(f"parameters.{key}.when: never true for any condition")


def _fixed_for(spec: "StudySpec", key: str, cond: dict) -> dict | None:
    """Condition values plus earlier parameter values that make ``key``'s ``when`` true (None if
    impossible): a representative trial in which ``key`` is sampled."""
    from .spec import when_matches
    forced: dict[str, Any] = {}
    for wkey, wval in (spec.parameters[key].when or {}).items():
        allowed = wval if isinstance(wval, list) else [wval]
        if wkey in cond:
            if cond[wkey] not in allowed:
                return None
            continue
        src = spec.parameters[wkey]
        choices = [v for v in src.samples() if v in allowed] if src.distribution is None else allowed
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


def _try(trial: dict, values: dict, where: str, key: str) -> None:
    from trainables.config import parse_trial

    from .spec import set_keys

    try:
        parse_trial(set_keys(trial, values), "trial")
    except ConfigError as exc:
        msg = str(exc)
        for prefix in (f"trial.{key}: ", "--set "):
            if msg.startswith(prefix):  # the error is about this very key: name it once
                msg = msg[len(prefix):].partition(": ")[2] if prefix == "--set " else msg[len(prefix):]
        if msg.startswith("unknown key"):  # about the key, not the value: drop .min / .values[i]
            where = where[:where.index(key) + len(key)]
        raise ConfigError(f"{where}: {msg}") from None
