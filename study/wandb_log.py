"""W&B: one run per trial, grouped by study and condition, the epoch as step, image panels.

Ray's WandbLoggerCallback does the process handling (one logging actor per trial on the driver's
node, a short upload timeout so Ctrl-C does not hang); this adds the epoch as the step, the image
panels the engine writes beside a checkpoint (input, clean, noisy, current label, prediction), and
the offline fallback when no API key is configured.
"""
from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from ray.air.integrations.wandb import WandbLoggerCallback, _QueueItem, _WandbLoggingActor

from trainables.tune_adapter import IMAGES_FILE

PANELS = ("image", "clean", "noisy", "current", "prediction")


def resolve_mode(mode: str) -> str:
    """auto: the WANDB_MODE environment variable, else online with an API key, else offline."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        import wandb
        if wandb.api.api_key:
            return "online"
    except Exception:  # noqa: BLE001 - no login: offline
        pass
    return "offline"


def palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (class id -> RGB); 255 (void) is white."""
    out = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out[i] = (r, g, b)
    out[255] = (255, 255, 255)
    return out


def colour(panel: dict[str, np.ndarray]) -> np.ndarray:
    """One RGB strip per training image: input | clean | noisy | current | prediction."""
    pal = palette()
    rows = []
    for i in range(len(panel["image"])):
        tiles = [panel["image"][i]] + [pal[panel[k][i]] for k in PANELS[1:] if k in panel]
        rows.append(np.concatenate(tiles, axis=1))
    return np.stack(rows)


class _EpochStepActor(_WandbLoggingActor):
    def _handle_result(self, result: dict) -> tuple[dict, dict]:
        log, config = super()._handle_result(result)
        if "epoch" in result:  # resumed trials restart Ray's iteration count; the epoch does not
            log["training_iteration"] = int(result["epoch"])
        return log, config


class StudyWandbCallback(WandbLoggerCallback):
    _logger_actor_cls = _EpochStepActor

    def __init__(self, *, project: str, group: str, mode: str, job_type: str, wandb_dir: str | None,
                 entity: str | None = None, upload_timeout: int = 30, tags: list[str] | None = None):
        mode = resolve_mode(mode)
        if mode == "offline":
            os.environ.setdefault("WANDB_MODE", "offline")  # Ray's key check reads the variable
        extra: dict[str, Any] = {"mode": mode, "job_type": job_type, "resume": "allow", "tags": tags or []}
        if wandb_dir:
            os.makedirs(wandb_dir, exist_ok=True)
            extra["dir"] = wandb_dir
        if entity:
            extra["entity"] = entity
        super().__init__(project=project, group=group, upload_timeout=upload_timeout,
                         excludes=["trial", "epochs_total", "time_this_iter_s", "time_total_s",
                                   "timestamp", "time_since_restore", "iterations_since_restore"],
                         **extra)

    def _start_logging_actor(self, trial, exclude_results: list, **wandb_init_kwargs) -> None:
        """Ray's version hands WANDB_API_KEY to the logging actor through ``runtime_env`` env_vars,
        which Ray writes in plain text into its session logs. The actor runs on the driver's node
        (``_force_on_current_node``), where the key is already found without being passed: a local
        Ray inherits the driver's environment, a cluster node reads ``wandb login``'s ~/.netrc."""
        if not self._remote_logger_class:
            import ray
            from ray.air.integrations.wandb import _force_on_current_node

            self._remote_logger_class = ray.remote(num_cpus=0, **_force_on_current_node(), max_restarts=-1,
                                                   max_task_retries=-1)(self._logger_actor_cls)
        super()._start_logging_actor(trial, exclude_results, **wandb_init_kwargs)

    def on_checkpoint(self, iteration: int, trials: list, trial, checkpoint, **info) -> None:
        """Log the image panel saved beside the checkpoint, if the engine wrote one."""
        try:
            path = f"{checkpoint.path}/{IMAGES_FILE}"
            with checkpoint.filesystem.open_input_file(path) as f:
                data = np.load(io.BytesIO(f.read()), allow_pickle=False)
                panel = {k: data[k] for k in data.files if k != "epoch"}
                epoch = int(data["epoch"]) if "epoch" in data.files else iteration
        except (FileNotFoundError, OSError):
            return
        if trial not in self._trial_queues:
            self.log_trial_start(trial)
        import wandb
        strips = colour(panel)
        item = {"training_iteration": epoch, "epoch": epoch,
                "panels": [wandb.Image(s, caption="input | clean | noisy | current | prediction") for s in strips]}
        self._trial_queues[trial].put((_QueueItem.RESULT, item))
