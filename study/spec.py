"""The study YAML: typed, validated at load time; every error names the file and the YAML path.

Shape (W&B-Sweeps style; every section but ``name`` optional)::

    name: adele-synthetic
    metric:    {name: best_val_miou, goal: maximize}
    search:    {algorithm: tpe, seed: 0, num_samples: 16, max_concurrent: 2}
    scheduler: {type: asha, grace_period: 2, reduction_factor: 2, max_t: null}
    resources: {cpu: 1, gpu: 0}
    conditions:                       # one Optuna study per combination, never sampled
      noise.0.rate: [0.5, 1.0]
    parameters:                       # dotted trial keys, sampled in this order (define-by-run)
      method.r: {distribution: uniform, min: 0.5, max: 0.99}
      method.pu_loss: {values: [nnpu, upu]}
      method.prior: {distribution: uniform, min: 0.1, max: 0.5, when: {method.pu_loss: nnpu}}
      train.lr: {value: 0.01}
    trial: {...}                      # the trial config (trainables.config)
    final:     {seeds: [1, 2, 3], top_k: 1}   # fresh seeds: never used by the search
    baselines:                        # replicated beside the tuned configuration, same seeds
      ce: {method.name: ce}
      adele_global: {tuned: true, method.class_adaptive: false}   # the tuned values, one change
    logging:   {wandb: {project: noisyseg, mode: auto, images_every: 0}}
    storage:   {path: runs, optuna: null}
"""
from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .parameters import Choice, Constant, Range
from trainables.typed import check_range, from_dict, join, suggest, to_dict
from trainables.config import apply_overrides, parse_trial, read_yaml
from trainables.errors import ConfigError
from trainables.tune_adapter import with_values

from . import sweeps

DISTRIBUTIONS = ("uniform", "log_uniform_values", "int_uniform", "q_uniform")
Scalar = (bool, int, float, str, type(None))


@dataclass
class Metric:
    name: str = "best_val_miou"
    goal: Literal["maximize", "minimize"] = "maximize"

    @property
    def mode(self) -> str:
        return "max" if self.goal == "maximize" else "min"


@dataclass
class Search:
    algorithm: Literal["tpe", "random", "grid"] = "tpe"  # grid: every combination of the values, once
    seed: int = 0
    num_samples: int = 8  # 0: no search, the trial as configured is replicated (a fixed protocol)
    max_concurrent: int | None = None  # None: as many as the resources allow

    def validate(self, path: str) -> None:
        check_range(join(path, "num_samples"), self.num_samples, 0)
        check_range(join(path, "max_concurrent"), self.max_concurrent, 1)


@dataclass
class Scheduler:
    type: Literal["asha", "none"] = "asha"
    grace_period: int = 1
    reduction_factor: float = 2.0
    max_t: int | None = None  # None: the trial's train.epochs

    def validate(self, path: str) -> None:
        check_range(join(path, "grace_period"), self.grace_period, 1)
        check_range(join(path, "reduction_factor"), self.reduction_factor, 1, lo_open=True)
        check_range(join(path, "max_t"), self.max_t, 1)


@dataclass
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0  # fractional GPUs share one device

    def validate(self, path: str) -> None:
        check_range(join(path, "cpu"), self.cpu, 0)
        check_range(join(path, "gpu"), self.gpu, 0)


@dataclass
class Parameter:
    """One searched (or fixed) trial key: a distribution, a categorical list or a constant."""
    distribution: Literal["uniform", "log_uniform_values", "int_uniform", "q_uniform"] | None = None
    min: float | None = None
    max: float | None = None
    q: float | None = None
    values: list[Any] | None = None
    value: Any = None
    when: dict[str, Any] | None = None  # {dotted key: value or [values]}: sample only then

    def validate(self, path: str) -> None:
        kinds = [k for k, v in (("distribution", self.distribution), ("values", self.values)) if v is not None]
        if self.value is not None:
            kinds.append("value")
        if len(kinds) != 1:
            got = f"got {', '.join(kinds)}" if kinds else "got none"
            raise ConfigError(f"{path}: give exactly one of distribution, values, value ({got})")
        if self.values is not None:
            if not self.values:
                raise ConfigError(f"{join(path, 'values')}: empty list; give at least one value")
            for i, v in enumerate(self.values):
                if not isinstance(v, Scalar):
                    raise ConfigError(f"{join(path, 'values')}[{i}]: got {v!r}; values must be numbers, strings, booleans or null")
        if self.distribution is None:
            for k in ("min", "max", "q"):
                if getattr(self, k) is not None:
                    raise ConfigError(f"{join(path, k)}: only allowed with a distribution")
            return
        for k in ("min", "max"):
            if getattr(self, k) is None:
                raise ConfigError(f"{join(path, k)}: required key is missing for distribution {self.distribution}")
        if self.min >= self.max:
            raise ConfigError(f"{join(path, 'min')}: got {self.min!r}; must be below max ({self.max!r})")
        if self.distribution == "log_uniform_values" and self.min <= 0:
            raise ConfigError(f"{join(path, 'min')}: got {self.min!r}; log_uniform_values needs min > 0")
        if self.distribution == "q_uniform" and self.q is None:
            raise ConfigError(f"{join(path, 'q')}: required key is missing for distribution q_uniform")
        if self.distribution == "log_uniform_values" and self.q is not None:
            raise ConfigError(f"{join(path, 'q')}: not allowed with log_uniform_values")
        if self.q is not None:
            check_range(join(path, "q"), self.q, 0, lo_open=True)
        if self.distribution == "int_uniform":
            for k in ("min", "max", "q"):
                v = getattr(self, k)
                if v is not None and not float(v).is_integer():
                    raise ConfigError(f"{join(path, k)}: got {v!r}; int_uniform needs integers")

    @property
    def kind(self):
        """The parameter's kind (study.parameters: Constant, Choice or Range), which suggests,
        grids, samples and describes itself."""
        if self.value is not None:
            return Constant(self.value)
        if self.values is not None:
            return Choice(tuple(self.values))
        return Range(self.distribution, self.min, self.max, self.q)

    def samples(self) -> list[Any]:
        """Representative values (the extremes) used to check the key against the trial schema."""
        return [v for _, v in self.labelled_samples()]

    def labelled_samples(self) -> list[tuple[str, Any]]:
        return self.kind.samples()


@dataclass
class Final:
    """Replication of the top configurations (and the baselines) with fresh seeds: seed and noise
    seed of each replicate, disjoint from every seed the search used (checked at load time)."""
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    top_k: int = 1

    def validate(self, path: str) -> None:
        check_range(join(path, "top_k"), self.top_k, 0)
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{join(path, 'seeds')}: got {self.seeds!r}; seeds must be distinct")


@dataclass
class Baseline:
    """A reference configuration run with the replication's seeds, beside the tuned one: dotted
    trial keys applied to the condition's trial (``tuned: true``: on top of the best searched values)."""
    set: dict[str, Any] = field(default_factory=dict)
    tuned: bool = False


@dataclass
class Wandb:
    project: str = "noisyseg"
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"  # auto: offline without an API key
    images_every: int = 0  # log input/clean/noisy/current/prediction images every N epochs; 0: never
    entity: str | None = None
    upload_timeout: int = 30

    def validate(self, path: str) -> None:
        check_range(join(path, "images_every"), self.images_every, 0)
        check_range(join(path, "upload_timeout"), self.upload_timeout, 1)


@dataclass
class Logging:
    wandb: Wandb = field(default_factory=Wandb)


@dataclass
class Storage:
    path: str = "runs"  # local folder, shared folder or s3://...; the experiment is path/name
    optuna: str | None = None  # None: sqlite in the experiment folder; an RDB URL; or journal:///file.log


@dataclass
class StudySpec:
    name: str
    metric: Metric = field(default_factory=Metric)
    search: Search = field(default_factory=Search)
    scheduler: Scheduler = field(default_factory=Scheduler)
    resources: Resources = field(default_factory=Resources)
    conditions: dict[str, list[Any]] = field(default_factory=dict)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    trial: dict[str, Any] = field(default_factory=dict)  # validated plain dict (re-parseable)
    final: Final = field(default_factory=Final)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    logging: Logging = field(default_factory=Logging)
    storage: Storage = field(default_factory=Storage)
    plugins: list[str] = field(default_factory=list)  # resolved: absolute .py paths, module names

    def condition_list(self) -> list[dict[str, Any]]:
        """Every combination of condition values, in YAML order ([{}] without conditions)."""
        keys = list(self.conditions)
        return [dict(zip(keys, combo)) for combo in itertools.product(*self.conditions.values())]

    def to_dict(self) -> dict:
        out = to_dict(self)
        out["parameters"] = {k: {f: v for f, v in p.items() if v is not None} for k, p in out["parameters"].items()}
        out["baselines"] = {k: {**b["set"], **({"tuned": True} if b["tuned"] else {})}
                            for k, b in out["baselines"].items()}
        if not out["plugins"]:  # a study without plugins: study.yaml as before
            del out["plugins"]
        return out


# -- helpers shared with study.space ---------------------------------------------------------------

def set_keys(trial: dict, values: dict[str, Any]) -> dict:
    """A copy of ``trial`` with dotted keys set (numeric parts index lists: noise.0.rate)."""
    return with_values(trial, values)


def get_key(trial: dict, key: str, default: Any = None) -> Any:
    node: Any = trial
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return default
    return node


def when_matches(when: dict[str, Any] | None, known: dict[str, Any]) -> bool:
    """True when every ``when`` key has (one of) the wanted value(s) in ``known``."""
    for key, want in (when or {}).items():
        allowed = want if isinstance(want, list) else [want]
        if known.get(key) not in allowed:
            return False
    return True


def condition_slug(condition: dict[str, Any]) -> str:
    """Folder / study name of a condition: ``rate-0.5_name-adele`` (``main`` without conditions)."""
    if not condition:
        return "main"
    parts = []
    for key, value in condition.items():
        v = str(value).replace("/", "-").replace(" ", "")
        parts.append(f"{key.split('.')[-1]}-{v}")
    return "_".join(parts)


# -- loading ---------------------------------------------------------------------------------------

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


def with_condition(spec: StudySpec, condition: dict) -> dict:
    """The base trial dict of one condition."""
    return set_keys(copy.deepcopy(spec.trial), condition)


# -- checks that span sections (formerly study.spec_checks) ------------------------------
# Checks of a study spec that span sections: condition and parameter keys against the trial schema,
# ``when:`` references, baselines, the metric used for model selection, and replication seeds that the
# search never used. Each error names the YAML path and what is allowed.

SEED_KEYS = ("seed", "noise_seed")
TEST_SUMMARIES = ("best_val", "max_test", "last")  # test mIoU numbers (the papers' summary)
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
    from trainables.config import parse_trial


    for name, b in spec.baselines.items():
        for cond in spec.condition_list():
            values = baseline_overrides(b, representative_params(spec, cond))
            try:
                parse_trial(set_keys(with_condition(spec, cond), values), "")
            except ConfigError as exc:
                raise ConfigError(f"baselines.{name}: {exc}") from None


def check_selection_metric(name: str) -> None:
    """Model selection (the search and the choice of the replicated configuration) uses
    validation numbers only."""
    if name in TEST_SUMMARIES or name.startswith("test_"):
        raise ConfigError(f"metric.name: {name!r} is a test score; model selection must use validation "
                          "numbers only: use best_val_miou (best validation mIoU so far) or val_miou")


def search_seeds(spec: StudySpec) -> dict[int, str]:
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
        if not p.kind.finite:  # a range: every integer in it may be drawn
            for v in range(int(p.min), int(p.max) + 1):
                used.setdefault(v, f"parameters.{key}")
        else:
            for _, v in p.kind.samples():
                if isinstance(v, int):
                    used.setdefault(v, f"parameters.{key}")
    return used


def check_fresh_seeds(spec: StudySpec) -> None:
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
            _try(spec.trial, known, f"conditions.{key}[{i}]", key)
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


def _try(trial: dict, values: dict, where: str, key: str) -> None:
    from trainables.config import parse_trial


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
