"""``tloss``: the robust T-Loss (Gonzalez-Jimenez et al., "Robust T-Loss for Medical Image
Segmentation", MICCAI 2023; authors' code: Digital-Dermatology/t-loss, ``tloss.py``).

The negative log-likelihood of a multivariate Student-t over the residual between the prediction and
the label of one image, with learnable degrees of freedom nu: a small nu tolerates large residuals
(wrongly labelled pixels) like a heavy-tailed noise model; a large nu tends to a squared loss.

The authors' formula (binary, one image; delta = p - y over the H x W foreground probabilities,
D = H x W, lambda = ones(H x W), theta = log nu a learnable scalar initialised at 1.0, nu = exp(theta)
+ eps, eps = 1e-8)::

    L = -lgamma((nu + D)/2) + lgamma(nu/2) - 1/2 sum(lambda + eps) + D/2 log(pi) + D/2 (theta + eps)
        + (nu + D)/2 log(1 + sum(delta^2 exp(lambda + eps)) / nu)

averaged over the batch. (Their code adds eps to theta in the D/2 term, not to log nu; kept as is.)

**Multi-class form** (this file): p = softmax over the K classes, y = the one-hot label, and
delta = p - y over the channels chosen by ``channels``: ``foreground`` (default) sums the K - 1
foreground channels (class 0, background, is implied: p_0 = 1 - sum of the others), ``all`` sums all
K channels. Void pixels (``ignore_index``) are excluded from delta and from D, so per image
D = C x (number of valid pixels), C = K - 1 or K, and lambda = ones over those D entries. The batch
loss is the mean over the images with at least one valid pixel (an all-void image's L is 0 anyway).

**Reduction to the authors' code for K = 2**: with ``channels: foreground`` the only channel summed is
class 1, whose softmax probability is exactly their ``softmax(logits)[:, 1]`` and whose one-hot is
their binary label; without void pixels D = H x W, their fixed D. Value and gradient are therefore
theirs (``tests/trainables/methods/test_tloss.py`` checks both against a transcription of their
class, w.r.t. the logits and theta).

theta is a parameter of the method, not of the model: it is handed to the engine as its own optimiser
parameter group (:meth:`TLoss.param_groups`) with its own learning rate ``nu_lr`` (authors: 1e-3 with
Adam, model 1e-2), no weight decay, and off the engine's LR schedule (the authors keep it constant
and only decay the model's rate). The loss is a sum over D entries, so its size and the model
gradient grow with the image size: with SGD the learning rate must shrink with H x W; Adam/AdamW (the
authors' choice, and ``search_spaces/compare.yaml``'s) is invariant to that scale.

Parameters: ``log_nu`` (1.0, the initial theta), ``nu_lr`` (1e-3), ``epsilon`` (1e-8), ``channels``
(foreground | all). Diagnostics: ``method/nu`` (exp(theta) + eps after the epoch).

Plugin-shaped: everything the method needs is in this file; it is registered by one line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..typed import check_range, join
from .base import Method, MethodContext


def tloss_loss(logits: torch.Tensor, labels: torch.Tensor, log_nu: torch.Tensor, ignore_index: int,
               epsilon: float = 1e-8, channels: str = "foreground") -> torch.Tensor:
    """The multi-class T-Loss of a batch (see the module doc): ``logits`` [B, K, H, W], ``labels``
    long [B, H, W] with ``ignore_index`` for void, ``log_nu`` the scalar theta. Computed in float32
    (float64 when the logits are float64) whatever the autocast dtype."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    probs = logits.to(dtype).softmax(dim=1)
    k = probs.shape[1]
    valid = labels != ignore_index
    target = F.one_hot(torch.where(valid, labels, torch.zeros_like(labels)), k).movedim(-1, 1).to(dtype)
    delta = probs - target
    if channels == "foreground":
        delta = delta[:, 1:]
    delta = delta * valid.unsqueeze(1).to(dtype)  # void entries count nowhere
    squared = delta.square().flatten(1).sum(dim=1)  # [B]
    d = valid.flatten(1).sum(dim=1).to(dtype) * delta.shape[1]  # [B] entries summed per image
    theta = log_nu.to(dtype)
    nu = torch.exp(theta) + epsilon
    per_image = (-torch.lgamma((nu + d) / 2) + torch.lgamma(nu / 2)
                 - 0.5 * d * (1.0 + epsilon)  # -1/2 sum(lambda + eps), lambda = 1 on the D entries
                 + d / 2 * math.log(math.pi)
                 + d / 2 * (theta + epsilon)
                 + (nu + d) / 2 * torch.log1p(squared * math.exp(1.0 + epsilon) / nu))
    images = (d > 0).sum().clamp(min=1)
    return per_image.sum() / images


class TLoss(Method):
    """Student-t negative log-likelihood of the per-image residual, learnable nu (as log nu)."""

    @dataclass
    class Params:
        log_nu: float = 1.0  # initial theta = log nu (authors' ``nu=1.0`` argument: nu starts near e)
        nu_lr: float = 1e-3  # learning rate of theta's own optimiser parameter group
        epsilon: float = 1e-8
        channels: Literal["foreground", "all"] = "foreground"  # residual channels; see module doc

        def validate(self, path: str) -> None:
            check_range(join(path, "log_nu"), self.log_nu, -20, 20)
            check_range(join(path, "nu_lr"), self.nu_lr, 0, lo_open=True)
            check_range(join(path, "epsilon"), self.epsilon, 0)

    def __init__(self, params: Any, ctx: MethodContext):
        super().__init__(params, ctx)
        self.log_nu = torch.nn.Parameter(torch.tensor(float(params.log_nu)))

    def param_groups(self, device: torch.device) -> list[dict[str, Any]]:
        self.log_nu = torch.nn.Parameter(self.log_nu.detach().to(device))
        return [{"params": [self.log_nu], "lr": self.params.nu_lr, "weight_decay": 0.0, "fixed_lr": True}]

    def loss(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        p = self.params
        return tloss_loss(model(images), labels, self.log_nu, self.ctx.ignore_index, p.epsilon, p.channels), {}

    def nu(self) -> float:
        return float(torch.exp(self.log_nu.detach()) + self.params.epsilon)

    def diagnostics(self) -> dict[str, Any]:
        return {"nu": self.nu()}

    def state_dict(self) -> dict[str, Any]:
        return {"log_nu": self.log_nu.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():  # in place: the optimiser holds this very tensor
            self.log_nu.copy_(state["log_nu"])
