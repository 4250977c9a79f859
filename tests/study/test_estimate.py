"""study.estimate: the wall time a study will take on this machine, from a short calibration of each
of its configurations (printed before a study starts and by --dry-run)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from study.estimate import halving_epochs, concurrency, epoch_cost, estimate, render
from study.spec import parse_study, set_keys, with_condition

REPO = Path(__file__).resolve().parents[2]

SPACE = """
name: est
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: tpe, seed: 0, num_samples: 4, max_concurrent: 2}
scheduler: {type: asha, grace_period: 2, reduction_factor: 2}
conditions:
  noise.0.rate: [0.5, 1.0]
parameters:
  train.lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}
trial:
  dataset: {name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}
  noise: [{kind: morph, rate: 1.0}]
  model: {kwargs: {encoder_depth: 3, decoder_channels: [16, 8, 4]}}
  method: {name: gce}
  train: {epochs: 6, batch_size: 4, threads: 1}
final: {seeds: [1, 2, 3], top_k: 1}
baselines:
  ce: {method.name: ce}
logging: {wandb: {mode: disabled}}
"""


def test_halving_epochs() -> None:
    # 8 trials, rungs 10 / 20 / 40: 8 x 10, then 4 x 10 more, then 2 x 20 more
    assert halving_epochs(8, 40, 10, 2) == 8 * 10 + 4 * 10 + 2 * 20
    assert halving_epochs(8, 30, 10, 2) == 8 * 10 + 4 * 10 + 2 * 10  # the last rung is cut at the budget
    assert halving_epochs(3, 4, 10, 2) == 3 * 4  # grace beyond the budget: no stopping
    assert halving_epochs(2, 40, 10, 3) == 2 * 10 + 1 * 30  # at least one trial runs to the end


def test_concurrency_is_max_concurrent_within_the_cpus() -> None:
    spec = parse_study(yaml.safe_load(SPACE))
    assert concurrency(spec, cpus=2) == 2 and concurrency(spec, cpus=16) == 2 and concurrency(spec, cpus=1) == 1


def test_every_configuration_is_calibrated_and_priced() -> None:
    spec = parse_study({**yaml.safe_load(SPACE), "conditions": {"noise.0.rate": [0.5]}})
    est = estimate(spec, cpus=2)
    assert [c["slug"] for c in est.conditions] == ["rate-0.5"]
    for c in est.conditions:
        assert set(c["kinds"]) == {"tuned", "ce"}  # the searched trial (gce) and the baseline
        assert 0 < c["kinds"]["tuned"] < float("inf") and 0 < c["kinds"]["ce"] < float("inf")
        assert 0 < c["search_low"] < c["search_high"]  # ASHA may stop trials early
        # replication: 3 seeds x (tuned + ce) x 6 epochs over 2 at a time, plus the trials' setup
        epochs_only = 3 * 6 * (c["kinds"]["tuned"] + c["kinds"]["ce"]) / 2
        assert c["final"] >= epochs_only
    assert est.low < est.high
    lines = render(est)
    assert lines[0].startswith("estimated wall time on this machine: ") and "2 trial(s) at a time" in lines[0]
    assert len(lines) == 2 and "[rate-0.5] search " in lines[1] and "tuned " in lines[1] and "ce " in lines[1]


def test_epoch_cost_counts_the_diagnostics_pass_only_where_it_runs() -> None:
    spec = parse_study(yaml.safe_load(SPACE))
    base = with_condition(spec, {"noise.0.rate": 1.0})
    for diagnostics in ("eval_pass", "train_pass"):
        c = epoch_cost(set_keys(base, {"train.diagnostics": diagnostics}))
        diag = 8 if diagnostics == "eval_pass" else 0  # the training images again, in eval mode
        assert abs(c.seconds - (8 * c.train_s_per_image + (diag + 4 + 4) * c.eval_s_per_image)) < 1e-9
        assert c.train_s_per_image > 0 and c.setup_s > 0


def test_a_dry_run_prints_it(tmp_path) -> None:
    space = tmp_path / "est.yaml"
    space.write_text(textwrap.dedent(SPACE))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_", "NOISYSEG_"))}
    env["PYTHONPATH"] = str(REPO)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "study.run", str(space), "--storage", str(tmp_path / "runs"),
                               *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    res = cli("--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[study] estimated wall time on this machine: " in res.stdout
    assert res.stdout.count("replication ") == 2  # one line per condition
