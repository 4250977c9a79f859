"""Do the exported labels train a better model? Paired comparison per seed:

1. ``ce`` on the noisy labels (the baseline; ``ce-seed<S>`` in ``--out``, e.g. the runs of
   ``benchmarks/label_ranking.py``, which are the same config, are reused);
2. ``python -m trainables.export`` of that run for each ``--variant NAME='EXPORT ARGS'`` (e.g.
   ``confident-early='--labels confident --epoch early'``): the export picks its checkpoint and labels
   without clean labels;
3. ``ce`` trained on each export's ``config.yaml`` (the ``folder`` dataset: same images, val/test
   labels, model and training settings; only the training labels differ);
4. with ``--adele``: also ``adele`` (``scales: [1.0]``) on the noisy labels, exported, and ce on that.

Reports test mIoU (best-val / last), the paired difference to the baseline per seed with a
Student-t 95% interval, the exported labels' mIoU vs the clean ones minus the noisy labels', and the
number of seeds on which each is above 0.

    .venv/bin/python benchmarks/retrain_corrected.py --dataset synthetic --seeds 0 1 2 --out runs/labels-bench/ranking \\
        --variant "confident-early=--labels confident --epoch early" --variant "cleanlab-early=--labels cleanlab --epoch early"
    .venv/bin/python benchmarks/retrain_corrected.py --dataset camvid --seeds 0 1 2 --variant ...

``--dataset camvid`` reads ../shared/data/camvid at 96x128 with 80 / 30 / 60 train / val / test images,
30 epochs and the synthetic default's depth-3 UNet-resnet18, so that it fits a shared CPU. Runs and
exports already in ``--out`` are reused, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import run_one  # noqa: E402

DATASETS = {
    "synthetic": ("examples/synthetic.yaml", []),
    "camvid": ("examples/camvid.yaml", ["dataset.size=[96, 128]", "dataset.max_images={train: 80, val: 30, test: 60}",
                                        "train.epochs=30", "model.kwargs={encoder_depth: 3, decoder_channels: [64, 32, 16]}"]),
}
ADELE = ["method.name=adele", "method.scales=[1.0]"]


def export(run: Path, out: Path, *extra: str) -> dict:
    if not (out / "export.json").exists():
        subprocess.run([sys.executable, "-m", "trainables.export", str(run), "--out", str(out), "--threads", "1",
                        *extra], check=True)
    return json.loads((out / "export.json").read_text())


def one_seed(config: str, base: list[str], seed: int, out: Path, variants: dict[str, list[str]], adele: bool) -> dict:
    res = {"ce": run_one(config, [*base, "method.name=ce"], seed, out / f"ce-seed{seed}")}
    sources = {name: ("ce", args) for name, args in variants.items()}
    if adele:
        res["adele"] = run_one(config, [*base, *ADELE], seed, out / f"adele-seed{seed}")
        sources["adele-run"] = ("adele", [])
    for name, (run, args) in sources.items():
        exp_dir = out / f"{run}-seed{seed}-export-{name}"
        res[f"export:{name}"] = export(out / f"{run}-seed{seed}", exp_dir, *args)
        res[name] = run_one(str(exp_dir / "config.yaml"), [], seed, out / f"ce-on-{name}-seed{seed}")
    return res


def ms(values: list[float], scale: float = 100.0) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.1f} ± {scale * sd:.1f}"


def paired(d: list[float]) -> str:
    """mean [95% t interval] (k/n > 0), in points."""
    m = statistics.mean(d)
    pos = f"{sum(x > 0 for x in d)}/{len(d)} > 0"
    if len(d) < 2:
        return f"{100 * m:+.1f} ({pos})"
    h = stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / len(d) ** 0.5
    return f"{100 * m:+.1f} [{100 * (m - h):+.1f}, {100 * (m + h):+.1f}] ({pos})"


def table(per_seed: list[dict], names: list[str], dataset: str, seeds: list[int]) -> list[str]:
    lines = [f"{dataset}: test mIoU in %, mean ± std over seeds {seeds}; Δ = paired difference to ce on the noisy "
             "labels, mean [95% t interval] (seeds above 0); label Δ = exported label mIoU − noisy label mIoU "
             "(vs the clean labels)", "",
             "| training labels | best_val | last | Δ best_val | Δ last | label mIoU | label Δ | epoch used |",
             "|---|---|---|---|---|---|---|---|"]
    noisy_lab = [r["export:" + names[0]]["label_miou"]["original_vs_clean"] for r in per_seed] if names else []
    lines.append(f"| noisy (ce baseline) | {ms([r['ce']['best_val'] for r in per_seed])} | "
                 f"{ms([r['ce']['last'] for r in per_seed])} | — | — | {ms(noisy_lab)} | — | — |")
    for name in names:
        exp = [r["export:" + name] for r in per_seed]
        d_bv = [r[name]["best_val"] - r["ce"]["best_val"] for r in per_seed]
        d_last = [r[name]["last"] - r["ce"]["last"] for r in per_seed]
        lab = [e["label_miou"]["exported_vs_clean"] for e in exp]
        d_lab = [e["label_miou"]["exported_vs_clean"] - e["label_miou"]["original_vs_clean"] for e in exp]
        lines.append(f"| {name} | {ms([r[name]['best_val'] for r in per_seed])} | "
                     f"{ms([r[name]['last'] for r in per_seed])} | {paired(d_bv)} | {paired(d_last)} | {ms(lab)} | "
                     f"{paired(d_lab)} | {[e.get('epoch') for e in exp]} |")
    lines.append("")
    lines.append("Per seed, Δ best_val / Δ last / label Δ (points): " + "; ".join(
        f"{name}: " + ", ".join(f"s{r_seed} {100 * (r[name]['best_val'] - r['ce']['best_val']):+.1f} / "
                                f"{100 * (r[name]['last'] - r['ce']['last']):+.1f} / "
                                f"{100 * (r['export:' + name]['label_miou']['exported_vs_clean'] - r['export:' + name]['label_miou']['original_vs_clean']):+.1f}"
                                for r_seed, r in zip(seeds, per_seed)) for name in names))
    lines.append("Pixels changed by the export (per seed): " + "; ".join(
        f"{name}: {[r['export:' + name]['pixels_changed_by_export'] for r in per_seed]}" for name in names))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=list(DATASETS), default="synthetic")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--camvid-root", default="../shared/data/camvid")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME='EXPORT ARGS'",
                    help="an export of the ce baseline to retrain on, e.g. --variant "
                         "\"confident-early=--labels confident --epoch early\" (repeatable)")
    ap.add_argument("--adele", action="store_true", help="also ADELE on the noisy labels, its export, ce on that")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra overrides of the ce / adele runs (the retrains take the export's config)")
    args = ap.parse_args()
    variants: dict[str, list[str]] = {}
    for spec in args.variant:
        name, sep, export_args = spec.partition("=")
        if not sep or not name:
            ap.error(f"--variant {spec!r}: expected NAME='EXPORT ARGS', e.g. early='--labels confident --epoch early'")
        variants[name] = shlex.split(export_args)
    if not variants and not args.adele:
        ap.error("give at least one --variant NAME='EXPORT ARGS' or --adele")
    out = args.out or Path("runs/labels-bench") / args.dataset
    config, base = DATASETS[args.dataset]
    base = [*base, *([f"dataset.root={args.camvid_root}"] if args.dataset == "camvid" else []), *args.overrides]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        per_seed = list(pool.map(lambda s: one_seed(config, base, s, out, variants, args.adele), args.seeds))
    names = list(variants) + (["adele-run"] if args.adele else [])
    lines = table(per_seed, names, args.dataset, args.seeds)
    lines.append(f"wall time {time.perf_counter() - t0:.0f} s")
    text = "\n".join(lines) + "\n"
    (out / "retrain.md").write_text(text)
    (out / "retrain.json").write_text(json.dumps(per_seed, indent=2, default=str) + "\n")
    print(text)


if __name__ == "__main__":
    main()
