"""Does the search earn its cost? TPE + ASHA against random search and random + ASHA at equal total
epochs (issue 20, item 4).

    .venv/bin/python benchmarks/search_efficiency.py                      # the measured setting
    .venv/bin/python benchmarks/search_efficiency.py --random-trials 2 --epochs 3 --images 8 --size 16

Each (strategy, search seed) is a real study (study.run.run_study in one local Ray session): ADELE's
r, tau_fg, lambda_ and rho over the ranges of search_spaces/adele.yaml, one trial at a time
(``max_concurrent: 1``, so the order of the epochs is the order the searcher saw them), no replication.
The trial is the synthetic default made cheap (``--images`` training images of ``--size``, a small UNet,
``--epochs`` epochs). Strategies:

- ``random``: Optuna's random sampler, no scheduler, ``--random-trials`` trials: the budget
  B = random-trials x epochs;
- ``random_asha`` / ``tpe_asha``: random sampler / TPE with ASHA (``--grace``, reduction factor 2),
  ``--asha-factor`` x as many trials, the epochs cut at B.

Curve: after every epoch any trial ran (in time order), the best validation mIoU seen so far in the
study against the cumulative epochs. Written: ``<out>.csv`` (strategy, seed, cumulative epochs, best
so far), ``<out>.md`` (the final bests and the epochs each ASHA strategy needed to reach random's final
best) and ``<out>.png``. Goal: TPE + ASHA reaches random's final best with <= 40% of its epochs.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STRATEGIES = {  # name -> (search.algorithm, scheduler.type)
    "random": ("random", "none"),
    "random_asha": ("random", "asha"),
    "tpe_asha": ("tpe", "asha"),
}
SPACE = REPO / "search_spaces" / "adele.yaml"  # the searched parameters and their ranges come from here


def study_raw(strategy: str, seed: int, args: argparse.Namespace, storage: str) -> dict:
    import yaml

    algorithm, scheduler = STRATEGIES[strategy]
    trials = args.random_trials if scheduler == "none" else math.ceil(args.random_trials * args.asha_factor)
    parameters = yaml.safe_load(SPACE.read_text())["parameters"]
    return {
        "name": f"search-efficiency-{strategy}-{seed}",
        "metric": {"name": "best_val_miou", "goal": "maximize"},
        "search": {"algorithm": algorithm, "seed": seed, "num_samples": trials, "max_concurrent": 1},
        "scheduler": {"type": scheduler, "grace_period": args.grace, "reduction_factor": 2},
        "resources": {"cpu": 1, "gpu": 0},
        "parameters": parameters,
        "trial": {
            "dataset": {"name": "synthetic", "num_train": args.images, "num_val": max(4, args.images // 2),
                        "num_test": 4, "size": [args.size, args.size]},
            "noise": [{"kind": "morph", "rate": 1.0}],
            "model": {"arch": "unet", "encoder": "resnet18",
                      "kwargs": {"encoder_depth": 2, "decoder_channels": [16, 8]}},
            "method": {"name": args.method},
            "train": {"epochs": args.epochs, "batch_size": 8, "optimizer": "adamw", "lr": 0.003, "threads": 1},
            "eval_every": 1,
        },
        "final": {"seeds": [101], "top_k": 0},
        "logging": {"wandb": {"mode": "disabled", "images_every": 0}},
        "storage": {"path": storage},
    }


def epoch_rows(exp_dir: Path) -> list[dict]:
    """Every epoch result of every trial of a study's search, in time order (study.results reads them)."""
    from study.results import RESULTS_FILE, read_results

    rows = []
    for f in exp_dir.glob(f"main/**/{RESULTS_FILE}"):
        rows += [r for r in read_results(f) if "val_miou" in r]
    return sorted(rows, key=lambda r: (r["timestamp"], r.get("trial_id", ""), r["epoch"]))


def curve(rows: list[dict], budget: int) -> list[tuple[int, float]]:
    """(cumulative epochs, best val mIoU so far) after each epoch, cut at ``budget`` epochs."""
    out, best = [], -math.inf
    for i, r in enumerate(rows[:budget], 1):
        v = r.get("val_miou")
        if v is not None and math.isfinite(v):
            best = max(best, float(v))
        out.append((i, best))
    return out


def epochs_to_reach(points: list[tuple[int, float]], target: float) -> int | None:
    return next((e for e, b in points if b >= target), None)


def summarise(curves: dict[tuple[str, int], list[tuple[int, float]]], budget: int) -> list[dict]:
    """Per strategy and seed: final best, epochs used, epochs to reach random's final best (same seed)."""
    rows = []
    for (strategy, seed), pts in sorted(curves.items()):
        target = curves.get(("random", seed), [(0, math.nan)])[-1][1]
        reach = epochs_to_reach(pts, target)
        rows.append({"strategy": strategy, "seed": seed, "epochs": pts[-1][0] if pts else 0,
                     "final_best": pts[-1][1] if pts else math.nan, "random_best": target,
                     "epochs_to_random_best": reach,
                     "fraction_of_budget": None if reach is None else reach / budget})
    return rows


def render_md(summary: list[dict], budget: int, args: argparse.Namespace) -> str:
    lines = [f"budget B = {budget} epochs ({args.random_trials} random trials x {args.epochs} epochs); "
             f"method {args.method}; ASHA grace {args.grace}, reduction factor 2, "
             f"{math.ceil(args.random_trials * args.asha_factor)} trials", "",
             "| strategy | seed | epochs | final best val mIoU | random's final best | epochs to reach it | fraction of B |",
             "|---|---|---|---|---|---|---|"]
    for r in summary:
        reach = "never" if r["epochs_to_random_best"] is None else str(r["epochs_to_random_best"])
        frac = "—" if r["fraction_of_budget"] is None else f"{r['fraction_of_budget']:.0%}"
        lines.append(f"| {r['strategy']} | {r['seed']} | {r['epochs']} | {r['final_best']:.4f} | "
                     f"{r['random_best']:.4f} | {reach} | {frac} |")
    lines.append("")
    for s in STRATEGIES:
        rs = [r for r in summary if r["strategy"] == s]
        if rs:
            fr = [r["fraction_of_budget"] if r["fraction_of_budget"] is not None else math.inf for r in rs]
            lines.append(f"- {s}: mean final best {statistics.mean(r['final_best'] for r in rs):.4f}; "
                         f"reaches random's final best within 40% of B in "
                         f"{sum(f <= 0.4 for f in fr)}/{len(rs)} seeds (median fraction "
                         f"{'never' if math.isinf(statistics.median(fr)) else format(statistics.median(fr), '.0%')})")
    return "\n".join(lines) + "\n"


def plot(curves: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"random": "tab:grey", "random_asha": "tab:blue", "tpe_asha": "tab:red"}
    fig, ax = plt.subplots(figsize=(6, 4))
    for (strategy, seed), pts in sorted(curves.items()):
        ax.step([e for e, _ in pts], [b for _, b in pts], where="post", color=colours[strategy], alpha=0.8,
                label=strategy if seed == min(s for t, s in curves if t == strategy) else None)
    ax.set_xlabel("cumulative epochs")
    ax.set_ylabel("best val mIoU so far")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> tuple[dict, list[dict], int]:
    """Every study in turn; the outputs are rewritten after each, so a stopped run keeps what it did."""
    from study.run import init_ray, run_study, write_spec
    from study.spec import parse_study

    budget = args.random_trials * args.epochs
    curves = {}
    with tempfile.TemporaryDirectory(prefix="search-eff-") as tmp:
        init_ray(None)
        for seed in args.seeds:  # seeds outer: a slow patch of the shared host hits every strategy alike
            for strategy in args.strategies:
                spec = parse_study(study_raw(strategy, seed, args, tmp), f"search_efficiency {strategy}")
                write_spec(spec)  # the experiment folder with its study.yaml, as study.run's start() makes it
                with contextlib.redirect_stdout(io.StringIO()):  # the study's report line
                    exp_dir = run_study(spec, verbose=0)
                pts = curve(epoch_rows(exp_dir), budget)
                curves[(strategy, seed)] = pts
                print(f"{strategy:12s} seed {seed}: {pts[-1][0]} epochs, best val mIoU {pts[-1][1]:.4f}",
                      flush=True)
                write(curves, summarise(curves, budget), budget, args)
    return curves, summarise(curves, budget), budget


def write(curves: dict, summary: list[dict], budget: int, args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "seed", "cumulative_epochs", "best_val_miou"])
        for (strategy, seed), pts in sorted(curves.items()):
            w.writerows([strategy, seed, e, f"{b:.6f}"] for e, b in pts)
    out.with_suffix(".md").write_text(render_md(summary, budget, args))
    plot(curves, out.with_suffix(".png"))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="adele")
    ap.add_argument("--random-trials", type=int, default=6)
    ap.add_argument("--asha-factor", type=float, default=2.5, help="ASHA strategies run this many times the trials")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--grace", type=int, default=2)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    ap.add_argument("--out", default=str(REPO / "docs" / "figures" / "search_efficiency"))
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.grace > args.epochs:
        raise SystemExit(f"error: --grace {args.grace} exceeds --epochs {args.epochs}")
    os.environ.setdefault("PYTHONPATH", str(REPO))
    curves, summary, budget = run(args)
    print(render_md(summary, budget, args), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
