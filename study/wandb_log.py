"""W&B: one run per trial, grouped by study and condition, the epoch as step, image panels.

Ray's WandbLoggerCallback does the process handling (one logging actor per trial on the driver's
node, a short upload timeout so Ctrl-C does not hang); this adds what a W&B user expects to find:

- run names ``<condition>/t<k>`` (k: the Optuna trial number) and ``<condition>/final-<label>-s<seed>``
  for replicates; the run config is the trial config as a nested dict plus ``study``, ``condition``
  (and ``replica: {label, seed}``), without Ray's bookkeeping (pid, date, hostname, node_ip, ...);
- the end state in the summary (``state``: complete / pruned / diverged / failed, ``failure``: why)
  and as a tag for the runs that did not complete;
- scalars only: list-valued diagnostics become ``name/0``, ``name/1``, ...; strings and nulls are
  dropped (a diverged run's reason goes to the summary);
- image panels (input | clean | noisy | current label | prediction per training image) upscaled
  to rows of at least 256 px with a class-colour legend;
- runs under ``<experiment>/wandb/`` (one level), silent logging actors unless ``--verbose``;
- the driver never waits on a logging actor: results go to the actors' queues from a background
  thread per trial (Ray's callback calls ``Queue.put`` synchronously in Tune's event loop, and the
  first put of a trial waits until its queue actor's process has started: 1.5-4 s per trial on two
  busy cores, which Tune reported as "process_trial_result ... may be a performance bottleneck");
  at the end of an experiment the queued items are flushed before the actors are stopped;
- the actor waits for W&B's service process to write the run before it returns (Ray kills the
  actor and its child processes right after, which could leave an offline run's file empty).
"""
from __future__ import annotations

import io
import math
import os
import queue
import threading
import time
from numbers import Number
from typing import Any

import numpy as np
from ray.air.integrations.wandb import WandbLoggerCallback, _QueueItem, _WandbLoggingActor

from trainables.label_writers import voc_palette
from trainables.tune_adapter import IMAGES_FILE

from . import terminal
from .results import RESULTS_FILE, by_epoch, read_results
from .trial_info import TrialNamer, end_state

PANELS = ("image", "clean", "noisy", "current", "prediction")
PANEL_TITLES = ("input", "clean", "noisy", "current label", "prediction")
MIN_ROW_PX = 256  # panel rows are upscaled (nearest neighbour) to at least this height
GAP, TITLE_PX = 6, 32  # white space between tiles and rows; the title row's height
RAY_KEYS = ["trial_id", "experiment_tag", "node_ip", "experiment_id", "hostname", "pid", "date", "config",
            "trial", "epochs_total", "time_this_iter_s", "time_total_s", "timestamp", "time_since_restore",
            "iterations_since_restore", "checkpoint_dir_name", "done", "should_checkpoint"]
STATE = "state"  # queue item: the trial's end state (summary and tags), sent before END
IMAGES = "images"  # queue item: an image panel, rendered in the logging actor


def resolve_mode(mode: str) -> str:
    """auto: the WANDB_MODE environment variable, else online with an API key, else offline."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY") or _netrc_key():
        return "online"
    return "offline"


def check_mode(mode: str) -> None:
    """Online logging needs a key where the driver runs; fail before anything is written or started."""
    from trainables.errors import ConfigError

    if resolve_mode(mode) == "online" and not (os.environ.get("WANDB_API_KEY") or _netrc_key()):
        raise ConfigError("logging.wandb.mode: online (from " + ("WANDB_MODE" if mode == "auto" else "the spec")
                          + ") needs a W&B API key (WANDB_API_KEY, or `wandb login` on this machine); "
                          "allowed without one: auto (logs offline), offline, disabled")


def _netrc_key() -> bool:
    """Whether ``wandb login`` stored a key (in ~/.netrc, or $NETRC) for the W&B host. Read directly:
    asking wandb would set up its service in the driver (and its deprecated ``wandb.api`` warns)."""
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        auth = netrc.netrc(os.environ.get("NETRC") or os.path.expanduser("~/.netrc")).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def palette() -> np.ndarray:
    """The PASCAL VOC colour map (class id -> RGB, the export's own: label_writers.voc_palette);
    255 (void) is white."""
    out = np.asarray(voc_palette(), np.uint8).reshape(256, 3).copy()
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


def scalars(result: dict[str, Any], exclude: set[str] = frozenset()) -> dict[str, Any]:
    """What W&B gets of a result: numbers as they are, lists of numbers split into ``key/i``;
    strings, nulls, nested and other values dropped."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        if key in exclude or key.split("/", 1)[0] in exclude:
            continue
        if isinstance(value, np.generic) and np.ndim(value) == 0:
            value = value.item()
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, Number):
            out[key] = value
        elif isinstance(value, (list, tuple)) and value and all(
                isinstance(v, Number) and not isinstance(v, bool) for v in value):
            out.update({f"{key}/{i}": v for i, v in enumerate(value)})
    return out


def class_names(result: dict[str, Any]) -> list[str]:
    """The run's class names in class order, from its per-class metric keys (``train_iou/<class>``)."""
    return [k.split("/", 1)[1] for k in result if k.startswith("train_iou/")]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def panel_image(panel: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """One readable RGB image of a panel: a title row, each training image as a row of tiles
    (input | clean | noisy | current label | prediction) upscaled (nearest neighbour) to at least
    ``MIN_ROW_PX`` px, and a legend of the class colours (the run's classes, and void when present)."""
    from PIL import Image, ImageDraw

    strips = colour(panel)
    n, h, w, _ = strips.shape
    titles = [t for key, t in zip(PANELS, PANEL_TITLES) if key in panel]
    scale = max(1, math.ceil(MIN_ROW_PX / h))
    tile_w, row_h = w // len(titles) * scale, h * scale
    width = len(titles) * tile_w + (len(titles) - 1) * GAP
    font = _font(18)
    labels = [int(v) for k in PANELS[1:] if k in panel for v in np.unique(panel[k])]
    classes = list(range(len(names))) if names else sorted({v for v in labels if v != 255})
    entries = [(c, names[c] if c < len(names) else f"class {c}") for c in classes]
    if 255 in labels:
        entries.append((255, "void"))
    swatch, per_row = 22, max(1, width // 220)
    legend_h = 12 + math.ceil(len(entries) / per_row) * (swatch + 10)
    canvas = Image.new("RGB", (width, TITLE_PX + n * (row_h + GAP) + legend_h), "white")
    draw = ImageDraw.Draw(canvas)
    for i, title in enumerate(titles):
        draw.text((i * (tile_w + GAP) + tile_w // 2, TITLE_PX // 2), title, fill="black", font=font, anchor="mm")
    y = TITLE_PX
    for strip in strips:
        big = strip.repeat(scale, axis=0).repeat(scale, axis=1)
        for i in range(len(titles)):
            canvas.paste(Image.fromarray(np.ascontiguousarray(big[:, i * tile_w:(i + 1) * tile_w])),
                         (i * (tile_w + GAP), y))
        y += row_h + GAP
    pal = palette()
    for j, (c, name) in enumerate(entries):
        x0 = 10 + (j % per_row) * 220
        y0 = y + 6 + (j // per_row) * (swatch + 10)
        draw.rectangle([x0, y0, x0 + swatch, y0 + swatch], fill=tuple(int(v) for v in pal[c]), outline="black")
        draw.text((x0 + swatch + 8, y0 + swatch // 2), f"{c}: {name}" if c != 255 else name, fill="black",
                  font=font, anchor="lm")
    return np.asarray(canvas)


def _earlier_epochs(trial) -> list[dict]:
    """The epochs a restored trial reported before its stop (its ``result.json``), one row per epoch.
    They are logged again first when its W&B run is continued: a driver killed with SIGKILL takes
    W&B's unflushed records with it (a short offline run's file can be empty), and W&B drops the
    steps it already has, so the run ends with its whole history once."""
    if not trial.path or "://" in trial.path:  # results in remote storage are not read back here
        return []
    return [row for row in by_epoch(read_results(os.path.join(trial.path, RESULTS_FILE))) if "epoch" in row]


class _StudyLoggingActor(_WandbLoggingActor):
    """Ray's logging actor, with the epoch as step, no ``trial_log_path`` in the config, the end
    state as summary and tags, and image panels rendered here (not in the driver)."""

    def run(self, queue=None):
        if queue is not None:
            self.queue = queue
        os.environ["WANDB_START_METHOD"] = "thread"
        run = self._wandb.init(*self.args, **self.kwargs)
        while True:
            kind, content = self.queue.get()
            if kind == _QueueItem.END:
                break
            try:
                if kind == _QueueItem.CHECKPOINT:
                    self._handle_checkpoint(content)
                elif kind == STATE:
                    run.summary["state"] = content["state"]
                    if content.get("failure"):
                        run.summary["failure"] = content["failure"]
                    if content["state"] != "complete":
                        run.tags = tuple(dict.fromkeys([*(run.tags or ()), content["state"]]))
                elif kind == IMAGES:
                    image = self._wandb.Image(panel_image(content["panel"], content["classes"]),
                                              caption="rows: training images; columns: input | clean | "
                                                      "noisy | current label | prediction")
                    self._wandb.log({"panels": image, "epoch": content["epoch"]}, step=content["epoch"])
                else:
                    log, _ = self._handle_result(content)  # Ray's config keys stay out of the config
                    if "epoch" in content:  # resumed trials restart Ray's iteration count; the epoch does not
                        log["training_iteration"] = int(content["epoch"])
                    self._wandb.log(log, step=log.get("training_iteration"))
            except Exception as exc:  # noqa: BLE001 - a lost data point must not end the run's logging
                print(f"W&B logging of {self._trial_name} skipped an item: {exc!r}")
        self._wandb.finish()
        # finish() returns before W&B's service process has written the run to disk; Ray kills the
        # actor (and that process) as soon as run() returns: wait for the service to shut down first
        self._wandb.teardown()


class StudyWandbCallback(WandbLoggerCallback):
    _logger_actor_cls = _StudyLoggingActor
    AUTO_CONFIG_KEYS: list[str] = []  # Ray's trial_id, pid, date, hostname, node_ip, ...: not in the config

    def __init__(self, *, project: str, group: str, mode: str, job_type: str, wandb_dir: str | None,
                 entity: str | None = None, upload_timeout: int = 30, tags: list[str] | None = None,
                 study: str = "", slug: str = "", namer: TrialNamer | None = None):
        extra: dict[str, Any] = {"mode": resolve_mode(mode), "job_type": job_type, "resume": "allow",
                                 "tags": tags or []}
        if wandb_dir:  # W&B writes its runs into <dir>/wandb/
            os.makedirs(wandb_dir, exist_ok=True)
            extra["dir"] = wandb_dir
        if entity:
            extra["entity"] = entity
        super().__init__(project=project, group=group, upload_timeout=upload_timeout, excludes=list(RAY_KEYS),
                         **extra)
        self.study, self.slug = study, slug
        self.mode = mode  # as configured (auto is resolved again where the experiment is resumed)
        self.namer = namer or TrialNamer(slug)
        self._outboxes: dict[str, tuple[queue.Queue, threading.Thread]] = {}  # trial id -> (items, sender)
        self._draining: list[queue.Queue] = []  # outboxes of ended trials, until their sender is through
        self._classes: dict[str, list[str]] = {}
        self._ended: set[str] = set()  # trials whose run got its end state (log_trial_end)

    def __getstate__(self) -> dict:  # pickled into tuner.pkl before anything runs: no live parts
        state = dict(self.__dict__)
        state.update(_outboxes={}, _draining=[], _classes={}, _ended=set(), _trial_logging_actors={},
                     _trial_logging_futures={},
                     _logging_future_to_trial={}, _trial_queues={}, _remote_logger_class=None)
        return state

    def setup(self, *args, **kwargs) -> None:
        """Ray's setup less its API-key check: that check raises without a key unless WANDB_MODE is set
        in the driver's environment (so a study restored from ``tuner.pkl``, whose callback is
        unpickled without running ``__init__``, could not resume offline), and it asks wandb through
        the deprecated ``wandb.api``. The mode decides instead, resolved here, where the experiment
        runs now: offline and disabled need no key; online finds it (WANDB_API_KEY or ``wandb login``)
        in the logging actor, which runs on this node."""
        self.kwargs["mode"] = resolve_mode(self.mode)

    def __setstate__(self, state: dict) -> None:  # experiments pickled before these fields existed
        self.__dict__.update({"_ended": set(), "mode": state.get("kwargs", {}).get("mode", "auto"), **state})

    # -- the config, name and settings of a run ----------------------------------------------------
    def run_config(self, trial) -> dict[str, Any]:
        """The trial config as a nested dict, with ``study``, ``condition`` (and ``replica``)."""
        from trainables.tune_adapter import trial_config

        config = trial.config or {}
        try:
            nested = trial_config(config).to_dict()
        except Exception:  # noqa: BLE001 - the trial itself will report what is wrong
            nested = {k: v for k, v in config.items() if k not in ("replica", "images_every")}
        out: dict[str, Any] = {"study": self.study, "condition": self.slug, **nested}
        replica = config.get("replica")
        if isinstance(replica, dict):
            out["replica"] = {"label": replica.get("label"), "seed": replica.get("seed")}
        else:
            number = self.namer.number(trial.trial_id)
            if number is not None:
                out["optuna_trial"] = number
        return out

    def log_trial_start(self, trial) -> None:
        import wandb

        init = dict(id=trial.trial_id, name=self.namer.name(trial), allow_val_change=True, group=self.group,
                    project=self.project, config=self.run_config(trial), **self.kwargs)
        if terminal.LEVEL < 2:  # no banners, per-run summaries or console capture in the actor
            init["settings"] = wandb.Settings(silent=True, console="off")
        self._start_logging_actor(trial, self._exclude_results + self.excludes, **init)
        for row in _earlier_epochs(trial):  # a restored trial: what its W&B run had before the stop
            self._send(trial, (_QueueItem.RESULT, scalars(row, set(self._exclude_results + self.excludes))))

    def _start_logging_actor(self, trial, exclude_results: list, **wandb_init_kwargs) -> None:
        """Ray's version with two changes. It hands WANDB_API_KEY to the logging actor through
        ``runtime_env`` env_vars, which Ray writes in plain text into its session logs; the actor runs
        on the driver's node (``_force_on_current_node``), where the key is found without being
        passed: a local Ray inherits the driver's environment, a cluster node reads ``wandb login``'s
        ~/.netrc. And the queue goes to ``run`` instead of the constructor: an actor handle among the
        arguments of a restartable actor's constructor makes Ray log an error line per trial."""
        if trial in self._trial_logging_futures:  # a restarted trial keeps its actor
            return
        import ray
        from ray.air.integrations.wandb import _force_on_current_node
        from ray.util.queue import Queue

        options = {"num_cpus": 0, **_force_on_current_node(), "max_restarts": -1, "max_task_retries": -1}
        if not self._remote_logger_class:
            self._remote_logger_class = ray.remote(**options)(self._logger_actor_cls)
        self._trial_queues[trial] = Queue(actor_options=dict(options))
        actor = self._remote_logger_class.remote(logdir=trial.local_path, queue=None, exclude=exclude_results,
                                                 to_config=self.AUTO_CONFIG_KEYS, **wandb_init_kwargs)
        self._trial_logging_actors[trial] = actor
        future = actor.run.remote(self._trial_queues[trial])
        self._trial_logging_futures[trial] = future
        self._logging_future_to_trial[future] = trial

    # -- never block Tune's loop: puts go through a background thread per trial, in order -----------
    def _send(self, trial, item: tuple) -> None:
        """Queue ``item`` for the trial's logging actor. A thread per trial does the blocking put, so a
        queue actor that is still starting delays its own trial's items only."""
        box = self._outboxes.get(trial.trial_id)
        if box is None or not box[1].is_alive():
            outbox: queue.Queue = queue.Queue()
            sender = threading.Thread(target=self._send_loop, args=(outbox, self._trial_queues[trial]), daemon=True,
                                      name=f"wandb-{trial.trial_id}")
            sender.start()
            box = self._outboxes[trial.trial_id] = (outbox, sender)
        box[0].put(item)
        if item[0] == _QueueItem.END:  # the thread ends after it; a later item gets a new one
            box[0].put(None)
            self._draining.append(self._outboxes.pop(trial.trial_id)[0])

    @staticmethod
    def _send_loop(outbox: queue.Queue, target) -> None:
        while True:
            item = outbox.get()
            try:
                if item is None:
                    return
                target.put(item)
            except Exception:  # noqa: BLE001 - the actor is gone (killed at the end): drop the item
                pass
            finally:
                outbox.task_done()

    def _flush(self, timeout: float) -> None:
        """Wait until the queued items reached the logging actors (at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        for outbox in [*self._draining, *(box[0] for box in list(self._outboxes.values()))]:
            while outbox.unfinished_tasks and time.monotonic() < deadline:
                time.sleep(0.05)
        self._draining = [box for box in self._draining if box.unfinished_tasks]

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if trial not in self._trial_logging_actors:
            self.log_trial_start(trial)
        names = class_names(result)
        if names:
            self._classes[trial.trial_id] = names
        self._send(trial, (_QueueItem.RESULT, scalars(result, set(self._exclude_results + self.excludes))))

    def _signal_logging_actor_stop(self, trial) -> None:
        self._send(trial, (_QueueItem.END, None))

    def log_trial_end(self, trial, failed: bool = False) -> None:
        if trial not in self._trial_logging_actors:
            self.log_trial_start(trial)
        self._ended.add(trial.trial_id)
        state, reason = end_state(trial, failed)
        self._send(trial, (STATE, {"state": state, "failure": reason}))
        super().log_trial_end(trial, failed)

    def on_experiment_end(self, trials: list, **info) -> None:
        # an interrupt (Ctrl-C) ends the experiment without log_trial_end for the running trials: their
        # runs are closed here (and continued on --resume) instead of being killed mid-write after the
        # upload timeout, which left Ray's "actor ... killed by ray.kill" line on the terminal
        for trial in list(self._trial_logging_actors):
            if trial.trial_id not in self._ended:
                self._signal_logging_actor_stop(trial)
        self._flush(self._upload_timeout)
        super().on_experiment_end(trials, **info)

    def __del__(self):
        try:
            self._flush(2)
            super().__del__()
        except Exception:  # noqa: BLE001 - at interpreter exit Ray may already be gone: nothing to flush
            pass

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
        names = self._classes.get(trial.trial_id) or class_names(trial.last_result or {})
        self._send(trial, (IMAGES, {"epoch": epoch, "panel": panel, "classes": names}))
