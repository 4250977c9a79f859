"""study.spec.parameters: the three kinds of a study parameter know how to suggest (on a real Optuna
trial), grid, enumerate and describe themselves; study.spec.Parameter maps a YAML entry to its kind."""
from __future__ import annotations

import optuna
import pytest

from study.spec import Choice, Constant, Range, parse_study
from trainables.errors import ConfigError


def _trial() -> optuna.Trial:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()


def test_yaml_entries_map_to_their_kind() -> None:
    spec = parse_study({
        "name": "k", "metric": {"name": "best_val_miou", "goal": "maximize"},
        "parameters": {"train.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                       "method.name": {"values": ["ce", "gce"]}, "train.epochs": {"value": 3},
                       "train.batch_size": {"distribution": "int_uniform", "min": 2, "max": 8, "q": 2}},
        "trial": {"dataset": {"name": "synthetic"}}})
    kinds = {k: p.kind for k, p in spec.parameters.items()}
    assert kinds == {"train.lr": Range("log_uniform_values", 1e-4, 1e-1), "method.name": Choice(("ce", "gce")),
                     "train.epochs": Constant(3), "train.batch_size": Range("int_uniform", 2, 8, 2)}
    assert [k for k, v in kinds.items() if v.searched] == ["train.lr", "method.name", "train.batch_size"]


def test_each_kind_suggests_on_a_real_optuna_trial() -> None:
    trial = _trial()
    lr = Range("log_uniform_values", 1e-4, 1e-1).suggest(trial, "lr")
    bs = Range("int_uniform", 2, 8, 2).suggest(trial, "bs")
    q = Range("q_uniform", 0.0, 1.0, 0.25).suggest(trial, "q")
    name = Choice(("ce", "gce")).suggest(trial, "name")
    assert 1e-4 <= lr <= 1e-1 and bs in (2, 4, 6, 8) and q in (0.0, 0.25, 0.5, 0.75, 1.0) and name in ("ce", "gce")
    assert Constant(7).suggest(trial, "c") == 7 and "c" not in trial.params  # never sampled
    dists = trial.distributions
    assert dists["lr"].log and dists["bs"].step == 2 and dists["q"].step == 0.25
    assert list(dists["name"].choices) == ["ce", "gce"]


def test_grid_enumerate_samples_describe() -> None:
    assert Choice(("a", "b")).grid("k") == ["a", "b"] and Constant(1).grid("k") is None
    with pytest.raises(ConfigError, match=r"^parameters\.k: grid search needs values: \[\.\.\.\] \(got distribution uniform\)"):
        Range("uniform", 0, 1).grid("k")
    assert Range("int_uniform", 1, 4).enumerate(10) == [1, 2, 3, 4]
    assert Range("int_uniform", 1, 100).enumerate(10) == [1, 100]  # too many: the extremes
    assert Range("uniform", 0.5, 0.9).enumerate(10) == [0.5, 0.9]
    assert Range("int_uniform", 1, 4).samples() == [("min", 1), ("max", 4)]
    assert Choice((1, 2)).samples() == [("values[0]", 1), ("values[1]", 2)] and Constant("x").samples() == [("value", "x")]
    assert Range("uniform", 0.5, 0.9).describe() == "uniform [0.5, 0.9]"
    assert Range("q_uniform", 0, 1, 0.25).describe() == "q_uniform [0, 1] step 0.25"
    assert Choice(("ce", "gce")).describe() == "one of ['ce', 'gce']" and Constant(3).describe() == "constant 3"
    assert Choice((1,)).finite and Constant(1).finite and not Range("uniform", 0, 1).finite
