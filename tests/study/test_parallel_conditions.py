"""Conditions side by side on real Ray (2 CPUs): with max_concurrent 1, two conditions fill the
two CPU slots at once instead of running one after the other; the Optuna studies, done markers,
report and --resume are those of a sequential study."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna

from study.parallel import conditions_at_once
from study.spec import parse_study
from tests.study.test_study_run import REPO, env, read_csv

SPEC = """
name: side
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: random, seed: 1, num_samples: 2, max_concurrent: 1}
scheduler: {type: none}
resources: {cpu: 1, gpu: 0}
conditions:
  noise.0.rate: [0.5, 1.0]
parameters:
  train.lr: {values: [0.05, 0.01]}
trial:
  dataset: {name: synthetic, size: [32, 32], num_train: 16, num_val: 8, num_test: 8}
  noise: [{kind: morph, rate: 1.0}]
  model: {arch: unet, encoder: resnet18, kwargs: {encoder_depth: 3, decoder_channels: [32, 16, 8]}}
  train: {epochs: 3, batch_size: 8, threads: 1}
final: {seeds: [1], top_k: 1}
logging: {wandb: {mode: disabled}}
"""


def _spec(**search) -> object:
    import yaml

    raw = yaml.safe_load(textwrap.dedent(SPEC))
    raw["search"].update(search)
    return parse_study(raw)


def test_conditions_at_once_fills_the_slots_max_concurrent_leaves() -> None:
    spec = _spec()
    assert conditions_at_once(spec, 2, {"CPU": 2.0}, per_condition=1) == 2
    assert conditions_at_once(spec, 5, {"CPU": 8.0}, per_condition=2) == 4  # 8 slots / 2 per condition
    assert conditions_at_once(spec, 3, {"CPU": 8.0}, per_condition=2) == 3  # never more than pending
    assert conditions_at_once(spec, 2, {"CPU": 2.0}, per_condition=2) == 1  # one condition fills the node
    assert conditions_at_once(spec, 1, {"CPU": 64.0}, per_condition=1) == 1
    gpu = parse_study({**_spec().to_dict(), "resources": {"cpu": 1, "gpu": 0.5}})
    assert conditions_at_once(gpu, 8, {"CPU": 64.0, "GPU": 8.0}, per_condition=2) == 8  # 16 GPU slots


def _intervals(ray_dir: Path) -> list[tuple[float, float]]:
    """(start, end) wall times of every trial's epochs."""
    out = []
    for f in ray_dir.glob("*/result.json"):
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        out.append((min(r["timestamp"] - r["time_this_iter_s"] for r in rows), max(r["timestamp"] for r in rows)))
    return out


def test_two_conditions_run_side_by_side_and_resume_as_before(tmp_path: Path, ray_cluster: str) -> None:
    space = tmp_path / "side.yaml"
    space.write_text(textwrap.dedent(SPEC))
    storage = tmp_path / "runs"
    args = [sys.executable, "-m", "study.run", str(space), "--storage", str(storage), "--quiet"]
    res = subprocess.run(args, cwd=REPO, env=env(tmp_path, ray_cluster), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    assert "2 running side by side" in res.stdout
    exp = storage / "side"
    for slug in ("rate-0.5", "rate-1.0"):
        assert (exp / "done" / slug).is_file()
        ot = optuna.load_study(study_name=f"side/{slug}", storage=f"sqlite:///{exp / 'optuna.db'}").trials
        assert len(ot) == 2 and all(t.state.name == "COMPLETE" for t in ot)
        assert len(_intervals(exp / f"{slug}-final")) == 1
    # the two searches overlapped in time (one after the other they could not)
    a, b = _intervals(exp / "rate-0.5"), _intervals(exp / "rate-1.0")
    assert min(e for _, e in a) > min(s for s, _ in b) and min(e for _, e in b) > min(s for s, _ in a)
    rows = read_csv(exp / "report" / "trials.csv")
    assert sorted(r["condition"] for r in rows) == ["rate-0.5", "rate-0.5", "rate-1.0", "rate-1.0"]
    assert len({r["trial_id"] for r in rows}) == 4
    # --resume of the finished study: both skipped, nothing rerun
    again = subprocess.run([*args, "--resume"], cwd=REPO, env=env(tmp_path, ray_cluster), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already finished, skipped") == 2
    assert read_csv(exp / "report" / "trials.csv") == rows
