"""PU losses: each pu_loss by hand on three pixels (+ one void), nnPU's correction step and floor,
the prior estimate, and the method's loss with a real model."""
from __future__ import annotations

import io
import math

import pytest
import torch

from trainables.typed import from_dict
from trainables.errors import ConfigError
from trainables.methods import MethodContext
from trainables.methods.pu import PULearning, fade_weight, pu_pixel_loss, pu_risk_loss

V = 255
# u1: unlabeled, looks like background; u2: unlabeled, looks like an object; p1: positive (class 1)
PROBS = [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]
LABELS = torch.tensor([[[0, 0, 1, V]]])
N = 3  # valid pixels
CE_P = -math.log(0.6)


def logits_of(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs).log().T.reshape(1, len(probs[0]), 1, len(probs))


def pixel(kind: str, **kw) -> float:
    return pu_pixel_loss(logits_of(PROBS), LABELS, kind, ignore_index=V, **kw)[0].item()


def test_ce_treats_unlabeled_as_background():
    assert pixel("ce") == pytest.approx((-math.log(0.7) - math.log(0.2) + CE_P) / N, rel=1e-6)


def test_weighted():
    expected = (0.5 * (-math.log(0.7) - math.log(0.2)) + CE_P) / N
    assert pixel("weighted", unlabeled_weight=0.5) == pytest.approx(expected, rel=1e-6)


def test_exponential_and_its_fade_in():
    exp_u = (1 - 0.7) + (1 - 0.2)  # 1 - p_0
    ce_u = -math.log(0.7) - math.log(0.2)
    assert pixel("exponential", fade=1.0) == pytest.approx((exp_u + CE_P) / N, rel=1e-6)
    assert pixel("exponential", fade=0.0) == pytest.approx((ce_u + CE_P) / N, rel=1e-6)
    mixed = (0.6 * ce_u + 0.4 * exp_u + CE_P) / N
    assert pixel("exponential", fade=0.4) == pytest.approx(mixed, rel=1e-6)
    assert [fade_weight(e, 5) for e in (0, 1, 2, 5, 9)] == [0.0, 0.2, 0.4, 1.0, 1.0]
    assert fade_weight(0, 0) == 1.0


def test_bootstrap_hard_on_unlabeled_only():
    u1 = -math.log(0.7)  # argmax = 0 = label
    u2 = 0.8 * -math.log(0.2) + 0.2 * -math.log(0.5)  # argmax 1
    assert pixel("bootstrap_hard", bootstrap_beta=0.8) == pytest.approx((u1 + u2 + CE_P) / N, rel=1e-6)


def risk_by_hand(prior: float) -> tuple[float, float, float]:
    """(R_pos, R_neg, class term) of the example: P = {p1}, X = {u1, u2, p1}."""
    r_pos = prior * 0.1  # mean_P p_0
    r_neg = (0.3 + 0.8 + 0.9) / 3 - prior * 0.9  # mean_X (1 - p_0) - prior * mean_P (1 - p_0)
    classes = -math.log(0.6 / 0.9) / N  # -log P(y=1 | fg)
    return r_pos, r_neg, classes


def test_upu_by_hand():
    r_pos, r_neg, classes = risk_by_hand(0.5)
    loss, parts = pu_risk_loss(logits_of(PROBS), LABELS, 0.5, ignore_index=V, nonnegative=False)
    assert loss.item() == pytest.approx(r_pos + r_neg + classes, rel=1e-6)
    assert parts["risk/positive"] == pytest.approx(r_pos, rel=1e-6)
    assert parts["risk/negative"] == pytest.approx(r_neg, rel=1e-6)
    assert parts["risk/classes"] == pytest.approx(classes, rel=1e-6)


def test_nnpu_correction_step():
    """prior 0.9: R_neg = 2/3 - 0.81 < 0 = -beta, so the step is -gamma * R_neg (+ class term)."""
    r_pos, r_neg, classes = risk_by_hand(0.9)
    assert r_neg < 0
    z = logits_of(PROBS).requires_grad_()
    loss, parts = pu_risk_loss(z, LABELS, 0.9, ignore_index=V, nonnegative=True, beta=0.0, gamma=0.5)
    assert parts["nnpu/corrected"] == 1.0
    assert loss.item() == pytest.approx(-0.5 * r_neg + classes, rel=1e-6)
    assert parts["risk/objective"] == pytest.approx(r_pos, rel=1e-6)  # R_pos - beta
    loss.backward()
    # the same gradient from the formula written out: R_neg from p_0, class term from p_1 / (1 - p_0)
    z2 = logits_of(PROBS).requires_grad_()
    p = z2.softmax(1)[0, :, 0]
    neg = (1 - p[0, :3]).mean() - 0.9 * (1 - p[0, 2])
    (-0.5 * neg - torch.log(p[1, 2] / (1 - p[0, 2])) / N).backward()
    assert torch.allclose(z.grad, z2.grad, atol=1e-6)
    # with beta = 0.2 > -R_neg the plain risk is used
    loss, parts = pu_risk_loss(logits_of(PROBS), LABELS, 0.9, ignore_index=V, nonnegative=True, beta=0.2)
    assert parts["nnpu/corrected"] == 0.0
    assert loss.item() == pytest.approx(r_pos + r_neg + classes, rel=1e-6)


@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_nnpu_keeps_the_negative_risk_above_minus_beta(beta):
    """Fitting free logits on P/U data with prior 0.5 > labelled fraction 0.25: uPU drives R_neg to
    about 0.25 - 0.5; nnPU holds it at -beta (the reported estimate never goes below)."""
    labels = torch.zeros(1, 1, 20, dtype=torch.long)
    labels[..., :5] = 1
    lowest = {}
    for nonnegative in (False, True):
        z = torch.zeros(1, 2, 1, 20, requires_grad=True)
        opt = torch.optim.SGD([z], lr=5.0)
        seen = []
        for _ in range(200):
            opt.zero_grad()
            loss, parts = pu_risk_loss(z, labels, 0.5, ignore_index=V, nonnegative=nonnegative, beta=beta)
            loss.backward()
            opt.step()
            seen.append(parts["risk/negative"])
            if nonnegative:
                assert parts["risk/objective"] - parts["risk/positive"] >= -beta - 1e-6
        lowest[nonnegative] = min(seen[100:])
    assert lowest[False] < -0.2
    assert lowest[True] > -beta - 0.05


def ctx() -> MethodContext:
    return MethodContext(num_classes=3, ignore_index=V, epochs=10, num_train=4, image_size=(6, 6))


@pytest.mark.parametrize("kind", ["ce", "weighted", "exponential", "bootstrap_hard", "upu", "nnpu"])
def test_loss_with_a_model_backpropagates(kind):
    method = PULearning(from_dict(PULearning.Params, {"pu_loss": kind, "prior": 0.3}, "method"), ctx())
    model = torch.nn.Conv2d(3, 3, 1)
    labels = torch.randint(0, 3, (2, 6, 6))
    labels[0, 0] = V
    loss, parts = method.loss(model, torch.randn(2, 3, 6, 6), labels, epoch=1)
    loss.backward()
    # terms stay on the device (detached 0-dim tensors, or plain floats): no host sync per batch
    assert loss.ndim == 0 and all(isinstance(v, float) or (v.ndim == 0 and not v.requires_grad)
                                  for v in parts.values())
    assert model.weight.grad.abs().sum() > 0


def test_prior_estimated_from_the_drop_rate_and_checkpointed():
    method = PULearning(PULearning.Params(pu_loss="nnpu", drop_rate=0.5), ctx())
    model = torch.nn.Conv2d(3, 3, 1)
    labels = torch.zeros(1, 4, 5, dtype=torch.long)
    labels[0, 0, :3] = 2  # 3 of 20 pixels labelled foreground in this batch
    labels[0, 3] = V  # 15 valid pixels
    method.loss(model, torch.randn(1, 3, 4, 5), labels, epoch=0)
    labels[0, 1, :3] = 1  # 6 of 15 in the next one
    method.loss(model, torch.randn(1, 3, 4, 5), labels, epoch=0)
    diag = method.diagnostics()
    assert diag["labelled_fraction"] == pytest.approx(9 / 30)
    assert diag["prior"] == pytest.approx((9 / 30) / (1 - 0.5))
    buf = io.BytesIO()
    torch.save(method.state_dict(), buf)
    buf.seek(0)
    restored = PULearning(PULearning.Params(pu_loss="nnpu", drop_rate=0.5), ctx())
    restored.load_state_dict(torch.load(buf, weights_only=True))
    assert restored.diagnostics() == diag
    assert PULearning(PULearning.Params(prior=0.2), ctx()).prior() == 0.2


def test_params_defaults_and_validation():
    p = from_dict(PULearning.Params, {}, "method")
    assert (p.pu_loss, p.unlabeled_weight, p.fade_in_epochs) == ("exponential", 0.5, 5)
    assert p.bootstrap_beta == 0.8
    assert (p.prior, p.drop_rate, p.nnpu_beta, p.nnpu_gamma) == (None, None, 0.0, 1.0)
    with pytest.raises(ConfigError, match=r"^method\.prior: .*needs the class prior"):
        from_dict(PULearning.Params, {"pu_loss": "nnpu"}, "method")
    with pytest.raises(ConfigError, match=r"^method\.drop_rate: "):
        from_dict(PULearning.Params, {"prior": 0.3, "drop_rate": 0.5}, "method")
    with pytest.raises(ConfigError, match=r"^method\.pu_loss: "):
        from_dict(PULearning.Params, {"pu_loss": "nnPU"}, "method")
