"""What the terminal lines and the W&B runs say about a Ray trial: its name (``<condition>/t<k>``
with k the Optuna trial number, ``<condition>/final-<label>-s<seed>`` for a replicate), its end state
(complete / pruned / diverged / failed) and its parameters."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .failures import trial_failure
from .results import configured_epochs, is_full_budget
from .results import params_of as searched_values  # the sampled parameters (dotted keys)

STATES = ("complete", "pruned", "diverged", "failed")


class TrialNamer:
    """Names of a condition's trials. The Optuna trial number comes from the study's storage
    (the searcher stores the Ray trial id as a user attribute when it suggests the trial); without
    one (replicates, or a trial Optuna does not know) Ray's trial index is used."""

    def __init__(self, slug: str, optuna_url: str | None = None, optuna_study: str | None = None):
        self.slug, self.optuna_url, self.optuna_study = slug, optuna_url, optuna_study
        self._numbers: dict[str, int] = {}
        self._storage = None

    def __getstate__(self) -> dict:  # pickled with Ray's experiment state: no live storage
        return {**self.__dict__, "_storage": None, "_numbers": {}}

    def number(self, trial_id: str) -> int | None:
        """The Optuna trial number of a Ray trial (None when the storage does not know it)."""
        if trial_id not in self._numbers and self.optuna_url and self.optuna_study:
            try:
                from .searcher import RAY_ID, open_storage

                if self._storage is None:
                    self._storage = open_storage(self.optuna_url)
                study_id = self._storage.get_study_id_from_name(self.optuna_study)
                for t in self._storage.get_all_trials(study_id, deepcopy=False):
                    if RAY_ID in t.user_attrs:
                        self._numbers[t.user_attrs[RAY_ID]] = t.number
            except Exception:  # noqa: BLE001 - a name is cosmetic: fall back to Ray's index
                pass
        return self._numbers.get(trial_id)

    def short(self, trial, trials: list | None = None) -> str:
        """``t<k>`` or ``final-<label>-s<seed>``."""
        replica = (trial.config or {}).get("replica")
        if isinstance(replica, dict) and "label" in replica:
            return f"final-{replica['label']}-s{replica.get('seed')}"
        k = self.number(trial.trial_id)
        if k is None:
            k = ray_index(trial, trials)
        return f"t{k}"

    def name(self, trial, trials: list | None = None) -> str:
        return f"{self.slug}/{self.short(trial, trials)}"


def ray_index(trial, trials: list | None = None) -> int | str:
    """Ray's index of a trial: the ``_NNNNN`` suffix of generated ids, else its position."""
    head, sep, tail = str(trial.trial_id).rpartition("_")
    if sep and tail.isdigit():
        return int(tail)
    if trials and trial in trials:
        return trials.index(trial)
    return trial.trial_id


def trial_dir(trial) -> Path | None:
    """The trial's folder on the driver (None when Ray has not given it one)."""
    try:
        return Path(trial.local_path) if trial.local_path else None
    except AttributeError:  # no storage context yet
        return None


def end_state(trial, failed: bool = False) -> tuple[str, str | None]:
    """(state, reason): ``failed`` (Ray error; reason: the error line), ``diverged`` (non-finite
    loss), ``pruned`` (stopped by the scheduler before its last epoch: not
    :func:`study.results.is_full_budget`), else ``complete``."""
    result = dict(trial.last_result or {})
    folder = trial_dir(trial)
    if result.get("diverged"):
        return "diverged", trial_failure(folder or Path("."), result)
    if failed or trial.status == "ERROR":
        reason = trial_failure(folder, result) if folder else None
        return "failed", reason or "failed (see the trial's error.txt)"
    if not is_full_budget(result, configured_epochs(getattr(trial, "config", None))):
        return "pruned", None
    return "complete", None


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)
