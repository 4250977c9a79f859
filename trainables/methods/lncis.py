"""``lncis``: different losses for different roles of noisy class labels (Yang et al., ECCV 2020),
applied to pixels instead of Mask R-CNN box proposals.

Stage 1 (epochs 0 .. E1 - 1, E1 = floor(e1_frac * epochs), 0-based epoch indices): CE on every pixel
(Eq. 2). Stage 2 (epochs E1 .. epochs - 1): every valid pixel takes one role (Fig. 3):

- N (negative): labelled background, y = 0;
- PSN (pseudo-negative): labelled foreground, predicted background (argmax_k p_k = 0);
- PON (potential noisy): labelled foreground, predicted foreground, CE = -log p_y > gamma;
- other: labelled foreground, predicted foreground, CE <= gamma.

A pixel that is both PSN and PON is PSN (the paper's PON are those "classified foreground"). Eq. 4:

    Loss_2 = (1/N) [ sum_{N u PSN} CE + sum_{PON} 0 + sum_{other} RCE ],   RCE = -A (1 - p_y),

where N counts every valid pixel, isolated ones included, and never void pixels (void pixels have no
role and no loss). With ``isolate: false`` PON pixels get RCE like "other" (the ablation N&PSN, and
the behaviour of the authors' current code, where isolation is commented out).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..typed import check_range, join
from ._losses import ce_map, mean_valid, rce_map, valid_mask
from .base import Method, MethodContext

ROLES = ("N", "PSN", "PON", "other")


def stage2_start(e1_frac: float, epochs: int) -> int:
    """First 0-based epoch of stage 2: floor(e1_frac * epochs). Rounded to 6 decimals before the
    floor so that a product like 0.29 * 100 = 28.999999999999996 counts as the 29 it means."""
    return math.floor(round(e1_frac * epochs, 6))


@torch.no_grad()
def lncis_roles(logits: torch.Tensor, labels: torch.Tensor, gamma: float,
                ignore_index: int) -> dict[str, torch.Tensor]:
    """Bool masks [B, ...] of the four roles (disjoint; their union is the valid pixels)."""
    valid = valid_mask(labels, ignore_index)
    negative = valid & (labels == 0)
    positive = valid & (labels != 0)
    predicted_bg = logits.argmax(dim=1) == 0
    noisy = ce_map(logits, labels, ignore_index) > gamma
    return {
        "N": negative,
        "PSN": positive & predicted_bg,
        "PON": positive & ~predicted_bg & noisy,
        "other": positive & ~predicted_bg & ~noisy,
    }


def lncis_loss(logits: torch.Tensor, labels: torch.Tensor, stage: int, gamma: float, A: float,
               isolate: bool, ignore_index: int
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float], dict[str, torch.Tensor]]:
    """Loss_1 (Eq. 2, CE on all pixels) or Loss_2 (Eq. 4, see the module docstring), both divided
    by the number N of valid pixels. Returns (loss, its {ce, rce} parts, pixel count per role), the
    parts and counts as 0-dim tensors on the logits' device (no host sync per batch). Roles are
    counted in stage 1 too: they show what stage 2 would do (e.g. to choose gamma)."""
    roles = lncis_roles(logits, labels, gamma, ignore_index)
    counts = dict(zip(roles, torch.stack([m.sum() for m in roles.values()]).unbind()))
    ce = ce_map(logits, labels, ignore_index)
    if stage == 1:
        ce = mean_valid(ce, labels, ignore_index)
        return ce, {"ce": ce.detach(), "rce": 0.0}, counts
    rce_pixels = roles["other"] if isolate else roles["other"] | roles["PON"]
    ce = mean_valid(ce * (roles["N"] | roles["PSN"]), labels, ignore_index)
    rce = mean_valid(rce_map(logits, labels, A, ignore_index) * rce_pixels, labels, ignore_index)
    return ce + rce, {"ce": ce.detach(), "rce": rce.detach()}, counts


class Lncis(Method):
    """Stage-wise CE, then role-dependent losses; per-epoch pixel counts per role as diagnostics."""

    @dataclass
    class Params:
        e1_frac: float = 0.5  # stage 1 = first floor(e1_frac * epochs) epochs (paper: E1 = E/2)
        gamma: float = 6.0  # PON threshold on the pixel's CE (authors' code: 0.6, a typo of 6)
        isolate: bool = True  # PON get zero loss (paper); false: RCE (authors' current code)
        A: float = -4.0  # log 0 in RCE; paper -4, the authors' code ln(1e-4) = -9.21

        def validate(self, path: str) -> None:
            check_range(join(path, "e1_frac"), self.e1_frac, 0, 1)
            check_range(join(path, "gamma"), self.gamma, 0)
            check_range(join(path, "A"), self.A, hi=0, hi_open=True)

    def __init__(self, params: Params, ctx: MethodContext):
        super().__init__(params, ctx)
        self.stage2_start = stage2_start(params.e1_frac, ctx.epochs)
        self._epoch = -1  # epoch whose role counts are held
        self._counts: dict[str, torch.Tensor | int] = dict.fromkeys(ROLES, 0)  # device tensors while training

    def stage(self, epoch: int) -> int:
        return 2 if epoch >= self.stage2_start else 1

    def loss(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             epoch: int) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        p = self.params
        loss, parts, counts = lncis_loss(model(images).float(), labels, self.stage(epoch), p.gamma,
                                         p.A, p.isolate, self.ctx.ignore_index)
        self._count(epoch, counts)
        return loss, parts

    @torch.no_grad()
    def isolated(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The PON role of :func:`lncis_roles` for these predictions (log-probabilities as logits:
        same argmax, same CE); reported in stage 1 too (what stage 2 would isolate)."""
        return lncis_roles(probs.log(), labels, self.params.gamma, self.ctx.ignore_index)["PON"]

    def _count(self, epoch: int, counts: dict[str, torch.Tensor]) -> None:
        # The counters restart with the first batch of a new epoch, so diagnostics() reports the
        # epoch trained last whether the engine asks before or after on_epoch_end.
        if epoch != self._epoch:
            self._epoch, self._counts = epoch, dict.fromkeys(ROLES, 0)
        for role, n in counts.items():
            self._counts[role] = self._counts[role] + n

    def _counts_read(self) -> dict[str, int]:
        return {r: int(n) for r, n in self._counts.items()}

    def diagnostics(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"role/{r}": n for r, n in self._counts_read().items()}
        out["stage"] = self.stage(self._epoch) if self._epoch >= 0 else 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "counts": self._counts_read()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch = int(state["epoch"])
        self._counts = {r: int(state["counts"][r]) for r in ROLES}
