"""The study spec's types: the sections of a study YAML as dataclasses (:class:`StudySpec` and its
parts, :class:`Parameter` the file's form of a parameter) and the small rules on their values
(a condition's slug, ``when:`` matching, a condition's base trial). Loading and checking live in
:mod:`study.spec.load`.


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

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from trainables.typed import check_range, join, to_dict
from trainables.config import TrialConfig, get_value, parse_trial, with_values
from trainables.errors import ConfigError

from .parameters import Choice, Constant, Range

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
        """The parameter's kind (study.spec.parameters: Constant, Choice or Range), which suggests,
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
    trial: dict[str, Any] = field(default_factory=dict)  # validated plain dict (study.yaml); typed: condition()
    final: Final = field(default_factory=Final)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    logging: Logging = field(default_factory=Logging)
    storage: Storage = field(default_factory=Storage)
    plugins: list[str] = field(default_factory=list)  # resolved: absolute .py paths, module names

    def condition_list(self) -> list[dict[str, Any]]:
        """Every combination of condition values, in YAML order ([{}] without conditions)."""
        keys = list(self.conditions)
        return [dict(zip(keys, combo)) for combo in itertools.product(*self.conditions.values())]

    def condition(self, values: dict[str, Any]) -> Condition:
        """The typed :class:`Condition` of ``values`` (one of :meth:`condition_list`; ``{}``: the trial
        as configured), built once per spec (the spec is not changed after loading)."""
        built = self.__dict__.setdefault("_built_conditions", {})
        key = repr(list(values.items()))
        if key not in built:
            base = with_condition(self, values)
            built[key] = Condition(dict(values), base, self.constants_for(base))
        return built[key]

    def constants_for(self, base: dict[str, Any]) -> dict[str, Any]:
        """The constant parameters (``{value: ...}``) that every trial starting from ``base`` gets, in
        YAML order, as the search samples them (study.spec.space.sample): those without ``when`` and
        those whose ``when`` keys the base (or an earlier constant) decides; a ``when`` on a searched
        key is left to each trial."""
        searched = {k for k, p in self.parameters.items() if p.value is None}
        known: dict[str, Any] = {}
        out: dict[str, Any] = {}
        for key, p in self.parameters.items():
            if p.value is None:
                continue
            when = p.when or {}
            if any(k in searched for k in when):
                continue
            known.update({k: out[k] if k in out else get_value(base, k) for k in when})
            if when_matches(when, known):
                out[key] = p.value
        return out

    def typed_conditions(self) -> list[Condition]:
        """Every condition as a typed :class:`Condition`, in the order of :meth:`condition_list`."""
        return [self.condition(values) for values in self.condition_list()]

    def to_dict(self) -> dict:
        out = to_dict(self)
        out["parameters"] = {k: {f: v for f, v in p.items() if v is not None} for k, p in out["parameters"].items()}
        out["baselines"] = {k: {**b["set"], **({"tuned": True} if b["tuned"] else {})}
                            for k, b in out["baselines"].items()}
        if not out["plugins"]:  # a study without plugins: study.yaml as before
            del out["plugins"]
        return out


@dataclass(frozen=True)
class Condition:
    """One condition of a study, built once (:meth:`StudySpec.condition`): its values (dotted trial
    keys, in YAML order), its base trial (the study's trial with the values set: what every trial of
    the condition starts from, as Ray hands it to a trial) and that trial parsed (once, when first
    asked)."""
    values: dict[str, Any]
    base: dict[str, Any] = field(repr=False)
    constants: dict[str, Any] = field(default_factory=dict)  # the constant parameters every trial of it gets

    @cached_property
    def config(self) -> TrialConfig:
        """The trial every search trial of the condition runs, as far as the condition decides it: the
        base trial with the constant parameters that apply to it (:meth:`StudySpec.condition`), parsed.
        A base that is only valid with them (compare_camvid's ADELE needs ``method.prediction:
        eval_pass`` on augmented batches) parses, and a constant ``train.epochs`` is the budget."""
        return parse_trial(with_values(self.base, self.constants))

    @property
    def slug(self) -> str:
        """Folder / Optuna study name: :func:`condition_slug`."""
        return condition_slug(self.values)

    def trial(self, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """A fresh copy of the base trial with dotted ``values`` set (searched values, a replica's overrides)."""
        return with_values(self.base, values or {})

    def config_with(self, values: dict[str, Any], path: str = "") -> TrialConfig:
        """The parsed base trial with dotted ``values`` set, as Ray runs it (a search trial's values
        include its constants, a baseline's overrides do not; errors name ``path.key``); the
        condition's own config when that is the same trial (nothing to set, no path, no constants)."""
        if not values and not path and not self.constants:
            return self.config
        return parse_trial(self.trial(values), path)


# -- rules on the values (shared by the checks, the space and the tuner) -------------------------

set_keys = with_values  # older names: dotted keys are set and read by trainables.config only
get_key = get_value


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



def with_condition(spec: StudySpec, condition: dict) -> dict:
    """The base trial dict of one condition."""
    return with_values(spec.trial, condition)

