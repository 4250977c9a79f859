"""Pixel-loss functions shared by several methods (LNCIS, SCE, bootstrapping, PU).

Shapes: ``logits`` float [B, K, ...], ``labels`` long [B, ...] with ``ignore_index`` for void.
Every ``*_map`` returns the per-pixel loss [B, ...] and is 0 on void pixels, so a sum over the map
is a sum over valid pixels only; :func:`mean_valid` divides by the number of valid pixels, never by
the void ones. Losses are computed in float32 whatever the autocast dtype of the logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def valid_mask(labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Bool [B, ...]: the pixels that count (not void)."""
    return labels != ignore_index


def at_label(values: torch.Tensor, labels: torch.Tensor, ignore_index: int, fill: float) -> torch.Tensor:
    """values[b, y, ...] for each pixel's label y: [B, K, ...] -> [B, ...]; ``fill`` on void pixels
    (chosen by the caller so that the loss there is 0; the gather never indexes ``ignore_index``)."""
    valid = valid_mask(labels, ignore_index)
    index = torch.where(valid, labels, torch.zeros_like(labels)).unsqueeze(1)
    picked = values.gather(1, index).squeeze(1)
    return torch.where(valid, picked, torch.full_like(picked, fill))


def mean_valid(values: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Sum of a per-pixel map divided by the number N of valid pixels (0 when N = 0, still part of
    the graph so that ``backward`` works on an all-void batch)."""
    n = valid_mask(labels, ignore_index).sum().clamp(min=1)
    return values.sum() / n


def ce_map(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Cross-entropy per pixel: CE = -log p_y."""
    return F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="none")


def rce_map(logits: torch.Tensor, labels: torch.Tensor, A: float, ignore_index: int) -> torch.Tensor:
    """Reverse cross-entropy per pixel (Wang et al., ICCV 2019 "Symmetric CE"; LNCIS Eq. 5).

    RCE = -sum_k p_k log q_k with q the one-hot label and log 0 clipped to A (< 0). Since log 1 = 0,
    RCE = -A sum_{k != y} p_k = -A (1 - p_y). Summed over all K labels y it is -A (K - 1) for any p
    (the symmetry behind its noise robustness). A = ln(1e-4) ~ -9.21 reproduces the authors' code,
    which clamps the one-hot target at 1e-4 before the log.
    """
    probs = logits.float().softmax(dim=1)
    return -A * (1.0 - at_label(probs, labels, ignore_index, fill=1.0))


def bootstrap_hard_map(logits: torch.Tensor, labels: torch.Tensor, beta: float,
                       ignore_index: int) -> torch.Tensor:
    """Hard bootstrapping per pixel (Reed et al., ICLR-W 2015, Eq. 7):
    -sum_k [beta q_k + (1 - beta) z_k] log p_k = beta CE(y) + (1 - beta) CE(argmax_k p_k),
    with q the one-hot label and z the one-hot prediction (not differentiated: argmax)."""
    logits = logits.float()
    pred = logits.detach().argmax(dim=1)
    pred = torch.where(valid_mask(labels, ignore_index), pred, labels)  # keep void void
    return beta * ce_map(logits, labels, ignore_index) + (1.0 - beta) * ce_map(logits, pred, ignore_index)
