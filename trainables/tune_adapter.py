"""The thin adapter Ray Tune calls: config dict -> TrialConfig -> engine.fit, epochs -> tune.report.

The only module of ``trainables`` that imports Ray. The trial config arrives as
``{"trial": <base trial dict>, "<dotted.key>": value, ..., "images_every": n}``: the dotted keys
(sampled parameters) are applied to the base dict, then the whole is validated. A replicate of a
finished search carries ``"replica": {"overrides": {key: value}, ...}`` instead (keys applied too).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import numpy as np

from .config import TrialConfig, parse_trial, with_values  # with_values: also importable from here
from .errors import DiskFullError, is_disk_full
from .paths import pid_alive as _alive

IMAGES_FILE = "images.npz"  # the epoch's image panel, saved beside the checkpoint state
SCRATCH_PREFIX = "noisyseg-"  # <tmp>/noisyseg-<pid>-XXXX: a trial's staged checkpoints


def dotted_values(config: dict[str, Any] | None) -> dict[str, Any]:
    """The sampled parameters of a Ray trial config: its dotted keys (``noise.0.rate``), or of a
    replica's ``overrides``. The one rule for "is a searched key"."""
    return {k: v for k, v in (config or {}).items() if "." in k}


def trial_config(config: dict[str, Any]) -> TrialConfig:
    """The TrialConfig of a Ray trial config (base trial + dotted overrides); in a Ray worker the
    study's plugins are imported first (trainables.plugins.load_worker)."""
    from .plugins import load_worker

    load_worker()
    values = dotted_values(config)
    values.update((config.get("replica") or {}).get("overrides") or {})
    return parse_trial(with_values(config.get("trial") or {}, values))


class TuneReporter:
    """Engine reporter: one ``tune.report`` per epoch with the checkpoint (and image panel)."""

    def __init__(self, epochs_total: int):
        self.epochs_total = epochs_total

    def report(self, metrics: dict, checkpoint_dir: str | None, images: dict | None = None) -> None:
        from ray import tune

        # the GPU(s) Ray gave this trial (None without a GPU request): which trials shared a device
        metrics = {**metrics, "epochs_total": self.epochs_total,
                   "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        if checkpoint_dir is None:  # diverged: the trial ends with this result (Optuna: FAIL)
            tune.report(metrics)
            return
        if images:
            arrays = {k: np.asarray(v) for k, v in images.items()}
            np.savez(os.path.join(checkpoint_dir, IMAGES_FILE), epoch=np.asarray(metrics.get("epoch", 0)), **arrays)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))


def remove_dead_scratch(root: str | None = None) -> list[str]:
    """Delete the scratch folders of trial processes that no longer run (killed mid-checkpoint,
    they may hold a partial state.pt.tmp); folders of live processes are left alone."""
    root = root or tempfile.gettempdir()
    gone = []
    try:
        names = os.listdir(root)
    except OSError:
        return gone
    for name in names:
        pid, sep, _ = name[len(SCRATCH_PREFIX):].partition("-")
        if not name.startswith(SCRATCH_PREFIX) or not sep or not pid.isdigit() or _alive(int(pid)):
            continue
        path = os.path.join(root, name)
        try:
            if os.stat(path).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        gone.append(path)
    return gone


def _free(path: str) -> int | None:
    """Free bytes of the file system of ``path`` (or of its nearest existing parent)."""
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path or "/").free
    except OSError:
        return None


def train(config: dict[str, Any], dataset: Any = None) -> None:
    """Ray Tune function trainable. ``dataset``: a pre-decoded SegData from the object store (or
    None: the trial decodes its own)."""
    from ray import tune

    from .engine import fit

    cfg = trial_config(config)
    resume_from = None
    checkpoint = tune.get_checkpoint()
    remove_dead_scratch()
    scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
    try:
        if checkpoint is not None:
            resume_from = checkpoint.to_directory(os.path.join(scratch, "resume"))
        fit(cfg, TuneReporter(cfg.train.epochs), dataset=dataset, resume_from=resume_from,
            images_every=int(config.get("images_every") or 0), scratch_dir=scratch)
    except (OSError, RuntimeError) as exc:  # a full disk: one line for the trial's failure reason
        if not is_disk_full(exc):
            raise
        shutil.rmtree(scratch, ignore_errors=True)  # the staged checkpoint of the failed write
        where = getattr(exc, "filename", None)  # an OSError names its file (Ray's copy to storage)
        folder = os.path.dirname(str(where)) if where else scratch  # torch.save's error does not
        raise DiskFullError(folder, _free(folder)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
