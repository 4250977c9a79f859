"""Per-trial bookkeeping beside the engine: the evaluation history behind the papers' summary
numbers, the config keys compared on resume, and JSON-safe metrics."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class History:
    """Evaluation history behind the papers' three test numbers (best-val / max-test / last)."""

    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)

    def add(self, epoch: int, val_miou: float, test_miou: float) -> None:
        self.epochs.append(epoch)
        self.val.append(val_miou)
        self.test.append(test_miou)

    def summary(self) -> dict[str, float]:
        if not self.val:
            return {}
        best = int(np.nanargmax(self.val)) if not all(math.isnan(v) for v in self.val) else 0
        return {"best_val_miou": self.val[best], "best_val_epoch": self.epochs[best],
                "best_val": self.test[best], "max_test": float(np.nanmax(self.test)), "last": self.test[-1]}

    def state(self) -> dict:
        return {"val": list(self.val), "test": list(self.test), "epochs": list(self.epochs)}


def _comparable(cfg_dict: dict) -> dict:
    """Flattened config without the keys that may change between a run and its resume."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = node

    walk("", cfg_dict)
    for key in ("train.device", "train.threads", "train.eval_batch_size"):
        flat.pop(key, None)
    return flat


def _jsonable(metrics: dict) -> dict:
    """Plain floats/ints/lists; NaN becomes None so JSON lines stay strict."""
    def clean(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return {k: clean(v) for k, v in metrics.items()}
