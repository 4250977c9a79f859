"""The replication grid of a study condition (Ray-free, so that a machine without Ray can expand a
study into its trials: benchmarks/reproduce.py on a GPU box)."""
from __future__ import annotations

from .spec import StudySpec
from .spec_checks import baseline_overrides


def top_configs(spec: StudySpec, records: list[dict]) -> list[dict]:
    """The ``final.top_k`` best full-budget trials' searched values (dotted keys), ranked by the
    study's metric (a validation number: spec_checks refuses test scores). Without a search
    (``num_samples: 0``): the trial as configured."""
    if spec.search.num_samples == 0:
        return [{"trial_id": None, "params": {}}]
    full = [r for r in records if not r["error"] and r["metrics"].get(spec.metric.name) is not None
            and not r["metrics"].get("diverged")
            and r["metrics"].get("epoch", 0) >= r["metrics"].get("epochs_total", 0)]
    full.sort(key=lambda r: r["metrics"][spec.metric.name], reverse=spec.metric.mode == "max")
    return [{"trial_id": r["trial_id"], "params": {k: v for k, v in r["config"].items() if "." in k}}
            for r in full[:spec.final.top_k]]


def replicas(spec: StudySpec, top: list[dict]) -> list[dict]:
    """The replication grid: each top configuration and each baseline, with every seed of
    ``final.seeds`` (as seed and noise seed: all configurations of a seed see the same noisy labels,
    so their differences are paired). ``label``: ``tuned`` (``tuned#k`` for rank k > 1) or the
    baseline's name."""
    out = []
    for rank, t in enumerate(top, 1):
        label = "tuned" if rank == 1 else f"tuned#{rank}"
        out += [{"label": label, "rank": rank, "seed": seed, "source_trial": t["trial_id"],
                 "overrides": {**t["params"], "seed": seed, "noise_seed": seed}} for seed in spec.final.seeds]
    best = top[0]["params"] if top else None
    for name, baseline in spec.baselines.items():
        overrides = baseline_overrides(baseline, best)
        if overrides is None:
            continue  # built on the tuned values, and no search trial finished
        out += [{"label": name, "rank": 0, "seed": seed, "source_trial": top[0]["trial_id"] if baseline.tuned else None,
                 "overrides": {**overrides, "seed": seed, "noise_seed": seed}} for seed in spec.final.seeds]
    return out
