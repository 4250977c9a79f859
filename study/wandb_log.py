"""W&B: one run per trial, grouped by study and condition, the epoch as step, image panels.

What a W&B user expects to find:

- run names ``<condition>/t<k>`` (k: the Optuna trial number) and ``<condition>/final-<label>-s<seed>``
  for replicates, the Ray trial id as run id (a resumed trial continues its run); the run config is
  the trial config as a nested dict plus ``study``, ``condition`` (and ``replica: {label, seed}``),
  without Ray's bookkeeping (pid, date, hostname, node_ip, ...);
- the end state in the summary (``state``: complete / pruned / diverged / failed, ``failure``: why)
  and as a tag for the runs that did not complete;
- scalars only: list-valued diagnostics become ``name/0``, ``name/1``, ...; strings and nulls are
  dropped (a diverged run's reason goes to the summary);
- image panels (input | clean | noisy | current label | prediction per training image) upscaled
  to rows of at least 256 px with a class-colour legend;
- runs under ``<experiment>/wandb/`` (one level), silent unless ``--verbose``.

How: every run of the driver process lives in one writer thread of that process (:class:`_RunWriter`,
W&B's several-runs-per-process mode, ``reinit="create_new"``), which talks to one W&B service
process for the whole experiment. The callback only puts items on the writer's bounded queue, so
Tune's event loop never waits on W&B (unless the writer is a whole queue behind). Ray's own
``WandbLoggerCallback`` starts two Ray actors per trial (a logging actor and its queue), each a
fresh Python process that imports ray and wandb and starts its own W&B service: 3-4 s of CPU per
trial, the study's main per-trial overhead with W&B on (docs/performance.md, section 13). At the
end of an experiment (also after Ctrl-C) the writer finishes the runs still open, waits until W&B
has written them (at most ``upload_timeout`` s) and stops the W&B service.
"""
from __future__ import annotations

import atexit
import io
import math
import os
import queue
import threading
from numbers import Number
from typing import Any

import numpy as np
from ray.tune.logger import LoggerCallback

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
QUEUE_ITEMS = 1000  # the writer's queue: a full queue makes the driver wait (bounded memory)


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


class _RunWriter:
    """The one thread of a driver process that owns its W&B runs: it takes ``(operation, run id,
    arguments)`` items from a bounded queue, in order, and does the W&B calls (init, log, summary,
    tags, finish; image panels are rendered here, off Tune's event loop). A failed W&B call loses
    that item only (a line says so); a run whose init failed drops its later items."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue(maxsize=QUEUE_ITEMS)
        self.runs: dict[str, Any] = {}  # run id -> open wandb Run
        self.names: dict[str, str] = {}  # run id -> run name, for the messages
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wandb = None
        self._service = False  # a W&B service is up (started by the first run after a teardown)

    def put(self, op: str, run_id: str | None = None, *args: Any) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name="wandb-writer")
                self._thread.start()
        self.items.put((op, run_id, args))

    def drain(self, timeout: float, *, teardown: bool = False) -> bool:
        """Wait until every item queued so far is done (at most ``timeout`` s); with ``teardown``, then
        stop the W&B service if no run is open (it starts again with the next run). True if done."""
        if self._thread is None or not self._thread.is_alive():
            return not self.items.unfinished_tasks
        done = threading.Event()
        try:
            self.items.put(("sync", None, (done, teardown)), timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def _loop(self) -> None:
        while True:
            op, run_id, args = self.items.get()
            try:
                self._do(op, run_id, *args)
            except Exception as exc:  # noqa: BLE001 - a lost data point must not end the logging
                print(f"W&B logging of {self.names.get(run_id, run_id)} skipped an item ({op}): {exc!r}",
                      flush=True)
            finally:
                self.items.task_done()

    def _do(self, op: str, run_id: str | None, *args: Any) -> None:
        if op == "sync":
            done, teardown = args
            try:
                if teardown and not self.runs and self._service:
                    self._service = False
                    self._wandb.teardown()  # waits until the service has written every finished run
            finally:
                done.set()
            return
        if op == "start":
            if run_id in self.runs:  # a trial started again (Ray's retry) keeps its open run
                return
            if self._wandb is None:
                import wandb

                self._wandb = wandb
            init, earlier = args
            self.names[run_id] = init.get("name", run_id)
            os.makedirs(init["dir"], exist_ok=True)
            settings = self._wandb.Settings(**init.pop("settings"))
            self.runs[run_id] = run = self._wandb.init(id=run_id, reinit="create_new", settings=settings, **init)
            if not self._service:  # W&B registered its service's teardown at exit: ours must run first
                self._service = True
                atexit.unregister(self._at_exit)
                atexit.register(self._at_exit)
            for row in earlier:  # a restored trial: what its run had before the stop
                self._log(run, row)
            return
        run = self.runs.get(run_id)
        if run is None:  # never started (its init failed), or already finished
            return
        if op == "log":
            self._log(run, *args)
        elif op == "images":
            panel, names, epoch = args
            image = self._wandb.Image(panel_image(panel, names), caption="rows: training images; columns: input | "
                                                                         "clean | noisy | current label | prediction")
            run.log({"panels": image, "epoch": epoch}, step=epoch)
        elif op == "state":
            (content,) = args
            run.summary["state"] = content["state"]
            if content.get("failure"):
                run.summary["failure"] = content["failure"]
            if content["state"] != "complete":
                run.tags = tuple(dict.fromkeys([*(run.tags or ()), content["state"]]))
        elif op == "finish":
            del self.runs[run_id]
            run.finish()

    def _at_exit(self) -> None:
        """The driver exits without its experiment's end (a crash): finish the open runs, with what
        was queued for them, before W&B stops its service."""
        for run_id in list(self.runs):
            self.put("finish", run_id)
        self.drain(10.0)

    @staticmethod
    def _log(run, row: dict) -> None:
        log = dict(row)
        if "epoch" in log:  # resumed trials restart Ray's iteration count; the epoch does not
            log["training_iteration"] = int(log["epoch"])
        run.log(log, step=log.get("training_iteration"))


_WRITER = _RunWriter()  # one per process: every callback of the driver (search, replication) uses it


class StudyWandbCallback(LoggerCallback):
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
        self.project, self.group, self.kwargs = project, group, extra
        self.excludes = list(RAY_KEYS)
        self._upload_timeout = upload_timeout
        self.study, self.slug = study, slug
        self.mode = mode  # as configured (auto is resolved again where the experiment is resumed)
        self.namer = namer or TrialNamer(slug)
        self._open: set[str] = set()  # trials whose run was started and not finished
        self._classes: dict[str, list[str]] = {}
        self._ended: set[str] = set()  # trials whose run got its end state (log_trial_end)

    def __getstate__(self) -> dict:  # pickled into tuner.pkl before anything runs: no live parts
        state = dict(self.__dict__)
        state.update(_open=set(), _classes={}, _ended=set())
        return state

    def __setstate__(self, state: dict) -> None:  # experiments pickled by earlier versions
        self.__dict__.update({"_ended": set(), "_open": set(), "_classes": {},
                              "mode": state.get("kwargs", {}).get("mode", "auto"), **state})

    def setup(self, *args, **kwargs) -> None:
        """The mode is resolved here, where the experiment runs now (a study restored from
        ``tuner.pkl`` is unpickled without ``__init__``): offline and disabled need no key; online
        finds it (WANDB_API_KEY or ``wandb login``) in this process. Ray's own callback checks for a
        key instead, which raises offline without WANDB_MODE and asks the deprecated ``wandb.api``."""
        self.kwargs["mode"] = resolve_mode(self.mode)

    @property
    def _exclude(self) -> set[str]:
        return set(self.excludes)

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
        if trial.trial_id in self._open:  # a trial started again (Ray's retry) keeps its run
            return
        init = dict(name=self.namer.name(trial), allow_val_change=True, group=self.group, project=self.project,
                    config=self.run_config(trial), **self.kwargs)
        init.setdefault("dir", trial.local_path)  # remote storage: in the trial's local folder
        # console capture would take the driver's own terminal; system metrics would measure the driver
        init["settings"] = dict(silent=terminal.LEVEL < 2, console="off", x_disable_stats=True)
        earlier = [scalars(row, self._exclude) for row in _earlier_epochs(trial)]
        self._open.add(trial.trial_id)
        self._ended.discard(trial.trial_id)
        _WRITER.put("start", trial.trial_id, init, earlier)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if trial.trial_id not in self._open:
            self.log_trial_start(trial)
        names = class_names(result)
        if names:
            self._classes[trial.trial_id] = names
        _WRITER.put("log", trial.trial_id, scalars(result, self._exclude))

    def log_trial_end(self, trial, failed: bool = False) -> None:
        if trial.trial_id not in self._open:
            self.log_trial_start(trial)
        self._ended.add(trial.trial_id)
        state, reason = end_state(trial, failed)
        _WRITER.put("state", trial.trial_id, {"state": state, "failure": reason})
        self._finish(trial.trial_id)

    def _finish(self, trial_id: str) -> None:
        self._open.discard(trial_id)
        _WRITER.put("finish", trial_id)

    def on_experiment_end(self, trials: list, **info) -> None:
        """Finish the runs still open and wait (at most ``upload_timeout`` s) until W&B has written
        them. An interrupt (Ctrl-C) ends the experiment without log_trial_end for the running
        trials: their runs are finished here, and continued on --resume."""
        for trial_id in list(self._open):
            self._finish(trial_id)
        if not _WRITER.drain(self._upload_timeout, teardown=True):
            print(f"W&B: runs not written within {self._upload_timeout} s (logging.wandb.upload_timeout)",
                  flush=True)

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
        if trial.trial_id not in self._open:
            self.log_trial_start(trial)
        names = self._classes.get(trial.trial_id) or class_names(trial.last_result or {})
        _WRITER.put("images", trial.trial_id, panel, names, epoch)
