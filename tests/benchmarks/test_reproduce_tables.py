"""The verdict rules of benchmarks/reproduce.py: a claim "A beats B" judged on the paired per-seed
difference of test mIoU at the best-validation epoch, and over several noise settings."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _reproduce_tables import judge, overall, p3  # noqa: E402


def reps(**labels):
    """label=[best_val per seed 1, 2, 3] -> the replicate layout (last result per seed)."""
    return {lab: {s: {"last": {"best_val": v, "last": v - 0.01}, "history": []} for s, v in enumerate(vals, 1)}
            for lab, vals in labels.items()}


@pytest.mark.parametrize("a, b, verdict", [
    ([0.70, 0.72, 0.71], [0.60, 0.61, 0.62], "reproduced"),       # every seed +10, tight
    ([0.70, 0.60, 0.72], [0.60, 0.61, 0.62], "partly"),           # mean +3, one seed below
    ([0.60, 0.61, 0.62], [0.70, 0.72, 0.71], "not reproduced"),   # reversed
    ([0.60, 0.61, 0.62], [0.60, 0.61, 0.62], "not reproduced"),   # identical: no gain is no claim
])
def test_judge_uses_the_paired_interval(a, b, verdict):
    v, text = judge(reps(a=a, b=b), "a", "b")
    assert v == verdict and "(n=3)" in text


def test_judge_pairs_by_seed_and_skips_missing():
    r = reps(a=[0.70, 0.71, 0.72], b=[0.60, 0.61, 0.62])
    del r["b"][3]
    v, text = judge(r, "a", "b")
    assert text.startswith("Δ +10.0") and "(n=2)" in text and v == "reproduced"
    assert judge(r, "a", "missing") == ("not measured", "—")


@pytest.mark.parametrize("verdicts, result", [
    (["reproduced", "reproduced"], "reproduced"),
    (["reproduced", "not reproduced"], "partly"),
    (["partly", "partly", "not measured"], "partly"),
    (["partly", "not reproduced"], "not reproduced"),
    (["not measured"], "not measured"),
])
def test_overall_over_settings(verdicts, result):
    assert overall(verdicts) == result


def test_table2_grid_reads_the_ablation_labels():
    r = reps(ce=[0.5] * 3, nocorr_ms_input=[0.51] * 3, nocorr_ms_consistency=[0.52] * 3,
             corr_single=[0.6] * 3, corr_ms_input=[0.61, 0.62, 0.63], tuned=[0.7, 0.71, 0.72])
    lines, claims = p3(r)
    assert lines[2].startswith("| off | 49.0 ± 0.0 (paper 58.8) | 50.0 ± 0.0 (paper 60.7) | 51.0 ± 0.0 (paper 62.5)")
    assert lines[3].startswith("| on | 59.0 ± 0.0 (paper 65.2) | 61.0 ± 1.0 (paper 69.8) | 70.0 ± 1.0 (paper 72.2)")
    assert [c[3] for c in claims] == ["reproduced"] * 4
