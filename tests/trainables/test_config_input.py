"""Hostile config input: every bad file or value is one ConfigError naming the file/key and line."""
from __future__ import annotations

import pytest

from trainables.config import apply_overrides, load_trial_config, parse_trial, read_yaml
from trainables.errors import ConfigError


def test_binary_file_is_named(tmp_path) -> None:
    path = tmp_path / "model.yaml"
    path.write_bytes(bytes(range(256)) * 4)  # a real binary blob: NUL bytes and invalid UTF-8
    with pytest.raises(ConfigError, match=rf"^{path}: not a text file"):
        read_yaml(path)


def test_non_utf8_text_names_file_line_and_byte(tmp_path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\ntrial:\n  method: {name: caf\u00e9}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^{path}: line 3: not UTF-8 text \(byte 0xe9\)"):
        read_yaml(path)


def test_utf8_with_bom_is_fine(tmp_path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffseed: 4\n".encode("utf-8"))
    assert read_yaml(path) == {"seed": 4}


def test_a_folder_is_not_a_config(tmp_path) -> None:
    with pytest.raises(ConfigError, match=rf"^{tmp_path}: is a folder; give a YAML file$"):
        read_yaml(tmp_path)
    with pytest.raises(ConfigError, match="no such config file"):
        read_yaml(tmp_path / "missing.yaml")


def test_control_character_names_the_line(tmp_path) -> None:
    path = tmp_path / "ctl.yaml"
    path.write_text("seed: 1\nnoise_seed: \x07\n")
    with pytest.raises(ConfigError, match=rf"^{path}: line 2 invalid YAML"):
        read_yaml(path)


def test_duplicate_keys_are_refused_with_both_lines(tmp_path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  epochs: 3\nseed: 1\ntrain:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: line 4: duplicate key 'train' \(first given at line 1\)"):
        read_yaml(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("search:\n  seed: 1\n  num_samples: 2\n  seed: 3\n")
    with pytest.raises(ConfigError, match=r"line 4: duplicate key 'seed' \(first given at line 2\)"):
        read_yaml(nested)
    # YAML merge keys may still be overridden: that is what they are for
    merged = tmp_path / "merge.yaml"
    merged.write_text("base: &b {lr: 0.1, epochs: 2}\ntrain:\n  <<: *b\n  lr: 0.2\n")
    assert read_yaml(merged)["train"] == {"lr": 0.2, "epochs": 2}


def test_duplicate_key_in_a_set_value_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^--set model.kwargs: duplicate key 'encoder_depth'"):
        apply_overrides({}, ["model.kwargs={encoder_depth: 3, encoder_depth: 4}"])


@pytest.mark.parametrize("spelling, value", [("1e-4", 1e-4), ("5E-3", 5e-3), ("+1.e-2", 1e-2), ("3", 3.0),
                                             (".5", 0.5), ("2.5e+1", 25.0)])
def test_usual_float_spellings_are_accepted_for_float_fields(spelling, value) -> None:
    cfg = parse_trial(apply_overrides({}, [f"train.lr={spelling}"]))
    assert cfg.train.lr == value and isinstance(cfg.train.lr, float)


def test_float_spelling_from_a_yaml_file(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("train: {lr: 1e-4, weight_decay: 5e-4}\n")
    cfg = load_trial_config(path)
    assert (cfg.train.lr, cfg.train.weight_decay) == (1e-4, 5e-4)


def test_strings_that_are_not_numbers_stay_refused() -> None:
    for bad in ("fast", "1e", "e5", "1.0.0", "nan", "inf"):
        with pytest.raises(ConfigError, match=r"^train.lr: got '"):
            parse_trial(apply_overrides({}, [f"train.lr={bad!s}"]) if bad not in ("nan", "inf")
                        else {"train": {"lr": bad}})
    with pytest.raises(ConfigError, match=r"^train.lr: got nan; allowed range"):
        parse_trial({"train": {"lr": float("nan")}})
    with pytest.raises(ConfigError, match=r"^train.epochs: got '1e3'; expected an integer"):
        parse_trial({"train": {"epochs": "1e3"}})  # only float fields take float spellings


@pytest.mark.parametrize("override, hint", [
    ("method.name=adel", "(did you mean 'adele'?)"),
    ("method.name=lnics", "(did you mean 'lncis'?)"),
    ("dataset.name=camvd", "(did you mean 'camvid'?)"),
    ("noise.0.kind=morphh", "(did you mean 'morph'?)"),
])
def test_unknown_names_suggest_the_close_one(override, hint) -> None:
    base = {"noise": [{"kind": "morph"}]}
    with pytest.raises(ConfigError) as info:
        parse_trial(apply_overrides(base, [override]))
    msg = str(info.value)
    assert hint in msg and "; allowed: " in msg and len(msg.splitlines()) == 1


def test_renaming_a_component_under_a_study_trial_block_drops_its_parameters() -> None:
    study = {"name": "s", "trial": {"dataset": {"name": "synthetic", "num_train": 8, "size": [32, 32]},
                                    "method": {"name": "adele", "r": 0.8}}}
    out = apply_overrides(study, ["trial.dataset.name=camvid", "trial.method.name=gce"])
    assert out["trial"]["dataset"] == {"name": "camvid", "size": [32, 32]}
    assert out["trial"]["method"] == {"name": "gce"}
