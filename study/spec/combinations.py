"""Checks of a study against what its trials can do, run before anything is written or started
(:func:`validate_study`; slower than the load-time checks, so ``study.run`` calls it once):

- ``metric.name`` must be a metric the trials report: :func:`study.spec.metric.check_reported_metric`.
- A trial that asks for CUDA needs ``resources.gpu``: :func:`check_device`.
- Every combination of the searched values must give a trainable trial: each categorical (and
  small integer) combination, with the extremes of continuous ranges, goes through the trial parser,
  the method factory and the model factory on PyTorch's meta device (no memory, no weights), with a
  forward pass at ``dataset.size`` that catches input sizes the architecture cannot take:
  :func:`check_combinations`.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Iterator

from trainables.config import TrialConfig
from trainables.errors import ConfigError, UserError

from .metric import check_reported_metric
from .schema import Parameter, StudySpec, when_matches

MAX_COMBINATIONS = 4096  # trial configs parsed per study at most (each takes well under a millisecond)
MAX_INT_VALUES = 16  # an int_uniform range up to this many values is enumerated like a categorical


def validate_study(spec: StudySpec) -> None:
    """Everything that can be checked without data or Ray; raises ConfigError (one line)."""
    check_reported_metric(spec.metric.name)
    check_device(spec)
    check_combinations(spec)


def check_device(spec: StudySpec) -> None:
    """A trial that asks for CUDA gets no GPU from Ray unless ``resources.gpu`` reserves one."""
    device = spec.condition({}).config.train.device  # the trial as configured
    if device.startswith("cuda") and not spec.resources.gpu:
        raise ConfigError(f"trial.train.device: {device!r} but resources.gpu is 0, so Ray hides every GPU from "
                          "the trials; set resources.gpu (e.g. 1 or 0.5) or train.device: auto")


# -- combinations --------------------------------------------------------------------------------

def _candidates(key: str, p: Parameter) -> list[Any]:
    return p.kind.enumerate(MAX_INT_VALUES)


def combinations(spec: StudySpec, condition: dict) -> Iterator[dict[str, Any]]:
    """Every assignment of candidate values to the parameters active under ``condition``
    (``when:`` respected, in YAML order)."""
    params = list(spec.parameters.items())

    def walk(i: int, known: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(params):
            yield dict(known)
            return
        key, p = params[i]
        if p.when and not when_matches(p.when, known):
            yield from walk(i + 1, known)
            return
        for value in _candidates(key, p):
            known[key] = value
            yield from walk(i + 1, known)
        del known[key]

    yield from walk(0, dict(condition))


def _variants(spec: StudySpec, searched: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The trial overrides a combination leads to: the searched trial and every baseline."""
    yield "parameters", searched
    for name, b in getattr(spec, "baselines", {}).items():
        yield f"baselines.{name}", ({**searched, **b.set} if b.tuned else dict(b.set))


def check_combinations(spec: StudySpec) -> int:
    """Parse every combination (and the baselines built on it) and build each distinct model and
    method once; returns the number of combinations checked. The first bad one raises ConfigError
    naming the values."""
    built: set[str] = set()
    checked = 0
    for cond in spec.typed_conditions():
        condition = cond.values
        for combo in itertools.islice(combinations(spec, condition), MAX_COMBINATIONS - checked):
            checked += 1
            searched = {k: v for k, v in combo.items() if k not in condition}
            for where, values in _variants(spec, searched):
                try:
                    cfg = cond.config_with(values, "trial")
                    key = repr((cfg.model, cfg.dataset.size, cfg.method, cfg.train.epochs, _num_classes(cfg)))
                    if key not in built:
                        _build(cfg)
                        built.add(key)
                except UserError as exc:
                    raise ConfigError(f"{where}: the combination {_describe(values, condition)} cannot be "
                                      f"trained: {str(exc).rstrip('.')}; narrow the values or add a when: "
                                      "condition") from None
        if checked >= MAX_COMBINATIONS:
            break
    return checked


def _describe(searched: dict, condition: dict) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in searched.items()) or "(no searched parameters)"
    if condition:
        text += " under condition " + ", ".join(f"{k}={v!r}" for k, v in condition.items())
    return text


def _num_classes(cfg: TrialConfig) -> int:
    """Classes of the dataset as far as its options say without reading data (2 otherwise)."""
    opts = cfg.dataset.options
    names = getattr(opts, "class_names", None)
    if names:
        return len(names)
    return int(getattr(opts, "num_classes", None) or 2)


def _build(cfg: TrialConfig) -> None:
    """The method and the model of ``cfg``, the model on the meta device (and run there at
    ``dataset.size`` when it is given); raises UserError (ConfigError) for what cannot work."""
    import torch

    from trainables.methods import MethodContext, create_method
    from trainables.models import create_model

    k = _num_classes(cfg)
    size = tuple(cfg.dataset.size) if cfg.dataset.size else (64, 64)
    create_method(cfg.method, MethodContext(k, 255, cfg.train.epochs, 8, (int(size[0]), int(size[1]))))
    model_cfg = dataclasses.replace(cfg.model, encoder_weights=None)  # structure only, no weights
    with torch.device("meta"):
        try:
            model = create_model(model_cfg, k)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - smp/timm reject the kwargs in their own ways
            raise ConfigError(f"model: cannot build {cfg.model.arch} with encoder {cfg.model.encoder} and kwargs "
                              f"{cfg.model.kwargs}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        if cfg.dataset.size is None:
            return
        model.eval()
        try:
            with torch.no_grad():
                model(torch.empty(1, 3, *size))
        except RuntimeError as exc:
            msg = str(exc)
            if "input shape" not in msg and "divisible" not in msg:
                return  # an operator without a meta kernel: nothing learned about the config
            raise ConfigError(f"dataset.size {list(size)}: {msg.splitlines()[0]}") from None
        except (NotImplementedError, TypeError):
            return
