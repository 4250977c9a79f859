"""ADELE: curve fit, start rule, trigger, correction, multiscale consistency, checkpoint/resume.

Expectations are computed by hand: curves are generated from f(t) = a (1 - exp(-b t^c)) with known
parameters, and for exact data the trigger epoch is the first t >= 1 with
rc(t) = 1 - f'(t) / f'(1) = 1 - t^(c-1) exp(-b (t^c - 1)) > r, shifted by the learning start.
"""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainables.typed import from_dict
from trainables.errors import ConfigError
from trainables.methods import METHODS, MethodContext, TrainIoU
from trainables.methods._early_learning import curve, fit_curve, learning_start, relative_change, time_grid
from trainables.methods.adele import (Adele, correct_labels, encode_confident, forward_at_scale,
                                      multiscale_consistency, scaled_size)

FAST = (0.9, 1.0, 0.9)  # f(1) - f(0) = 0.57 >= 0.1; hand: rc(3) = 0.834, rc(4) = 0.927 -> u = 4 at r = 0.9


def f_values(a: float, b: float, c: float, n: int, delay: int = 0) -> list[float]:
    """IoU curve: ``delay`` epochs flat at 0, then f(0), f(1), ... (n values in all)."""
    return [0.0] * delay + [a * (1 - math.exp(-b * t ** c)) for t in range(n - delay)]


def hand_u(b: float, c: float, r: float, horizon: int = 1000) -> int:
    """First integer t >= 1 with 1 - t^(c-1) exp(-b (t^c - 1)) > r, written out independently."""
    for t in range(1, horizon):
        if 1 - t ** (c - 1) * math.exp(-b * (t ** c - 1)) > r:
            return t
    return horizon


def make(num_classes: int = 5, epochs: int = 40, n: int = 3, hw: tuple[int, int] = (2, 4), **kw) -> Adele:
    """An ADELE whose corrections come from predictions handed to ``observe_train_batch`` (the
    eval-pass source) unless the test asks for the training-pass source."""
    kw.setdefault("prediction", "eval_pass")
    return Adele(Adele.Params(**kw), MethodContext(num_classes, 255, epochs, n, hw))


def iou(values, noisy=None) -> TrainIoU:
    cur = torch.tensor(values, dtype=torch.float64)
    return TrainIoU(cur, cur.clone() if noisy is None else torch.tensor(noisy, dtype=torch.float64))


def curves(*per_class: list[float]) -> np.ndarray:
    """[T, K] history, class 0 (background) fixed at 0.9."""
    t = len(per_class[0])
    return np.stack([np.full(t, 0.9)] + [np.asarray(c, dtype=np.float64) for c in per_class], axis=1)


def one_hot_probs(pred: list[list[list[int]]], conf: list[list[list[float]]], k: int) -> torch.Tensor:
    """Softmax-like [B, K, H, W]: ``conf`` on the predicted class, the rest shared equally."""
    pred_t, conf_t = torch.tensor(pred), torch.tensor(conf, dtype=torch.float32)
    rest = ((1 - conf_t) / (k - 1)).unsqueeze(1).expand(-1, k, -1, -1).clone()
    return rest.scatter_(1, pred_t.unsqueeze(1), conf_t.unsqueeze(1))


def drive(m: Adele, hist: np.ndarray, labels: torch.Tensor, probs_at=None, epochs=None, noisy=None):
    """Feed epochs of the history and the training-set pass (default: uniform probabilities, nothing
    confident) to the method; returns the triggers seen after each epoch."""
    if probs_at is None:
        k = m.ctx.num_classes
        uniform = torch.full((labels.shape[0], k, *labels.shape[1:]), 1.0 / k)
        probs_at = lambda e: uniform  # noqa: E731
    seen = []
    for e in epochs if epochs is not None else range(len(hist)):
        m.observe_train_batch(e, torch.arange(labels.shape[0]), probs_at(e))
        m.on_epoch_end(e, labels, iou(hist[e], None if noisy is None else noisy[e]))
        seen.append(list(m.trigger))
    return seen


# -- curve fit and derivative -----------------------------------------------------------------
@pytest.mark.parametrize("abc", [(0.8, 0.3, 0.8), (0.6, 1.2, 0.5), (0.95, 0.15, 1.0)])
def test_fit_recovers_generating_parameters(abc):
    t = np.arange(30.0)
    assert np.allclose(fit_curve(t, curve(t, *abc)), abc, rtol=1e-3)


def test_fit_recovers_parameters_from_noisy_curve():
    t = np.arange(30.0)
    y = curve(t, 0.8, 0.3, 0.8) + np.random.default_rng(0).normal(0, 0.005, t.shape)
    a, b, c = fit_curve(t, y)
    assert abs(a - 0.8) < 0.02 and abs(b - 0.3) < 0.05 and abs(c - 0.8) < 0.05


def test_relative_change_is_the_hand_formula():
    a, b, c = 0.7, 0.4, 0.6
    for t in (2.0, 5.0, 11.0):
        hand = 1 - t ** (c - 1) * math.exp(-b * (t ** c - 1))
        assert relative_change(t, (a, b, c)) == pytest.approx(hand, abs=1e-5)


def test_time_grids():
    assert time_grid(4, "epochs").tolist() == [0, 1, 2, 3]
    assert np.allclose(time_grid(4, "code"), np.linspace(0, 4, 4))  # the authors' label_update_epoch


def test_start_rules():
    y = [0.0, 0.02, 0.03, 0.2, 0.4, 0.5]
    assert learning_start(y, "jump") == 2  # first y[k+1] - y[k] >= 0.1 at k = 2 (SegTHOR if_update)
    assert learning_start(y, "floor", floor=0.025) == 1  # the point before the first IoU >= floor
    assert learning_start([0.0, 0.05, 0.1, 0.15], "jump") is None  # never gains 0.1 in one epoch
    assert learning_start([0.3, 0.4], "floor") == 0


# -- trigger ----------------------------------------------------------------------------------
def test_trigger_epoch_matches_hand_derivative_condition_and_flat_start_waits():
    a, b, c = 0.8, 0.3, 0.8
    u = hand_u(b, c, 0.9)
    assert u == 12
    delay = 6  # class 2: flat at 0 for 6 epochs, then the same curve: starts at index 6
    hist = curves(f_values(a, b, c, 26), f_values(a, b, c, 26, delay), [0.0] * 26, [0.0] * 26)
    m = make(epochs=40)
    seen = drive(m, hist, torch.zeros(3, 2, 4, dtype=torch.uint8))
    first = {k: next((e for e, s in enumerate(seen) if s[k] >= 0), -1) for k in (1, 2, 3, 4)}
    assert first == {1: u, 2: delay + u, 3: -1, 4: -1}
    assert m.trigger == [-1, u, delay + u, -1, -1]  # triggers are recorded with their epoch
    d = m.diagnostics()
    assert d["start/1"] == 0 and d["start/2"] == delay and d["start/3"] == -1
    assert np.allclose(d["fit/2"], (a, b, c), rtol=1e-3)  # the fit at its trigger epoch
    assert d["update_t/1"] == u and d["rc/1"] > 0.9
    assert d["fit/3"] is None and d["trigger/3"] == -1  # flat at zero: never started, never fitted


def test_early_saturating_class_triggers_before_rising_class():
    hist = curves(f_values(*FAST, 25), f_values(0.9, 0.15, 1.0, 25), [0.0] * 25, [0.0] * 25)
    m = make(epochs=40)
    drive(m, hist, torch.zeros(3, 2, 4, dtype=torch.uint8))
    assert m.trigger[1] == hand_u(1.0, 0.9, 0.9) == 4
    assert m.trigger[2] == hand_u(0.15, 1.0, 0.9) == 17  # still rising until then


def test_floor_start_rule_serves_a_class_that_never_jumps():
    # a = 0.9, b = 0.08, c = 1: gains at most 0.069 per epoch, f(1) = 0.069 >= floor 0.05
    hist = curves(f_values(0.9, 0.08, 1.0, 18, delay=3), [0.0] * 18)
    u = hand_u(0.08, 1.0, 0.5)
    assert u == 10
    jump = make(num_classes=3, epochs=60, r=0.5)
    drive(jump, hist, torch.zeros(3, 2, 4, dtype=torch.uint8))
    assert jump.trigger[1] == -1  # the authors' rule trims this curve for ever
    floor = make(num_classes=3, epochs=60, r=0.5, start_rule="floor", start_floor=0.05)
    drive(floor, hist, torch.zeros(3, 2, 4, dtype=torch.uint8))
    assert floor.trigger[1] == 3 + u and floor.trigger[2] == -1


def test_min_points_delays_the_first_test():
    hist = curves(f_values(0.9, 2.0, 0.7, 10))  # u = 3 at r = 0.9
    m = make(num_classes=2, min_points=5)
    drive(m, hist, torch.zeros(3, 2, 4, dtype=torch.uint8))
    assert hand_u(2.0, 0.7, 0.9) == 3 and m.trigger[1] == 5


def test_nonadaptive_mode_triggers_all_classes_together():
    same = f_values(0.8, 0.3, 0.8, 20)
    m = make(num_classes=4, class_adaptive=False)
    drive(m, curves(same, same, same), torch.zeros(3, 2, 4, dtype=torch.uint8))
    assert m.trigger == [-1, 12, 12, 12]  # the mean of equal curves is the curve: hand u = 12
    assert "fit/mean" in m.diagnostics() and "fit/1" not in m.diagnostics()
    mixed = curves(f_values(*FAST, 30), f_values(0.8, 0.3, 0.8, 30, delay=4), [0.0] * 30)
    m = make(num_classes=4, class_adaptive=False)
    drive(m, mixed, torch.zeros(3, 2, 4, dtype=torch.uint8))
    assert m.trigger[1] == m.trigger[2] == m.trigger[3] >= 0
    adaptive = make(num_classes=4)
    drive(adaptive, mixed, torch.zeros(3, 2, 4, dtype=torch.uint8))
    # the mean curve saturates with the fast class: the late class is corrected far too early
    assert adaptive.trigger[1:] == [4, 16, -1] and m.trigger[2] < adaptive.trigger[2]


def test_iou_reference_original_reads_the_noisy_iou():
    rising = curves(f_values(*FAST, 8))
    flat = curves([0.0] * 8)
    for ref, expected in (("current", -1), ("original", 4)):
        m = make(num_classes=2, iou_reference=ref)
        drive(m, flat, torch.zeros(3, 2, 4, dtype=torch.uint8), noisy=rising)
        assert m.trigger[1] == expected


# -- correction -------------------------------------------------------------------------------
# image 0, pixel by pixel (classes 1, 2 trigger at epoch 4, classes 3, 4 never):
LABELS0 = [[0, 0, 1, 1], [3, 0, 255, 4]]
PRED0 = [[1, 1, 0, 0], [1, 2, 1, 4]]
CONF0 = [[0.9, 0.6, 0.8, 0.65], [0.95, 0.95, 0.95, 0.95]]
# expected:  0->1 (fg 0.9 > 0.7) | 0 kept (0.6) | 1->0 (bg 0.8 > 0.7) | 1 kept (bg 0.65)
#            3 kept (label class not triggered) | 0 kept (2 absent from image: class constraint)
#            255 kept (void) | 4 kept (predicted class not triggered)
EXPECTED0 = [[1, 0, 0, 1], [3, 0, 255, 4]]
LABELS1 = [[0, 0, 3, 3], [0, 0, 4, 4]]  # no triggered class: untouched although confident
PRED1 = [[1, 1, 1, 1], [0, 0, 0, 0]]
LABELS2 = [[2, 2, 0, 0], [0, 0, 0, 0]]  # 2 -> 0 (bg 0.9); class 2 present: 0 -> 2 allowed, 0 -> 1 not
PRED2 = [[2, 0, 2, 1], [0, 0, 0, 0]]
EXPECTED2 = [[2, 0, 2, 0], [0, 0, 0, 0]]


def correction_setup(**kw):
    labels = torch.tensor([LABELS0, LABELS1, LABELS2], dtype=torch.uint8)
    conf = [CONF0, [[0.99] * 4] * 2, [[0.9] * 4] * 2]
    sure = one_hot_probs([PRED0, PRED1, PRED2], conf, 5)
    vague = torch.full((3, 5, 2, 4), 0.2)  # uniform: nothing confident before the trigger
    hist = curves(f_values(*FAST, 6), f_values(*FAST, 6), [0.0] * 6, [0.0] * 6)
    m = make(**kw)
    return m, labels, hist, (lambda e: sure if e == 4 else vague)


def test_correction_touches_only_confident_pixels_of_triggered_classes():
    m, labels, hist, probs_at = correction_setup()
    before = labels.clone()
    drive(m, hist, labels, probs_at, epochs=range(4))
    assert torch.equal(labels, before) and m.trigger == [-1] * 5  # nothing before the trigger
    drive(m, hist, labels, probs_at, epochs=[4])
    assert m.trigger == [-1, 4, 4, -1, -1]
    assert labels[0].tolist() == EXPECTED0
    assert torch.equal(labels[1], before[1])
    assert labels[2].tolist() == EXPECTED2
    d = m.diagnostics()
    assert [d[f"corrected/{c}"] for c in range(5)] == [2, 1, 1, 0, 0]  # pixels relabelled to c
    assert [d[f"corrected_from/{c}"] for c in range(5)] == [2, 1, 1, 0, 0] and d["corrected_total"] == 4


def test_correction_thresholds_and_class_constraint_options():
    m, labels, hist, probs_at = correction_setup(tau_bg=0.95, class_constraint=False)
    drive(m, hist, labels, probs_at)
    assert labels[0].tolist() == [[1, 0, 1, 1], [3, 2, 255, 4]]  # bg 0.8 < tau_bg; 0 -> 2 allowed
    assert labels[2].tolist() == [[2, 2, 2, 1], [0, 0, 0, 0]]  # bg 0.9 < tau_bg; 0 -> 1 allowed


def test_no_correction_switch_keeps_labels_but_still_triggers():
    m, labels, hist, probs_at = correction_setup(correction=False)
    before = labels.clone()
    drive(m, hist, labels, probs_at)
    assert torch.equal(labels, before) and m.trigger[1] == 4


def test_encode_confident_uses_fg_max_and_bg_separately():
    probs = torch.tensor([[0.5, 0.45, 0.05], [0.1, 0.35, 0.55], [0.75, 0.2, 0.05]]).T.reshape(1, 3, 1, 3)
    assert encode_confident(probs, 0.4, 0.7).tolist() == [[[0, 2, 0]]]  # fg 0.45 > 0.4: argmax 0
    assert encode_confident(probs, 0.6, 0.8).tolist() == [[[255, 255, 255]]]


def schedule_run(**kw) -> list[int]:
    """Epochs at which a correction changed labels: one image, an anchor pixel of class 1 never
    confident, three pixels predicted confidently as 1 at even epochs and 0 at odd ones."""
    labels = torch.tensor([[[1, 0, 0, 0]]], dtype=torch.uint8)
    hist = curves(f_values(*FAST, 16))
    m = make(num_classes=2, n=1, hw=(1, 4), **kw)

    def probs_at(e):
        p = 1 if e % 2 == 0 else 0
        return one_hot_probs([[[0, p, p, p]]], [[[0.5, 0.9, 0.9, 0.9]]], 2)

    changed = []
    for e in range(16):
        drive(m, hist, labels, probs_at, epochs=[e])
        if m.diagnostics()["corrected_total"]:
            changed.append(e)
    return changed


def test_correction_schedules():
    assert schedule_run(correct_every=3) == [4, 7, 10, 13]  # trigger 4, then every 3 epochs
    assert schedule_run(correct_every=3, correct_schedule="code") == [4, 5, 8, 11, 14]  # (e+1) % 3 == 0
    assert schedule_run(correct_every=1) == list(range(4, 16))
    assert schedule_run(correct_every=0) == [4]


def test_due_versus_triggered_classes():
    # class 1 triggers at 4, class 2 (4 epochs later) at 8; at epoch 8 a pixel is predicted as class 1
    labels = torch.tensor([[[1, 2, 0, 0]]], dtype=torch.uint8)
    hist = curves(f_values(*FAST, 9), f_values(*FAST, 9, delay=4))

    def probs_at(e):
        return one_hot_probs([[[1, 2, 1, 2]]], [[[0.5, 0.5, 0.9 if e == 8 else 0.5, 0.9]]], 3)

    out = {}
    for mode in ("triggered", "due"):
        m = make(num_classes=3, n=1, hw=(1, 4), correct_classes=mode)
        lab = labels.clone()
        drive(m, hist, lab, probs_at)
        assert m.trigger == [-1, 4, 8]
        out[mode] = lab[0, 0].tolist()
    assert out == {"triggered": [1, 2, 1, 2], "due": [1, 2, 0, 2]}


def test_reset_before_correct_starts_from_the_original_labels():
    labels = torch.tensor([[[1, 0, 0, 0]]], dtype=torch.uint8)
    hist = curves(f_values(*FAST, 6))

    def probs_at(e):  # epoch 4 proposes pixel 1 -> 1, epoch 5 pixel 2 -> 1 (pixel 1 no longer confident)
        return one_hot_probs([[[1, 1, 1, 0]]], [[[0.5, 0.9 if e == 4 else 0.5, 0.9 if e == 5 else 0.5, 0.5]]], 2)

    for reset, expected in ((False, [1, 1, 1, 0]), (True, [1, 0, 1, 0])):
        m = make(num_classes=2, n=1, hw=(1, 4), correct_every=1, reset_before_correct=reset)
        lab = labels.clone()
        drive(m, hist, lab, probs_at)
        assert lab[0, 0].tolist() == expected


def test_missing_training_pass_or_history_is_an_error():
    m = make(num_classes=2)
    with pytest.raises(RuntimeError, match="epoch=3"):
        m.on_epoch_end(3, torch.zeros(3, 2, 4, dtype=torch.uint8), iou([0.9, 0.0]))
    hist = curves(f_values(*FAST, 5))
    drive(m, hist, torch.zeros(3, 2, 4, dtype=torch.uint8), epochs=range(4))
    with pytest.raises(RuntimeError, match="no predictions"):  # a correction is due at epoch 4
        m.on_epoch_end(4, torch.zeros(3, 2, 4, dtype=torch.uint8), iou(hist[4]))


def test_correct_labels_leaves_input_unchanged():
    lab = torch.tensor([[[0, 1]]], dtype=torch.uint8)
    new = correct_labels(lab, torch.tensor([[[1, 0]]], dtype=torch.uint8), [1])
    assert lab.tolist() == [[[0, 1]]] and new.tolist() == [[[1, 0]]]


# -- checkpoint / resume ----------------------------------------------------------------------
@pytest.mark.parametrize("reset", [False, True])
def test_resume_from_state_dict_is_identical(reset):
    gen = torch.Generator().manual_seed(0)
    k, n = 4, 6
    labels0 = torch.randint(0, k, (n, 8, 8), generator=gen, dtype=torch.uint8)
    probs = [F.softmax(3 * torch.randn(n, k, 8, 8, generator=gen), dim=1) for _ in range(10)]
    hist = curves(f_values(*FAST, 10), f_values(0.9, 2.0, 0.7, 10, delay=2), [0.0] * 10)
    kw = dict(num_classes=k, n=n, hw=(8, 8), correct_every=2, reset_before_correct=reset)

    def run(m, labels, epochs):
        for e in epochs:
            m.observe_train_batch(e, torch.arange(n), probs[e])
            m.on_epoch_end(e, labels, iou(hist[e]))

    whole, lab_whole = make(**kw), labels0.clone()
    run(whole, lab_whole, range(10))
    first, lab_split = make(**kw), labels0.clone()
    run(first, lab_split, range(5))
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    second = make(**kw)
    second.load_state_dict(torch.load(buf, weights_only=True))
    assert second.diagnostics() == first.diagnostics()
    run(second, lab_split, range(5, 10))
    assert torch.equal(lab_split, lab_whole) and not torch.equal(lab_whole, labels0)
    assert second.trigger == whole.trigger and min(whole.trigger[1:3]) >= 0
    assert second.diagnostics() == whole.diagnostics()
    assert torch.equal(second.state_dict()["history"], whole.state_dict()["history"])


# -- multiscale consistency -------------------------------------------------------------------
def test_kl_is_zero_when_scales_agree_and_positive_with_gradients_otherwise():
    z = torch.randn(2, 3, 4, 4)
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    same, _ = multiscale_consistency([z, z.clone(), z.clone()], labels, 0.0, 255)
    assert abs(float(same)) < 1e-7
    zs = [(z + 0.5 * torch.randn(2, 3, 4, 4)).requires_grad_() for _ in range(3)]
    kl, mask = multiscale_consistency(zs, labels, 0.0, 255)
    assert kl.item() > 0 and mask.tolist() == [1.0, 1.0]
    kl.backward()
    assert all(t.grad is not None and float(t.grad.abs().sum()) > 0 for t in zs)


def test_kl_value_by_hand_and_rho_threshold():
    p1, p2 = torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5])
    zs = [p.log().view(1, 2, 1, 1) for p in (p1, p2)]
    lab = torch.zeros(1, 1, 1, dtype=torch.long)
    q = (0.7, 0.3)
    hand = 0.5 * ((0.9 * math.log(0.9 / q[0]) + 0.1 * math.log(0.1 / q[1]))
                  + (0.5 * math.log(0.5 / q[0]) + 0.5 * math.log(0.5 / q[1])))
    assert float(multiscale_consistency(zs, lab, 0.7, 255)[0]) == pytest.approx(hand, rel=1e-5)
    assert float(multiscale_consistency(zs, lab, 0.8, 255)[0]) == 0.0  # max q = 0.7 < rho


def test_rho_masks_per_image_on_non_void_pixels():
    z = torch.zeros(2, 3, 2, 2)
    z[0, 1, 0, 0] = 6.0  # image 0: one confident pixel; image 1: uniform everywhere
    zs = [z, z + torch.randn(2, 3, 2, 2) * 0.3]
    labels = torch.zeros(2, 2, 2, dtype=torch.long)
    kl, mask = multiscale_consistency(zs, labels, 0.8, 255)
    assert mask.tolist() == [1.0, 0.0]
    only0, _ = multiscale_consistency([t[:1] for t in zs], labels[:1], 0.8, 255)
    assert float(kl) == pytest.approx(float(only0) / 2, rel=1e-6)  # mean over both images' pixels
    labels[0, 0, 0] = 255  # the confident pixel is void: it no longer qualifies its image
    kl, mask = multiscale_consistency(zs, labels, 0.8, 255)
    assert mask.tolist() == [0.0, 0.0] and float(kl) == 0.0


class TinyNet(torch.nn.Module):
    """One conv layer; records its input sizes."""

    def __init__(self, k: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, k, 3, padding=1)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        return self.conv(x)


def test_multiscale_loss_on_a_real_model_has_gradients_and_padded_sizes():
    torch.manual_seed(0)
    net = TinyNet()
    images, labels = torch.randn(2, 3, 40, 40), torch.randint(0, 3, (2, 40, 40))
    labels[0, :5] = 255
    m = make(num_classes=3, rho=0.0)
    loss, logs = m.loss(net, images, labels, epoch=0)
    assert net.sizes == [(32, 32), (40, 40), (64, 64)]  # 28 padded to 32, 60 padded to 64 (TinyNet: 32)
    assert set(logs) == {"ce", "consistency", "consistency_images"} and logs["consistency"] > 0
    loss.backward()
    assert net.conv.weight.grad is not None and float(net.conv.weight.grad.abs().sum()) > 0
    assert loss.item() == pytest.approx(float(logs["ce"] + logs["consistency"]), rel=1e-5)
    assert scaled_size(40, 40, 0.7) == (28, 28)


class PointNet(torch.nn.Module):
    """A 1x1 conv (padding cannot leak into other pixels) that records its inputs and, like smp
    encoders, declares the multiple it needs."""

    def __init__(self, multiple: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.encoder = type("Enc", (), {"output_stride": multiple})()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        h, w = x.shape[-2:]
        assert h % self.encoder.output_stride == 0 and w % self.encoder.output_stride == 0
        self.inputs.append(x)
        return self.conv(x)


@pytest.mark.parametrize("size", [32, 64, 96])
@pytest.mark.parametrize("scale", [0.7, 0.75, 1.5])
def test_scaled_input_is_at_the_configured_scale_at_any_size(size, scale):
    """The model sees the image resized by the configured scale (within 2 %), padded to its
    required multiple; the padding is cropped away, so the result equals an unpadded run."""
    torch.manual_seed(0)
    net = PointNet(multiple=32)
    x = torch.randn(2, 3, size, size)
    out = forward_at_scale(net, x, scale)
    assert out.shape == (2, 3, size, size)
    seen = net.inputs[-1]
    sh, sw = scaled_size(size, size, scale)
    assert abs(sh / size - scale) <= 0.02 * scale and abs(sw / size - scale) <= 0.02 * scale
    resized = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=True)
    assert torch.equal(seen[..., :sh, :sw], resized)  # the content is the scaled image itself
    want = F.interpolate(net.conv(resized), size=(size, size), mode="bilinear", align_corners=True)
    assert torch.allclose(out, want, atol=1e-6)


def test_scaled_input_on_a_real_smp_unet():
    from trainables.config import ModelConfig
    from trainables.models import create_model

    model = create_model(ModelConfig(kwargs={"encoder_depth": 3, "decoder_channels": [16, 8, 4]}), 3).eval()
    for size in (32, 64, 96):
        x = torch.randn(1, 3, size, size)
        for scale in (0.7, 1.5):
            assert forward_at_scale(model, x, scale).shape == (1, 3, size, size)


def test_single_scale_is_plain_ce_and_input_augmentation_has_no_kl():
    torch.manual_seed(0)
    net = TinyNet()
    images, labels = torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    loss, _ = make(num_classes=3, scales=(1.0,)).loss(net, images, labels, 0)
    assert len(net.sizes) == 1 and loss.item() == pytest.approx(F.cross_entropy(net(images), labels).item())
    loss, logs = make(num_classes=3, consistency=False).loss(net, images, labels, 0)
    assert "consistency" not in logs and loss.item() == pytest.approx(logs["ce"])
    loss, _ = make(num_classes=3, consistency=False, code_ce_scaling=True, scales=(1.0, 1.0)).loss(
        net, images, labels, 0)
    assert loss.item() == pytest.approx(F.cross_entropy(net(images) / 2, labels).item(), rel=1e-5)


# -- config -----------------------------------------------------------------------------------
def test_params_defaults_and_validation():
    assert METHODS["adele"] is Adele
    p = from_dict(Adele.Params, {}, "method")
    assert (p.r, p.tau_fg, p.tau_bg, p.correct_every, p.scales, p.lambda_, p.rho) == \
        (0.9, 0.7, 0.7, 10, (0.7, 1.0, 1.5), 1.0, 0.8)
    assert (p.iou_reference, p.start_rule, p.class_adaptive, p.reset_before_correct) == \
        ("current", "jump", True, False)
    for bad, key in (({"r": 1.5}, "method.r"), ({"tau_bg": -0.1}, "method.tau_bg"),
                     ({"scales": []}, "method.scales"), ({"scales": [1.0, 0]}, "method.scales[1]"),
                     ({"iou_reference": "clean"}, "method.iou_reference"), ({"lambda": 1}, "method.lambda")):
        with pytest.raises(ConfigError, match=rf"^{key.replace('[', '.').replace(']', '.')}"):
            from_dict(Adele.Params, bad, "method")


# -- correction source ------------------------------------------------------------------------
def test_train_epoch_prediction_keeps_the_training_pass_softmax():
    """prediction: train_epoch stores the confident argmax of the train-mode softmax at scale 1.0
    of each batch (by dataset index); the eval pass is then ignored. eval_pass: the opposite."""
    torch.manual_seed(0)
    net = TinyNet(k=3)
    images, labels = torch.randn(4, 3, 8, 8), torch.randint(0, 3, (4, 8, 8))
    m = make(num_classes=3, n=6, hw=(8, 8), prediction="train_epoch", tau_fg=0.0, tau_bg=0.0, scales=(0.5, 1.0))
    idx = torch.tensor([5, 0, 3, 2])
    m.begin_batch(0, idx, augmented=False)
    m.loss(net, images, labels, epoch=0)
    want = F.softmax(net.conv(images), dim=1).argmax(1).to(torch.uint8)  # tau 0: every pixel confident
    assert torch.equal(m._pred[idx], want)
    assert (m._pred[[1, 4]] == 255).all()  # images not in a batch yet
    m.observe_train_batch(0, torch.tensor([1]), torch.full((1, 3, 8, 8), 1 / 3))  # eval pass: ignored
    assert (m._pred[1] == 255).all()
    m.begin_batch(0, torch.tensor([1]), augmented=True)  # augmented batches are never stored
    m.loss(net, images[:1], labels[:1], epoch=0)
    assert (m._pred[1] == 255).all()

    assert Adele.Params().prediction == "train_epoch"  # the default (measured: docstring of adele.py)
    e = make(num_classes=3, n=6, hw=(8, 8), tau_fg=0.0, tau_bg=0.0, prediction="eval_pass")
    e.begin_batch(0, idx, augmented=False)
    e.loss(net, images, labels, epoch=0)
    assert e._pred is None
    e.observe_train_batch(0, idx, F.softmax(net.conv(images), dim=1))
    assert torch.equal(e._pred[idx], want)


def test_train_epoch_prediction_refuses_augmentation():
    from trainables.config import parse_trial

    with pytest.raises(ConfigError, match=r"^method\.prediction: .*train\.augment"):
        parse_trial({"method": {"name": "adele", "prediction": "train_epoch"}, "train": {"augment": True}})
    parse_trial({"method": {"name": "adele", "prediction": "train_epoch", "correction": False},
                 "train": {"augment": True}})  # nothing is corrected: allowed
    with pytest.raises(ConfigError, match=r"^method\.prediction: got 'train'"):
        parse_trial({"method": {"name": "adele", "prediction": "train"}})
