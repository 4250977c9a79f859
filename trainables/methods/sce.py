"""``sce``: symmetric cross-entropy, alpha CE + beta RCE (Wang et al., ICCV 2019)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..typed import check_range, join
from ._losses import ce_map, mean_valid, rce_map
from .base import Method


def sce_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float, beta: float, A: float,
             ignore_index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SCE = (1/N) sum_i [alpha CE_i + beta RCE_i], CE_i = -log p_{y_i}, RCE_i = -A (1 - p_{y_i})
    (see :func:`~._losses.rce_map`); N = number of valid (non-void) pixels. Parts: detached tensors."""
    ce = mean_valid(ce_map(logits, labels, ignore_index), labels, ignore_index)
    rce = mean_valid(rce_map(logits, labels, A, ignore_index), labels, ignore_index)
    return alpha * ce + beta * rce, {"ce": ce.detach(), "rce": rce.detach()}


class SymmetricCE(Method):
    """Symmetric cross-entropy on every pixel, with LNCIS's settings (alpha 1, beta 0.1, A = -4)."""

    @dataclass
    class Params:
        alpha: float = 1.0  # weight of CE
        beta: float = 0.1  # weight of RCE (as LNCIS ran SCE)
        A: float = -4.0  # log 0 in RCE; LNCIS paper -4, the authors' code ln(1e-4) = -9.21

        def validate(self, path: str) -> None:
            check_range(join(path, "alpha"), self.alpha, 0)
            check_range(join(path, "beta"), self.beta, 0)
            check_range(join(path, "A"), self.A, hi=0, hi_open=True)

    def loss(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        p = self.params
        return sce_loss(model(images), labels, p.alpha, p.beta, p.A, self.ctx.ignore_index)
