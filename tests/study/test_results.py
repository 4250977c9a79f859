"""study.results: the one reader of trial folders and the rules the report, the replication grid,
the export and the progress lines share (full budget, best trials, replica labels)."""
from __future__ import annotations

import json

import pytest

from study.results import (TrialRecord, best_trials, configured_epochs, is_full_budget, read_results,
                           read_trial, read_trials, replica_label, replica_of)


def trial(folder, tid, rows, config=None, torn=""):
    d = folder / f"trial_{tid}"
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps(config if config is not None else {"train.lr": 0.01}))
    (d / "result.json").write_text("".join(json.dumps({"trial_id": tid, **r}) + "\n" for r in rows) + torn)
    return d


def rec(tid, value, epoch=4, total=4, failure=None, **extra):
    last = {"epoch": epoch, "epochs_total": total, "score": value, **extra}
    if total is None:
        del last["epochs_total"]
    return TrialRecord(trial_id=tid, config={"train.lr": 0.1}, last=last, failure=failure)


def test_full_pruned_diverged():
    assert is_full_budget({"epoch": 4, "epochs_total": 4})
    assert is_full_budget({"epoch": 5, "epochs_total": 4})
    assert not is_full_budget({"epoch": 2, "epochs_total": 4})  # pruned by ASHA
    assert not is_full_budget({"epoch": 4, "epochs_total": 4, "diverged": True})  # never full
    assert not is_full_budget({"epoch": 4, "epochs_total": 4, "diverged": True}, budget=4)
    assert not is_full_budget({}) and not is_full_budget(None)


def test_missing_epochs_total_needs_the_configured_budget():
    """Without ``epochs_total`` a result is not full budget, unless the configured budget is known
    and reached (the single-trial CLI's converted metrics)."""
    assert not is_full_budget({"epoch": 30})
    assert not is_full_budget({"epoch": 30, "epochs_total": 0})
    assert is_full_budget({"epoch": 3}, budget=3)
    assert not is_full_budget({"epoch": 2}, budget=3)
    assert is_full_budget({"epoch": 2, "epochs_total": 2}, budget=5)  # the reported total wins
    assert configured_epochs({"trial": {"train": {"epochs": 6}}}) == 6
    assert configured_epochs({"trial": {"train": {"epochs": 6}}, "train.epochs": 3}) == 3
    assert configured_epochs({"trial": {}, "replica": {"overrides": {"train.epochs": 2}}}) == 2
    assert configured_epochs({"trial": {}}) == 30  # the engine's default
    assert configured_epochs({"train.lr": 0.1}) is None  # not a trial config: unknown


def test_read_results_skips_a_torn_line(tmp_path):
    d = trial(tmp_path, "a", [{"epoch": 1, "score": 0.1}, {"epoch": 2, "score": 0.2}], torn='{"epoch": 3, "sco')
    rows = read_results(d / "result.json")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert read_results(tmp_path / "missing.json") == []


def test_read_trial_dedups_epochs_and_reads_the_failure(tmp_path):
    rows = [{"epoch": 1, "score": 0.1}, {"epoch": 2, "score": 0.2}, {"epoch": 2, "score": 0.25}]  # resumed
    d = trial(tmp_path, "a", [{**r, "epochs_total": 2} for r in rows], torn="{")
    t = read_trial(d)
    assert t.trial_id == "a" and t.dir == d and t.params == {"train.lr": 0.01}
    assert [h["score"] for h in t.history] == [0.1, 0.25] and t.last["score"] == 0.25
    assert t.full_budget and t.failure is None
    trial(tmp_path, "b", [{"epoch": 1, "epochs_total": 2, "diverged": True, "diverged_epoch": 1,
                           "diverged_reason": "non-finite train loss (nan)"}])
    (tmp_path / "trial_c").mkdir()  # no params.json: not a trial
    by_id = {t.trial_id: t for t in read_trials(tmp_path)}
    assert sorted(by_id) == ["a", "b"]
    assert by_id["b"].failure == "diverged at epoch 1: non-finite train loss (nan)" and not by_id["b"].full_budget


def test_best_trials_rule_and_ties():
    records = [rec("t3", 0.8), rec("t1", 0.8), rec("t2", 0.5),
               rec("p", 0.99, epoch=2),  # pruned
               rec("d", 0.99, diverged=True),  # diverged
               rec("f", 0.99, failure="failed: ValueError"),  # failed
               rec("n", 0.99, total=None),  # no epochs_total, no known budget
               rec("nan", float("nan")), rec("none", None), rec("bool", True)]
    assert [r.trial_id for r in best_trials(records, "score", "max", None)] == ["t1", "t3", "t2"]
    assert [r.trial_id for r in best_trials(records, "score", "maximize", 2)] == ["t1", "t3"]
    assert [r.trial_id for r in best_trials(records, "score", "min", None)] == ["t2", "t1", "t3"]
    assert [r.trial_id for r in best_trials(records, "score", "minimize", 1)] == ["t2"]
    assert best_trials([], "score", "max") == []
    with pytest.raises(ValueError):
        best_trials(records, "score", "up")


def test_replica_labels():
    assert [replica_label(k) for k in (1, 2, 3)] == ["tuned", "tuned#2", "tuned#3"]
    assert replica_of({"replica": {"label": "ce", "seed": 1}})["label"] == "ce"
    assert replica_of({"replica": {"rank": 2, "seed": 1}}) == {"rank": 2, "seed": 1, "label": "tuned#2"}
    assert replica_of({})["label"] == "tuned"


def test_the_folder_layout_and_a_trial_written_without_ray(tmp_path) -> None:
    """benchmarks/reproduce.py's Ray-free executor writes trials through study.results, and they read
    back as Ray's do; a condition's done marker keeps its trials slim."""
    from study.results import (done_marker, final_dir, mark_done, read_trials, search_dir, write_trial)

    exp = tmp_path / "exp"
    assert search_dir(exp, "rate-1.0") == exp / "rate-1.0" and final_dir(exp, "rate-1.0") == exp / "rate-1.0-final"
    rows = [{"epoch": 1, "epochs_total": 2, "best_val_miou": 0.4}, {"epoch": 2, "epochs_total": 2, "best_val_miou": 0.5}]
    write_trial(final_dir(exp, "rate-1.0") / "trial_ce_s1", {"trial": {}, "replica": {"label": "ce", "seed": 1}}, rows)
    write_trial(final_dir(exp, "rate-1.0") / "trial_ce_s2", {"trial": {}, "replica": {"label": "ce", "seed": 2}},
                rows[:1], error="trainables.run exited with an error")
    ok, bad = read_trials(final_dir(exp, "rate-1.0"))
    assert ok.trial_id == "trial_ce_s1" and ok.full_budget and ok.failure is None and ok.replica["label"] == "ce"
    assert [r["epoch"] for r in ok.history] == [1, 2]
    assert bad.failure == "failed: trainables.run exited with an error" and not bad.full_budget
    marker = mark_done(exp, {"noise.0.rate": 1.0}, [], [ok, bad], "rate-1.0", local=True)
    assert marker == done_marker(exp, "rate-1.0") == exp / "done" / "rate-1.0"
    data = json.loads(marker.read_text())
    assert data["local"] is True and data["condition"] == {"noise.0.rate": 1.0} and data["search"] == []
    assert [t["trial_id"] for t in data["final"]] == ["trial_ce_s1", "trial_ce_s2"]
    assert data["final"][1]["failure"].startswith("failed: ") and data["final"][0]["metrics"]["epoch"] == 2
