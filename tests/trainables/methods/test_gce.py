"""GCE: (1 - p_y^q) / q, values by hand on three pixels (one void)."""
from __future__ import annotations

import pytest
import torch

from trainables.typed import from_dict
from trainables.errors import ConfigError
from trainables.methods import MethodContext
from trainables.methods.gce import GeneralizedCE, gce_loss

PROBS = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]
LABELS = torch.tensor([[[0, 2, 255]]])


def logits_of(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs).log().T.reshape(1, len(probs[0]), 1, len(probs))


@pytest.mark.parametrize("q", [0.7, 0.3, 1.0])
def test_gce_by_hand(q):
    loss, _ = gce_loss(logits_of(PROBS), LABELS, q, ignore_index=255)
    expected = ((1 - 0.7 ** q) / q + (1 - 0.3 ** q) / q) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_gradient_is_finite_on_a_hopeless_pixel():
    logits = torch.tensor([[[[200.0]], [[-200.0]]]], requires_grad=True)  # p_1 underflows to 0
    loss, _ = gce_loss(logits, torch.tensor([[[1]]]), 0.7, ignore_index=255)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_loss_with_a_model_backpropagates():
    ctx = MethodContext(num_classes=3, ignore_index=255, epochs=4, num_train=2, image_size=(6, 6))
    method = GeneralizedCE(GeneralizedCE.Params(), ctx)
    model = torch.nn.Conv2d(3, 3, 1)
    loss, _ = method.loss(model, torch.randn(2, 3, 6, 6), torch.randint(0, 3, (2, 6, 6)), epoch=0)
    loss.backward()
    assert loss.ndim == 0 and model.weight.grad.abs().sum() > 0


def test_params_defaults_and_validation():
    assert from_dict(GeneralizedCE.Params, {}, "method").q == 0.7
    with pytest.raises(ConfigError, match=r"^method\.q: "):
        from_dict(GeneralizedCE.Params, {"q": 0}, "method")
