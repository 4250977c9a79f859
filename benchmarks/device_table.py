"""ADELE's Table 1 on CamVid in one GPU call: ce, adele and adele without class adaptivity
(``class_adaptive: false``), every seed at once, one process per (variant, seed), plain torch (no Ray).

    python benchmarks/device_table.py --camvid-root device_bundle/data/camvid --deadline-s 300 \
        --throughput-json $OUT/throughput.json --json $OUT/table.json --md $OUT/table.md

The trial is search_spaces/adele_camvid.yaml's (CamVid 352x480, morph noise on every training image,
UNet-resnet18, AdamW, ADELE with scales 0.75/1.0/1.5 and a correction every 2 epochs) with
``train.augment: false`` (ADELE's default correction source, the training pass, needs it), seed and
noise seed = the seed. ``--epochs`` sets the budget; else it is chosen to end before ``--deadline-s``
from the measured epoch times in ``--throughput-json`` (benchmarks/throughput.py on the same device:
ce's full epoch, adele's training pass) and the sharing gain of ``--share-json``
(benchmarks/gpu_share.py: aggregate of 4 trials / 1), leaving time for the start.

Every few seconds the parent rewrites ``--json`` (all epochs of all trials so far, atomically) and
``--md`` (the table), so a run stopped by a timeout still leaves its data; at ``--deadline-s`` the
trials still running are stopped and marked unfinished.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "search_spaces" / "adele_camvid.yaml"
VARIANTS = {"ce": ["method.name=ce"], "adele": ["method.name=adele"],
            "adele_global": ["method.name=adele", "method.class_adaptive=false"]}
START_S = 40.0  # process start, CamVid decoding and the first kernels, before the first epoch
KEYS = ("best_val", "max_test", "last", "label_miou")


def trial_overrides(root: str, size: tuple[int, int], epochs: int, device: str, seed: int, extra: list[str]) -> list[str]:
    return [f"dataset.root={root}", f"dataset.size=[{size[0]}, {size[1]}]", "train.augment=false",
            f"train.epochs={epochs}", f"train.device={device}", "train.threads=1", "eval_every=1",
            f"seed={seed}", f"noise_seed={seed}", *extra]


def worker(name: str, sets: list[str], path: str) -> None:
    """Train one trial, appending each epoch's metrics to ``path`` (JSON lines)."""
    sys.path.insert(0, str(REPO))
    from trainables.config import load_trial_config
    from trainables.engine import Trainer, prepare_data

    cfg = load_trial_config(BASE, sets)
    trainer = Trainer(cfg, prepare_data(cfg))
    with open(path, "a") as fh:
        while trainer.epoch < cfg.train.epochs:
            metrics, _ = trainer.run_epoch()
            fh.write(json.dumps({"trial": name, **metrics}) + "\n")
            fh.flush()
            if metrics.get("diverged"):
                break


def budget_epochs(deadline_s: float, throughput: dict | None, share: dict | None, trials: dict[str, int],
                  max_epochs: int) -> tuple[int, str]:
    """Epochs that fit ``deadline_s`` (and why), from measured epoch times; None figures: 10."""
    cam = (throughput or {}).get("datasets", {}).get("camvid")
    if not cam or "full epoch" not in cam.get("median_s", {}) or "adele" not in cam.get("median_s", {}):
        return min(10, max_epochs), "no throughput figures: 10 epochs"
    med = cam["median_s"]
    eval_s = med["full epoch"] - med.get("ce", med["raw"])  # the evaluation part of an epoch
    per = {"ce": med["full epoch"], "adele": med["adele"] + eval_s, "adele_global": med["adele"] + eval_s}
    serial = sum(per[v] * n for v, n in trials.items())  # one epoch of every trial, one after another
    gain = 1.0
    if share and "median" in share:
        m = {int(k): v for k, v in share["median"].items()}
        if 1 in m and m[1] > 0:
            gain = min(3.0, max(1.0, max(m.values()) / m[1]))
    epochs = int((deadline_s - START_S) * gain / serial) if serial > 0 else max_epochs
    epochs = max(1, min(max_epochs, epochs))
    return epochs, (f"{epochs} epochs: one epoch of all trials {serial:.1f} s one after another, sharing gain "
                    f"{gain:.2f}, {deadline_s:.0f} s left ({START_S:.0f} s for the start)")


def summarise(rows: list[dict], trials: dict[str, str], epochs: int) -> dict:
    by_trial: dict[str, list[dict]] = {}
    for r in rows:
        by_trial.setdefault(r["trial"], []).append(r)
    table: dict[str, dict] = {}
    for name, variant in trials.items():
        hist = by_trial.get(name, [])
        entry = table.setdefault(variant, {"trials": 0, "finished": 0, **{k: [] for k in KEYS}, "trigger": []})
        entry["trials"] += 1
        if hist and hist[-1].get("epoch") == epochs:
            entry["finished"] += 1
            for k in KEYS:
                if hist[-1].get(k) is not None:
                    entry[k].append(hist[-1][k])
            trig = {k.split("/")[-1]: v for k, v in hist[-1].items() if k.startswith("method/trigger/")}
            if trig:
                entry["trigger"].append(trig)
    return table


def markdown(table: dict, epochs: int, note: str) -> str:
    lines = [f"ADELE Table 1 on CamVid ({note}); mean ± sd over finished seeds, mIoU in %", "",
             f"| variant | finished | {' | '.join(KEYS)} |", "|---" * (len(KEYS) + 2) + "|"]
    for variant, e in table.items():
        cells = []
        for k in KEYS:
            v = e[k]
            cells.append(f"{100 * statistics.mean(v):.1f} ± {100 * (statistics.stdev(v) if len(v) > 1 else 0):.1f}"
                         if v else "-")
        lines.append(f"| {variant} | {e['finished']}/{e['trials']} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--camvid-root", default=str(REPO / "device_bundle" / "data" / "camvid"))
    ap.add_argument("--size", type=int, nargs=2, default=[352, 480], metavar=("H", "W"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--epochs", type=int, help="default: as many as fit --deadline-s (at most --max-epochs)")
    ap.add_argument("--max-epochs", type=int, default=60)
    ap.add_argument("--deadline-s", type=float, default=300.0, help="stop every trial after this many seconds")
    ap.add_argument("--throughput-json", help="benchmarks/throughput.py --json of this device (epoch times)")
    ap.add_argument("--share-json", help="benchmarks/gpu_share.py --json of this device (sharing gain)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="trial key=value for all")
    ap.add_argument("--work", default="/tmp/device_table", help="scratch folder of the trials' JSON lines")
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    args = ap.parse_args(argv)
    t0 = time.time()

    def load(path):
        try:
            return json.loads(Path(path).read_text()) if path else None
        except (OSError, ValueError):
            return None

    trials = {f"{v}-seed{s}": v for v in args.variants for s in args.seeds}
    counts = {v: len(args.seeds) for v in args.variants}
    if args.epochs:
        epochs, note = args.epochs, f"{args.epochs} epochs (given)"
    else:
        epochs, note = budget_epochs(args.deadline_s, load(args.throughput_json), load(args.share_json), counts,
                                     args.max_epochs)
    size = tuple(args.size)
    note = f"{size[0]}x{size[1]}, {note}, seeds {args.seeds}, device {args.device}"
    print(f"[table] {len(trials)} trials at once: {note}", flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    procs = {}
    for name, variant in trials.items():
        path = work / f"{name}.jsonl"
        path.unlink(missing_ok=True)
        sets = trial_overrides(args.camvid_root, size, epochs, args.device, int(name.rsplit("seed", 1)[1]),
                               [*VARIANTS[variant], *args.overrides])
        procs[name] = (ctx.Process(target=worker, args=(name, sets, str(path)), daemon=True), path)
        procs[name][0].start()

    def collect(final: bool = False) -> dict:
        rows = []
        for _, path in procs.values():
            if path.is_file():
                rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        table = summarise(rows, trials, epochs)
        state = {name: ("running" if p.is_alive() else f"exit {p.exitcode}") for name, (p, _) in procs.items()}
        report = {"note": note, "epochs": epochs, "seconds": round(time.time() - t0, 1), "final": final,
                  "trials": state, "table": table, "rows": rows}
        write_atomic(args.json, json.dumps(report))
        write_atomic(args.md, markdown(table, epochs, note))
        return report

    while any(p.is_alive() for p, _ in procs.values()):
        if time.time() - t0 > args.deadline_s:
            print(f"[table] deadline {args.deadline_s:.0f} s reached: stopping the trials still running", flush=True)
            for p, _ in procs.values():
                if p.is_alive():
                    p.terminate()
            break
        collect()
        time.sleep(5)
    for p, _ in procs.values():
        p.join(timeout=30)
    report = collect(final=True)
    print(markdown(report["table"], epochs, note), flush=True)
    failed = [n for n, s in report["trials"].items() if s != "exit 0"]
    if failed:
        print(f"[table] not finished: {', '.join(failed)}", flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
