"""Baselines, fresh replication seeds and the validation-only selection metric of a study spec."""
from __future__ import annotations

import textwrap

import pytest

from study.spec import parse_study, search_seeds
from study.replication import replicas, top_configs
from trainables.errors import ConfigError
from trainables.tune_adapter import trial_config

import yaml

BASE = """
name: demo
conditions:
  noise.0.rate: [0.5, 1.0]
parameters:
  method.r: {distribution: uniform, min: 0.5, max: 0.95}
  method.tau_fg: {values: [0.6, 0.8]}
trial:
  noise: [{kind: morph, rate: 1.0}]
  method: {name: adele, correct_every: 2}
  train: {epochs: 3}
final: {seeds: [5, 6, 7]}
baselines:
  ce: {method.name: ce}
  global: {tuned: true, method.class_adaptive: false}
"""


def spec_of(text: str = BASE, **edits):
    raw = yaml.safe_load(textwrap.dedent(text))
    for key, value in edits.items():
        raw[key] = value
    return parse_study(raw, "s.yaml")


def test_baselines_parse_round_trip_and_defaults():
    spec = spec_of()
    assert spec.baselines["ce"].set == {"method.name": "ce"} and not spec.baselines["ce"].tuned
    assert spec.baselines["global"].tuned and spec.baselines["global"].set == {"method.class_adaptive": False}
    again = parse_study(spec.to_dict())
    assert again.baselines == spec.baselines and again.final.seeds == [5, 6, 7]
    plain = spec_of(final=None, baselines=None)
    assert plain.final.seeds == [1, 2, 3] and plain.baselines == {}  # >= 3 fresh seeds by default


def test_replication_grid_pairs_every_configuration_by_seed():
    """Tuned values, a baseline switching method (ADELE's keys dropped) and one built on the tuned
    values; every configuration with every fresh seed as seed and noise seed."""
    spec = spec_of()
    top = [{"trial_id": "t1", "params": {"method.r": 0.7, "method.tau_fg": 0.8}}]
    grid = replicas(spec, top)
    assert [(g["label"], g["seed"]) for g in grid] == [
        (label, s) for label in ("tuned", "ce", "global") for s in (5, 6, 7)]
    base = {"trial": {"method": {"name": "adele", "correct_every": 2}, "noise": [{"kind": "morph"}]}}
    cfgs = {(g["label"], g["seed"]): trial_config({**base, "replica": g}) for g in grid}
    tuned, ce, glob = cfgs["tuned", 6], cfgs["ce", 6], cfgs["global", 6]
    assert (tuned.seed, tuned.noise_seed, ce.seed, ce.noise_seed) == (6, 6, 6, 6)
    assert tuned.method.params.r == 0.7 and tuned.method.params.class_adaptive
    assert ce.method.name == "ce"
    assert glob.method.name == "adele" and glob.method.params.r == 0.7 and glob.method.params.tau_fg == 0.8
    assert not glob.method.params.class_adaptive and glob.method.params.correct_every == 2
    # no finished search trial: the tuned-based baseline cannot run, the plain one still does
    assert [g["label"] for g in replicas(spec, [])] == ["ce"] * 3


@pytest.mark.parametrize("edits, message", [
    ({"final": {"seeds": [0, 1, 2]}}, r"^s\.yaml: final\.seeds: 0 \(trial\.seed\) also seeded the search; .* use e\.g\. \[1, 2, 3\]$"),
    ({"final": {"seeds": [2, 3]}, "trial": {"seed": 3, "noise_seed": 2, "noise": [{"kind": "morph"}], "method": {"name": "adele"}}},
     r"final\.seeds: 2 \(trial\.noise_seed\), 3 \(trial\.seed\) also seeded"),
    ({"metric": {"name": "max_test"}}, r"^s\.yaml: metric\.name: 'max_test' is a test score; .*best_val_miou"),
    ({"metric": {"name": "test_miou"}}, r"metric\.name: 'test_miou' is a test score"),
    ({"baselines": ["ce"]}, r"^s\.yaml: baselines: got \['ce'\]; expected a mapping"),
    ({"baselines": {"ce": {"method.name": "cee"}}}, r"^s\.yaml: baselines\.ce: method\.name: unknown method 'cee' \(did you mean 'ce'\?\); allowed: ce"),
    ({"baselines": {"ce": {"method.name": "ce", "seed": 3}}}, r"baselines\.ce\.seed: set by the replication"),
    ({"baselines": {"ce": {"method.name": "ce", "tuned": "yes"}}}, r"baselines\.ce\.tuned: got 'yes'"),
    ({"baselines": {"tuned": {"method.name": "ce"}}}, r"baselines\.tuned: bad name"),
])
def test_bad_baselines_seeds_and_metric(edits, message):
    with pytest.raises(ConfigError, match=message):
        spec_of(**edits)


def test_search_seeds_cover_conditions_and_parameters():
    spec = spec_of(conditions={"seed": [4, 9]}, parameters={"noise_seed": {"distribution": "int_uniform", "min": 10, "max": 12}},
                   final={"seeds": [1, 2, 3]})
    assert sorted(search_seeds(spec)) == [0, 4, 9, 10, 11, 12]
    with pytest.raises(ConfigError, match=r"final\.seeds: 11 \(parameters\.noise_seed\)"):
        spec_of(parameters={"noise_seed": {"distribution": "int_uniform", "min": 10, "max": 12}}, final={"seeds": [11]})


def test_no_search_replicates_the_trial_as_configured():
    """``search.num_samples: 0``: no Optuna trial; the trial as configured is the replicated
    configuration (label ``tuned``), its tuned-based baselines build on the configured values."""
    spec = spec_of(parameters=None, search={"num_samples": 0})
    assert spec.search.num_samples == 0
    top = top_configs(spec, [])
    assert top == [{"trial_id": None, "params": {}}]
    grid = replicas(spec, top)
    assert [(g["label"], g["seed"]) for g in grid] == [
        (label, s) for label in ("tuned", "ce", "global") for s in (5, 6, 7)]
    base = {"trial": {"method": {"name": "adele", "r": 0.6}, "noise": [{"kind": "morph"}]}}
    glob = trial_config({**base, "replica": grid[-1]})
    assert glob.method.name == "adele" and glob.method.params.r == 0.6 and not glob.method.params.class_adaptive
    with pytest.raises(ConfigError, match=r"search.num_samples: 0 \(no search\) with 2 searched parameters"):
        spec_of(search={"num_samples": 0})
    with pytest.raises(ConfigError, match="search.num_samples"):
        spec_of(parameters=None, search={"num_samples": -1})
