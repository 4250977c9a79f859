"""End-to-end studies on real Ray (2 CPUs), real Optuna (SQLite) and W&B offline: a smoke study
with conditional parameters and ASHA, the report, and a driver SIGKILLed mid-study then resumed."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest

from tests.study.wandb_offline import check_study_runs

from trainables.config import load_trial_config

REPO = Path(__file__).resolve().parents[2]

SPEC = """
name: e2e
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: random, seed: 1, num_samples: 4, max_concurrent: 1}
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
conditions:
  noise.0.rate: [1.0]
parameters:
  train.lr: {values: [0.05, 0.00001]}
  method.name: {values: [ce, gce]}
  method.q: {distribution: uniform, min: 0.3, max: 0.9, when: {method.name: gce}}
trial:
  noise: [{kind: morph, rate: 1.0}]
final: {seeds: [1, 2], top_k: 1}
baselines:
  ce: {method.name: ce, train.lr: 0.05}
logging: {wandb: {mode: offline, images_every: 2}}
"""


def env(tmp_path: Path, ray_address: str | None = None) -> dict:
    """The driver's environment: its own local Ray, or the Ray at ``ray_address`` (tests/conftest.py's
    shared ``ray_cluster``)."""
    e = dict(os.environ)
    e.update(PYTHONPATH=str(REPO), WANDB_MODE="offline", WANDB_DIR=str(tmp_path / "wandb"),
             WANDB_SILENT="true", RAY_DEDUP_LOGS="0")
    e.pop("WANDB_API_KEY", None)
    e.pop("RAY_ADDRESS", None)
    if ray_address:
        e["RAY_ADDRESS"] = ray_address
    return e


def cli(tmp_path: Path, *args: str, timeout: int = 400, ray_address: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "study.run", *args], cwd=REPO, env=env(tmp_path, ray_address),
                          capture_output=True, text=True, timeout=timeout)


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def optuna_trials(exp: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{exp / 'optuna.db'}").trials


def last_results(ray_dir: Path) -> dict[str, dict]:
    out = {}
    for f in ray_dir.glob("*/result.json"):
        rows = []
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # being written
                pass
        if not rows:
            continue
        try:  # polled while the study runs: Ray may be writing params.json right now
            config = json.loads((f.parent / "params.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        out[rows[-1]["trial_id"]] = {"config": config, **rows[-1]}
    return out


def all_results(ray_dir: Path) -> dict[str, list[dict]]:
    """Every reported epoch of every trial under ``ray_dir``, by trial id."""
    out = {}
    for f in ray_dir.glob("*/result.json"):
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        if rows:
            out[rows[-1]["trial_id"]] = rows
    return out


def check_states(trials_rows: list[dict], ot: list[optuna.trial.FrozenTrial]) -> None:
    """Every Ray trial once; its Optuna trial PRUNED iff it stopped before its last epoch."""
    ids = [r["trial_id"] for r in trials_rows]
    assert len(ids) == len(set(ids))
    by_ray = {t.user_attrs.get("ray_trial_id"): t for t in ot}
    assert not [t for t in ot if t.state == optuna.trial.TrialState.RUNNING]
    for r in trials_rows:
        t = by_ray[r["trial_id"]]
        stopped_early = int(r["epochs"]) < int(r["epochs_total"])
        assert t.state.name == ("PRUNED" if stopped_early else "COMPLETE"), (r, t.state)
        assert r["optuna_state"] == t.state.name


def test_smoke_study_end_to_end(tmp_path, ray_cluster):
    space = tmp_path / "e2e.yaml"
    space.write_text(textwrap.dedent(SPEC))
    storage = tmp_path / "runs"
    t0 = time.time()
    res = cli(tmp_path, str(space), "--smoke", "--storage", str(storage), "--num-samples", "4",
              "--set", "search.max_concurrent=1", "--quiet", ray_address=ray_cluster)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    print(f"smoke study: {time.time() - t0:.0f} s")
    exp = storage / "e2e-smoke"
    report = exp / "report"
    for name in ("report.md", "trials.csv", "final.csv", "table.csv", "importances.csv", "best_rate-1.0.yaml"):
        assert (report / name).is_file(), name
    assert list((report / "figures").glob("train_iou_*.png")) and list((report / "figures").glob("metric_per_trial_*.png"))
    load_trial_config(report / "best_rate-1.0.yaml")  # runnable by python -m trainables.run

    # search: each trial once, Optuna states from the storage, ASHA stops recorded as PRUNED
    rows = read_csv(report / "trials.csv")
    assert len(rows) == 4
    ot = optuna_trials(exp, "e2e-smoke/rate-1.0")
    assert len(ot) == 4
    check_states(rows, ot)
    assert any(t.state.name == "PRUNED" for t in ot), [t.state for t in ot]
    for r in rows:  # conditional parameter: sampled only for gce
        assert (r["method.q"] != "") == (r["method.name"] == "gce"), r
    for t in ot:
        assert ("method.q" in t.params) == (t.params["method.name"] == "gce")

    # Optuna holds every epoch's value, the last one and the one ASHA stopped at included
    for tid, t in ((t.user_attrs["ray_trial_id"], t) for t in ot):
        history = all_results(exp / "rate-1.0")[tid]
        assert t.intermediate_values == {r["epoch"]: r["best_val_miou"] for r in history}, (t.state, history)
    assert {t.state.name for t in ot} >= {"PRUNED", "COMPLETE"}

    # replication: the tuned configuration and the baseline with the same fresh seeds
    finals = last_results(exp / "rate-1.0-final")
    by = {(f["config"]["replica"]["label"], f["config"]["replica"]["seed"]): f for f in finals.values()}
    assert sorted(by) == [("ce", 1), ("ce", 2), ("tuned", 1), ("tuned", 2)]
    search_seeds = {r["config"]["trial"].get("seed", 0) for r in last_results(exp / "rate-1.0").values()}
    assert search_seeds == {0} and not search_seeds & {f["config"]["replica"]["seed"] for f in finals.values()}
    table = {r["config"]: r for r in read_csv(report / "table.csv")}
    for label in ("tuned", "ce"):
        for key in ("best_val", "max_test", "last"):
            vals = [by[label, s][key] for s in (1, 2)]
            assert int(table[label][f"{key} n"]) == 2
            assert math.isclose(float(table[label][f"{key} mean"]), statistics.fmean(vals), rel_tol=1e-9)
            assert math.isclose(float(table[label][f"{key} std"]), statistics.stdev(vals), rel_tol=1e-9, abs_tol=1e-12)
    comp = {r["metric"]: r for r in read_csv(report / "comparisons.csv")}
    diffs = [by["tuned", s]["best_val"] - by["ce", s]["best_val"] for s in (1, 2)]
    assert math.isclose(float(comp["best_val"]["mean_diff"]), statistics.fmean(diffs), rel_tol=1e-9, abs_tol=1e-12)
    assert comp["best_val"]["pairs"] == "2" and comp["best_val"]["baseline"] == "ce"
    md = (report / "report.md").read_text()
    assert md.index("## Verdict") < md.index("## Search")
    assert "**Verdict, rate-1.0:**" in md and f"{100 * statistics.fmean(diffs):+.2f}" in md
    vals = [by["tuned", s]["best_val"] for s in (1, 2)]
    assert f"{100 * statistics.fmean(vals):.2f} ± {100 * statistics.stdev(vals):.2f}" in md
    assert list((report / "figures").glob("versus_rate-1.0.png")) and list((report / "figures").glob("curves_rate-1.0.png"))

    # W&B offline: one run per trial (search + replicates) named, configured and tagged as a W&B
    # user expects (tests/study/wandb_offline.py), with readable image panels
    states = {f"rate-1.0/t{t.number}": t.state.name.lower() for t in ot}
    states.update({f"rate-1.0/final-{label}-s{seed}": "complete" for label, seed in by})
    runs = check_study_runs(exp, "e2e-smoke", "rate-1.0", {t.number: t.params for t in ot},
                            {f"final-{label}-s{seed}": {"label": label, "seed": seed} for label, seed in by}, states)
    for t in ot:
        assert runs[f"rate-1.0/t{t.number}"]["id"] == t.user_attrs["ray_trial_id"]
    panels = [r["panels"] for run in runs.values() for r in run["history"] if "panels" in r]
    assert panels and all(p["height"] >= 2 * 256 and p["width"] >= 5 * 256 for p in panels), panels[:1]

    # the terminal: the study's own lines, one per finished trial; none of Ray's or W&B's chatter
    lines = res.stdout.splitlines()
    ended = [ln for ln in lines if re.match(r"\[rate-1\.0\] (t\d+|final-\S+-s\d) +(complete|pruned at epoch \d/3) ", ln)]
    assert len(ended) == 8 and len(lines) <= 20, res.stdout
    for t in ot:
        (line,) = [ln for ln in ended if ln.startswith(f"[rate-1.0] t{t.number} ")]
        assert (" pruned at epoch " in line) == (t.state.name == "PRUNED") and f"lr={t.params['train.lr']:.4g}" in line
    for noise in ("wandb:", "Checkpoint successfully created", "performance bottleneck", "DeprecationWarning",
                  "FutureWarning", "core_worker", "Traceback", "A new study created", "== Status =="):
        assert noise not in res.stdout + res.stderr, (noise, res.stdout + res.stderr)

    # never silently overwritten; the report CLI reproduces the report
    again = cli(tmp_path, str(space), "--smoke", "--storage", str(storage), ray_address=ray_cluster)
    assert again.returncode == 2 and "already exists" in again.stderr
    rep = subprocess.run([sys.executable, "-m", "study.report", str(exp)], cwd=REPO, env=env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr


def test_driver_killed_then_resumed(tmp_path):
    space = tmp_path / "kill.yaml"
    space.write_text(textwrap.dedent(SPEC).replace("name: e2e", "name: kill")
                     .replace("mode: offline, images_every: 2", "mode: disabled"))
    storage = tmp_path / "runs"
    epochs = 10
    args = [str(space), "--smoke", "--storage", str(storage), "--num-samples", "4",
            "--set", "search.max_concurrent=2", "--set", f"trial.train.epochs={epochs}",
            "--set", "scheduler.type=none", "--quiet"]
    exp = storage / "kill-smoke"
    proc = subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=REPO,
                            env={**env(tmp_path), "TUNE_GLOBAL_CHECKPOINT_S": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # kill the driver once a trial has finished and another is half-way
        deadline = time.time() + 300
        while time.time() < deadline:
            epochs_now = [r.get("epoch", 0) for r in last_results(exp / "rate-1.0").values()]
            if epochs_now.count(epochs) >= 1 and any(4 <= e <= epochs - 3 for e in epochs_now):
                break
            assert proc.poll() is None, "study ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no progress to interrupt")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert not (exp / "done" / "rate-1.0").exists()
    time.sleep(5)  # Ray's reaper stops the killed driver's cluster

    res = cli(tmp_path, *args, "--resume")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    rows = read_csv(exp / "report" / "trials.csv")
    assert len(rows) == 4 and len({r["trial_id"] for r in rows}) == 4
    ot = optuna_trials(exp, "kill-smoke/rate-1.0")
    check_states(rows, ot)
    ray_ids = {r["trial_id"] for r in rows}
    extra = [t for t in ot if t.user_attrs.get("ray_trial_id") not in ray_ids]
    assert all(t.state.name == "FAIL" for t in extra)  # asked but lost with the driver: failed
    assert [t.number for t in ot] == list(range(len(ot)))
    assert len(read_csv(exp / "report" / "final.csv")) == 4  # tuned and ce, seeds 1 and 2
    # the half-way trial continued from its checkpoint instead of starting over
    restored = []
    for f in (exp / "rate-1.0").glob("*/result.json"):
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        if any(r["iterations_since_restore"] < r["training_iteration"] for r in rows):
            restored.append(rows)
    assert restored, "no trial was resumed from a checkpoint"
    for rows in restored:
        assert {r["epoch"] for r in rows} == set(range(1, epochs + 1))
    # finished: a second resume skips the condition
    res = cli(tmp_path, *args, "--resume")
    assert res.returncode == 0 and "already finished, skipped" in res.stdout
