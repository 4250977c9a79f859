"""Study overhead per trial: what Ray Tune + Optuna + the study's callbacks add to each trial, beyond
the trial's own work.

    .venv/bin/python benchmarks/overhead.py                       # 2 and 8 one-epoch trials
    .venv/bin/python benchmarks/overhead.py --counts 2 8 --wandb offline

For each N in ``--counts`` a fresh ``python -m study.run`` (local Ray, its own storage) runs a search
of N one-epoch trials of a tiny model (synthetic 32x32, 16 training images, depth-1 UNet), one at a
time (``max_concurrent: 1``), random search, no scheduler, no replication. Measured per study: the
driver's wall time, the search phase (first trial start to last trial end, from the trials' results),
the trials' time inside the trainable (the sum of their ``time_total_s``: setup, training, evaluation,
checkpointing) and their own work (the sum of the engine's ``epoch_time_s``: training + evaluation).
Reported:

- per trial, between trials: (search phase - time inside the trainable) / N (scheduling, the
  worker's start or reuse, checkpoint upload, searcher and callbacks);
- per trial, all of it: (search phase - own work) / N (the above + the trial's setup: config, model,
  data hand-over, checkpoint writes);
- marginal per trial: ((wall_b - work_b) - (wall_a - work_a)) / (N_b - N_a) between the smallest and the
  largest N, so the fixed costs (Ray start, the report) cancel.

Goal (issue 20): <= 1 s per trial. Wall time: on a shared machine other load inflates every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SPEC = """
name: overhead
metric: {{name: best_val_miou, goal: maximize}}
search: {{algorithm: random, seed: 0, num_samples: {n}, max_concurrent: 1}}
scheduler: {{type: none}}
resources: {{cpu: 1, gpu: 0}}
parameters:
  train.lr: {{distribution: log_uniform_values, min: 0.001, max: 0.1}}
trial:
  dataset: {{name: synthetic, size: [32, 32], num_train: 16, num_val: 4, num_test: 4}}
  noise: [{{kind: morph, rate: 1.0}}]
  model: {{kwargs: {{encoder_depth: 1, decoder_channels: [8]}}}}
  train: {{epochs: 1, batch_size: 8, threads: 1}}
final: {{seeds: [7], top_k: 0}}
logging: {{wandb: {{mode: {wandb}}}}}
"""


def trial_times(exp: Path) -> list[tuple[float, float, float, float]]:
    """(start, end, seconds inside the trainable, seconds of epoch work) of every trial of the study,
    from Ray's trial folders (study.results, the experiment folder's one reader)."""
    from study.results import RESULTS_FILE, read_results

    out = []
    for f in exp.glob(f"**/{RESULTS_FILE}"):
        rows = read_results(f)
        if rows:
            last = rows[-1]
            start = rows[0]["timestamp"] - rows[0]["time_this_iter_s"]
            out.append((start, last["timestamp"], float(last["time_total_s"]),
                        sum(float(r.get("epoch_time_s") or 0) for r in rows)))
    return out


def run_study(n: int, wandb: str, root: Path) -> dict:
    space = root / f"overhead-{n}.yaml"
    space.write_text(textwrap.dedent(SPEC.format(n=n, wandb=wandb)))
    storage = root / f"runs-{n}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_DIR": str(root / "wandb"),
           "WANDB_SILENT": "true"}
    env.pop("RAY_ADDRESS", None)
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "study.run", str(space), "--storage", str(storage), "--quiet"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if res.returncode != 0:
        raise SystemExit(f"error: the study of {n} trials failed:\n{res.stderr[-3000:]}")
    trials = trial_times(storage / "overhead" / "main")
    if len(trials) != n:
        raise SystemExit(f"error: {len(trials)} trial results for {n} trials in {storage}")
    inside, work = sum(t[2] for t in trials), sum(t[3] for t in trials)
    phase = max(t[1] for t in trials) - min(t[0] for t in trials)
    return {"trials": n, "wall_s": wall, "search_phase_s": phase, "inside_trainable_s": inside, "work_s": work,
            "between_trials_per_trial_s": (phase - inside) / n, "overhead_per_trial_s": (phase - work) / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--wandb", default="disabled", choices=["disabled", "offline"])
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "benchmarks"))
    from _common import machine

    rows = []
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        for n in args.counts:
            rows.append(run_study(n, args.wandb, Path(tmp)))
            r = rows[-1]
            print(f"{n:3d} trials: driver wall {r['wall_s']:6.1f} s, search phase {r['search_phase_s']:6.1f} s, "
                  f"inside the trainable {r['inside_trainable_s']:6.1f} s, epoch work {r['work_s']:6.1f} s -> per "
                  f"trial: {r['between_trials_per_trial_s']:.2f} s between trials, {r['overhead_per_trial_s']:.2f} s "
                  f"all overhead", flush=True)
    a, b = rows[0], rows[-1]
    marginal = None
    if b["trials"] > a["trials"]:
        marginal = ((b["wall_s"] - b["work_s"]) - (a["wall_s"] - a["work_s"])) / (b["trials"] - a["trials"])
        print(f"marginal overhead per trial ({a['trials']} -> {b['trials']} trials): {marginal:.2f} s "
              f"(goal <= 1 s: {'met' if marginal <= 1 else 'NOT met'}); W&B {args.wandb}; {machine('cpu')}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine("cpu"), "wandb": args.wandb, "rows": rows,
                                               "marginal_per_trial_s": marginal}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
