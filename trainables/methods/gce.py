"""``gce``: generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..typed import check_range, join
from ._losses import at_label, mean_valid
from .base import Method


def gce_map(logits: torch.Tensor, labels: torch.Tensor, q: float, ignore_index: int) -> torch.Tensor:
    """GCE per pixel: (1 - p_y^q) / q, 0 on void. q -> 0 gives CE; q = 1 gives 1 - p_y (MAE up
    to a factor 2)."""
    log_py = at_label(logits.float().log_softmax(dim=1), labels, ignore_index, fill=0.0)
    # p_y^q as exp(q log p_y): finite gradient even where p_y underflows to 0; void: p_y = 1, loss 0
    return (1.0 - torch.exp(q * log_py)) / q


def gce_loss(logits: torch.Tensor, labels: torch.Tensor, q: float,
             ignore_index: int) -> tuple[torch.Tensor, dict[str, float]]:
    """GCE = (1/N) sum_i (1 - p_{y_i}^q) / q over the N valid pixels."""
    return mean_valid(gce_map(logits, labels, q, ignore_index), labels, ignore_index), {}


class GeneralizedCE(Method):
    """Generalized cross-entropy on every pixel."""

    @dataclass
    class Params:
        q: float = 0.7  # the GCE paper's value; LNCIS ran q = 0.3

        def validate(self, path: str) -> None:
            check_range(join(path, "q"), self.q, 0, 1, lo_open=True)

    def loss(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        return gce_loss(model(images), labels, self.params.q, self.ctx.ignore_index)
