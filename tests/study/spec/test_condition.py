"""A study's condition is built once as a typed object: its values, slug, base trial (a fresh copy
for each caller) and parsed TrialConfig; building it leaves the spec's study.yaml form unchanged."""
from __future__ import annotations

import pytest

from study.spec import Condition, parse_study, with_condition
from trainables.config import parse_trial
from trainables.errors import ConfigError

RAW = {"name": "x", "conditions": {"noise.0.rate": [0.5, 1.0], "method.name": ["ce", "adele"]},
       "parameters": {"train.lr": {"values": [0.01, 0.1]}},
       "trial": {"noise": [{"kind": "drop", "rate": 0.2}], "train": {"epochs": 3}}}


def test_conditions_are_typed_in_yaml_order_and_built_once() -> None:
    spec = parse_study(RAW)
    conds = spec.typed_conditions()
    assert all(isinstance(c, Condition) for c in conds)
    assert [c.values for c in conds] == spec.condition_list()
    assert [c.slug for c in conds] == ["rate-0.5_name-ce", "rate-0.5_name-adele", "rate-1.0_name-ce",
                                       "rate-1.0_name-adele"]
    assert spec.condition({"noise.0.rate": 1.0, "method.name": "ce"}) is conds[2]  # built once
    assert conds[3].config is conds[3].config
    for c in conds:
        assert c.config == parse_trial(with_condition(spec, c.values))
    assert (conds[3].config.noise[0].params.rate, conds[3].config.method.name) == (1.0, "adele")
    assert conds[3].config.train.epochs == 3


def test_the_trial_as_configured_is_the_empty_condition() -> None:
    spec = parse_study(RAW)
    main = spec.condition({})
    assert main.slug == "main" and main.base == spec.trial
    assert main.config.noise[0].params.rate == 0.2 and main.config.method.name == "ce"


def test_a_condition_hands_out_fresh_trials_and_parses_values_on_it() -> None:
    spec = parse_study(RAW)
    cond = spec.condition({"noise.0.rate": 0.5, "method.name": "adele"})
    trial = cond.trial()
    trial["train"]["epochs"] = 99  # a caller's copy: the condition keeps its own
    assert cond.base["train"]["epochs"] == 3 and cond.trial()["train"]["epochs"] == 3
    assert cond.trial({"train.lr": 0.1})["train"]["lr"] == 0.1 and "lr" not in RAW["trial"]["train"]
    assert cond.config_with({"train.lr": 0.1}).train.lr == 0.1
    assert cond.config_with({}) is cond.config
    with pytest.raises(ConfigError, match=r"^trial\.train\.lr: "):
        cond.config_with({"train.lr": -1.0}, "trial")


def test_building_conditions_leaves_the_stored_spec_as_it_was() -> None:
    spec = parse_study(RAW)
    before = spec.to_dict()
    spec.typed_conditions()
    assert spec.to_dict() == before and spec == parse_study(RAW)


AUGMENTED = {"name": "x", "conditions": {"method.name": ["ce", "adele"]},
             "parameters": {"train.lr": {"values": [0.01, 0.1]},
                            "method.prediction": {"value": "eval_pass", "when": {"method.name": "adele"}},
                            "train.epochs": {"value": 5},
                            "method.r": {"values": [0.7, 0.9], "when": {"method.name": "adele"}},
                            "train.batch_size": {"value": 4, "when": {"train.lr": 0.1}}},
             "trial": {"train": {"epochs": 3, "augment": True}}}


def test_a_conditions_config_has_the_constants_that_apply_to_it() -> None:
    """compare_camvid's pattern: ADELE on augmented batches is only valid with the constant
    method.prediction: eval_pass that its condition gets; the base alone does not parse."""
    spec = parse_study(AUGMENTED)
    ce, adele = spec.typed_conditions()
    with pytest.raises(ConfigError, match="method.prediction"):
        parse_trial(adele.base)
    assert adele.constants == {"method.prediction": "eval_pass", "train.epochs": 5}
    assert adele.config.method.name == "adele" and adele.config.method.params.prediction == "eval_pass"
    assert ce.constants == {"train.epochs": 5}  # the when is not met: ce gets no prediction key
    assert ce.config.train.epochs == adele.config.train.epochs == 5  # a constant budget is the budget
    # a constant whose when names a searched key is each trial's own (train.lr is searched)
    assert "train.batch_size" not in adele.constants and "train.batch_size" not in ce.constants
    assert adele.base["train"]["epochs"] == 3  # the base stays what Ray hands a trial
    # config_with is the base with the given values only (a baseline's overrides get no constants)
    assert ce.config_with({}).train.epochs == 3 and ce.config_with(ce.constants).train.epochs == 5
