"""The report from files alone: failed and diverged trials are named with their reason, never ranked
or averaged; the verdict pairs replicates by seed."""
from __future__ import annotations

import json
import textwrap

import yaml

from study.report import write_report
from study.spec import parse_study

SPEC = """
name: rep
conditions: {noise.0.rate: [1.0]}
parameters:
  train.lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}
trial: {noise: [{kind: morph, rate: 1.0}], train: {epochs: 2}}
final: {seeds: [1, 2, 3]}
baselines: {ce: {method.name: ce}}
logging: {wandb: {mode: disabled}}
"""


def trial(folder, tid, config, results, error=None):
    d = folder / f"trial_{tid}"
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps(config))
    (d / "result.json").write_text("".join(json.dumps({"trial_id": tid, "epochs_total": 2, **r}) + "\n" for r in results))
    if error:
        (d / "error.txt").write_text(f"Failure # 1 (occurred at 2026-11-30)\n{error}\n")


def epochs(val, test, **extra):
    return [{"epoch": e + 1, "best_val_miou": v, "best_val": t, "max_test": t, "last": t, **extra}
            for e, (v, t) in enumerate(zip(val, test))]


def test_failed_and_diverged_trials_are_reported_not_ranked(tmp_path):
    exp = tmp_path / "rep"
    exp.mkdir()
    (exp / "study.yaml").write_text(yaml.safe_dump(parse_study(yaml.safe_load(textwrap.dedent(SPEC))).to_dict()))
    search = exp / "rate-1.0"
    trial(search, "a", {"train.lr": 0.01}, epochs([0.4, 0.5], [0.41, 0.52]))
    trial(search, "b", {"train.lr": 0.09}, epochs([0.6, 0.9], [0.6, 0.9])[:1]
          + [{"epoch": 2, "best_val_miou": 0.9, "diverged": True, "diverged_epoch": 2,
              "diverged_reason": "non-finite train loss (nan)"}])
    trial(search, "c", {"train.lr": 0.05}, epochs([0.7], [0.7]), error="ValueError: bad shape")
    final = exp / "rate-1.0-final"
    tuned = {1: 0.60, 2: 0.70, 3: 0.65}
    ce = {1: 0.55, 2: 0.60, 3: None}
    for seed in (1, 2, 3):
        trial(final, f"t{seed}", {"replica": {"label": "tuned", "seed": seed, "overrides": {"train.lr": 0.01}}},
              epochs([0.5, 0.5], [tuned[seed]] * 2))
        if ce[seed] is None:
            trial(final, f"c{seed}", {"replica": {"label": "ce", "seed": seed, "overrides": {"method.name": "ce"}}},
                  epochs([0.5], [0.3]), error="RuntimeError: worker died")
        else:
            trial(final, f"c{seed}", {"replica": {"label": "ce", "seed": seed, "overrides": {"method.name": "ce"}}},
                  epochs([0.5, 0.5], [ce[seed]] * 2))
    md = write_report(exp).read_text()
    # the diverged trial had the highest metric, yet the best is the one healthy full trial
    assert (exp / "report" / "best_rate-1.0.yaml").is_file()
    search_line = next(line for line in md.splitlines() if line.startswith("| rate-1.0 | 3 |"))
    assert "FAIL (diverged) 1" in search_line and "| 0.5000 | train.lr=0.01 |" in search_line
    assert "diverged at epoch 2: non-finite train loss (nan)" in search_line
    assert "failed: ValueError: bad shape" in search_line
    assert "| failed | rate-1.0 ce seed 3: failed: RuntimeError: worker died |" in md
    import pandas as pd
    trials = pd.read_parquet(exp / "report" / "trials.parquet")
    assert sorted(trials["trial_id"]) == ["a", "b", "c"] and trials["train.lr"].dtype == float
    assert trials.set_index("trial_id").loc["b", "failure"].startswith("diverged at epoch 2")
    assert len(pd.read_parquet(exp / "report" / "final.parquet")) == 6
    # the verdict pairs seeds 1 and 2 only (ce seed 3 failed)
    assert "| ce (tuned) − ce | 2 | +7.50 " in md  # the trial's method is ce: "ce (tuned)"
