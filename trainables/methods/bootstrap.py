"""``bootstrap_soft`` / ``bootstrap_hard``: bootstrapping the target with the model's own prediction
(Reed et al., "Training deep neural networks on noisy labels with bootstrapping", ICLR-W 2015).

Per pixel, target = beta * one-hot label + (1 - beta) * prediction; this is the paper's loss, not the
"hardest top-k pixels" loss that some segmentation code calls bootstrapped CE.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..typed import check_range, join
from ._losses import at_label, bootstrap_hard_map, mean_valid, valid_mask
from .base import Method


def bootstrap_soft_map(logits: torch.Tensor, labels: torch.Tensor, beta: float,
                       ignore_index: int) -> torch.Tensor:
    """Soft bootstrapping per pixel (Reed et al. Eq. 6):
    -sum_k [beta q_k + (1 - beta) p_k] log p_k = beta CE(y) + (1 - beta) H(p).
    The prediction in the target is not detached, as in the paper: the second term is the entropy
    H(p) = -sum_k p_k log p_k (minimum-entropy regularisation); 0 on void."""
    log_probs = logits.float().log_softmax(dim=1)
    ce = -at_label(log_probs, labels, ignore_index, fill=0.0)
    entropy = -(log_probs.exp() * log_probs).sum(dim=1)
    return beta * ce + (1.0 - beta) * entropy * valid_mask(labels, ignore_index)


def bootstrap_loss(logits: torch.Tensor, labels: torch.Tensor, beta: float, hard: bool,
                   ignore_index: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean of the soft or hard bootstrapping map over the N valid pixels."""
    pixel = bootstrap_hard_map if hard else bootstrap_soft_map
    return mean_valid(pixel(logits, labels, beta, ignore_index), labels, ignore_index), {}


class _Bootstrap(Method):
    HARD: bool

    def loss(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        return bootstrap_loss(model(images), labels, self.params.beta, self.HARD, self.ctx.ignore_index)


def _check_beta(path: str, beta: float) -> None:
    check_range(join(path, "beta"), beta, 0, 1)


class BootstrapSoft(_Bootstrap):
    """Soft bootstrapping: target = beta * label + (1 - beta) * softmax."""

    HARD = False

    @dataclass
    class Params:
        beta: float = 0.95  # Reed et al.'s soft value

        def validate(self, path: str) -> None:
            _check_beta(path, self.beta)


class BootstrapHard(_Bootstrap):
    """Hard bootstrapping: target = beta * label + (1 - beta) * one-hot argmax."""

    HARD = True

    @dataclass
    class Params:
        beta: float = 0.8  # Reed et al.'s hard value

        def validate(self, path: str) -> None:
            _check_beta(path, self.beta)
