"""W&B Sweeps spellings: method bayes|random|grid, early_terminate hyperband, categorical/constant,
a grid search that runs every combination once, and clear refusals."""
from __future__ import annotations

import itertools
import textwrap

import optuna
import pytest
import yaml

from study.spec.space import make_sampler, space_fn
from study.spec import parse_study
from trainables.errors import ConfigError

SWEEP = """
name: sw
method: grid
parameters:
  train.lr: {values: [0.01, 0.001]}
  method.name: {distribution: categorical, values: [ce, gce]}
  train.batch_size: {distribution: constant, value: 4}
  train.epochs: {value: 2}
"""


def spec_of(text=SWEEP, **edits):
    raw = yaml.safe_load(textwrap.dedent(text))
    raw.update(edits)
    return parse_study(raw, "sw.yaml")


def test_grid_search_runs_every_combination_once():
    spec = spec_of()
    assert spec.search.algorithm == "grid" and spec.search.num_samples == 4
    assert spec.parameters["method.name"].values == ["ce", "gce"] and spec.parameters["train.batch_size"].value == 4
    study = optuna.create_study(direction="maximize", sampler=make_sampler(spec))
    space = space_fn(spec, {})
    seen = []
    for _ in range(spec.search.num_samples):
        t = study.ask()
        assert space(t) == {"train.batch_size": 4, "train.epochs": 2}
        seen.append((t.params["train.lr"], t.params["method.name"]))
        study.tell(t, 0.0)
    assert sorted(seen) == sorted(itertools.product([0.01, 0.001], ["ce", "gce"]))
    assert parse_study(spec.to_dict()).search.num_samples == 4  # the stored spec re-parses (resume)


def test_bayes_random_and_hyperband():
    spec = spec_of(method="bayes", parameters={"train.lr": {"distribution": "uniform", "min": 0.001, "max": 0.1}},
                   early_terminate={"type": "hyperband", "min_iter": 3, "eta": 3, "max_iter": 9})
    assert spec.search.algorithm == "tpe"
    assert (spec.scheduler.type, spec.scheduler.grace_period, spec.scheduler.reduction_factor, spec.scheduler.max_t) == \
        ("asha", 3, 3.0, 9)
    assert spec_of(method="random").search.algorithm == "random"


@pytest.mark.parametrize("edits, message", [
    ({"method": "bayesian"}, r"^sw\.yaml: method: got 'bayesian'; the W&B Sweeps search methods accepted are bayes, random, grid"),
    ({"method": "bayes", "search": {"algorithm": "random"}}, r"method: 'bayes' means search\.algorithm 'tpe', but search\.algorithm is 'random'"),
    ({"parameters": {"train.lr": {"distribution": "normal", "mu": 0, "sigma": 1}}},
     r"^sw\.yaml: parameters\.train\.lr\.distribution: 'normal' is a W&B Sweeps distribution that is not supported"),
    ({"parameters": {"train.lr": {"distribution": "uniform", "min": 0.001, "max": 0.1}}},
     r"parameters\.train\.lr: grid search needs values"),
    ({"parameters": {"method.name": {"values": ["ce", "gce"]}, "method.q": {"values": [0.3], "when": {"method.name": "gce"}}}},
     r"parameters\.method\.q\.when: not supported with grid search"),
    ({"search": {"num_samples": 3}}, r"search\.num_samples: got 3; grid search runs each of its 4 combinations once"),
    ({"early_terminate": {"type": "envelope"}}, r"early_terminate: got .*only \{type: hyperband"),
    ({"early_terminate": {"type": "hyperband", "s": 2}}, r"early_terminate\.s: not supported; allowed: type, min_iter, eta, max_iter"),
])
def test_refusals_name_the_key(edits, message):
    with pytest.raises(ConfigError, match=message):
        spec_of(**edits)
