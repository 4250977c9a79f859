"""benchmarks/search_efficiency.py end to end at a tiny size: real studies (Ray, Optuna, ASHA), the
table's shape, best-so-far never decreasing, and equal epochs across strategies."""
from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import search_efficiency as se  # noqa: E402


def test_search_efficiency_end_to_end(tmp_path, ray_cluster, monkeypatch):
    import ray

    out = tmp_path / "se"
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster)  # its studies join the test run's Ray (tests/conftest.py)
    try:
        assert se.main(["--random-trials", "2", "--epochs", "2", "--grace", "1", "--images", "8", "--size", "16",
                        "--seeds", "0", "--out", str(out)]) == 0
    finally:  # no Ray connection left in the test process for the tests after this one
        ray.shutdown()
    with open(out.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    curves = defaultdict(list)
    for r in rows:
        curves[(r["strategy"], int(r["seed"]))].append((int(r["cumulative_epochs"]), float(r["best_val_miou"])))
    assert set(curves) == {(s, 0) for s in se.STRATEGIES}
    budget = 2 * 2
    for pts in curves.values():
        assert [e for e, _ in pts] == list(range(1, len(pts) + 1))  # one row per epoch run
        best = [b for _, b in pts]
        assert best == sorted(best) and 0 <= best[-1] <= 1  # best so far never decreases
        assert budget - 2 < len(pts) <= budget  # equal epochs, within one trial's budget
    md = out.with_suffix(".md").read_text()
    assert md.count("\n| ") == 1 + 3 and "budget B = 4 epochs" in md
    assert out.with_suffix(".png").stat().st_size > 0


def test_curve_is_cut_at_the_budget_and_reach_counts_epochs():
    rows = [{"val_miou": v} for v in [0.1, 0.3, 0.2, float("nan"), 0.5, 0.6]]
    pts = se.curve(rows, budget=5)
    assert pts == [(1, 0.1), (2, 0.3), (3, 0.3), (4, 0.3), (5, 0.5)]
    assert se.epochs_to_reach(pts, 0.3) == 2 and se.epochs_to_reach(pts, 0.9) is None
