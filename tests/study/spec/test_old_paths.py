"""The spec's older module paths stay importable and name the very same objects: Ray pickled
``study.space.Space`` (holding ``study.spec.Parameter`` objects) into every experiment written before
the spec became a package, and ``--resume`` unpickles it by those paths."""
from __future__ import annotations

import importlib
import pickle

import pytest

import study.spec as spec_pkg
from study.spec import combinations, keys, metric, parameters, seeds, space, sweeps
from study.spec.baselines import check_baselines

OLD = {
    "study.space": (space, ["Space", "make_sampler", "sample", "space_fn"]),
    "study.sweeps": (sweeps, ["translate", "grid_points", "METHODS"]),
    "study.parameters": (parameters, ["Constant", "Choice", "Range", "Kind"]),
    "study.validate": (combinations, ["validate_study", "check_combinations", "check_device", "MAX_COMBINATIONS"]),
}


@pytest.mark.parametrize("old", sorted(OLD))
def test_an_old_path_names_the_new_objects(old) -> None:
    module, names = OLD[old]
    alias = importlib.import_module(old)
    for name in names:
        assert getattr(alias, name) is getattr(module, name), f"{old}.{name}"


def test_spec_checks_keeps_its_names_and_its_older_check_metric() -> None:
    old = importlib.import_module("study.spec_checks")
    assert old.check_baselines is check_baselines and old.check_keys is keys.check_keys
    assert old.search_seeds is seeds.search_seeds and old.SEED_KEYS == ("seed", "noise_seed")
    assert old.check_metric is metric.check_selection_metric  # the older name of the selection check


def test_a_space_pickled_by_the_old_paths_loads() -> None:
    spec = spec_pkg.parse_study({"name": "x", "conditions": {"noise.0.rate": [0.5]},
                                 "parameters": {"train.lr": {"values": [0.01, 0.1]}},
                                 "trial": {"noise": [{"kind": "drop", "rate": 0.5}]}})
    data = pickle.dumps(space.Space(spec, {"noise.0.rate": 0.5}), protocol=2)
    # what an older experiment holds: the classes under their paths of the time
    old = data.replace(b"study.spec.space", b"study.space").replace(b"study.spec.schema", b"study.spec")
    assert b"study.spec.space" not in old and b"cstudy.space\nSpace" in old
    loaded = pickle.loads(old)
    assert type(loaded) is space.Space and type(loaded.parameters["train.lr"]) is spec_pkg.Parameter
    assert loaded.parameters["train.lr"].values == [0.01, 0.1] and loaded.known == {"noise.0.rate": 0.5}


def test_dotted_keys_have_one_owner() -> None:
    import trainables.config as config
    import trainables.tune_adapter as adapter

    assert spec_pkg.set_keys is config.with_values and adapter.with_values is config.with_values
    assert spec_pkg.get_key is config.get_value
