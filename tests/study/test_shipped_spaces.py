"""Every shipped study (search_spaces/**.yaml) passes the checks a start runs on its spec (keys, every
combination of its conditions and parameters against the trial schema, baselines, metric, seeds):
a shipped file that its own checks refuse is a defect a user meets first."""
from __future__ import annotations

from pathlib import Path

import pytest

from study.run import resolve_spec
from study.validate import validate_study

REPO = Path(__file__).resolve().parents[2]
SPACES = sorted((REPO / "search_spaces").rglob("*.yaml"))


def test_there_are_shipped_spaces() -> None:
    assert len(SPACES) >= 10 and (REPO / "search_spaces" / "adele.yaml") in SPACES


@pytest.mark.parametrize("path", SPACES, ids=[str(p.relative_to(REPO / "search_spaces")) for p in SPACES])
def test_a_shipped_space_passes_its_checks(path, tmp_path) -> None:
    spec = resolve_spec(str(path), smoke=False, sets=[], storage=str(tmp_path), num_samples=None)
    validate_study(spec)
    # every condition's trial parses as the tuner and --dry-run parse it (with the constants that
    # apply to it): compare_camvid's ADELE conditions once passed the checks and failed here
    for cond in spec.typed_conditions():
        assert cond.config.train.epochs >= 1
