"""Why a trial did not finish: :func:`study.results.trial_failure` (the experiment folder's owner),
importable here by its older name."""
from __future__ import annotations

from .results import ERROR_FILE, trial_failure

__all__ = ["ERROR_FILE", "trial_failure"]
