"""Resuming an experiment folder that was moved: the folder being resumed is the truth.

Ray's ``Tuner.restore(path)`` moves the trials it restores to ``path``, but the search generator's
state (restored from ``search_gen_state-*.json``) keeps the storage of the original run, so every
trial it creates after the restore would be set up at the old place and fail there ("Unable to set
up cluster storage"); the pickled searcher state names the Optuna storage at the old place too.
``study.run`` records old -> new folder with :func:`record` before anything is restored (in the
environment, so processes the driver starts inherit it); :class:`RelocatableSearchGenerator` and
``study.searcher`` map what they restore through :func:`relocated`.
"""
from __future__ import annotations

import json
import os

from ray.tune.search import SearchGenerator

ENV = "NOISYSEG_RELOCATED"  # JSON {old experiment folder: new experiment folder}


def _moves() -> dict[str, str]:
    try:
        moves = json.loads(os.environ.get(ENV) or "{}")
    except ValueError:
        return {}
    return moves if isinstance(moves, dict) else {}


def record(old: str, new: str) -> None:
    """The experiment folder ``old`` now lives at ``new``."""
    moves = _moves()
    moves[str(old).rstrip("/")] = str(new).rstrip("/")
    os.environ[ENV] = json.dumps(moves)


def relocated(value: str | None) -> str | None:
    """``value`` (a folder, a path in it, or a URL naming such a path) at the experiment's new place."""
    if not value:
        return value
    for old, new in _moves().items():
        if value == old:
            return new
        if old + "/" in value:
            return value.replace(old + "/", new + "/", 1)
    return value


class RelocatableSearchGenerator(SearchGenerator):
    """Ray's SearchGenerator whose restored experiment storage follows a moved experiment folder."""

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        storage = getattr(self._experiment, "storage", None)
        path = getattr(storage, "storage_fs_path", None)
        if path and relocated(path) != path:
            storage.storage_fs_path = relocated(path)
