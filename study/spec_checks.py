"""Checks of a study spec that span sections: baselines, the metric used for model selection, and
replication seeds that the search never used. Each error names the YAML path and what is allowed."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

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
