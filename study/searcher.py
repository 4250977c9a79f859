"""Ray's OptunaSearch over a persistent Optuna storage, with early-stopped trials recorded PRUNED.

Ray reports a trial that ASHA stopped as complete; told so, TPE would take its truncated score as a
full one. Here a trial whose last result is not full budget (:func:`study.results.is_full_budget`:
``epoch < epochs_total``) is told PRUNED (its value is
the last intermediate value). Errored trials are not told at all: ``resume_errored`` may continue
them, and :func:`reconcile` settles whatever is still open after a condition's run (trials Ray lost
in a driver crash become FAIL). The searcher pickles without its study and reconnects to the
storage on load, so the Optuna study survives driver crashes (the storage is the truth).
"""
from __future__ import annotations

import logging
from pathlib import Path

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from .relocation import relocated
from .results import finite, is_full_budget

log = logging.getLogger(__name__)
RAY_ID = "ray_trial_id"


def storage_url(spec_url: str | None, exp_dir: str | Path) -> str:
    """The Optuna storage of an experiment: SQLite in its folder unless the study names one."""
    if spec_url:
        return spec_url
    return f"sqlite:///{Path(exp_dir).resolve() / 'optuna.db'}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB URL (sqlite:///, postgresql://, mysql://...) or ``journal:///path/file.log``."""
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage
        return JournalStorage(JournalFileBackend(url[len("journal://"):]))
    # conditions run side by side write one SQLite file from several processes: wait for its lock
    kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, heartbeat_interval=None, **kwargs)


class PrunedAwareOptunaSearch(OptunaSearch):
    def __init__(self, space, *, metric: str, mode: str, sampler, study_name: str, storage_url: str):
        self._storage_url = storage_url
        super().__init__(space=space, metric=metric, mode=mode, sampler=sampler,
                         study_name=study_name, storage=open_storage(storage_url))

    # -- Ray hooks ----------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        ot_trial = self._ot_trials[trial_id]
        ot_trial.set_user_attr(RAY_ID, trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._completed_trials:
            self._report(trial_id, result)

    def _report(self, trial_id: str, result: dict | None) -> None:
        """The epoch's metric as the Optuna trial's intermediate value at step = epoch."""
        value = (result or {}).get(self.metric)
        if trial_id not in self._ot_trials or not finite(value):
            return  # e.g. val_miou on an epoch without evaluation
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        ot_trial = self._ot_trials[trial_id]
        frozen = _frozen(self._ot_study, ot_trial.number)
        if frozen.state == TrialState.RUNNING and step not in frozen.intermediate_values:
            ot_trial.report(float(value), step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if error or trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return  # errored: may be resumed; settled by reconcile() if not
        ot_trial = self._ot_trials[trial_id]
        if _frozen(self._ot_study, ot_trial.number).state != TrialState.RUNNING:
            self._completed_trials.add(trial_id)
            return
        # Ray hands the result that stops a trial (its last epoch, or the one ASHA stops it at) to
        # on_trial_complete only, never to on_trial_result: record it as that epoch's value first
        self._report(trial_id, result)
        tell(self._ot_study, ot_trial.number, result, self.metric)
        self._completed_trials.add(trial_id)

    # -- checkpointing: the study lives in the storage, not in the pickle ---------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_ot_trials"] = {tid: t.number for tid, t in self._ot_trials.items()}
        state["_ot_study"] = None
        state["_storage"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        numbers = state.pop("_ot_trials", {})
        self.__dict__.update(state)
        self._storage_url = relocated(self._storage_url)  # the experiment folder may have moved
        self._storage = open_storage(self._storage_url)
        self._ot_study = optuna.load_study(study_name=self._study_name, storage=self._storage,
                                           sampler=self._sampler)
        by_number = {t.number: t for t in self._ot_study.get_trials(deepcopy=False)}
        self._ot_trials = {}
        for tid, number in numbers.items():
            if number in by_number:
                self._ot_trials[tid] = optuna.trial.Trial(self._ot_study, by_number[number]._trial_id)

    def save(self, checkpoint_path: str) -> None:
        import ray.cloudpickle as pickle
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def restore(self, checkpoint_path: str) -> None:
        import ray.cloudpickle as pickle
        with open(checkpoint_path, "rb") as f:
            self.__setstate__(pickle.load(f))


def _frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number))


def outcome(result: dict | None, metric: str, errored: bool = False) -> tuple[TrialState, float | None]:
    """Optuna state and value of a Ray trial from its last result."""
    if errored or not result or result.get("diverged"):  # diverged: a non-finite loss stopped it
        return TrialState.FAIL, None
    if not is_full_budget(result):  # stopped before its budget (ASHA), or no budget to show it ran
        return TrialState.PRUNED, None
    value = result.get(metric)
    return (TrialState.COMPLETE, float(value)) if finite(value) else (TrialState.FAIL, None)


def tell(study: optuna.Study, number: int, result: dict | None, metric: str, errored: bool = False,
         reason: str | None = None) -> None:
    """``reason``: why an errored trial failed (study.results.trial_failure), kept as its ``failure``."""
    state, value = outcome(result, metric, errored)
    try:
        if result and result.get("diverged"):
            reason = f"diverged at epoch {result.get('diverged_epoch')}: {result.get('diverged_reason')}"
        if reason and state == TrialState.FAIL and _frozen(study, number).state == TrialState.RUNNING:
            study._storage.set_trial_user_attr(  # the reason, visible in optuna-dashboard
                study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number), "failure", reason)
        study.tell(number, value if state == TrialState.COMPLETE else None, state=state, skip_if_finished=True)
    except Exception as exc:  # noqa: BLE001 - a bad value must not stop the study
        log.warning("could not record trial %s in Optuna: %s", number, exc)


def reconcile(study: optuna.Study, ray_trials: dict[str, tuple[dict | None, bool]], metric: str,
              failures: dict[str, str] | None = None) -> None:
    """Settle every Optuna trial still RUNNING after a condition's run: from the Ray trial's last
    result (``ray_trials``: trial id -> (last result, errored)), or FAIL when Ray never knew it
    (``failures``: trial id -> why it failed, kept as the FAIL's ``failure`` attribute)."""
    for ft in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        result, errored = ray_trials.get(ft.user_attrs.get(RAY_ID), (None, True))
        value = (result or {}).get(metric)
        if not errored and finite(value):  # the last epoch's value, as on_trial_complete records it
            step = int(result.get("epoch", result.get("training_iteration", 0)))
            if step not in ft.intermediate_values:
                study._storage.set_trial_intermediate_value(ft._trial_id, step, float(value))
        tell(study, ft.number, result, metric, errored, (failures or {}).get(ft.user_attrs.get(RAY_ID)))
