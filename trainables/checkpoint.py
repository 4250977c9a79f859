"""Checkpoint files: written atomically, loaded without executing pickled code.

A checkpoint is a directory holding ``state.pt``: a tree of tensors, numbers, strings, lists and
dicts saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``, which refuses
arbitrary pickled objects.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import UserError

STATE_FILE = "state.pt"
FORMAT = 1
STAGING_PREFIX = "ckpt-"  # the engine stages each checkpoint in <scratch>/ckpt-XXXX before handing it on


def save_checkpoint(state: dict[str, Any], directory: str | Path) -> Path:
    """Write ``state`` to ``directory/state.pt`` via a temporary file and an atomic rename."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / STATE_FILE
    tmp = directory / (STATE_FILE + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save({"format": FORMAT, **state}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def remove_staged(root: str | Path) -> list[Path]:
    """Delete what interrupted checkpoint writes left in ``root``: staging folders
    (``ckpt-*``, possibly holding a partial ``state.pt.tmp``) and checkpoint folders without a
    complete ``state.pt``. Returns what was removed."""
    root = Path(root)
    if not root.is_dir():
        return []
    gone = []
    for path in sorted(root.iterdir()):
        staged = path.name.startswith(STAGING_PREFIX)
        incomplete = path.name.startswith("epoch_") and not (path / STATE_FILE).is_file()
        if path.is_dir() and not path.is_symlink() and (staged or incomplete):
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    return gone


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint here (expected {STATE_FILE} written by an earlier run)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file: say which, never unpickle further
        raise UserError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if state.get("format") != FORMAT:
        raise UserError(f"{path}: checkpoint format {state.get('format')!r}; this version reads format {FORMAT}")
    return state


def capture_rng() -> dict[str, Any]:
    """Global RNG states of torch (CPU and CUDA), numpy and Python, as weights_only-safe values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
