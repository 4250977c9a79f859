"""Study YAML loading: valid specs, the define-by-run space, and one-line errors naming the path."""
from __future__ import annotations

import textwrap

import optuna
import pytest

from study.spec.space import space_fn
from study.spec import load_study, parse_study
from trainables.errors import ConfigError

GOOD = """
name: demo
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: tpe, seed: 3, num_samples: 4}
scheduler: {type: asha, grace_period: 1, max_t: 3}
conditions:
  noise.0.rate: [0.5, 1.0]
parameters:
  train.lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}
  method.name: {values: [ce, gce]}
  method.q: {distribution: uniform, min: 0.1, max: 0.9, when: {method.name: gce}}
  train.batch_size: {value: 4}
trial:
  noise: [{kind: morph, rate: 1.0}]
  train: {epochs: 3}
"""


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_good_spec_and_conditions(tmp_path):
    spec = load_study(write(tmp_path, GOOD), ["search.num_samples=6"])
    assert spec.search.num_samples == 6 and spec.search.seed == 3
    assert spec.condition_list() == [{"noise.0.rate": 0.5}, {"noise.0.rate": 1.0}]
    assert list(spec.parameters) == ["train.lr", "method.name", "method.q", "train.batch_size"]
    assert parse_study(spec.to_dict()).parameters == spec.parameters  # round trip


def test_define_by_run_is_conditional(tmp_path):
    spec = load_study(write(tmp_path, GOOD))
    space = space_fn(spec, {"noise.0.rate": 0.5})
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        t = study.ask()
        consts = space(t)
        assert consts == {"train.batch_size": 4}
        params = t.params
        assert ("method.q" in params) == (params["method.name"] == "gce")
        assert 0.001 <= params["train.lr"] <= 0.1
        seen.add(params["method.name"])
        spec.condition({"noise.0.rate": 0.5}).config_with({**params, **consts})  # a valid trial
        study.tell(t, 0.5)
    assert seen == {"ce", "gce"}


BAD = {
    "unknown_top": ("name: x\nparamters: {}\n", "paramters: unknown key (did you mean 'parameters'?)"),
    "no_name": ("search: {num_samples: 2}\n", "name: required key is missing"),
    "bad_goal": ("name: x\nmetric: {goal: maximise}\n", "metric.goal: got 'maximise'"),
    "bad_algorithm": ("name: x\nsearch: {algorithm: bayes}\n", "search.algorithm: got 'bayes'"),
    "negative_samples": ("name: x\nsearch: {num_samples: -1}\n", "search.num_samples: got -1"),
    "no_search_with_parameters": ("name: x\nsearch: {num_samples: 0}\nparameters: {train.lr: {values: [0.1]}}\n",
                                  "search.num_samples: 0 (no search) with 1 searched parameters"),
    "bad_scheduler_key": ("name: x\nscheduler: {grace_perod: 1}\n", "scheduler.grace_perod: unknown key (did you mean 'grace_period'?)"),
    "reduction": ("name: x\nscheduler: {reduction_factor: 1}\n", "scheduler.reduction_factor: got 1"),
    "min_ge_max": ("name: x\nparameters:\n  train.lr: {distribution: uniform, min: 1, max: 0.1}\n",
                   "parameters.train.lr.min: got 1"),
    "bad_distribution": ("name: x\nparameters:\n  train.lr: {distribution: loguniform, min: 0.1, max: 1}\n",
                         "parameters.train.lr.distribution: got 'loguniform'"),
    "two_kinds": ("name: x\nparameters:\n  train.lr: {values: [0.1], value: 0.1}\n",
                  "parameters.train.lr: give exactly one of distribution, values, value"),
    "unknown_trial_key": ("name: x\nparameters:\n  train.lrr: {values: [0.1]}\n",
                          "parameters.train.lrr: unknown key (did you mean 'lr'?)"),
    "out_of_range": ("name: x\nparameters:\n  train.momentum: {distribution: uniform, min: 0.5, max: 1.5}\n",
                     "parameters.train.momentum.max: got 1.5"),
    "bad_when": ("name: x\nparameters:\n  train.lr: {values: [0.1], when: {method.nam: gce}}\n",
                 "parameters.train.lr.when.method.nam: not a condition or an earlier parameter"),
    "condition_not_list": ("name: x\nconditions: {noise.0.rate: 0.5}\ntrial: {noise: [{kind: morph}]}\n",
                           "conditions.noise.0.rate: got 0.5; expected a non-empty list"),
    "condition_bad_value": ("name: x\nconditions: {method.name: [ce, adel]}\n",
                            "conditions.method.name[1]: unknown method 'adel'"),
    "bad_trial": ("name: x\ntrial: {train: {epoch: 3}}\n", "trial.train.epoch: unknown key (did you mean 'epochs'?)"),
    "log_nonpositive": ("name: x\nparameters:\n  train.lr: {distribution: log_uniform_values, min: 0, max: 1}\n",
                        "parameters.train.lr.min: got 0"),
    "q_missing": ("name: x\nparameters:\n  train.lr: {distribution: q_uniform, min: 0.1, max: 1}\n",
                  "parameters.train.lr.q: required key is missing"),
    "wandb_mode": ("name: x\nlogging: {wandb: {mode: off}}\n", "logging.wandb.mode: got False"),
    "invalid_yaml": ("name: x\nsearch: {num_samples: 2\n", "invalid YAML"),
    "not_mapping": ("- a\n- b\n", "expected a mapping at the top level"),
    "remote_needs_optuna": ("name: x\nstorage: {path: 's3://bucket/runs'}\n", "storage.optuna: required"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_files(tmp_path, case):
    text, expected = BAD[case]
    path = write(tmp_path, text, f"{case}.yaml")
    with pytest.raises(ConfigError) as info:
        load_study(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert expected in msg, msg
    assert "\n" not in msg
