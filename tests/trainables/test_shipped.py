"""Shipped study spaces and trial examples by name (trainables.shipped), in a checkout: a path that
exists is read as given, a name is the shipped file, and what is neither gets one line naming the
shipped names (or, for a checkout's path used elsewhere, the name to give). The installed wheel's
side: tests/test_wheel.py."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trainables import shipped
from trainables.errors import ConfigError
from trainables.run import main as trial_main

REPO = Path(__file__).resolve().parents[2]


def test_names_are_the_shipped_files():
    assert shipped.folder("study") == REPO / "search_spaces" and shipped.folder("trial") == REPO / "examples"
    assert {"tiny", "synthetic", "camvid"} <= set(shipped.names("trial"))
    assert len(shipped.names("trial")) == len(list((REPO / "examples").rglob("*.yaml")))
    study = shipped.names("study")
    assert {"adele", "compare", "paper/pu_drop30", "paper/adele_levels_camvid"} <= set(study)
    assert len(study) == len(list((REPO / "search_spaces").rglob("*.yaml")))


def test_a_name_is_the_shipped_file_and_a_path_is_read_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shipped.resolve("adele", "study") == str(REPO / "search_spaces" / "adele.yaml")
    assert shipped.resolve("paper/pu_drop30", "study") == str(REPO / "search_spaces" / "paper" / "pu_drop30.yaml")
    assert shipped.resolve("tiny", "trial") == str(REPO / "examples" / "tiny.yaml")
    (tmp_path / "adele").write_text("name: mine\n")  # an existing path wins over the name
    assert shipped.resolve("adele", "study") == "adele"
    assert shipped.resolve("missing.yaml", "study") == "missing.yaml"  # the reader's 'no such config file' follows
    monkeypatch.chdir(REPO)
    assert shipped.resolve("search_spaces/adele.yaml", "study") == "search_spaces/adele.yaml"


def test_what_is_neither_gets_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        shipped.resolve("adel", "study")
    msg = str(err.value)
    assert msg.startswith("adel: no such config file, and no shipped study of that name (did you mean 'adele'?); "
                          "shipped: adele, adele_camvid, compare,")
    paper = REPO / "search_spaces" / "paper"
    assert f"paper/NAME ({len(list(paper.glob('*.yaml')))} in {paper})" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match=r"^search_spaces/paper/pu_drop30.yaml: no such config file; the shipped "
                                          r"study of that name runs with python -m study.run paper/pu_drop30$"):
        shipped.resolve("search_spaces/paper/pu_drop30.yaml", "study")
    with pytest.raises(ConfigError, match=r"^examples/tiny.yaml: .* python -m trainables.run tiny$"):
        shipped.resolve("examples/tiny.yaml", "trial")


def test_trial_cli_runs_a_shipped_example_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no examples/ here
    out = tmp_path / "run"
    assert trial_main(["tiny", "--set", "train.epochs=1", "--out", str(out), "--quiet"]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    tiny = yaml.safe_load((REPO / "examples" / "tiny.yaml").read_text())
    assert cfg["train"]["epochs"] == 1 and cfg["seed"] == tiny["seed"] and cfg["dataset"]["size"] == tiny["dataset"]["size"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
