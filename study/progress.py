"""The study's terminal: one line per finished trial and a live summary, as a Ray Tune callback.

::

    [rate-1.0] search: 8 trials, 2 at a time, up to 40 epochs each (ASHA may stop trials early)
    [rate-1.0] t0 pruned at epoch 10/40   best_val_miou 0.5123   r=0.734 tau_fg=0.62 lambda_=0.41 rho=0.81   [1/8]
    [rate-1.0] t1 complete                best_val_miou 0.6410   r=0.55 tau_fg=0.85 lambda_=1.2 rho=0.7     [2/8]
    [rate-1.0] search 2/8 done, 2 running | epochs 95/320 | 3m05s, eta <= 7m40s
    [rate-1.0] final-tuned-s1 complete    best_val_miou 0.6633                                             [1/9]

On a terminal the summary line is redrawn in place; in a log (stdout not a terminal) it is printed
as a heartbeat when nothing else was printed for a minute. The ETA prices each
trial's epochs left at the seconds per epoch measured for its kind (study.progress.estimate: the
replica's configuration, or the search), over the trials that run at a time (an upper bound while
ASHA may stop trials early).
"""
from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback

from . import terminal
from .trial_info import TrialNamer, end_state, fmt_value, searched_values

HEARTBEAT_S = 60.0  # a summary line in a log when nothing was printed for this long
REDRAW_S = 1.0  # the live summary line on a terminal


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class TrialLines(Callback):
    """Prints a condition's trials as they finish (search or replication), with a summary and ETA.

    ``total``: trials this Ray experiment runs; ``epochs``: each trial's budget; ``columns``: the
    searched keys to show, dotted key -> short name; ``early_stop``: whether a scheduler may stop
    trials early (the ETA is then an upper bound)."""

    def __init__(self, *, slug: str, phase: str, total: int, epochs: int, metric: str, columns: dict[str, str],
                 namer: TrialNamer, early_stop: bool, concurrency: int, stream=None,
                 priors: dict[str, float] | None = None):
        self.slug, self.phase, self.total, self.epochs = slug, phase, total, epochs
        self.priors = dict(priors or {})  # kind -> calibrated seconds per epoch (study.estimate)
        self.metric, self.columns, self.namer = metric, columns, namer
        self.early_stop, self.concurrency = early_stop, concurrency
        self._stream = stream
        self._reset()

    def _reset(self) -> None:
        self._t0 = time.monotonic()
        self._session_epochs = 0  # epochs reported since this driver started the experiment
        self._epoch_s: dict[str, list[float]] = {}  # configuration kind -> [seconds, epochs] measured
        self._printed: set[str] = set()  # trial ids whose end line was printed
        self._last_print = self._last_draw = time.monotonic()
        self._status = ""  # the live line currently drawn on the terminal
        self._trials: list = []

    def __getstate__(self) -> dict:  # pickled into the experiment's tuner.pkl: no stream, no counters
        state = dict(self.__dict__)
        state["_stream"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("priors", {})  # pickled before priors existed
        self._reset()

    # -- output ------------------------------------------------------------------------------
    @property
    def stream(self):
        return self._stream or sys.stdout

    def _live(self) -> bool:
        return terminal.LIVE and terminal.LEVEL == 1 and self.stream.isatty()

    def _write(self, line: str) -> None:
        """A permanent line (the live summary, if drawn, is cleared and redrawn below it)."""
        out = self.stream
        if self._status:
            out.write("\r\033[K")
        out.write(line + "\n")
        if self._status:
            out.write(self._status)
        out.flush()
        self._last_print = time.monotonic()

    def _draw(self, text: str) -> None:
        self.stream.write("\r\033[K" + text)
        self.stream.flush()
        self._status = text
        self._last_draw = time.monotonic()

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._status = ""

    # -- Tune hooks ----------------------------------------------------------------------------
    def setup(self, **info) -> None:
        self._reset()
        what = "search" if self.phase == "search" else "replication"
        budget = f"up to {self.epochs} epochs each" if self.early_stop else f"{self.epochs} epochs each"
        stop = " (ASHA may stop trials early)" if self.early_stop else ""
        self._write(f"[{self.slug}] {what}: {self.total} trials, {self.concurrency} at a time, {budget}{stop}")

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        self._session_epochs += 1
        seconds = result.get("time_this_iter_s")
        if isinstance(seconds, (int, float)) and seconds > 0:
            measured = self._epoch_s.setdefault(kind(trial), [0.0, 0])
            measured[0] += seconds
            measured[1] += 1

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        self._trials = trials
        now = time.monotonic()
        if self._live():
            if now - self._last_draw >= REDRAW_S:
                self._draw(self.summary(trials))
        elif terminal.LEVEL >= 1 and now - self._last_print >= HEARTBEAT_S:
            self._write(self.summary(trials))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._end(trials, trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._end(trials, trial, failed=True)

    def on_experiment_end(self, trials: list, **info) -> None:
        self._clear()
        states = [end_state(t, t.status == "ERROR")[0] for t in trials if t.status in ("TERMINATED", "ERROR")]
        counts = ", ".join(f"{states.count(s)} {s}" for s in ("complete", "pruned", "diverged", "failed")
                           if states.count(s))
        what = "search" if self.phase == "search" else "replication"
        if len(states) >= self.total:
            self._write(f"[{self.slug}] {what} finished: {len(states)} trials ({counts}) in "
                        f"{duration(time.monotonic() - self._t0)}")

    # -- text ----------------------------------------------------------------------------------
    def _end(self, trials: list, trial, failed: bool) -> None:
        if trial.trial_id in self._printed:
            return
        self._printed.add(trial.trial_id)
        self._write(self.trial_line(trials, trial, failed))
        if self._status:  # the summary below it, up to date
            self._draw(self.summary(trials))

    def trial_line(self, trials: list, trial, failed: bool) -> str:
        state, reason = end_state(trial, failed)
        result = dict(trial.last_result or {})
        epoch, total = result.get("epoch", 0), result.get("epochs_total") or self.epochs
        if state == "pruned":
            state = f"pruned at epoch {epoch}/{total}"
        elif state in ("diverged", "failed"):
            state = reason or state
        value = result.get(self.metric)
        metric = f"{self.metric} {value:.4f}" if isinstance(value, (int, float)) else f"{self.metric} -"
        params = searched_values(trial.config)
        shown = "  ".join(f"{self.columns[k]}={fmt_value(params[k])}" for k in self.columns if k in params)
        done = len({t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR")} | self._printed)
        name = self.namer.short(trial, trials)
        parts = [f"[{self.slug}] {name.ljust(6 if self.phase == 'search' else 22)} {state.ljust(22)}", metric]
        if shown:
            parts.append(shown)
        parts.append(f"[{done}/{self.total}]")
        return "   ".join(parts)

    def summary(self, trials: list) -> str:
        ended = {t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR")} | self._printed
        done = len(ended)
        running = sum(t.status == "RUNNING" and t.trial_id not in ended for t in trials)
        epochs_done, todo = 0, []
        for t in trials:
            result = t.last_result or {}
            total = result.get("epochs_total") or self.epochs
            epoch = int(result.get("epoch", 0) or 0)
            epochs_done += epoch
            if t.trial_id not in ended:
                todo.append((kind(t), max(0, total - epoch)))
        todo += [(None, self.epochs)] * max(0, self.total - len(trials))
        left = sum(n for _, n in todo)
        elapsed = time.monotonic() - self._t0
        text = (f"[{self.slug}] {self.phase} {done}/{self.total} done, {running} running | "
                f"epochs {epochs_done}/{epochs_done + left} | {duration(elapsed)}")
        eta = estimate(todo, {k: s / n for k, (s, n) in self._epoch_s.items() if n}, self.concurrency, self.priors)
        if eta is not None and left:
            text += f", eta {'<= ' if self.early_stop else ''}{duration(eta)}"
        return text


def kind(trial) -> str:
    """What an epoch's cost depends on, among a condition's trials: the replica's configuration
    (``tuned``, a baseline: an ADELE epoch costs ~4x a ce one), or the search (one method)."""
    replica = (getattr(trial, "config", None) or {}).get("replica")
    return str(replica.get("label")) if isinstance(replica, dict) else "search"


def estimate(todo: list[tuple[str | None, int]], epoch_s: dict[str, float], concurrency: int,
             priors: dict[str, float] | None = None) -> float | None:
    """Seconds left: each trial's epochs left at the measured seconds per epoch of its kind (the
    trials' own epoch times, measured while ``concurrency`` of them share the machine), spread over
    the trials that run at a time. A kind not measured yet costs its calibrated seconds (``priors``,
    study.estimate) times the measured / calibrated ratio of the kinds measured, else the mean of
    those measured. None before any epoch was measured."""
    if not epoch_s:
        return None
    priors = priors or {}

    def prior(k: str | None) -> float | None:
        return priors.get(k) or priors.get(str(k).split("#")[0]) if k is not None else None  # tuned#2 ~ tuned

    ratios = sorted(epoch_s[k] / prior(k) for k in epoch_s if prior(k))
    scale = ratios[len(ratios) // 2] if ratios else None
    default = sum(epoch_s.values()) / len(epoch_s)

    def cost(k: str | None) -> float:
        if k in epoch_s:
            return epoch_s[k]
        p = prior(k) if k is not None else None
        return p * scale if p and scale else default

    work = sum(n * cost(k) for k, n in todo if n)
    running = min(max(1, concurrency), max(1, sum(1 for _, n in todo if n)))
    return work / running


def trial_lines(*, slug: str, phase: str, total: int, epochs: int, metric: str, parameters: dict[str, Any],
                namer: TrialNamer, early_stop: bool, concurrency: int,
                priors: dict[str, float] | None = None) -> TrialLines:
    """The callback for a condition's search (``parameters``: the study's searched keys) or its
    replication (no parameter columns: the replicate's name says label and seed)."""
    keys = [k for k, p in parameters.items() if p.kind.searched] if phase == "search" else []
    short = [k.split(".")[-1] for k in keys]
    columns = {k: (s if short.count(s) == 1 else k) for k, s in zip(keys, short)}
    return TrialLines(slug=slug, phase=phase, total=total, epochs=epochs, metric=metric, columns=columns,
                      namer=namer, early_stop=early_stop, concurrency=concurrency, priors=priors)
