"""``pu``: inexhaustive annotation as Positive-Unlabeled learning (draft "Learn transferable features
for semantic image segmentation in the presence of label noise", Sec. 5).

Pixels labelled foreground (1..K-1) are Positive (P); pixels labelled background (0) are Unlabeled
(U: true background mixed with objects nobody annotated). Void pixels are neither and count nowhere.

Binary score. The foreground-vs-background decision is read off the K-class softmax as
P(fg) = 1 - p_0 = sigmoid(g), g = logsumexp_{k>=1} z_k - z_0. This is the probability the K-class
model itself gives to "some foreground class" (the marginal over the partition {0} u {1..K-1}), so g
is a proper log-odds and the binary losses below are ordinary margin losses of g; and the K-class CE
of a positive factorises as CE = -log P(fg) - log P(y | fg), which lets uPU/nnPU replace the first
factor only.

``pu_loss`` chooses the loss (P: positives, U: unlabeled, N: valid pixels, p_0 = 1 - sigmoid(g)):

- ``ce``:             (1/N) [sum_P -log p_y + sum_U -log p_0]          (U taken as background)
- ``weighted``:       (1/N) [sum_P -log p_y + w sum_U -log p_0]        (weighted logistic loss)
- ``exponential``:    (1/N) [sum_P -log p_y + sum_U ((1-l) (-log p_0) + l (1 - p_0))],
  l = min(1, epoch / fade_in_epochs). 1 - p_0 = 1 - exp(-CE) is the draft's "exponential loss" (the
  authors' code: ``labels * (labels - probs)`` on U); its gradient vanishes on pixels predicted
  confidently foreground, i.e. on likely unannotated objects. It is faded in from CE, so that the
  model first learns background with CE's full gradient instead of starting all-foreground (the
  sheet's "fade-in of that term" read this way: fading the U term in from 0 would start the model
  all-foreground, the opposite of its stated purpose).
- ``bootstrap_hard``: (1/N) [sum_P -log p_y + sum_U (b (-log p_0) + (1-b) (-log p_argmax))], b = 0.8
  (Reed et al. 2015 on U only; the K-class argmax, as in the authors' code).
- ``upu`` (du Plessis et al., NeurIPS 2014/ICML 2015) and ``nnpu`` (Kiryo et al., NeurIPS 2017), with
  the sigmoid loss l(g, +1) = sigmoid(-g) = p_0, l(g, -1) = sigmoid(g) = 1 - p_0 and class prior pi
  (foreground fraction of the valid pixels):

      R_pos = pi * mean_P p_0,     R_neg = mean_X (1 - p_0) - pi * mean_P (1 - p_0),
      loss = R_pos + R_neg + (1/N) sum_P -log P(y | fg).

  X = all valid pixels: in this censoring setting every pixel, labelled or not, is a draw from the
  marginal, so this is du Plessis's estimator with its usual pi. Equivalently R_neg =
  (1 - a) mean_U (1 - p_0) - (pi - a) mean_P (1 - p_0), a = labelled-foreground fraction of the
  batch. The last term keeps the foreground classes apart (CE among classes 1..K-1; 0 when K = 2).
  nnPU, Kiryo's Algorithm 1: if R_neg < -beta, the step is taken on -gamma * R_neg instead of
  R_pos + R_neg (gradient ascent that pushes the negative risk back up; beta = 0, gamma = 1), and
  the reported risk is R_pos - beta: the estimate never goes below -beta. The class term, no part
  of the PU risk, is kept in that step.

The prior is ``prior`` when given, else pi = a / (1 - drop_rate) with a the labelled-foreground
fraction of all valid training pixels seen so far (the drop noise leaves a fraction drop_rate of the
foreground unlabelled), capped at 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..typed import check_range, join
from ..errors import ConfigError
from ._losses import bootstrap_hard_map, ce_map, mean_valid, valid_mask
from .base import Method, MethodContext

RISK_LOSSES = ("upu", "nnpu")


def unlabeled_map(logits: torch.Tensor, kind: str, *, unlabeled_weight: float, fade: float,
                  bootstrap_beta: float) -> torch.Tensor:
    """Per-pixel loss of a pixel taken as unlabeled (label 0), for the non-risk ``pu_loss`` kinds
    (formulas in the module docstring)."""
    background = torch.zeros(logits.shape[:1] + logits.shape[2:], dtype=torch.long, device=logits.device)
    ce_bg = ce_map(logits, background, ignore_index=-100)  # -log p_0
    if kind == "ce":
        return ce_bg
    if kind == "weighted":
        return unlabeled_weight * ce_bg
    if kind == "exponential":
        return (1.0 - fade) * ce_bg + fade * (1.0 - torch.exp(-ce_bg))
    if kind == "bootstrap_hard":
        return bootstrap_hard_map(logits, background, bootstrap_beta, ignore_index=-100)
    raise ValueError(f"unknown non-risk pu_loss {kind!r}")


def pu_pixel_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str, *, ignore_index: int,
                  unlabeled_weight: float = 1.0, fade: float = 1.0, bootstrap_beta: float = 0.8
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(1/N) [sum_P -log p_y + sum_U l_U] for ``kind`` in ce / weighted / exponential /
    bootstrap_hard. Parts: the P and U sums, each divided by N (they add up to the loss), as
    detached tensors (no host sync)."""
    logits = logits.float()
    u_loss = unlabeled_map(logits, kind, unlabeled_weight=unlabeled_weight, fade=fade,
                           bootstrap_beta=bootstrap_beta)
    # ce_map is 0 on void pixels, and void pixels are not labelled 0
    positive = mean_valid(ce_map(logits, labels, ignore_index) * (labels != 0), labels, ignore_index)
    unlabeled = mean_valid(u_loss * (labels == 0), labels, ignore_index)
    return positive + unlabeled, {"pu/positive": positive.detach(), "pu/unlabeled": unlabeled.detach()}


def pu_risk_loss(logits: torch.Tensor, labels: torch.Tensor, prior: float | torch.Tensor, *, ignore_index: int,
                 nonnegative: bool, beta: float = 0.0, gamma: float = 1.0
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
    """uPU / nnPU risk with the sigmoid loss plus the foreground-class CE of positives (formulas in
    the module docstring). Returns the quantity to differentiate (with nnPU's correction step:
    -gamma * R_neg + class term when R_neg < -beta) and the risk terms; ``risk/objective`` is the
    (non-negative-corrected) risk estimate R_pos + max(R_neg, -beta) for nnPU. ``prior`` may be a
    0-dim tensor; the step is chosen on the device (torch.where) and the terms are detached tensors,
    so nothing is read back to the host."""
    logits = logits.float()
    if isinstance(prior, torch.Tensor):
        prior = prior.to(logits.dtype)  # as a Python float would be: rounded to the logits' dtype
    valid = valid_mask(labels, ignore_index)
    positive = valid & (labels != 0)
    n_pos = positive.sum().clamp(min=1)
    p0 = logits.softmax(dim=1)[:, 0]
    r_pos = prior * (p0 * positive).sum() / n_pos  # a term without pixels is 0
    r_neg = (mean_valid((1.0 - p0) * valid, labels, ignore_index)
             - prior * ((1.0 - p0) * positive).sum() / n_pos)
    fg_labels = torch.where(positive, labels - 1, torch.full_like(labels, -100))
    classes = mean_valid(ce_map(logits[:, 1:], fg_labels, -100), labels, ignore_index)  # -log P(y|fg)
    plain, risk = r_pos + r_neg + classes, (r_pos + r_neg).detach().double()
    if nonnegative:
        corrected = r_neg.detach() < -beta
        loss = torch.where(corrected, -gamma * r_neg + classes, plain)
        objective = torch.where(corrected, r_pos.detach().double() - beta, risk)
        flag: torch.Tensor | float = corrected.double()
    else:
        loss, objective, flag = plain, risk, 0.0
    return loss, {"risk/positive": r_pos.detach(), "risk/negative": r_neg.detach(),
                  "risk/objective": objective, "risk/classes": classes.detach(), "nnpu/corrected": flag}


def fade_weight(epoch: int, fade_in_epochs: int) -> float:
    """Linear fade-in l = min(1, epoch / fade_in_epochs) (0-based epoch; 1 when fade_in_epochs = 0):
    epoch 0 is pure CE on U, epochs >= fade_in_epochs pure exponential loss."""
    return 1.0 if fade_in_epochs == 0 else min(1.0, epoch / fade_in_epochs)


class PULearning(Method):
    """Positives keep the class CE; unlabeled (background-labelled) pixels get ``pu_loss``."""

    @dataclass
    class Params:
        # The sheet names no default; the draft's best loss, and one that needs no class prior.
        pu_loss: Literal["ce", "weighted", "exponential", "bootstrap_hard", "upu", "nnpu"] = "exponential"
        unlabeled_weight: float = 0.5  # w of ``weighted`` (tunable; 0.5 as in the authors' tests)
        fade_in_epochs: int = 5  # ``exponential``: CE -> exponential loss on U over these epochs
        bootstrap_beta: float = 0.8  # ``bootstrap_hard`` on U
        prior: float | None = None  # uPU/nnPU class prior pi (foreground fraction); or:
        drop_rate: float | None = None  # estimate pi = labelled fraction / (1 - drop_rate)
        nnpu_beta: float = 0.0  # Kiryo et al.
        nnpu_gamma: float = 1.0

        def validate(self, path: str) -> None:
            check_range(join(path, "unlabeled_weight"), self.unlabeled_weight, 0)
            check_range(join(path, "fade_in_epochs"), self.fade_in_epochs, 0)
            check_range(join(path, "bootstrap_beta"), self.bootstrap_beta, 0, 1)
            check_range(join(path, "prior"), self.prior, 0, 1, lo_open=True, hi_open=True)
            check_range(join(path, "drop_rate"), self.drop_rate, 0, 1, hi_open=True)
            check_range(join(path, "nnpu_beta"), self.nnpu_beta, 0)
            check_range(join(path, "nnpu_gamma"), self.nnpu_gamma, 0, 1)
            if self.prior is not None and self.drop_rate is not None:
                raise ConfigError(f"{join(path, 'drop_rate')}: set either prior or drop_rate, not both")
            if self.pu_loss in RISK_LOSSES and self.prior is None and self.drop_rate is None:
                raise ConfigError(f"{join(path, 'prior')}: pu_loss {self.pu_loss!r} needs the class "
                                  "prior: set prior, or drop_rate to estimate it")

    def __init__(self, params: Params, ctx: MethodContext):
        super().__init__(params, ctx)
        # labelled-foreground and valid pixels of all training batches seen: the prior estimate
        # (int64 tensors on the training device once training started: no host sync per batch)
        self._fg_pixels: torch.Tensor | int = 0
        self._valid_pixels: torch.Tensor | int = 0

    def labelled_fraction(self) -> float:
        return int(self._fg_pixels) / max(int(self._valid_pixels), 1)

    def prior(self) -> float | None:
        """pi: given, estimated from the drop rate, or None (not needed by the non-risk losses)."""
        if self.params.prior is not None:
            return self.params.prior
        if self.params.drop_rate is None:
            return None
        return min(1.0, self.labelled_fraction() / (1.0 - self.params.drop_rate))

    def _prior_on_device(self) -> float | torch.Tensor | None:
        """:meth:`prior` without a host read: the estimate as a float64 tensor on the counters'
        device (the same IEEE operations as the float version)."""
        fg, valid = self._fg_pixels, self._valid_pixels
        if self.params.prior is not None or self.params.drop_rate is None or not isinstance(fg, torch.Tensor):
            return self.prior()
        fraction = fg.double() / torch.as_tensor(valid).clamp(min=1).double()
        return (fraction / (1.0 - self.params.drop_rate)).clamp(max=1.0)

    def loss(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             epoch: int) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        p, ii = self.params, self.ctx.ignore_index
        valid = valid_mask(labels, ii)
        self._fg_pixels = self._fg_pixels + (valid & (labels != 0)).sum()
        self._valid_pixels = self._valid_pixels + valid.sum()
        logits = model(images)
        if p.pu_loss in RISK_LOSSES:
            return pu_risk_loss(logits, labels, self._prior_on_device(), ignore_index=ii,
                                nonnegative=p.pu_loss == "nnpu", beta=p.nnpu_beta, gamma=p.nnpu_gamma)
        return pu_pixel_loss(logits, labels, p.pu_loss, ignore_index=ii,
                             unlabeled_weight=p.unlabeled_weight,
                             fade=fade_weight(epoch, p.fade_in_epochs), bootstrap_beta=p.bootstrap_beta)

    def diagnostics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"labelled_fraction": self.labelled_fraction()}
        prior = self.prior()
        if prior is not None:
            out["prior"] = prior
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"fg_pixels": int(self._fg_pixels), "valid_pixels": int(self._valid_pixels)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._fg_pixels = int(state["fg_pixels"])
        self._valid_pixels = int(state["valid_pixels"])
