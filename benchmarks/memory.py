"""Memory of concurrent trials sharing one decoded dataset through Ray's object store.

    .venv/bin/python benchmarks/memory.py                      # ce, 1000 synthetic 128x128 images
    .venv/bin/python benchmarks/memory.py --method adele --device cuda

As study/tuner.py does, the driver decodes the dataset once, corrupts the training labels once and
hands both to the trials with ``tune.with_parameters`` (``--private-labels``: each trial corrupts its
own copy); the trials are the real Ray Tune trainable (trainables.tune_adapter.train), each trained
for one epoch. 1 and 2 concurrent trials run on a large and on a tiny copy of the same dataset (the
tiny one still fills every batch), each in a fresh Ray session. Sampled every 0.2 s:

- each trial process's private memory (USS: pages no other process maps; the object store's copy of
  the dataset is mapped by the store's clients, so it is not in there). What a trial holds because
  of the data = its peak USS with the large dataset - with the tiny one; an extra trial adds that
  (target: < 25 % of the dataset's size). A method that rewrites labels (ADELE) holds its own copy of
  the training labels (1/4 of the training split's bytes), and one more while it updates them;
- the node: the summed PSS (shared pages divided among the processes mapping them) of the driver
  and every process it started (raylet with the object store, GCS, workers), at its peak.

The trial processes run with MALLOC_MMAP_THRESHOLD_=65536 (``--malloc-mmap-threshold``): glibc's
default raises that threshold after large frees and then keeps freed batch buffers in its heap,
which shows up as private memory that grows with the number of allocations, not with live data.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

from _common import machine
from trainables.config import parse_trial
from trainables.data import create_dataset
from trainables.trial_data import corrupt_once

MODEL = {"encoder": "tu-mobilenetv3_small_050", "kwargs": {"encoder_depth": 1, "decoder_channels": [8]}}


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def memory(pid: int) -> tuple[int, int]:
    """(PSS, USS) of a process in bytes, from /proc/PID/smaps_rollup ((0, 0) once it is gone). PSS
    divides each shared page among the processes mapping it; USS counts the pages only it maps."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("Pss", "Private_Clean", "Private_Dirty"):
                    fields[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return fields.get("Pss", 0), fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)


def is_trial(pid: int) -> bool:
    """A Ray Tune trial's worker process (Ray names it after the trainable's actor)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"ImplicitFunc" in fh.read()
    except OSError:
        return False


class Peaks:
    """Sampled in a thread: the peak of the summed PSS of this process and all its descendants (the
    node's memory: shared pages counted once), and each trial process's peak USS (its private memory)."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.node, self.trials = interval, 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in descendants(os.getpid()):
                pss, uss = memory(pid)
                total += pss
                if uss and is_trial(pid):
                    self.trials[pid] = max(self.trials.get(pid, 0), uss)
            self.node = max(self.node, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def trial_dict(args: argparse.Namespace, num_train: int, num_eval: int) -> dict:
    h, w = args.size
    return {"dataset": {"name": "synthetic", "size": [h, w], "num_train": num_train, "num_val": num_eval,
                        "num_test": num_eval},
            "noise": [{"kind": "morph", "rate": 1.0}], "model": MODEL,
            "method": {"name": args.method, **({"size_multiple": 8} if args.method == "adele" else {})},
            "train": {"epochs": 1, "batch_size": 32, "threads": 1, "device": args.device}}


def run(trial: dict, dataset, trials: int, storage: str, env: dict[str, str]) -> Peaks:
    """Peaks while ``trials`` concurrent trials train one epoch in a fresh Ray session."""
    import ray
    from ray import tune

    from trainables.tune_adapter import train

    ray.init(address="local", num_cpus=trials, include_dashboard=False, configure_logging=False,
             log_to_driver=False, runtime_env={"env_vars": env} if env else None)
    try:
        trainable = tune.with_resources(tune.with_parameters(train, dataset=dataset),
                                        {"cpu": 1, "gpu": 1 / trials if trial["train"]["device"] != "cpu" else 0})
        tuner = tune.Tuner(trainable, param_space={"trial": trial, "copy": tune.grid_search(list(range(trials)))},
                           tune_config=tune.TuneConfig(max_concurrent_trials=trials, reuse_actors=False),
                           run_config=tune.RunConfig(storage_path=storage, verbose=0,
                                                     checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
        with Peaks() as peaks:
            grid = tuner.fit()
        errors = [r.error for r in grid if r.error]
        if errors:
            raise SystemExit(f"error: a trial failed: {errors[0]}")
        return peaks
    finally:
        ray.shutdown()


def in_process(args: argparse.Namespace, name: str, n_train: int, n_eval: int) -> tuple[int, int]:
    """The engine alone, without Ray, in this (fresh) process: USS growth at the peak and after two
    epochs and a checkpoint, from building the trial on read-only arrays (as they arrive from the
    object store) to the end; the arrays themselves exist before the start and are not counted."""
    import ctypes

    from trainables.checkpoint import save_checkpoint
    from trainables.engine import Trainer, prepare_data

    if args.malloc_mmap_threshold:
        ctypes.CDLL("libc.so.6").mallopt(-3, args.malloc_mmap_threshold)  # M_MMAP_THRESHOLD
    cfg = parse_trial(trial_dict(args, n_train, n_eval))
    data = corrupt_once(cfg, create_dataset(cfg.dataset))
    for arr in [data.noisy, *(a for sp in data.dataset.splits().values() for a in (sp.images, sp.masks))]:
        arr.setflags(write=False)
    peak, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], memory(os.getpid())[1])
            stop.wait(0.005)

    start = memory(os.getpid())[1]
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    trainer = Trainer(cfg, prepare_data(cfg, data))
    for _ in range(2):
        trainer.run_epoch()
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(trainer.state_dict(), tmp)
    end = memory(os.getpid())[1]
    stop.set()
    thread.join()
    return peak[0] - start, end - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="ce")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--num-train", type=int, default=1000, help="training images of the large dataset")
    ap.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"))
    ap.add_argument("--malloc-mmap-threshold", type=int, default=65536, metavar="BYTES",
                    help="MALLOC_MMAP_THRESHOLD_ of the trial processes (default 65536: buffers above it are "
                         "returned to the system when freed, so USS shows live memory; 0: glibc's default, "
                         "which keeps freed transient buffers in the heap)")
    ap.add_argument("--in-process", action="store_true", help="measure the engine alone, without Ray")
    ap.add_argument("--in-process-size", choices=["tiny", "big"], help=argparse.SUPPRESS)
    ap.add_argument("--private-labels", dest="shared_labels", action="store_false",
                    help="each trial corrupts its own copy of the training labels (a study shares the search's)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join([repo, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    # the tiny dataset still fills every training and evaluation batch (same transient buffers)
    # the tiny dataset still fills every training and evaluation batch (same transient buffers)
    env = {"MALLOC_MMAP_THRESHOLD_": str(args.malloc_mmap_threshold)} if args.malloc_mmap_threshold else {}
    sizes = {"tiny": (64, 64), "big": (args.num_train, max(64, args.num_train // 10))}
    node: dict[str, dict[int, int]] = {}
    uss: dict[str, list[int]] = {}
    data_bytes = {}
    mib = lambda b: f"{b / 2**20:7.1f} MiB"  # noqa: E731
    print(f"machine: {machine(args.device)}; method {args.method}; device {args.device}; noisy labels "
          f"{'shared through the object store' if args.shared_labels else 'corrupted by each trial'}; trial "
          f"MALLOC_MMAP_THRESHOLD_ {args.malloc_mmap_threshold or 'glibc default'}", flush=True)
    if args.in_process_size:  # the child of --in-process
        name = args.in_process_size
        print(json.dumps(in_process(args, name, *sizes[name])))
        return 0
    if args.in_process:
        import subprocess

        child = [sys.executable, os.path.abspath(__file__), "--method", args.method, "--num-train", str(args.num_train),
                 "--size", *map(str, args.size), "--malloc-mmap-threshold", str(args.malloc_mmap_threshold)]
        grown = {}
        for name in sizes:
            out = subprocess.run([*child, "--in-process-size", name], capture_output=True, text=True, check=True)
            grown[name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  engine alone (fresh process), {name:4s} dataset: USS grows {grown[name][0] / 2**20:6.1f} MiB at "
                  f"the peak, {grown[name][1] / 2**20:6.1f} MiB after 2 epochs + checkpoint", flush=True)
        h, w = args.size
        data = sum((n + 2 * e) * h * w * 4 for n, e in [sizes["big"]]) - sum((n + 2 * e) * h * w * 4 for n, e in [sizes["tiny"]])
        share = (grown["big"][0] - grown["tiny"][0]) / data
        print(f"  peak growth from the tiny to the large dataset: {(grown['big'][0] - grown['tiny'][0]) / 2**20:.1f} MiB "
              f"for {data / 2**20:.1f} MiB more data = {100 * share:.1f} %")
        return 0
    with tempfile.TemporaryDirectory(prefix="noisyseg-memory-") as storage:
        for name, (n_train, n_eval) in sizes.items():
            trial = trial_dict(args, n_train, n_eval)
            cfg = parse_trial(trial)
            decoded = create_dataset(cfg.dataset)
            data_bytes[name] = sum(a.nbytes for s in decoded.splits().values() for a in (s.images, s.masks))
            dataset = corrupt_once(cfg, decoded) if args.shared_labels else decoded  # as study/tuner.py
            node[name], uss[name] = {}, []
            for trials in (1, 2):
                t = time.time()
                peaks = run(trial, dataset, trials, storage, env)
                node[name][trials] = peaks.node
                uss[name] += list(peaks.trials.values())
                print(f"  {name:4s} dataset ({mib(data_bytes[name])}), {trials} trial(s): peak node PSS {mib(peaks.node)}, "
                      f"peak private memory (USS) per trial {', '.join(mib(u) for u in peaks.trials.values())} "
                      f"({time.time() - t:.0f} s)", flush=True)
    data = data_bytes["big"] - data_bytes["tiny"]
    private = sum(uss["big"]) / len(uss["big"]) - sum(uss["tiny"]) / len(uss["tiny"])
    share = private / data
    print(f"a trial's private memory grows by {mib(private).strip()} from the tiny to the large dataset "
          f"({mib(data).strip()} more data): an extra trial adds {100 * share:.1f} % of the dataset's size "
          f"(target < 25 %: {'met' if share < 0.25 else 'NOT met'}); the dataset itself is shared through the object store")
    node_extra = (node["big"][2] - node["big"][1]) - (node["tiny"][2] - node["tiny"][1])
    print(f"node view (noisier: Ray's worker pool varies): second trial adds {mib(node['big'][2] - node['big'][1]).strip()} "
          f"with the large dataset, {mib(node['tiny'][2] - node['tiny'][1]).strip()} with the tiny one: "
          f"{100 * node_extra / data:.1f} % of the extra data")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(args.device), "method": args.method, "node_peak_bytes": node,
                       "trial_peak_uss_bytes": uss, "data_bytes": data_bytes, "extra_trial_data_share": share}, fh,
                       indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
