"""``python -m study.run SPACE.yaml --dry-run``: what a study would run, after every check a real
start makes (spec, metric, every categorical combination, data roots, storage location, trust and
lock-free state of a resumed folder, the cluster's resources), without starting Ray or writing.

The cluster request is checked against ``--address`` (probed from a child process, as a real start
does) or, for a local Ray, against this machine's CPUs and GPUs (what a local Ray would offer).
"""
from __future__ import annotations

import os
from typing import Any

from .spec import Parameter, StudySpec
from .replication import replicas


def local_nodes() -> list[dict]:
    """The resources a local Ray would have on this machine (CPUs it may use, CUDA devices)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    gpus = 0
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no torch CUDA: no GPU
        gpus = 0
    return [{"CPU": float(cpus), "GPU": float(gpus)}]


def check_cluster(spec: StudySpec, address: str | None) -> str:
    """Check the per-trial request against the cluster (or this machine); one line describing it."""
    from .preflight import check_resources, probe_cluster

    address = address or os.environ.get("RAY_ADDRESS") or "local"
    nodes = local_nodes() if address == "local" else probe_cluster(address)
    check_resources(spec.resources.cpu, spec.resources.gpu, nodes, where="resources")
    cpu = sum(n.get("CPU", 0) for n in nodes)
    gpu = sum(n.get("GPU", 0) for n in nodes)
    where = "a local Ray on this machine" if address == "local" else f"the cluster at {address}"
    return f"{where}: {len(nodes)} node(s), {cpu:g} CPUs, {gpu:g} GPUs"


def describe_parameter(p: Parameter) -> str:
    text = p.kind.describe()
    if p.when:
        text += "  when " + ", ".join(f"{k}={v!r}" for k, v in p.when.items())
    return text


def _trial_summary(trial: dict) -> str:
    ds, model, method, train = (trial.get(k) or {} for k in ("dataset", "model", "method", "train"))
    size = "x".join(str(s) for s in ds.get("size") or []) or "default size"
    noise = ", ".join(f"{n.get('kind')} {n.get('rate', '')}".strip() for n in trial.get("noise") or []) or "no noise"
    return (f"{method.get('name')} | {model.get('arch')}/{model.get('encoder')} | {ds.get('name')} {size} | {noise} | "
            f"{train.get('epochs')} epochs, batch {train.get('batch_size')}, {train.get('optimizer')} lr "
            f"{train.get('lr')}")


def budget(spec: StudySpec, epochs: int) -> dict[str, Any]:
    """Trials, replicas and epochs of one condition (search: at most every trial's full budget;
    with ASHA at least ``grace_period`` epochs per trial)."""
    n = spec.search.num_samples
    grid = replicas(spec, [{"trial_id": None, "params": {}}] * spec.final.top_k)
    asha = spec.scheduler.type == "asha"
    low = n * min(epochs, spec.scheduler.grace_period) if asha else n * epochs
    labels: dict[str, int] = {}
    for r in grid:
        labels[r["label"]] = labels.get(r["label"], 0) + 1
    return {"trials": n, "search_max": n * epochs, "search_min": low, "replicas": len(grid), "labels": labels,
            "final": len(grid) * epochs}


def _wandb_mode(mode: str) -> str:
    if mode != "auto":
        return mode
    from .wandb_log import resolve_mode

    return f"auto ({resolve_mode(mode)})"


def render(spec: StudySpec, space: str, exp_dir, cluster: str, resuming: bool) -> str:
    from trainables.plugins import describe

    s, sched = spec.search, spec.scheduler
    lines = [f"study {spec.name} ({space}): {'would resume' if resuming else 'would write'} {exp_dir}",
             f"  metric: {spec.metric.name} ({spec.metric.goal}); "
             + (f"search: {s.algorithm}, seed {s.seed}, {s.num_samples} trials per condition, "
                f"{s.max_concurrent or 'as many as fit'} at a time" if s.num_samples
                else f"no search (the trial as configured is replicated), {s.max_concurrent or 'as many as fit'} at a time"),
             f"  scheduler: {sched.type}" + (f" (grace {sched.grace_period} epochs, reduction factor "
                                             f"{sched.reduction_factor:g}, max_t {sched.max_t or 'train.epochs'})"
                                             if sched.type == "asha" else ""),
             f"  resources per trial: cpu {spec.resources.cpu:g}, gpu {spec.resources.gpu:g}; {cluster}",
             *([f"  plugins: {describe(spec.plugins)}"] if spec.plugins else []),
             f"  replication: top {spec.final.top_k} with seeds {spec.final.seeds}; baselines: "
             f"{', '.join(spec.baselines) or 'none'}; W&B: {_wandb_mode(spec.logging.wandb.mode)}"]
    totals = {"search_max": 0, "search_min": 0, "final": 0, "trials": 0, "replicas": 0}
    conditions = spec.typed_conditions()
    for cond in conditions:
        b = budget(spec, cond.config.train.epochs)
        for k in totals:
            totals[k] += b[k]
        given = ", ".join(f"{k}={v!r}" for k, v in cond.values.items()) or "no conditions"
        lines += ["", f"condition {cond.slug} ({given})", f"  trial: {_trial_summary(cond.base)}"]
        if spec.parameters:
            width = max(len(k) for k in spec.parameters)
            lines.append("  search space:")
            lines += [f"    {k.ljust(width)}  {describe_parameter(p)}" for k, p in spec.parameters.items()]
        else:
            lines.append("  search space: none (every trial runs the trial config as is)")
        search = (f"{b['search_min']}-{b['search_max']} epochs" if b["search_min"] != b["search_max"]
                  else f"{b['search_max']} epochs")
        reps = ", ".join(f"{label} x{n}" for label, n in b["labels"].items()) or "none"
        lines.append(f"  trials: {b['trials']} ({search}); replicas: {b['replicas']} ({reps}; {b['final']} epochs)")
    search = (f"{totals['search_min']}-{totals['search_max']}" if totals["search_min"] != totals["search_max"]
              else f"{totals['search_max']}")
    lines += ["", f"budget: {len(conditions)} condition(s), {totals['trials']} trials + {totals['replicas']} "
                  f"replicas = {search} + {totals['final']} epochs"
                  + (" (ASHA stops trials between grace_period and the full budget)" if sched.type == "asha" and s.num_samples else ""),
              "dry run: all checks passed; nothing was written and nothing was started"]
    return "\n".join(lines)
