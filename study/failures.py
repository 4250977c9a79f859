"""Why a trial did not finish, in one line, from the files Ray and the engine leave behind."""
from __future__ import annotations

from pathlib import Path

from .results import RESULTS_FILE, is_full_budget

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
