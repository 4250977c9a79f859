"""Dotted keys (``noise.0.rate``) are set and read by trainables.config only: ``with_values`` sets
values as they are on a copy (a renamed component drops the parameters the new one does not accept),
``get_value`` reads them back."""
from __future__ import annotations

import pytest

from trainables.config import get_value, parse_trial, with_values
from trainables.errors import ConfigError


def test_with_values_sets_values_as_they_are_on_a_copy() -> None:
    trial = {"noise": [{"kind": "drop", "rate": 0.5}], "train": {"lr": 0.01}}
    lr = [1e-05]
    out = with_values(trial, {"noise.0.rate": 1.0, "train.lr": 1e-05, "model.kwargs": {"x": lr}})
    assert out["noise"][0]["rate"] == 1.0 and out["train"]["lr"] == 1e-05 and isinstance(out["train"]["lr"], float)
    assert trial == {"noise": [{"kind": "drop", "rate": 0.5}], "train": {"lr": 0.01}}  # the input is kept
    assert out["model"]["kwargs"]["x"] == lr and out["model"]["kwargs"]["x"] is not lr  # values copied


def test_renaming_a_component_drops_what_the_new_one_does_not_accept() -> None:
    trial = parse_trial({"method": {"name": "adele", "r": 0.8}}).to_dict()
    out = with_values(trial, {"method.name": "ce"})
    assert out["method"] == {"name": "ce"} and parse_trial(out).method.name == "ce"


def test_a_list_index_past_the_end_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^noise\.1\.rate: noise is a list of 1; use an index below 1$"):
        with_values({"noise": [{"kind": "drop"}]}, {"noise.1.rate": 0.5})


def test_get_value_reads_dotted_keys_and_lists() -> None:
    trial = {"noise": [{"kind": "drop", "rate": 0.5}], "train": {"lr": 0.01}}
    assert get_value(trial, "noise.0.rate") == 0.5 and get_value(trial, "train.lr") == 0.01
    assert get_value(trial, "noise.1.rate", "none") == "none" and get_value(trial, "method.name") is None
