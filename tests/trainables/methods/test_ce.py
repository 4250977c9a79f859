"""``ce``: mean pixel cross-entropy over non-void pixels, by hand."""
import math

import torch

from trainables.config import parse_trial
from trainables.methods import MethodContext, create_method


class Fixed(torch.nn.Module):
    """Returns preset logits whatever the input (the loss is then a pure function of them)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = torch.nn.Parameter(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def test_ce_by_hand_ignores_void_and_has_gradients() -> None:
    ctx = MethodContext(num_classes=2, ignore_index=255, epochs=1, num_train=1, image_size=(1, 3))
    method = create_method(parse_trial({"method": {"name": "ce"}}).method, ctx)
    logits = torch.tensor([[[[0.0, 2.0, 5.0]], [[0.0, 0.0, -5.0]]]])  # [B=1, K=2, H=1, W=3]
    labels = torch.tensor([[[0, 1, 255]]])
    model = Fixed(logits)
    loss, terms = method.loss(model, torch.zeros(1, 3, 1, 3), labels, epoch=0)
    # pixel 0: p0 = 1/2 -> ln 2; pixel 1: p1 = 1 / (1 + e^2) -> ln(1 + e^2); pixel 2 is void
    expected = (math.log(2) + math.log(1 + math.e ** 2)) / 2
    assert math.isclose(float(loss), expected, rel_tol=1e-6)
    assert terms == {}
    loss.backward()
    assert model.logits.grad[0, :, 0, 2].abs().sum() == 0  # void pixel: no gradient
    assert model.logits.grad[0, :, 0, :2].abs().sum() > 0
