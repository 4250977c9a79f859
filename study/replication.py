"""The replication grid of a study condition (Ray-free, so that a machine without Ray can expand a
study into its trials: benchmarks/reproduce.py on a GPU box)."""
from __future__ import annotations

from .results import TrialRecord, best_trials, replica_label
from .spec import StudySpec, baseline_overrides


def top_configs(spec: StudySpec, records: list[TrialRecord]) -> list[dict]:
    """The ``final.top_k`` best full-budget trials' searched values (dotted keys), ranked by the
    study's metric (a validation number: study.spec.metric refuses test scores) with the report's rule
    (:func:`study.results.best_trials`: the report's ``best_<condition>.yaml`` is ``tuned``).
    ``records``: the search's trials (the tuner's, or :func:`study.results.read_trials`). Without a
    search (``num_samples: 0``): the trial as configured."""
    if spec.search.num_samples == 0:
        return [{"trial_id": None, "params": {}}]
    return [{"trial_id": t.trial_id, "params": t.params}
            for t in best_trials(records, spec.metric.name, spec.metric.mode, spec.final.top_k)]


def replicas(spec: StudySpec, top: list[dict]) -> list[dict]:
    """The replication grid: each top configuration and each baseline, with every seed of
    ``final.seeds`` (as seed and noise seed: all configurations of a seed see the same noisy labels,
    so their differences are paired). ``label``: ``tuned`` (``tuned#k`` for rank k > 1) or the
    baseline's name."""
    out = []
    for rank, t in enumerate(top, 1):
        out += [{"label": replica_label(rank), "rank": rank, "seed": seed, "source_trial": t["trial_id"],
                 "overrides": {**t["params"], "seed": seed, "noise_seed": seed}} for seed in spec.final.seeds]
    best = top[0]["params"] if top else None
    for name, baseline in spec.baselines.items():
        overrides = baseline_overrides(baseline, best)
        if overrides is None:
            continue  # built on the tuned values, and no search trial finished
        out += [{"label": name, "rank": 0, "seed": seed, "source_trial": top[0]["trial_id"] if baseline.tuned else None,
                 "overrides": {**overrides, "seed": seed, "noise_seed": seed}} for seed in spec.final.seeds]
    return out
