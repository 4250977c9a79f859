"""Conditions side by side: each condition's search (then its replication) runs in its own driver
process on the same Ray cluster, so that the cluster's trial slots fill when one condition's
``max_concurrent`` trials cannot use them all (8 GPUs, 2 concurrent trials per condition: 4
conditions at once instead of one after another).

Nothing else changes: every condition is :func:`study.tuner.run_condition` as in a sequential study,
with its own Ray experiment folders, its own Optuna study in the shared storage and its ``done/``
marker, so ``--resume`` and the report work exactly as before. A condition process ends with its
parent (a killed driver leaves no orphan running trials), and Ctrl-C stops them all like one study.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import threading
import time
from multiprocessing.connection import wait
from pathlib import Path

from .preflight import trial_slots
from .spec import StudySpec, condition_slug

INTERRUPTED = 130  # exit status of a condition process whose Ray experiment stopped unfinished


def conditions_at_once(spec: StudySpec, pending: int, resources: dict[str, float], per_condition: int) -> int:
    """How many conditions to run at once: the cluster's trial slots divided by the trials one
    condition runs at a time, at least 1."""
    slots = trial_slots(spec, resources)
    if pending <= 1 or math.isinf(slots):  # nothing to overlap, or trials that ask for no resources
        return 1
    return max(1, min(pending, int(slots) // max(1, per_condition)))


def _die_with_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _condition_process(spec_dict: dict, exp_dir: str, ray_root: str, condition: dict, address: str,
                       verbose: int, parent: int) -> None:
    """Body of one condition's driver process (spawned: a moved experiment's new place reaches it
    through the environment, study.relocation)."""
    _die_with_parent(parent)
    import ray

    from .spec import parse_study
    from .terminal import configure, log_to_driver
    from .tuner import Interrupted, run_condition

    configure(verbose, live=False)  # the parent's --quiet/--verbose; no live line redrawn by several processes
    spec = parse_study(spec_dict)
    from trainables.plugins import runtime_env

    ray.init(address=address, configure_logging=False, log_to_driver=log_to_driver(),
             runtime_env=runtime_env(spec.plugins))  # the study's plugins reach this job's workers too
    try:
        run_condition(spec, Path(exp_dir), ray_root, condition, verbose=verbose)
    except (Interrupted, KeyboardInterrupt) as exc:
        print(f"[study] condition {condition_slug(condition)}: interrupted ({exc})", file=sys.stderr, flush=True)
        sys.exit(INTERRUPTED)
    finally:
        ray.shutdown()


def run_side_by_side(spec: StudySpec, exp_dir: Path, ray_root: str, conditions: list[dict], at_once: int,
                     address: str, verbose: int = 1) -> None:
    """Run ``conditions`` in condition processes, ``at_once`` at a time, on the Ray cluster at
    ``address``; raises :class:`study.tuner.Interrupted` when one was interrupted and RuntimeError
    when one failed."""
    from .searcher import open_storage, storage_url
    from .tuner import Interrupted

    open_storage(storage_url(spec.storage.optuna, exp_dir))  # create the Optuna tables once, not in a race
    ctx = mp.get_context("spawn")
    waiting = list(conditions)
    running: dict[int, tuple[mp.process.BaseProcess, str, float]] = {}
    interrupted, failed = [], []
    try:
        while waiting or running:
            while waiting and len(running) < at_once:
                condition = waiting.pop(0)
                slug = condition_slug(condition)
                proc = ctx.Process(target=_condition_process, name=f"condition-{slug}",
                                   args=(spec.to_dict(), str(exp_dir), ray_root, condition, address, verbose,
                                         os.getpid()))
                proc.start()
                running[proc.sentinel] = (proc, slug, time.time())
                print(f"[study] condition {slug}: started ({len(running)} running side by side)", flush=True)
            for sentinel in wait(list(running)):
                proc, slug, t0 = running.pop(sentinel)
                proc.join()
                if proc.exitcode == 0:
                    print(f"[study] condition {slug}: done in {time.time() - t0:.0f} s", flush=True)
                elif proc.exitcode == INTERRUPTED:
                    interrupted.append(slug)
                else:
                    failed.append(f"{slug} (exit status {proc.exitcode})")
            if interrupted or failed:
                waiting.clear()  # let the running ones finish, start no more
    except KeyboardInterrupt:  # the condition processes got the same Ctrl-C and stop their trials
        for proc, slug, _ in running.values():
            proc.join(timeout=120)
            if proc.is_alive():
                proc.terminate()
            interrupted.append(slug)
    if failed:
        raise RuntimeError(f"condition(s) {', '.join(failed)} failed; their output is above")
    if interrupted:
        raise Interrupted(f"condition(s) {', '.join(interrupted)} unfinished")
