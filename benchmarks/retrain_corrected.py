"""Do the exported corrected labels train a better model? Paired comparison per seed:

1. ``ce`` on the noisy labels (the baseline);
2. ``adele`` on the same noisy labels, then ``python -m trainables.export`` of its final labels;
3. ``ce`` on the exported labels, as the ``folder`` dataset the export wrote (its config.yaml:
   same images, val/test labels, model and training settings; only the training labels differ);
4. with ``--confident``: ``ce`` on the baseline's export with ``--labels confident`` (the ce model's
   own predictions >= tau replace the labels: self-training without a correction method).

Reports test mIoU (best-val / last) and the exported labels' mIoU vs the clean ones, mean ± std over
seeds, and the per-seed difference to the baseline.

    .venv/bin/python benchmarks/retrain_corrected.py --dataset synthetic --seeds 0 1 2 --confident
    .venv/bin/python benchmarks/retrain_corrected.py --dataset camvid --seeds 0 1 2

``--dataset camvid`` reads ../shared/data/camvid at 96x128 with 80 / 30 / 60 train / val / test images,
30 epochs and the synthetic default's depth-3 UNet-resnet18, so that it fits a shared CPU. ADELE runs with ``scales: [1.0]`` (label correction
without the multiscale consistency, which costs ~3.7x the forward/backward passes). Runs and
exports already in ``--out`` are reused, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def one_seed(config: str, base: list[str], seed: int, out: Path, confident: bool) -> dict:
    res = {"ce": run_one(config, [*base, "method.name=ce"], seed, out / f"ce-seed{seed}")}
    res["adele"] = run_one(config, [*base, *ADELE], seed, out / f"adele-seed{seed}")
    exp = export(out / f"adele-seed{seed}", out / f"adele-seed{seed}-export")
    res["adele_export"] = exp
    res["ce_on_adele_labels"] = run_one(str(out / f"adele-seed{seed}-export" / "config.yaml"), [], seed,
                                        out / f"ce-on-adele-seed{seed}")
    if confident:
        res["ce_export"] = export(out / f"ce-seed{seed}", out / f"ce-seed{seed}-confident", "--labels", "confident")
        res["ce_on_confident_labels"] = run_one(str(out / f"ce-seed{seed}-confident" / "config.yaml"), [], seed,
                                                out / f"ce-on-confident-seed{seed}")
    return res


def ms(values: list[float], scale: float = 100.0) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.1f} ± {scale * sd:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=list(DATASETS), default="synthetic")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--camvid-root", default="../shared/data/camvid")
    ap.add_argument("--confident", action="store_true", help="also retrain on the ce run's confident predictions")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra overrides of the ce / adele runs (the retrains take the export's config)")
    args = ap.parse_args()
    out = args.out or Path("runs/labels-bench") / args.dataset
    config, base = DATASETS[args.dataset]
    base = [*base, *([f"dataset.root={args.camvid_root}"] if args.dataset == "camvid" else []), *args.overrides]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        per_seed = list(pool.map(lambda s: one_seed(config, base, s, out, args.confident), args.seeds))
    runs = ["ce", "adele", "ce_on_adele_labels"] + (["ce_on_confident_labels"] if args.confident else [])
    exports = {"ce_on_adele_labels": "adele_export", "ce_on_confident_labels": "ce_export"}
    lines = [f"{args.dataset}: test mIoU in %, mean ± std over seeds {args.seeds}; label mIoU = training labels vs clean",
             "", "| training labels | best_val | last | Δ best_val vs ce | Δ last vs ce | label mIoU |",
             "|---|---|---|---|---|---|"]
    for name in runs:
        bv = [r[name].get("best_val") for r in per_seed]
        last = [r[name].get("last") for r in per_seed]
        d_bv = [r[name]["best_val"] - r["ce"]["best_val"] for r in per_seed]
        d_last = [r[name]["last"] - r["ce"]["last"] for r in per_seed]
        if name in exports:
            lab = [r[exports[name]]["label_miou"]["exported_vs_clean"] for r in per_seed]
        else:
            lab = [r[name].get("label_miou") for r in per_seed]
        delta = "—" if name == "ce" else None
        lines.append(f"| {name} | {ms(bv)} | {ms(last)} | {delta or ms(d_bv)} | {delta or ms(d_last)} | {ms(lab)} |")
    pix = [r["adele_export"]["pixels_changed_by_export"] for r in per_seed]
    lines += ["", f"ADELE's exports changed {', '.join(map(str, pix))} training pixels (per seed); "
              f"noisy label mIoU {ms([r['adele_export']['label_miou']['original_vs_clean'] for r in per_seed])}",
              f"wall time {time.perf_counter() - t0:.0f} s"]
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(per_seed, indent=2, default=str) + "\n")
    print(text)


if __name__ == "__main__":
    main()
