"""The trial config: parsing, validation messages, --set overrides, component switching, round trip."""
import pytest

from trainables.config import apply_overrides, dump_trial_config, load_trial_config, parse_trial
from trainables.errors import ConfigError


def test_defaults_and_round_trip(tmp_path) -> None:
    cfg = parse_trial({"method": {"name": "adele", "r": 0.8}, "noise": {"kind": "drop", "rate": 0.3}})
    assert cfg.method.params.r == 0.8 and cfg.noise[0].params.rate == 0.3  # a single mapping is a list of one
    path = tmp_path / "c.yaml"
    path.write_text(dump_trial_config(cfg))
    assert load_trial_config(path).to_dict() == cfg.to_dict()


def test_unknown_keys_suggest_the_close_one_and_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"^train.lr_rate: unknown key \(did you mean 'lr'\?\); allowed: epochs"):
        parse_trial({"train": {"lr_rate": 0.1}})
    with pytest.raises(ConfigError, match=r"^method.tau: unknown key .*allowed: name, r, class_adaptive"):
        parse_trial({"method": {"name": "adele", "tau": 0.5}})
    with pytest.raises(ConfigError, match=r"^sede: unknown key \(did you mean 'seed'\?\)"):
        parse_trial({"sede": 1})


def test_types_and_ranges_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^train.epochs: got 'ten'; expected an integer"):
        parse_trial({"train": {"epochs": "ten"}})
    with pytest.raises(ConfigError, match=r"^train.momentum: got 1.0; allowed range \[0, 1\)"):
        parse_trial({"train": {"momentum": 1.0}})
    with pytest.raises(ConfigError, match=r"^dataset.size: got 3 values; expected exactly 2"):
        parse_trial({"dataset": {"size": [1, 2, 3]}})


def test_overrides_parse_yaml_values_and_index_lists() -> None:
    base = {"noise": [{"kind": "morph", "rate": 1.0}], "train": {"epochs": 3}}
    out = apply_overrides(base, ["noise.0.rate=0.25", "train.amp=true", "model.kwargs={encoder_depth: 3}"])
    assert out["noise"][0]["rate"] == 0.25 and out["train"]["amp"] is True
    assert out["model"]["kwargs"] == {"encoder_depth": 3}
    assert base["noise"][0]["rate"] == 1.0  # the input is not modified
    with pytest.raises(ConfigError, match=r"--set noise.2.rate: noise is a list of 1"):
        apply_overrides(base, ["noise.2.rate=0.1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(base, ["train.epochs"])


def test_switching_a_component_drops_parameters_the_new_one_does_not_take() -> None:
    base = {"method": {"name": "adele", "r": 0.8, "scales": [1.0]}, "noise": [{"kind": "morph", "target_area": 500, "rate": 0.5}],
            "dataset": {"name": "synthetic", "num_train": 10, "size": [32, 32]}}
    cfg = parse_trial(apply_overrides(base, ["method.name=lncis", "method.gamma=3"]))
    assert cfg.method.name == "lncis" and cfg.method.params.gamma == 3
    cfg = parse_trial(apply_overrides(base, ["noise.0.kind=drop"]))
    assert cfg.noise[0].kind == "drop" and cfg.noise[0].params.rate == 0.5  # shared key kept
    out = apply_overrides(base, ["dataset.name=camvid"])
    assert out["dataset"] == {"name": "camvid", "size": [32, 32]}  # common keys kept
    # setting the same name keeps everything; an unknown name keeps everything for the error to name
    assert apply_overrides(base, ["method.name=adele"])["method"]["r"] == 0.8
    with pytest.raises(ConfigError, match="method.name: unknown method 'adel'"):
        parse_trial(apply_overrides(base, ["method.name=adel"]))
