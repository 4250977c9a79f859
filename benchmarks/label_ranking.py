"""Which predictions, which ranking, which labels should the export use? Synthetic data, where the
clean labels are known; every ranking on the same predictions, in one run.

Per seed: ce on ``examples/synthetic.yaml`` (``--set`` for smaller sizes), trained in this process
with every epoch's checkpoint kept (``<out>/ce-seed<S>/checkpoints/epoch_NNNN``; a run folder the
export reads as is). Then for every epoch's model, one eval-mode pass over the training images
(``trainables.export.predict``, the export's own), scored by ``trainables.label_issues`` exactly as
the export scores it:

- image level, relevant = the ``--top-frac`` noisiest images (true noise: share of labelled pixels
  whose noisy label differs from the clean one): AP, precision@10 and the Spearman correlation with
  the true noise of ``disagreement`` and ``1 - IoU`` (the project's) and cleanlab's ``softmin`` and
  ``num_pixel_issues`` (cleanlab.segmentation.rank), plus random (the expectation over 2000 seeded
  permutations);
- pixel level, vs the truly wrong pixels: precision / recall / F1 of the confident-disagreement
  pixels (max probability >= tau, argmax != label: what ``--labels confident`` rewrites) and of
  cleanlab's flags (``filter.find_label_issues``: what ``--labels cleanlab`` rewrites);
- the labels each mode would export: label mIoU vs clean of ``confident`` and ``cleanlab`` minus
  that of the noisy labels, over all classes (``--all-classes``) and, as the export does by default,
  only between background and the classes whose early-learning detector has fired by that epoch
  (``trainables.export.ready_classes``); pixel flags likewise.

Each is reported for the checkpoint each selection rule picks without clean labels: ``last``,
``best_val`` (the validation mIoU; the val labels are the user's own), ``early_mean`` (ADELE's
detector on the mean foreground training-IoU curve) and ``early_median`` (the median of the
classes' own trigger epochs: the export's ``--epoch early``; ``trainables.export.trigger_epochs``),
``avg_early`` (the mean of the softmax over the 5 checkpoints up to ``early_median``), and for
reference ``oracle`` (the epoch with the best learned-classes confident-label mIoU, which needs the
clean labels).

    .venv/bin/python benchmarks/label_ranking.py --seeds 0 1 2 --out runs/labels-bench/ranking

Runs already in ``--out`` are reused (a run's ``summary.json`` marks it done).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainables.label_issues import average_precision, order_by, precision_at_k  # noqa: E402

CONFIG = "examples/synthetic.yaml"
RANKINGS = {  # name -> (score column of label_issues, largest first)
    "disagreement": ("disagreement", True), "1 - IoU": ("iou", False),
    "cleanlab softmin": ("cleanlab_softmin", False), "cleanlab num_pixel_issues": ("cleanlab_num_pixel_issues", False)}
RULES = ("last", "best_val", "early_mean", "early_median", "avg_early", "oracle")
AVG_WINDOW = 5


class KeepAll:
    """Reporter of engine.fit: metrics.jsonl plus every epoch's checkpoint."""

    def __init__(self, out: Path):
        self.out = out
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)

    def report(self, metrics: dict, checkpoint_dir: str | None, images: dict | None = None) -> None:
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(metrics) + "\n")
        if checkpoint_dir is not None:
            shutil.move(checkpoint_dir, self.out / "checkpoints" / f"epoch_{metrics['epoch']:04d}")


def train(cfg, out: Path) -> None:
    from trainables.config import dump_trial_config
    from trainables.engine import fit

    if (out / "summary.json").exists():
        return
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "config.yaml").write_text(dump_trial_config(cfg))
    summary = fit(cfg, KeepAll(out), scratch_dir=out)
    (out / "summary.json").write_text(json.dumps(summary) + "\n")


def pixel_prf(flag: np.ndarray, wrong: np.ndarray) -> dict:
    tp = int((flag & wrong).sum())
    p = tp / max(int(flag.sum()), 1)
    r = tp / max(int(wrong.sum()), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "flagged": int(flag.sum())}


def evaluate(noisy, clean, probs, tau, k, ignore, relevant, truth, ready: list[int]) -> dict:
    import torch

    from trainables.label_issues import Predictions, confident_labels, flagged_labels, rank_label_issues
    from trainables.metrics import label_miou
    from scipy.stats import spearmanr

    preds = Predictions.from_probs(probs, tau)
    issues = rank_label_issues(noisy, preds, k, ignore)
    out: dict = {"image": {}, "pixel": {}, "labels": {}}
    for name, (col, desc) in RANKINGS.items():
        score = issues.scores[col]
        order = order_by(score, descending=desc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = spearmanr(score if desc else -score, truth, nan_policy="omit").statistic
        out["image"][name] = {"ap": average_precision(order, relevant), "p@10": precision_at_k(order, relevant, 10),
                              "spearman": float(rho)}
    valid = (noisy != ignore) & (clean != ignore)
    wrong = (noisy != clean) & valid
    gate = np.isin(noisy, ready) & np.isin(preds.argmax, ready)  # the export's default: learned classes only
    conf_flag = preds.confident & (preds.argmax != noisy) & valid
    out["pixel"]["confident disagreement"] = pixel_prf(conf_flag, wrong)
    out["pixel"]["cleanlab flags"] = pixel_prf(issues.flags & valid, wrong)
    out["pixel"]["confident, learned classes"] = pixel_prf(conf_flag & gate, wrong)
    out["pixel"]["cleanlab, learned classes"] = pixel_prf(issues.flags & valid & gate, wrong)
    t_clean = torch.from_numpy(clean)
    base = label_miou(torch.from_numpy(noisy), t_clean, k, ignore)
    conf, flagged = confident_labels(noisy, preds, ignore), flagged_labels(noisy, issues.flags, preds.argmax, ignore)
    for mode, labels in (("confident", conf), ("cleanlab", flagged), ("confident, learned classes", np.where(gate, conf, noisy)),
                         ("cleanlab, learned classes", np.where(gate, flagged, noisy))):
        out["labels"][mode] = label_miou(torch.from_numpy(labels), t_clean, k, ignore) - base
    out["labels"]["noisy"] = base
    return out


def one_seed(seed: int, out: Path, overrides: list[str], tau: float, top_frac: float) -> dict:
    import torch

    torch.set_num_threads(1)
    from trainables.checkpoint import load_checkpoint
    from trainables.config import load_trial_config
    from trainables.engine import prepare_data
    from trainables.export import early_learning_epoch, predict, ready_classes
    from trainables.label_issues import average_precision as ap_

    cfg = load_trial_config(REPO / CONFIG, ["method.name=ce", f"seed={seed}", "train.threads=1", *overrides])
    run = out / f"ce-seed{seed}"
    t0 = time.process_time()
    train(cfg, run)
    t_train = time.process_time() - t0
    td = prepare_data(cfg)
    k, ignore = len(td.class_names), td.ignore_index
    noisy, clean, images = td.noisy.numpy(), td.clean["train"].numpy(), td.images["train"].numpy()
    both = (noisy != ignore) & (clean != ignore)
    n = len(noisy)
    truth = ((noisy != clean) & both).reshape(n, -1).sum(1) / np.maximum(both.reshape(n, -1).sum(1), 1)
    relevant = np.zeros(n, bool)
    relevant[order_by(truth)[:max(1, round(top_frac * n))]] = True
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(n) for _ in range(2000)]
    random = {"ap": float(np.mean([ap_(p, relevant) for p in perms])),
              "p@10": float(np.mean([precision_at_k(p, relevant, 10) for p in perms])), "spearman": 0.0}

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    t1 = time.process_time()
    per_epoch, probs_by_epoch = {}, {}
    for row in rows:
        e = int(row["epoch"])
        state = load_checkpoint(run / "checkpoints" / f"epoch_{e:04d}")
        probs = predict(cfg, state["model"], images, tau, k, "cpu").probs
        probs_by_epoch[e] = probs.astype(np.float16)  # for the averaged rule
        per_epoch[e] = evaluate(noisy, clean, probs, tau, k, ignore, relevant, truth,
                                ready_classes(rows[:e], td.class_names, e))
    epochs = sorted(per_epoch)
    val = {int(r["epoch"]): r.get("val_miou") for r in rows if r.get("val_miou") is not None}
    early_mean = early_learning_epoch(rows, td.class_names, pool="mean")
    early_median = early_learning_epoch(rows, td.class_names, pool="median")
    chosen = {"last": epochs[-1], "best_val": max(val, key=lambda e: (val[e], -e)),
              "early_mean": early_mean or epochs[-1], "early_median": early_median or epochs[-1],
              "oracle": max(epochs, key=lambda e: (per_epoch[e]["labels"]["confident, learned classes"], -e))}
    results = {rule: per_epoch[e] for rule, e in chosen.items()}
    window = [e for e in epochs if chosen["early_median"] - AVG_WINDOW < e <= chosen["early_median"]]
    avg = np.mean([probs_by_epoch[e].astype(np.float32) for e in window], axis=0)
    results["avg_early"] = evaluate(noisy, clean, avg, tau, k, ignore, relevant, truth,
                                    ready_classes(rows, td.class_names, chosen["early_median"]))
    chosen["avg_early"] = f"{window[0]}-{window[-1]}"
    return {"seed": seed, "chosen": chosen, "early_fired": {"mean": early_mean, "median": early_median},
            "results": results, "random": random, "per_epoch": per_epoch,
            "iou_m": {int(r["epoch"]): r.get("iou_m") for r in rows},
            "cpu_s": {"train": t_train, "evaluate": time.process_time() - t1}}


def ms(vals: list[float], scale: float = 1.0, digits: int = 2) -> str:
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return "n/a"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{scale * statistics.mean(vals):.{digits}f} ± {scale * sd:.{digits}f}"


def tables(per_seed: list[dict], tau: float) -> str:
    seeds = [r["seed"] for r in per_seed]
    lines = [f"seeds {seeds}; checkpoint chosen per rule (per seed): " + "; ".join(
        f"{rule} {[r['chosen'][rule] for r in per_seed]}" for rule in RULES)]
    lines += ["", "Image level: AP / precision@10 / Spearman vs the true per-image noise (mean ± std over seeds)", "",
              "| checkpoint | " + " | ".join(RANKINGS) + " | random |", "|---" * (len(RANKINGS) + 2) + "|"]
    for rule in RULES:
        cells = []
        for name in RANKINGS:
            m = [r["results"][rule]["image"][name] for r in per_seed]
            cells.append(" / ".join(ms([x[key] for x in m]) for key in ("ap", "p@10", "spearman")))
        rand = [r["random"] for r in per_seed]
        cells.append(f"{ms([x['ap'] for x in rand])} / {ms([x['p@10'] for x in rand])}")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    pix = ("confident disagreement", "cleanlab flags", "confident, learned classes", "cleanlab, learned classes")
    lines += ["", f"Pixel level vs the truly wrong pixels: precision / recall / F1 (confident: max probability >= {tau})",
              "", "| checkpoint | " + " | ".join(pix) + " |", "|---" * (len(pix) + 1) + "|"]
    for rule in RULES:
        cells = [" / ".join(ms([r["results"][rule]["pixel"][p][key] for r in per_seed]) for key in
                            ("precision", "recall", "f1")) for p in pix]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    modes = ("confident", "cleanlab", "confident, learned classes", "cleanlab, learned classes")
    lines += ["", "Label mIoU of the labels each mode would export minus the noisy labels' (points; seeds above 0)", "",
              "| checkpoint | " + " | ".join(modes) + " |", "|---" * (len(modes) + 1) + "|"]
    for rule in RULES:
        cells = []
        for mode in modes:
            d = [r["results"][rule]["labels"][mode] for r in per_seed]
            cells.append(f"{ms(d, 100, 1)} ({sum(x > 0 for x in d)}/{len(d)} > 0)")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    noisy = [r["results"]["last"]["labels"]["noisy"] for r in per_seed]
    lines += ["", f"noisy label mIoU {ms(noisy, 100, 1)}; CPU s per seed (train / evaluate every epoch): "
              + ", ".join(f"{r['cpu_s']['train']:.0f} / {r['cpu_s']['evaluate']:.0f}" for r in per_seed)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("runs/labels-bench/ranking"))
    ap.add_argument("--top-frac", type=float, default=0.2)
    ap.add_argument("--tau", type=float, default=0.7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="overrides of every run (e.g. smaller sizes)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        per_seed = list(pool.map(one_seed, args.seeds, [args.out] * len(args.seeds),
                                 [args.overrides] * len(args.seeds), [args.tau] * len(args.seeds),
                                 [args.top_frac] * len(args.seeds)))
    (args.out / "ranking.json").write_text(json.dumps(per_seed, indent=1, default=float) + "\n")
    text = tables(per_seed, args.tau) + f"\nwall time {time.perf_counter() - t0:.0f} s\n"
    (args.out / "ranking.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
