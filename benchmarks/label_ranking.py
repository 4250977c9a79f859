"""How well does the export's suspect ranking find the worst annotations? Synthetic data, where the
clean labels are known.

For each noise setting and seed: train a run (``python -m trainables.run``, one thread), export it
(``python -m trainables.export``: label_issues.csv holds every training image's scores and, since
the noise was injected, its true noise: the share of labelled pixels whose noisy label differs from
the clean one). The relevant images are the ``--top-frac`` noisiest (20 %: 19 of 96). Rankings
compared on the same model predictions:

- ``disagreement`` (the export's ranking): share of labelled pixels the confident model relabels;
- ``1 - IoU``: label vs the model's argmax;
- ``self-confidence``: cleanlab-style, per-pixel p(label) pooled per image by softmin (T = 0.1);
- ``random``: the expectation over 2000 seeded random permutations.

Reported per ranking: precision@10, R-precision (precision@|relevant|), average precision and the
Spearman correlation of the score with the true noise, mean ± std over seeds.

    .venv/bin/python benchmarks/label_ranking.py --seeds 0 1 2 --out runs/labels-bench/synthetic

Runs and exports already in ``--out`` are reused, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import run_one  # noqa: E402

from trainables.label_issues import average_precision, order_by, precision_at_k  # noqa: E402

CONFIG = "examples/synthetic.yaml"
# setting = run folder prefix -> (description, trial overrides of examples/synthetic.yaml). The runs
# "ce" and "adele" are the ones benchmarks/retrain_corrected.py trains (same configs): both share them.
SETTINGS = {
    "ce": ("ce, morph on every image", ["method.name=ce"]),
    "adele": ("adele (scales [1.0]), morph on every image", ["method.name=adele", "method.scales=[1.0]"]),
    "ce-10ep": ("ce, morph 1.0, 10 epochs (stopped before memorisation)", ["method.name=ce", "train.epochs=10"]),
    "ce-morph0.5": ("ce, morph on half of the images", ["method.name=ce", "noise.0.rate=0.5"]),
}


def export(run: Path, out: Path, tau: float) -> Path:
    if not (out / "export.json").exists():
        subprocess.run([sys.executable, "-m", "trainables.export", str(run), "--out", str(out), "--threads", "1",
                        "--tau", str(tau)], check=True)
    return out


def read_issues(path: Path) -> dict[str, np.ndarray]:
    with path.open() as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["index"]))
    col = lambda k: np.array([float(r[k]) if r[k] not in ("", "None") else np.nan for r in rows])  # noqa: E731
    return {k: col(k) for k in ("disagreement", "iou", "self_confidence", "injected_noise")}


def evaluate(scores: dict[str, np.ndarray], top_frac: float, rng: np.random.Generator) -> dict[str, dict]:
    truth = scores["injected_noise"]
    n = len(truth)
    n_rel = max(1, round(top_frac * n))
    relevant = np.zeros(n, bool)
    relevant[order_by(truth)[:n_rel]] = True
    rankings = {"disagreement": order_by(scores["disagreement"]),
                "1 - IoU": order_by(scores["iou"], descending=False),
                "self-confidence": order_by(scores["self_confidence"], descending=False)}
    signed = {"disagreement": scores["disagreement"], "1 - IoU": -scores["iou"],
              "self-confidence": -scores["self_confidence"]}
    out = {}
    for name, order in rankings.items():
        with warnings.catch_warnings():  # a constant score (nothing confident) has no correlation: NaN
            warnings.simplefilter("ignore")
            rho = spearmanr(signed[name], truth, nan_policy="omit").statistic
        out[name] = {"p@10": precision_at_k(order, relevant, 10), "r_precision": precision_at_k(order, relevant, n_rel),
                     "ap": average_precision(order, relevant), "spearman": float(rho)}
    perms = [rng.permutation(n) for _ in range(2000)]
    out["random"] = {"p@10": float(np.mean([precision_at_k(p, relevant, 10) for p in perms])),
                     "r_precision": float(np.mean([precision_at_k(p, relevant, n_rel) for p in perms])),
                     "ap": float(np.mean([average_precision(p, relevant) for p in perms])), "spearman": 0.0}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--out", type=Path, default=Path("runs/labels-bench/synthetic"))
    ap.add_argument("--top-frac", type=float, default=0.2)
    ap.add_argument("--tau", type=float, default=0.7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra overrides of every run (smoke tests)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    jobs = [(s, seed) for s in args.settings for seed in args.seeds]

    def one(job):
        setting, seed = job
        run = args.out / f"{setting}-seed{seed}"
        run_one(CONFIG, [*SETTINGS[setting][1], *args.overrides], seed, run)
        return read_issues(export(run, args.out / f"{setting}-seed{seed}-rank-tau{args.tau}", args.tau)
                           / "label_issues.csv")

    with ThreadPoolExecutor(args.workers) as pool:
        issues = list(pool.map(one, jobs))
    results: dict[str, list[dict]] = {}
    for (setting, seed), scores in zip(jobs, issues):
        results.setdefault(setting, []).append(evaluate(scores, args.top_frac, np.random.default_rng(seed)))
    (args.out / "ranking.json").write_text(json.dumps(results, indent=2) + "\n")
    keys = ("p@10", "r_precision", "ap", "spearman")
    lines = []
    for setting, per_seed in results.items():
        lines += [f"\n{SETTINGS[setting][0]} ({len(per_seed)} seeds, relevant: the {args.top_frac:.0%} noisiest training images)\n",
                  "| ranking | precision@10 | R-precision | AP | Spearman vs true noise |", "|---|---|---|---|---|"]
        for name in per_seed[0]:
            cells = []
            for k in keys:
                vals = [r[name][k] for r in per_seed if np.isfinite(r[name][k])]
                if not vals:
                    cells.append("n/a")
                    continue
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                cells.append(f"{statistics.mean(vals):.3f} ± {sd:.3f}" + ("" if len(vals) == len(per_seed) else
                                                                          f" (n={len(vals)})"))
            lines.append(f"| {name} | {' | '.join(cells)} |")
    text = "\n".join(lines) + f"\n\nwall time {time.perf_counter() - t0:.0f} s\n"
    (args.out / "ranking.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
