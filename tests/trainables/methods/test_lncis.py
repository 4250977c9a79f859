"""LNCIS on pixels: the role partition of a hand-made 4x4 example, Eq. 4 by hand, isolation, stage
switch, RCE symmetry, diagnostics and checkpointing."""
from __future__ import annotations

import io
import math

import pytest
import torch

from trainables.typed import from_dict
from trainables.errors import ConfigError
from trainables.methods import MethodContext
from trainables.methods._losses import rce_map
from trainables.methods.lncis import Lncis, lncis_loss, stage2_start

# K = 3 probability vectors
a = [0.8, 0.1, 0.1]  # predicts background
b = [0.1, 0.8, 0.1]  # predicts class 1
c = [0.1, 0.1, 0.8]  # predicts class 2
d = [0.001, 0.998, 0.001]  # predicts class 1; CE of label 2 (or 0) = -ln 0.001 = 6.9 > gamma = 6
e = [0.998, 0.001, 0.001]  # predicts background; CE of label 1 = 6.9 > gamma
V = 255
LABELS = torch.tensor([[[0, 0, 0, 0],
                        [1, 1, 2, 1],
                        [2, 2, 1, 2],
                        [1, V, 2, V]]])
PROBS = [[a, b, c, d],
         [a, e, a, c],
         [d, d, b, b],
         [b, a, c, b]]
# row 0: N x4 (even where predicted foreground); row 1: PSN, PSN (also CE > gamma: PSN wins), PSN,
# other (CE 2.3); row 2: PON, PON, other, other; row 3: other, void, other, void
ROLE_COUNTS = {"N": 4, "PSN": 3, "PON": 2, "other": 5}
N_VALID = 14
CE_N = -math.log(0.8) - math.log(0.1) - math.log(0.1) - math.log(0.001)
CE_PSN = -math.log(0.1) - math.log(0.001) - math.log(0.1)
RCE_OTHER = 4 * ((1 - 0.1) + (1 - 0.8) + (1 - 0.1) + (1 - 0.8) + (1 - 0.8))  # A = -4: -A (1 - p_y)
RCE_PON = 4 * 2 * (1 - 0.001)
PON_PIXELS = [(2, 0), (2, 1)]


def logits() -> torch.Tensor:
    return torch.tensor(PROBS).log().permute(2, 0, 1).unsqueeze(0)  # [1, 3, 4, 4]


def ctx(epochs: int = 12) -> MethodContext:
    return MethodContext(num_classes=3, ignore_index=255, epochs=epochs, num_train=4, image_size=(4, 4))


class FixedLogits(torch.nn.Module):
    def __init__(self, z: torch.Tensor):
        super().__init__()
        self.z = torch.nn.Parameter(z.clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.z


def test_partition_of_the_4x4_example():
    _, _, counts = lncis_loss(logits(), LABELS, stage=2, gamma=6.0, A=-4.0, isolate=True, ignore_index=V)
    assert counts == ROLE_COUNTS
    assert sum(counts.values()) == N_VALID


def test_stage2_loss_by_hand():
    loss, parts, _ = lncis_loss(logits(), LABELS, 2, 6.0, -4.0, isolate=True, ignore_index=V)
    assert parts["ce"] == pytest.approx((CE_N + CE_PSN) / N_VALID, rel=1e-5)
    assert parts["rce"] == pytest.approx(RCE_OTHER / N_VALID, rel=1e-5)
    assert loss.item() == pytest.approx((CE_N + CE_PSN + RCE_OTHER) / N_VALID, rel=1e-5)
    loss, _, _ = lncis_loss(logits(), LABELS, 2, 6.0, -4.0, isolate=False, ignore_index=V)
    assert loss.item() == pytest.approx((CE_N + CE_PSN + RCE_OTHER + RCE_PON) / N_VALID, rel=1e-5)


def test_stage1_is_mean_ce_over_valid_pixels():
    loss, _, counts = lncis_loss(logits(), LABELS, 1, 6.0, -4.0, isolate=True, ignore_index=V)
    ce = -torch.tensor(PROBS).log().permute(2, 0, 1).gather(0, LABELS.clamp(max=2))[0]
    expected = ce[LABELS[0] != V].sum().item() / N_VALID
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert counts == ROLE_COUNTS  # still counted for the diagnostics


def test_isolation_removes_exactly_the_high_loss_foreground_pixels():
    z = logits().requires_grad_()
    lncis_loss(z, LABELS, 2, 6.0, -4.0, isolate=True, ignore_index=V)[0].backward()
    no_grad = {(i, j) for i in range(4) for j in range(4) if z.grad[0, :, i, j].abs().sum() == 0}
    assert no_grad == set(PON_PIXELS) | {(3, 1), (3, 3)}  # PON and void


@pytest.mark.parametrize("A", [-4.0, math.log(1e-4)])
def test_rce_sum_over_labels_is_constant(A):
    """The symmetry of LNCIS Sec. 4.1: sum over all K labels of RCE(p, k) = -(K - 1) A for any p."""
    torch.manual_seed(0)
    K = 5
    z = 4 * torch.randn(3, K, 4, 4)
    total = sum(rce_map(z, torch.full((3, 4, 4), k), A, V) for k in range(K))
    assert torch.allclose(total, torch.full((3, 4, 4), -(K - 1) * A), rtol=1e-5)


@pytest.mark.parametrize("frac,epochs,start", [(0.5, 12, 6), (0.5, 5, 2), (0.3, 10, 3),
                                               (0.29, 100, 29), (0.0, 8, 0), (1.0, 8, 8)])
def test_stage_switch_epoch(frac, epochs, start):
    assert stage2_start(frac, epochs) == start
    m = Lncis(Lncis.Params(e1_frac=frac), ctx(epochs))
    assert [m.stage(e) for e in range(epochs)] == [1] * start + [2] * (epochs - start)


def test_loss_switches_at_the_stage_epoch():
    m = Lncis(Lncis.Params(), ctx(12))
    model = FixedLogits(logits())
    images = torch.zeros(1, 3, 4, 4)
    stage1 = lncis_loss(logits(), LABELS, 1, 6.0, -4.0, True, V)[0].item()
    stage2 = lncis_loss(logits(), LABELS, 2, 6.0, -4.0, True, V)[0].item()
    assert m.loss(model, images, LABELS, epoch=5)[0].item() == pytest.approx(stage1)
    assert m.loss(model, images, LABELS, epoch=6)[0].item() == pytest.approx(stage2)


def test_diagnostics_accumulate_per_epoch_and_checkpoint():
    m = Lncis(Lncis.Params(), ctx(12))
    model, images = FixedLogits(logits()), torch.zeros(1, 3, 4, 4)
    for _ in range(2):
        m.loss(model, images, LABELS, epoch=6)
    diag = m.diagnostics()
    assert diag == {**{f"role/{r}": 2 * n for r, n in ROLE_COUNTS.items()}, "stage": 2}
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    restored = Lncis(Lncis.Params(), ctx(12))
    restored.load_state_dict(torch.load(buf, weights_only=True))
    assert restored.diagnostics() == diag
    m.loss(model, images, LABELS, epoch=7)  # a new epoch restarts the counts
    assert m.diagnostics()["role/N"] == ROLE_COUNTS["N"]


def test_loss_with_a_model_backpropagates_in_both_stages():
    m = Lncis(Lncis.Params(), ctx(2))
    model = torch.nn.Conv2d(3, 4, 1)
    labels = torch.randint(0, 4, (2, 6, 6))
    labels[1, :2] = V
    for epoch in (0, 1):
        model.zero_grad()
        loss, parts = m.loss(model, torch.randn(2, 3, 6, 6), labels, epoch)
        loss.backward()
        assert loss.ndim == 0 and set(parts) == {"ce", "rce"}
        assert model.weight.grad.abs().sum() > 0
    assert sum(v for k, v in m.diagnostics().items() if k.startswith("role/")) == int((labels != V).sum())


def test_params_defaults_and_validation():
    p = from_dict(Lncis.Params, {}, "method")
    assert (p.e1_frac, p.gamma, p.isolate, p.A) == (0.5, 6.0, True, -4.0)
    with pytest.raises(ConfigError, match=r"^method\.gamma: "):
        from_dict(Lncis.Params, {"gamma": -1}, "method")
    with pytest.raises(ConfigError, match=r"^method\.e1_frac: "):
        from_dict(Lncis.Params, {"e1_frac": 1.5}, "method")
