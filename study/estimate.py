"""A study's wall time on this machine, estimated before it starts from a short calibration.

Each distinct trial configuration of the study (the search trial of every condition, each replica
kind: tuned, every baseline) is trained for two epochs on a few images of its own data, with its own
model, method and thread count; the second epoch gives the seconds per training image and per
evaluated image, scaled to the configuration's full epoch (training images, the diagnostics pass when
``train.diagnostics`` is ``eval_pass``, val and test at ``eval_every``). The study's epochs are then
priced over the trials that run at a time:

- search: between synchronous successive halving from ``grace_period`` (every trial to the first
  rung, ``1/reduction_factor`` of them to the next, ...: what ASHA approaches with many trials; with
  few, it promotes more) and every trial at its full budget (the dry run's budget line gives the
  hard minimum, every trial stopped at ``grace_period``);
- replication: every replica at its full budget.

What it leaves out: Ray's start-up and per-trial overhead (docs/performance.md), and other load on
the machine. ``python -m study.run SPEC`` prints it before the search starts and ``--dry-run``
shows it (``--set`` keys and ``--smoke`` apply). A started study keeps the calibrated seconds per
epoch of each kind in ``<experiment>/estimate.json``: the live ETA (study.progress) prices a kind
that has not run yet at its calibrated cost relative to the kinds that have."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .spec import StudySpec, baseline_overrides, representative_params

ESTIMATE_FILE = "estimate.json"  # {condition slug: {kind: calibrated seconds per epoch}}
CALIBRATION_BATCHES = 2  # training batches per calibration epoch
CALIBRATION_EPOCHS = 2  # the last is measured (the first pays one-time costs)


@dataclass(frozen=True)
class EpochCost:
    """Seconds per full epoch of one configuration, and what they were measured from."""
    seconds: float
    train_s_per_image: float
    eval_s_per_image: float
    setup_s: float  # data + model + method construction, once per trial


@dataclass
class Estimate:
    """The study's estimated wall time (seconds) on this machine, per condition and in total."""
    concurrency: int
    conditions: list[dict[str, Any]] = field(default_factory=list)  # slug, search_low/high, final, kinds
    calibration_s: float = 0.0

    @property
    def low(self) -> float:
        return sum(c["search_low"] + c["final"] for c in self.conditions)

    @property
    def high(self) -> float:
        return sum(c["search_high"] + c["final"] for c in self.conditions)


def _small(data, n_train: int, n_eval: int):
    """The first ``n_train`` training and ``n_eval`` val/test images of ``data``."""
    return replace(data, images={s: (v[:n_train] if s == "train" else v[:n_eval]) for s, v in data.images.items()},
                   clean={s: (v[:n_train] if s == "train" else v[:n_eval]) for s, v in data.clean.items()},
                   noisy=data.noisy[:n_train])


def epoch_cost(trial: dict, data=None) -> EpochCost:
    """Calibrate one trial configuration (a trial dict as the study hands it to a trial);
    ``data``: its prepared TrialData, if already built."""
    import segmentation_models_pytorch  # noqa: F401  # imported once by every trial: not its setup
    import torch

    from trainables.config import parse_trial
    from trainables.engine import Trainer
    from trainables.trial_data import prepare_data

    cfg = parse_trial(trial, "")
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    data = data if data is not None else prepare_data(cfg)
    full_train, full_val = len(data.noisy), len(data.images["val"])
    full_test = len(data.images["test"])
    n_train = min(full_train, cfg.train.batch_size * CALIBRATION_BATCHES)
    n_eval = min(full_val, full_test, max(1, n_train // 2))
    try:
        trainer = Trainer(replace(cfg, eval_every=1), _small(data, n_train, n_eval))  # every epoch evaluates
        setup = time.perf_counter() - t0
        for _ in range(CALIBRATION_EPOCHS):
            metrics, _ = trainer.run_epoch()
    finally:
        torch.set_num_threads(threads)  # the Trainer set the trial's thread count in this process
    train_s = n_train / metrics["images_per_s"]
    eval_images = 2 * n_eval + (0 if cfg.train.diagnostics == "train_pass" else n_train)
    eval_s = max(0.0, metrics["epoch_time_s"] - train_s) / eval_images
    diag = 0 if cfg.train.diagnostics == "train_pass" else full_train
    evals = (full_val + full_test) / max(1, cfg.eval_every)
    seconds = full_train * train_s / n_train + (diag + evals) * eval_s
    return EpochCost(seconds, train_s / n_train, eval_s, setup)


def halving_epochs(n: int, epochs: int, grace: int, factor: float) -> float:
    """Epochs of ``n`` trials under synchronous successive halving from ``grace`` by ``factor``."""
    total, done, rung, alive = 0.0, 0, grace, float(n)
    while done < epochs:
        stop = min(rung, epochs)
        total += alive * (stop - done)
        done, alive, rung = stop, max(1.0, alive / factor), int(math.ceil(rung * factor))
    return total


def _key(trial: dict) -> str:
    clean = {k: v for k, v in trial.items() if k not in ("seed", "noise_seed")}
    return json.dumps(clean, sort_keys=True, default=str)


def concurrency(spec: StudySpec, cpus: int | None = None) -> int:
    """Trials at a time on this machine: ``search.max_concurrent`` within its CPUs."""
    cpus = cpus or os.cpu_count() or 1
    fit = int(cpus // spec.resources.cpu) if spec.resources.cpu else cpus
    return max(1, min(spec.search.max_concurrent or fit, fit))


def estimate(spec: StudySpec, cpus: int | None = None) -> Estimate:
    """Calibrate every distinct configuration of ``spec`` once, then price its epochs."""
    from trainables.config import parse_trial

    t0 = time.perf_counter()
    slots = concurrency(spec, cpus)
    out = Estimate(concurrency=slots)
    costs: dict[str, EpochCost] = {}
    datas: dict[str, Any] = {}

    def cost(trial: dict) -> EpochCost:
        from trainables.trial_data import prepare_data

        key = _key(trial)
        if key not in costs:
            cfg = parse_trial(trial, "")
            data_key = json.dumps([trial.get(k) for k in ("dataset", "noise", "noise_seed", "seed")], default=str)
            if data_key not in datas:
                datas[data_key] = prepare_data(cfg)
            costs[key] = epoch_cost(trial, datas[data_key])
        return costs[key]

    for cond in spec.typed_conditions():
        params = representative_params(spec, cond.values)
        searched = cond.trial(params)
        epochs = cond.config_with(params).train.epochs
        c = cost(searched)
        n, sched = spec.search.num_samples, spec.scheduler
        if n and sched.type == "asha":
            top = min(epochs, sched.max_t or epochs)
            low = halving_epochs(n, top, sched.grace_period, sched.reduction_factor)
            high = n * top
        else:
            low = high = n * epochs
        # the replicas' epochs, by kind (the tuned values are not known yet: a searched point stands in)
        kinds: dict[str, float] = {}
        for label, sets in [("tuned", params)] + [(name, baseline_overrides(b, params))
                                                  for name, b in spec.baselines.items()]:
            if sets is None:
                continue
            kinds[label] = cost(cond.trial(sets)).seconds
        seeds = len(spec.final.seeds)
        top_k = spec.final.top_k if n else 1
        final = seeds * (top_k * kinds.get("tuned", 0.0) + sum(v for k, v in kinds.items() if k != "tuned")) * epochs
        setup = c.setup_s * (n + seeds * (top_k + len(spec.baselines)))
        out.conditions.append({"slug": cond.slug, "epoch_s": c.seconds, "kinds": kinds,
                               "search_low": (low * c.seconds + setup / 2) / slots,
                               "search_high": (high * c.seconds + setup / 2) / slots,
                               "final": (final + setup / 2) / slots})
    out.calibration_s = time.perf_counter() - t0
    return out


def epoch_costs(est: Estimate) -> dict[str, dict[str, float]]:
    """Per condition slug, the calibrated seconds per epoch of each kind (``search``, ``tuned``,
    each baseline), as study.progress.kind names them."""
    return {c["slug"]: {"search": c["epoch_s"], **c["kinds"]} for c in est.conditions}


def write(exp_dir: str | Path, est: Estimate) -> None:
    Path(exp_dir, ESTIMATE_FILE).write_text(json.dumps(epoch_costs(est), indent=1) + "\n")


def priors(exp_dir: str | Path, slug: str) -> dict[str, float]:
    """The calibrated seconds per epoch of ``slug``'s kinds ({} when the study was not calibrated)."""
    try:
        data = json.loads(Path(exp_dir, ESTIMATE_FILE).read_text())
        return {str(k): float(v) for k, v in (data.get(slug) or {}).items() if float(v) > 0}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def render(est: Estimate) -> list[str]:
    """The estimate as lines for the terminal (the caller prints them)."""
    from .progress import duration

    def span(lo: float, hi: float) -> str:
        return duration(hi) if abs(hi - lo) < 1 else f"{duration(lo)}-{duration(hi)}"

    lines = [f"estimated wall time on this machine: {span(est.low, est.high)} ({est.concurrency} trial(s) at a "
             f"time; calibrated in {duration(est.calibration_s)}; Ray's start-up and other load not included)"]
    for c in est.conditions:
        kinds = ", ".join(f"{k} {v:.1f}s" for k, v in c["kinds"].items())
        lines.append(f"  [{c['slug']}] search {span(c['search_low'], c['search_high'])} "
                     f"(an epoch {c['epoch_s']:.1f}s), replication {duration(c['final'])} (per epoch: {kinds})")
    return lines
