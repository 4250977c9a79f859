"""SCE: alpha CE + beta RCE, values by hand on three pixels (one void)."""
from __future__ import annotations

import math

import pytest
import torch

from trainables.typed import from_dict
from trainables.errors import ConfigError
from trainables.methods import MethodContext
from trainables.methods._losses import rce_map
from trainables.methods.sce import SymmetricCE, sce_loss

# pixels as columns of a [1, K=3, 1, 3] logit map; the third pixel is void
PROBS = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]
LABELS = torch.tensor([[[0, 2, 255]]])


def logits_of(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs).log().T.reshape(1, len(probs[0]), 1, len(probs))


def test_sce_by_hand():
    loss, parts = sce_loss(logits_of(PROBS), LABELS, alpha=1.0, beta=0.1, A=-4.0, ignore_index=255)
    ce = (-math.log(0.7) - math.log(0.3)) / 2  # void pixel excluded from sum and count
    rce = (4 * (1 - 0.7) + 4 * (1 - 0.3)) / 2
    assert parts["ce"] == pytest.approx(ce, rel=1e-6)
    assert parts["rce"] == pytest.approx(rce, rel=1e-6)
    assert loss.item() == pytest.approx(ce + 0.1 * rce, rel=1e-6)


def test_rce_matches_clipped_target_of_authors_code():
    """A = ln(1e-4): the same as -sum_k p_k log(clamp(onehot, 1e-4)) of the SCE / LNCIS code."""
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 3)
    labels = torch.randint(0, 4, (2, 3, 3))
    target = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float().clamp(min=1e-4)
    expected = -(logits.softmax(1) * target.log()).sum(1)
    assert torch.allclose(rce_map(logits, labels, math.log(1e-4), 255), expected, atol=1e-5)


def test_all_void_batch_gives_zero_and_backpropagates():
    logits = logits_of(PROBS).requires_grad_()
    loss, _ = sce_loss(logits, torch.full((1, 1, 3), 255), 1.0, 0.1, -4.0, ignore_index=255)
    loss.backward()
    assert loss.item() == 0 and logits.grad.abs().sum() == 0


def test_loss_with_a_model_backpropagates():
    ctx = MethodContext(num_classes=3, ignore_index=255, epochs=4, num_train=2, image_size=(6, 6))
    method = SymmetricCE(SymmetricCE.Params(), ctx)
    model = torch.nn.Conv2d(3, 3, 1)
    labels = torch.randint(0, 3, (2, 6, 6))
    labels[0, 0] = 255
    loss, parts = method.loss(model, torch.randn(2, 3, 6, 6), labels, epoch=0)
    loss.backward()
    assert loss.ndim == 0 and set(parts) == {"ce", "rce"}
    assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0


def test_params_defaults_and_validation():
    p = from_dict(SymmetricCE.Params, {}, "method")
    assert (p.alpha, p.beta, p.A) == (1.0, 0.1, -4.0)
    with pytest.raises(ConfigError, match=r"^method\.A: "):
        from_dict(SymmetricCE.Params, {"A": 1.0}, "method")
