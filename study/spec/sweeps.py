"""W&B Sweeps spellings of a study YAML, translated to this project's keys before validation.

Accepted: ``method: bayes | random | grid`` (= ``search.algorithm: tpe | random | grid``),
``early_terminate: {type: hyperband, min_iter, eta, max_iter}`` (= ASHA: ``scheduler: {type: asha,
grace_period, reduction_factor, max_t}``; epochs are the iterations), and the distributions
``categorical`` (with ``values``) and ``constant`` (with ``value``). Sweeps distributions without a
bounded range that TPE can sample (``normal``, ``beta``, ...) are refused by name with what to use.
"""
from __future__ import annotations

from typing import Any

from trainables.errors import ConfigError

METHODS = {"bayes": "tpe", "random": "random", "grid": "grid"}
UNSUPPORTED = ("normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta",
               "q_log_uniform_values", "inv_log_uniform_values", "log_uniform")
HYPERBAND = {"min_iter": "grace_period", "eta": "reduction_factor", "max_iter": "max_t"}


def translate(raw: dict) -> dict:
    """A copy of the study mapping with the Sweeps keys above replaced by ours (conflicts refused)."""
    raw = dict(raw)
    if "method" in raw:
        method = raw.pop("method")
        if method not in METHODS:
            raise ConfigError(f"method: got {method!r}; the W&B Sweeps search methods accepted are "
                              f"{', '.join(METHODS)} (search.algorithm: tpe, random, grid)")
        search = dict(raw.get("search") or {})
        want = METHODS[method]
        if search.get("algorithm", want) != want:
            raise ConfigError(f"method: {method!r} means search.algorithm {want!r}, but search.algorithm is "
                              f"{search['algorithm']!r}; give one of them")
        search["algorithm"] = want
        raw["search"] = search
    if "early_terminate" in raw:
        et = raw.pop("early_terminate")
        if not isinstance(et, dict) or et.get("type") != "hyperband":
            raise ConfigError(f"early_terminate: got {et!r}; only {{type: hyperband, min_iter, eta}} is "
                              "accepted (run as ASHA), or use scheduler: {type: asha, ...}")
        if raw.get("scheduler"):
            raise ConfigError("early_terminate: also given scheduler; give one of them")
        sched: dict[str, Any] = {"type": "asha"}
        for key, value in et.items():
            if key == "type":
                continue
            if key not in HYPERBAND:
                raise ConfigError(f"early_terminate.{key}: not supported; allowed: type, {', '.join(HYPERBAND)}")
            sched[HYPERBAND[key]] = value
        raw["scheduler"] = sched
    params = raw.get("parameters")
    if isinstance(params, dict):
        raw["parameters"] = {k: _parameter(k, v) for k, v in params.items()}
    return raw


def _parameter(key: str, body: Any) -> Any:
    if not isinstance(body, dict) or "distribution" not in body:
        return body
    dist = body["distribution"]
    if dist == "categorical":
        return {k: v for k, v in body.items() if k != "distribution"}
    if dist == "constant":
        return {k: v for k, v in body.items() if k != "distribution"}
    if dist in UNSUPPORTED:
        raise ConfigError(f"parameters.{key}.distribution: {dist!r} is a W&B Sweeps distribution that is not "
                          "supported here (TPE samples bounded ranges); use uniform, log_uniform_values, "
                          "int_uniform or q_uniform with min and max, or values: [...]")
    return body


def grid_points(parameters: dict) -> dict[str, list]:
    """The grid of a grid search: every parameter's ``values`` (or its constant); refused for
    distributions and for ``when:`` (a grid is one fixed product)."""
    grid = {}
    for key, p in parameters.items():
        if p.when:
            raise ConfigError(f"parameters.{key}.when: not supported with grid search (a grid is one product "
                              "of values); use search.algorithm tpe or random")
        axis = p.kind.grid(key)  # a range refuses, a constant is no axis
        if axis is not None:
            grid[key] = axis
    return grid
