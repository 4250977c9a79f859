"""One condition of a study: the search (Ray Tune + OptunaSearch + ASHA), then the replication of
its top configurations with several seeds at full budget. Both are Ray experiments in the study's
folder, restored (unfinished and errored trials continue from their checkpoints) when they exist.

Experiment folder::

    <storage>/<name>/study.yaml          the resolved spec the study runs
    <storage>/<name>/optuna.db           the Optuna studies, one per condition (default storage)
    <storage>/<name>/<condition>/        Ray experiment of the search
    <storage>/<name>/<condition>-final/  Ray experiment of the replication
    <storage>/<name>/done/<condition>    marker: the condition is finished
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter

from trainables.tune_adapter import train

from .preflight import trial_slots
from .estimate import priors as estimate_priors
from .progress import trial_lines
from .relocation import RelocatableSearchGenerator
from .results import TrialRecord, done_marker, is_full_budget, mark_done, trial_failure
from .searcher import PrunedAwareOptunaSearch, open_storage, reconcile, storage_url
from .spec.space import Space, make_sampler
from .spec import Condition, StudySpec, condition_slug
from .replication import replicas, top_configs
from .trial_info import TrialNamer
from .wandb_log import StudyWandbCallback

_DATASETS: dict[str, Any] = {}  # dataset config (JSON) -> decoded SegData, shared by conditions
_CORRUPTED: dict[str, Any] = {}  # (dataset, noise, noise seed) (JSON) -> CorruptedData


def study_name(spec: StudySpec, slug: str) -> str:
    return f"{spec.name}/{slug}"


def load_optuna_study(spec: StudySpec, exp_dir: str | Path, slug: str) -> optuna.Study:
    url = storage_url(spec.storage.optuna, exp_dir)
    return optuna.load_study(study_name=study_name(spec, slug), storage=open_storage(url))


def _dataset(spec: StudySpec, cond: Condition) -> Any:
    """The decoded dataset of a condition with its training labels corrupted for the condition's
    noise and seed, built once in the driver and handed to every trial through Ray's object store
    (trials with another noise config or seed, e.g. replicates, corrupt their own copy); None when a
    searched parameter changes the dataset."""
    if any(k.startswith("dataset.") for k in spec.parameters):
        return None
    from trainables.data import create_dataset
    from trainables.trial_data import corrupt_once
    cfg = cond.config
    key = json.dumps(cond.base["dataset"], sort_keys=True)
    if key not in _DATASETS:
        _DATASETS[key] = create_dataset(cfg.dataset)
    noise_key = json.dumps([key, cfg.to_dict()["noise"], cfg.effective_noise_seed], sort_keys=True)
    if noise_key not in _CORRUPTED:
        _CORRUPTED[noise_key] = corrupt_once(cfg, _DATASETS[key])
    return _CORRUPTED[noise_key]


def search_concurrency(spec: StudySpec) -> int:
    """Trials one condition runs at a time: ``search.max_concurrent``, else every slot of the cluster."""
    return _concurrency(spec)


def _concurrency(spec: StudySpec) -> int:
    if spec.search.max_concurrent:
        return spec.search.max_concurrent
    slots = trial_slots(spec, ray.cluster_resources())
    return 1 if math.isinf(slots) else max(1, int(slots))


def _callbacks(spec: StudySpec, exp_dir: Path, slug: str, job_type: str, namer: TrialNamer) -> list:
    w = spec.logging.wandb
    if w.mode == "disabled":
        return []
    return [StudyWandbCallback(project=w.project, group=f"{spec.name}/{slug}", mode=w.mode, job_type=job_type,
                               wandb_dir=str(exp_dir) if "://" not in str(exp_dir) else None,  # runs in <exp>/wandb/
                               entity=w.entity, upload_timeout=w.upload_timeout,
                               tags=[spec.name, slug, job_type], study=spec.name, slug=slug, namer=namer)]


def trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def _run_config(spec: StudySpec, exp_dir: Path, ray_root: str, name: str, slug: str, job_type: str,
                verbose: int, *, total: int, epochs: int, early_stop: bool) -> tune.RunConfig:
    """``verbose``: 0 quiet, 1 the study's own lines (study.progress), 2 also Ray's status tables."""
    columns = {k: k.split(".")[-1] for k in spec.parameters if spec.parameters[k].kind.searched}
    if job_type == "final":
        columns = {"replica/label": "config", "replica/seed": "seed"}
    reporter = tune.CLIReporter(parameter_columns=columns, max_report_frequency=30,
                                metric_columns={"epoch": "epoch", spec.metric.name: spec.metric.name})
    namer = TrialNamer(slug, storage_url(spec.storage.optuna, exp_dir), study_name(spec, slug))
    lines = trial_lines(slug=slug, phase=job_type, total=total, epochs=epochs, metric=spec.metric.name,
                        parameters=spec.parameters, namer=namer, early_stop=early_stop,
                        concurrency=min(total, _concurrency(spec)), priors=estimate_priors(exp_dir, slug))
    return tune.RunConfig(
        name=name, storage_path=ray_root, verbose=1 if verbose >= 2 else 0, progress_reporter=reporter,
        # the last checkpoint is all that resume and export need (Ray snapshots the experiment
        # state before deleting the previous one, so a resume never points at a deleted one)
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        failure_config=tune.FailureConfig(max_failures=1),
        callbacks=[*_callbacks(spec, exp_dir, slug, job_type, namer), lines])


def _fit(path: str, trainable, make_tuner) -> tune.ResultGrid:
    """Restore the Ray experiment at ``path`` if it exists (never restart_errored: it crashes with
    OptunaSearch), else start it. A restore keeps the param_space stored in the folder: the trials
    left run the configuration the first ones ran, and a folder written before a trial key was added
    (train.diagnostics, after d323de3) still restores (Ray refuses a param_space with other keys)."""
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True,
                                   restart_errored=False)
    else:
        tuner = make_tuner()
    return tuner.fit()


def _records(grid: tune.ResultGrid) -> list[TrialRecord]:
    """One record per Ray trial (study.results.TrialRecord: id, config, last result, failure, Ray's status)."""
    trials = grid._experiment_analysis.trials  # Trial objects keep the id even without a result
    return [TrialRecord(trial_id=t.trial_id, config=t.config or {}, last=dict(t.last_result or {}),
                        failure=trial_failure(Path(t.local_path), dict(t.last_result or {})) if t.local_path else None,
                        dir=Path(t.local_path) if t.local_path else None, status=t.status)
            for t in trials]


class Interrupted(Exception):
    """The Ray experiment stopped before all its trials finished (Ctrl-C, driver signal)."""


def _check_finished(records: list[TrialRecord], expected: int, since: float) -> None:
    """Raise Interrupted unless every expected trial ended. After an interrupt Ray marks the running
    trials TERMINATED like the finished ones; those count as unfinished: they reported during this
    fit (``since``) and ended neither ``done`` (Ray's mark of a trial that ended by itself or by the
    scheduler; it is not in the experiment state on disk) nor at their full budget."""
    def unfinished(r: TrialRecord) -> bool:
        m = r.last
        if r.status == "ERROR":
            return False
        if r.status != "TERMINATED":
            return True
        fresh = m.get("timestamp", 0) >= since
        return fresh and not m.get("done") and not is_full_budget(m)

    left = [r for r in records if unfinished(r)]
    if left or len(records) < expected:
        raise Interrupted(f"{len(left)} trial(s) unfinished, {len(records)} of {expected} started")


def run_search(spec: StudySpec, exp_dir: Path, ray_root: str, condition: dict, *, verbose: int = 1) -> list[dict]:
    if spec.search.num_samples == 0:
        return []  # a fixed protocol: the trial as configured is replicated
    cond = spec.condition(condition)
    slug, epochs = cond.slug, cond.config.train.epochs
    trainable = tune.with_resources(tune.with_parameters(train, dataset=_dataset(spec, cond)),
                                    {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    param_space = {"trial": cond.trial(), "images_every": spec.logging.wandb.images_every}
    url = storage_url(spec.storage.optuna, exp_dir)

    def make_tuner() -> tune.Tuner:
        searcher = PrunedAwareOptunaSearch(Space(spec, condition), metric=spec.metric.name, mode=spec.metric.mode,
                                           sampler=make_sampler(spec), study_name=study_name(spec, slug),
                                           storage_url=url)
        sched = spec.scheduler
        scheduler = (ASHAScheduler(time_attr="epoch", max_t=sched.max_t or epochs, grace_period=sched.grace_period,
                                   reduction_factor=sched.reduction_factor)
                     if sched.type == "asha" else FIFOScheduler())
        return tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(search_alg=RelocatableSearchGenerator(
                                            ConcurrencyLimiter(searcher, _concurrency(spec))),
                                        scheduler=scheduler, num_samples=spec.search.num_samples,
                                        metric=spec.metric.name, mode=spec.metric.mode, reuse_actors=True,
                                        trial_dirname_creator=trial_dirname),
            run_config=_run_config(spec, exp_dir, ray_root, slug, slug, "search", verbose,
                                   total=spec.search.num_samples, epochs=epochs,
                                   early_stop=spec.scheduler.type == "asha"))

    since = int(time.time())
    records = _records(_fit(f"{ray_root}/{slug}", trainable, make_tuner))
    study = optuna.load_study(study_name=study_name(spec, slug), storage=open_storage(url))
    _check_finished(records, spec.search.num_samples, since)
    reconcile(study, {r.trial_id: (r.last, r.status == "ERROR") for r in records}, spec.metric.name,
              {r.trial_id: r.failure for r in records if r.failure})
    return records


def run_final(spec: StudySpec, exp_dir: Path, ray_root: str, condition: dict, records: list[TrialRecord], *,
              verbose: int = 1) -> list[TrialRecord]:
    """Re-run the top configurations and the baselines with every seed of ``final.seeds``."""
    grid = replicas(spec, top_configs(spec, records))
    if not grid:
        return []
    cond = spec.condition(condition)
    slug = cond.slug
    trainable = tune.with_resources(tune.with_parameters(train, dataset=_dataset(spec, cond)),
                                    {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    param_space = {"trial": cond.trial(), "images_every": spec.logging.wandb.images_every,
                   "replica": tune.grid_search(grid)}
    name = f"{slug}-final"

    def make_tuner() -> tune.Tuner:
        return tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=_concurrency(spec),
                                        metric=spec.metric.name, mode=spec.metric.mode, reuse_actors=True,
                                        trial_dirname_creator=trial_dirname),
            run_config=_run_config(spec, exp_dir, ray_root, name, slug, "final", verbose, total=len(grid),
                                   epochs=cond.config.train.epochs, early_stop=False))

    since = int(time.time())
    final = _records(_fit(f"{ray_root}/{name}", trainable, make_tuner))
    _check_finished(final, len(grid), since)
    return final


def run_condition(spec: StudySpec, exp_dir: Path, ray_root: str, condition: dict, *, verbose: int = 1) -> bool:
    """Search then replicate one condition; skipped (returns False) when already finished."""
    slug = condition_slug(condition)
    marker = done_marker(exp_dir, slug)
    if marker.exists():
        return False
    records = run_search(spec, exp_dir, ray_root, condition, verbose=verbose)
    final = run_final(spec, exp_dir, ray_root, condition, records, verbose=verbose)
    mark_done(exp_dir, condition, records, final, slug)
    return True
