"""How much a study prints: ``--quiet`` (0), the default (1), ``--verbose`` (2).

The default shows the study's own lines only (one per finished trial, a live summary, the
conditions and the report); Ray's routine INFO/WARNING lines, the trial processes' output
(checkpoint notices, W&B's per-run console blocks), the "performance bottleneck" hints and
deprecation warnings of the libraries are left out. ``--verbose`` brings Ray's and W&B's output
back (Ray's status tables, every worker's output, W&B's run summaries). Errors are never hidden.

Set once per driver process before Ray starts (local Ray workers inherit the environment); the
callbacks read :data:`LEVEL` when they print, so a resumed experiment (whose callbacks Ray
restores from its pickled state) follows the current flags.
"""
from __future__ import annotations

import logging
import os
import warnings

LEVEL = 1
LIVE = True  # redraw a summary line in place on a terminal (off when conditions run side by side)

_RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air", "ray.util", "ray.data")
_TUNE_CONTROLLER = "ray.tune.execution.tune_controller"  # logs "Trial task failed" (logger filters do not propagate)
_TUNE_RUN = "ray.tune.tune"  # logs "Trials did not complete: [train_...]" after a fit with failed trials
_FILTERED = (_TUNE_CONTROLLER, _TUNE_RUN)


class _DropTrialTraceback(logging.Filter):
    """Tune logs each failed trial's traceback, and the failed trials' ids again at the end; the study
    prints one line per failed trial with its reason instead (the traceback stays in the trial's
    error.txt; ``--verbose`` prints both)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Trial task failed for trial", "Trials did not complete"))


_FILTER = _DropTrialTraceback()

_EXPERIMENT_STATE = "ray.tune.execution.experiment_state"  # "Saving experiment state ... failed" + traceback


class _OneLineError(logging.Filter):
    """Ray logs a failed sync of the experiment state (retried at the next save) with a traceback;
    the study shows it as one line with the exception (``--verbose``: the traceback too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}{type(exc).__name__}: {exc}".replace("\n", " ")
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


_ONE_LINE = _OneLineError()


def configure(level: int = 1, live: bool = True) -> None:
    """Apply ``level`` to this process (and, through the environment, to the processes it starts)."""
    global LEVEL, LIVE
    LEVEL, LIVE = level, live and level == 1
    if level >= 2:
        for name in _FILTERED:
            logging.getLogger(name).removeFilter(_FILTER)
        logging.getLogger(_EXPERIMENT_STATE).removeFilter(_ONE_LINE)
        return
    # W&B: no per-run banners and summaries, no console capture
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")
    # library deprecations, in this process and in the local Ray workers started from it
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in RDB ..."
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    except ImportError:
        pass
    import ray  # noqa: F401 - importing Ray sets its loggers' levels: set ours after it

    for name in _RAY_LOGGERS:  # "Token authentication is enabled ...", Tune's routine warnings
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in _FILTERED:
        logging.getLogger(name).addFilter(_FILTER)
    logging.getLogger(_EXPERIMENT_STATE).addFilter(_ONE_LINE)


def log_to_driver() -> bool:
    """Whether Ray forwards the workers' stdout/stderr (trial output, W&B actors) to the driver."""
    return LEVEL >= 2
