"""Trials per device: aggregate training throughput of 1, 2 and 4 single-trial processes at once.

    .venv/bin/python benchmarks/gpu_share.py --device cuda       # how many trials to put on one GPU
    .venv/bin/python benchmarks/gpu_share.py                     # CPU: what sharing the cores gives

Starts the largest number of worker processes once; each builds the trial engine on the benchmark
trial (``--dataset synthetic``: the main job's trial; ``camvid``: CamVid at a fixed size, see
_common.py) and warms up one epoch. Then, in every repetition and for each count n in turn
(alternating), n workers start together and each runs ``--epochs`` full engine epochs (training,
fused evaluation pass, metrics); the aggregate is all their images over the wall time from the
common start to the last finish. The largest n reached while every step up (1 -> 2 -> 4) still adds
at least 10 % gives the Ray resource fraction per trial (``resources.gpu: 1/n`` in a study YAML).
Target (issue): two trials >= 1.6 x one. On a CPU the trials share its cores (and whatever else
runs there), so the numbers say what this machine gives, not what a GPU would.

Peak memory per trial, per count: on CUDA ``torch.cuda.max_memory_allocated`` (and ``_reserved``)
of each trial process over its measurement; on CPU the process's peak resident set (ru_maxrss,
which never goes down: the peak so far).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time

from _common import CAMVID_ROOT, dataset_config, machine, median, sync

MIB = 2**20


def peak_memory(device: str) -> dict[str, float]:
    """This process's peak memory (MiB) since the last :func:`reset_peak`."""
    import resource

    import torch

    out = {"host_max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / MIB
        out["cuda_max_reserved_mib"] = torch.cuda.max_memory_reserved() / MIB
    return out


def worker(rank: int, dataset: str, device: str, threads: int, overrides: list[str], commands, results,
           size: tuple[int, int] | None = None, camvid_root: str = CAMVID_ROOT) -> None:
    import torch

    from trainables.engine import Trainer, prepare_data

    torch.set_num_threads(threads)
    cfg = dataset_config(dataset, device, [f"train.threads={threads}", "train.epochs=100000", *overrides],
                         size=size, camvid_root=camvid_root)
    trainer = Trainer(cfg, prepare_data(cfg))
    trainer.run_epoch()  # warm-up
    sync(device)
    results.put(("ready", rank, trainer.num_train))
    while (cmd := commands.get()) is not None:
        start_at, epochs = cmd
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        time.sleep(max(0.0, start_at - time.time()))
        t0 = time.time()
        for _ in range(epochs):
            trainer.run_epoch()
        sync(device)
        results.put(("done", rank, t0, time.time(), epochs * trainer.num_train, peak_memory(device)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    ap.add_argument("--dataset", default="synthetic", choices=["synthetic", "camvid"])
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4], help="concurrent trials to compare")
    ap.add_argument("--epochs", type=int, default=2, help="full epochs per trial per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per trial (default 1)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="trial key=value")
    ap.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="image size (default: the dataset's "
                    "benchmark size, _common.py)")
    ap.add_argument("--camvid-root", default=CAMVID_ROOT, help="default ../shared/data/camvid")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    results = ctx.Queue()
    queues = [ctx.Queue() for _ in range(max(args.counts))]
    size = tuple(args.size) if args.size else None
    procs = [ctx.Process(target=worker, args=(r, args.dataset, args.device, args.threads, args.overrides, q, results,
                                              size, args.camvid_root), daemon=True) for r, q in enumerate(queues)]
    for p in procs:
        p.start()
    num_train = [results.get()[2] for _ in procs][0]
    print(f"machine: {machine(args.device)}; device {args.device}; {args.dataset} ({num_train} training images), "
          f"{args.epochs} full epochs per trial, {args.repeats} alternating repetitions (medians)", flush=True)
    agg: dict[int, list[float]] = {n: [] for n in args.counts}
    peaks: dict[int, list[dict]] = {n: [] for n in args.counts}  # per trial, the last repetition's
    for _ in range(args.repeats):
        for n in args.counts:
            start_at = time.time() + 0.5
            for q in queues[:n]:
                q.put((start_at, args.epochs))
            done = [results.get() for _ in range(n)]
            images = sum(d[4] for d in done)
            agg[n].append(images / (max(d[3] for d in done) - start_at))
            peaks[n] = [d[5] for d in sorted(done, key=lambda d: d[1])]
    for q in queues:
        q.put(None)
    for p in procs:
        p.join(timeout=60)
    med = {n: median(v) for n, v in agg.items()}
    one = med.get(1, med[min(med)])
    mem_key = "cuda_max_allocated_mib" if args.device.startswith("cuda") else "host_max_rss_mib"
    print(f"  {'trials':>6s} {'aggregate img/s':>16s} {'x one':>6s} {'per trial':>10s}  peak {mem_key} per trial")
    for n, v in med.items():
        mem = ", ".join(f"{p[mem_key]:.0f}" for p in peaks[n])
        print(f"  {n:6d} {v:16.1f} {v / one:6.2f} {v / n:10.1f}  {mem}")
    best = 1  # the most trials while every step up (1 -> 2 -> 4 ...) still adds >= 10 %
    for n in sorted(med):
        if n == 1:
            continue
        if med[n] < 1.1 * med[best]:
            break
        best = n
    if 2 in med:
        ratio = med[2] / one
        print(f"  2 trials / 1 trial = {ratio:.2f} (target >= 1.6: {'met' if ratio >= 1.6 else 'NOT met'})")
    if args.device.startswith("cuda"):
        print(f"  suggested: {best} trial(s) per GPU -> resources.gpu: {1 / best:g}")
    else:
        print(f"  CPU: up to {best} concurrent {args.threads}-thread trial(s) still add >= 10 % "
              f"(resources.cpu: {args.threads} per trial)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(args.device), "device": args.device, "dataset": args.dataset,
                       "aggregate_images_per_s": agg, "median": med, "peak_memory_per_trial": peaks,
                       "suggested_trials_per_gpu": best, "epochs": args.epochs, "repeats": args.repeats}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
