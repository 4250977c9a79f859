"""Soft and hard bootstrapping, values by hand on three pixels (one void)."""
from __future__ import annotations

import math

import pytest
import torch

from trainables.typed import from_dict
from trainables.errors import ConfigError
from trainables.methods import MethodContext
from trainables.methods.bootstrap import BootstrapHard, BootstrapSoft, bootstrap_loss

# pixel 0: label 0 = argmax; pixel 1: label 2, argmax 1; pixel 2: void
PROBS = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]
LABELS = torch.tensor([[[0, 2, 255]]])


def logits_of(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs).log().T.reshape(1, len(probs[0]), 1, len(probs))


def entropy(p: list[float]) -> float:
    return -sum(x * math.log(x) for x in p)


def test_soft_by_hand():
    b = 0.95
    loss, _ = bootstrap_loss(logits_of(PROBS), LABELS, b, hard=False, ignore_index=255)
    px0 = b * -math.log(0.7) + (1 - b) * entropy(PROBS[0])
    px1 = b * -math.log(0.3) + (1 - b) * entropy(PROBS[1])
    assert loss.item() == pytest.approx((px0 + px1) / 2, rel=1e-6)


def test_hard_by_hand():
    b = 0.8
    loss, _ = bootstrap_loss(logits_of(PROBS), LABELS, b, hard=True, ignore_index=255)
    px0 = -math.log(0.7)  # prediction = label
    px1 = b * -math.log(0.3) + (1 - b) * -math.log(0.6)  # label 2, prediction 1
    assert loss.item() == pytest.approx((px0 + px1) / 2, rel=1e-6)


def test_void_pixel_gets_no_gradient():
    for hard in (False, True):
        logits = logits_of(PROBS).requires_grad_()
        bootstrap_loss(logits, LABELS, 0.8, hard=hard, ignore_index=255)[0].backward()
        assert logits.grad[..., 2].abs().sum() == 0 and logits.grad[..., :2].abs().sum() > 0


@pytest.mark.parametrize("cls,beta", [(BootstrapSoft, 0.95), (BootstrapHard, 0.8)])
def test_methods(cls, beta):
    assert from_dict(cls.Params, {}, "method").beta == beta
    with pytest.raises(ConfigError, match=r"^method\.beta: "):
        from_dict(cls.Params, {"beta": 1.5}, "method")
    ctx = MethodContext(num_classes=3, ignore_index=255, epochs=4, num_train=2, image_size=(6, 6))
    model = torch.nn.Conv2d(3, 3, 1)
    loss, _ = cls(cls.Params(), ctx).loss(model, torch.randn(2, 3, 6, 6),
                                          torch.randint(0, 3, (2, 6, 6)), epoch=0)
    loss.backward()
    assert loss.ndim == 0 and model.weight.grad.abs().sum() > 0
