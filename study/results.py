"""The one reader of an experiment folder's trial results, and the rules every consumer shares.

Ray-free (the report, the export and benchmarks/reproduce.py run on machines without Ray). A Ray
trial folder holds ``params.json`` (the trial's config) and ``result.json`` (one JSON object per
reported epoch); :func:`read_trials` turns a condition folder into :class:`TrialRecord` s.

The rules, owned here and nowhere else:

- :func:`is_full_budget`: did the trial run its whole budget. ``epoch >= epochs_total``, the
  total as the trial reported it (Ray's adapter puts ``epochs_total`` in every result). A result
  *without* ``epochs_total`` (an older experiment, or the single-trial CLI's metrics that
  benchmarks/reproduce.py converts to a ``result.json``) cannot be shown to be full budget, unless
  the caller knows the trial's configured budget (``budget``: its ``train.epochs``, see
  :func:`configured_epochs`) and the trial reached it. A diverged trial is never full budget.
  (The old copies disagreed on a missing total: the report and the export said "not full", the
  replication grid and the searcher "full"; the report's reading is kept, refined by the budget.)
- :func:`best_trials`: the best search trials, the report's rule (``best_<condition>.yaml``), the
  replication grid's ``top_k`` and the export's "best search trial" alike.
- :func:`replica_label`: ``tuned`` for the best configuration, ``tuned#k`` for the k-th.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from trainables.tune_adapter import dotted_values

RESULTS_FILE = "result.json"
PARAMS_FILE = "params.json"


# -- reading -----------------------------------------------------------------------------------------

def read_results(path: str | Path) -> list[dict]:
    """The rows of a ``result.json`` (or ``metrics.jsonl``) in file order; [] when it is missing.
    Tolerant: a line that is not a JSON object (the last line torn by a crash) is skipped."""
    path = Path(path)
    try:
        text = path.read_text()
    except (FileNotFoundError, IsADirectoryError):
        return []
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if isinstance(row, dict):
            rows.append(row)
    return rows


def epoch_of(row: dict) -> int:
    return int(row.get("epoch", row.get("training_iteration", 0)))


def by_epoch(rows: Iterable[dict]) -> list[dict]:
    """One row per epoch, in epoch order; a resumed trial re-reports from its checkpoint: the
    latest write of an epoch wins."""
    seen: dict[int, dict] = {}
    for row in rows:
        seen[epoch_of(row)] = row
    return [seen[e] for e in sorted(seen)]


def params_of(config: dict) -> dict:
    """The searched values of a trial config (its dotted keys: trainables.tune_adapter.dotted_values)."""
    return dotted_values(config)


def replica_label(rank: int) -> str:
    """The label of the rank-th best configuration's replicates: ``tuned``, ``tuned#2``, ..."""
    rank = int(rank)
    return "tuned" if rank == 1 else f"tuned#{rank}"


def replica_of(config: dict) -> dict:
    """The ``replica`` entry of a replicate's config, with its label (experiments from before
    baselines carry only the rank: rank k -> :func:`replica_label`); {} -> label ``tuned``."""
    rep = dict((config or {}).get("replica") or {})
    if not rep.get("label"):
        rep["label"] = replica_label(rep.get("rank", 1))
    return rep


def configured_epochs(config: dict) -> int | None:
    """The epoch budget a Ray trial config asks for: ``train.epochs`` of the replica overrides, of
    the searched values, of the base trial, else the trial engine's default; None when the config
    says nothing readable (a config that is not a trial's)."""
    config = config or {}
    overrides = (config.get("replica") or {}).get("overrides") or {}
    trial = config.get("trial")
    for value in (overrides.get("train.epochs"), config.get("train.epochs"),
                  ((trial or {}).get("train") or {}).get("epochs") if isinstance(trial, dict) else None):
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    if not isinstance(trial, dict):
        return None
    from trainables.config import TrainConfig

    return TrainConfig().epochs


@dataclass
class TrialRecord:
    """One Ray trial: its id, folder, config (params.json), per-epoch history (one row per epoch),
    last result and failure (:func:`study.failures.trial_failure`: diverged / failed, else None)."""
    trial_id: str
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    last: dict = field(default_factory=dict)
    failure: str | None = None
    dir: Path | None = None
    status: str | None = None  # Ray's trial status (TERMINATED, ERROR, ...) where Ray gave it

    def slim(self) -> dict:
        """What a condition's done marker keeps of the trial."""
        return {"trial_id": self.trial_id, "config": self.config, "metrics": self.last, "status": self.status,
                "failure": self.failure}

    @property
    def params(self) -> dict:
        return params_of(self.config)

    @property
    def replica(self) -> dict:
        return replica_of(self.config)

    @property
    def full_budget(self) -> bool:
        return is_full_budget(self.last, configured_epochs(self.config))


def read_trial(tdir: str | Path) -> TrialRecord:
    """The record of one Ray trial folder (``params.json`` required, ``result.json`` optional)."""
    tdir = Path(tdir)
    config = json.loads((tdir / PARAMS_FILE).read_text())
    rows = read_results(tdir / RESULTS_FILE)
    trial_id = next((r["trial_id"] for r in reversed(rows) if r.get("trial_id")), None) or tdir.name
    history = by_epoch(rows)
    last = history[-1] if history else {}
    return TrialRecord(trial_id=str(trial_id), config=config, history=history, last=last,
                       failure=trial_failure(tdir, last), dir=tdir)


def read_trials(ray_dir: str | Path) -> list[TrialRecord]:
    """Every Ray trial under ``ray_dir`` once (by trial id, the last folder read wins), in folder
    name order."""
    seen: dict[str, TrialRecord] = {}
    for params in sorted(Path(ray_dir).glob(f"*/{PARAMS_FILE}")):
        t = read_trial(params.parent)
        seen[t.trial_id] = t
    return list(seen.values())


# -- the folder layout -------------------------------------------------------------------------------
# <experiment>/study.yaml, <condition>/ (the search's Ray trials), <condition>-final/ (the replicates),
# done/<condition> (the condition finished: its trials, slim), report/.

DONE_DIR = "done"


def search_dir(exp_dir: str | Path, slug: str) -> Path:
    return Path(exp_dir) / slug


def final_dir(exp_dir: str | Path, slug: str) -> Path:
    return Path(exp_dir) / f"{slug}-final"


def done_marker(exp_dir: str | Path, slug: str) -> Path:
    """The file that says condition ``slug`` finished (it is skipped on resume)."""
    return Path(exp_dir) / DONE_DIR / slug


def mark_done(exp_dir: str | Path, condition: dict, search: list[TrialRecord], final: list[TrialRecord],
              slug: str, **extra: Any) -> Path:
    """Write the done marker of a finished condition (its trials, slim)."""
    marker = done_marker(exp_dir, slug)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"condition": condition, "search": [t.slim() for t in search],
                                  "final": [t.slim() for t in final], **extra}, default=str) + "\n")
    return marker


def write_trial(tdir: str | Path, config: dict, rows: list[dict], error: str | None = None) -> None:
    """A trial folder as Ray writes it (``params.json``, ``result.json`` one row per epoch with the
    trial id, ``error.txt``), for trials run without Ray (benchmarks/reproduce.py's local executor)."""
    tdir = Path(tdir)
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / PARAMS_FILE).write_text(json.dumps(config, default=str))
    (tdir / RESULTS_FILE).write_text("".join(json.dumps({**r, "trial_id": tdir.name}) + "\n" for r in rows))
    if error:
        (tdir / ERROR_FILE).write_text(error.rstrip("\n") + "\n")


# -- the rules ---------------------------------------------------------------------------------------

def is_full_budget(result: dict | None, budget: int | None = None) -> bool:
    """Did the trial whose last result is ``result`` run its full budget? ``epoch >=
    epochs_total``; without ``epochs_total`` (or with 0) ``budget`` (the configured epochs) stands
    in, and with neither it is not full budget. Diverged (``diverged`` set): never."""
    result = result or {}
    if result.get("diverged"):
        return False
    total = result.get("epochs_total") or budget
    if not total:
        return False
    return int(result.get("epoch", 0) or 0) >= int(total)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def maximizes(goal: str) -> bool:
    """``max`` / ``maximize`` -> True, ``min`` / ``minimize`` -> False."""
    goal = str(goal).lower()
    if goal in ("max", "maximize"):
        return True
    if goal in ("min", "minimize"):
        return False
    raise ValueError(f"metric goal {goal!r}: expected max/maximize or min/minimize")


def best_trials(records: Iterable[TrialRecord], metric: str, goal: str, k: int | None = 1) -> list[TrialRecord]:
    """The ``k`` best search trials (all with ``k=None``), best first. Candidates: full budget
    (:attr:`TrialRecord.full_budget`, so never diverged), no failure, a finite ``metric`` in the
    last result. Order: the metric by ``goal``, ties by trial id (Ray's ids sort in creation
    order; every caller has them, the Optuna number only where the storage is read).

    Where the old copies disagreed the report's reading is kept: a trial Ray marked ERROR that
    finished its budget all the same (``failure`` None) is a candidate."""
    sign = -1.0 if maximizes(goal) else 1.0
    full = [r for r in records if r.failure is None and r.full_budget and finite(r.last.get(metric))]
    full.sort(key=lambda r: (sign * float(r.last[metric]), str(r.trial_id)))
    return full if k is None else full[:k]


ERROR_FILE = "error.txt"  # Ray appends "Failure # N (occurred at ...)" and the error to it


def trial_failure(trial_dir: Path, last_result: dict) -> str | None:
    """``"diverged at epoch 3: non-finite train loss (nan)"`` for a trial the engine stopped on a
    non-finite loss; ``"failed: <last line of Ray's error.txt>"`` for a trial whose last event is
    an error (a trial Ray retried and that went on reporting afterwards is not failed); else None.

    ``trial_dir``: the Ray trial folder (``<experiment>/<condition>/trial_<id>``); ``last_result``:
    its last reported result (``{}`` when it reported none)."""
    last_result = last_result or {}
    if last_result.get("diverged"):
        epoch = last_result.get("diverged_epoch", last_result.get("epoch"))
        reason = last_result.get("diverged_reason") or "non-finite train loss"
        return f"diverged at epoch {epoch}: {reason}"
    error = Path(trial_dir) / ERROR_FILE
    if not error.is_file():
        return None
    results = Path(trial_dir) / RESULTS_FILE
    if results.is_file() and results.stat().st_mtime_ns > error.stat().st_mtime_ns:
        return None  # retried after the error and reported since
    if is_full_budget(last_result):
        return None  # finished its budget after all
    try:
        lines = [ln.strip() for ln in error.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    lines = [ln for ln in lines if not ln.startswith("Failure # ")]
    return f"failed: {lines[-1]}" if lines else "failed (see error.txt)"
