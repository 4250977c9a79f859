"""T-Loss: the multi-class form equals the authors' binary formula for K = 2 (value and gradient),
void pixels count nowhere, nu learns in its own optimiser group, and a trial runs through the CLI."""
from __future__ import annotations

import json
import shutil
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from trainables import run as run_cli
from trainables.config import parse_trial
from trainables.engine import Trainer, fit, prepare_data
from trainables.errors import ConfigError
from trainables.methods import METHODS, MethodContext
from trainables.methods.tloss import TLoss, tloss_loss
from trainables.typed import from_dict

VOID = 255


class AuthorsTLoss(nn.Module):
    """A literal transcription of the authors' ``TLoss`` (Digital-Dermatology/t-loss, ``tloss.py``,
    binary, B x W x H inputs, reduction 'mean'); only ``config`` is reduced to what it reads."""

    def __init__(self, config, nu: float = 1.0, epsilon: float = 1e-8):
        super().__init__()
        self.config = config
        self.D = torch.tensor((self.config.data.image_size * self.config.data.image_size), dtype=torch.float,
                              device=config.device)
        self.lambdas = torch.ones((self.config.data.image_size, self.config.data.image_size), dtype=torch.float,
                                  device=config.device)
        self.nu = nn.Parameter(torch.tensor(nu, dtype=torch.float, device=config.device))
        self.epsilon = torch.tensor(epsilon, dtype=torch.float, device=config.device)

    def forward(self, input_tensor: torch.Tensor, target_tensor: torch.Tensor) -> torch.Tensor:
        delta_i = input_tensor - target_tensor
        sum_nu_epsilon = torch.exp(self.nu) + self.epsilon
        first_term = -torch.lgamma((sum_nu_epsilon + self.D) / 2)
        second_term = torch.lgamma(sum_nu_epsilon / 2)
        third_term = -0.5 * torch.sum(self.lambdas + self.epsilon)
        fourth_term = (self.D / 2) * torch.log(torch.tensor(np.pi))
        fifth_term = (self.D / 2) * (self.nu + self.epsilon)
        delta_squared = torch.pow(delta_i, 2)
        lambdas_exp = torch.exp(self.lambdas + self.epsilon)
        numerator = delta_squared * lambdas_exp
        numerator = torch.sum(numerator, dim=(1, 2))
        fraction = numerator / sum_nu_epsilon
        sixth_term = ((sum_nu_epsilon + self.D) / 2) * torch.log(1 + fraction)
        total_losses = first_term + second_term + third_term + fourth_term + fifth_term + sixth_term
        return total_losses.mean()


def _authors(size: int, nu: float = 1.0, dtype=torch.float32) -> AuthorsTLoss:
    """Their module; in float64 its constant tensors too (they are plain attributes, which
    ``Module.to`` leaves in float32), so that a float64 comparison is not limited by float32 e."""
    loss = AuthorsTLoss(SimpleNamespace(data=SimpleNamespace(image_size=size), device="cpu"), nu=nu).to(dtype)
    loss.D, loss.lambdas, loss.epsilon = (t.to(dtype) for t in (loss.D, loss.lambdas, loss.epsilon))
    if dtype == torch.float64:  # float32 cannot hold 1e-8 exactly
        loss.epsilon = torch.tensor(1e-8, dtype=dtype)
    return loss


def _binary_batch(seed: int, size: int = 16, batch: int = 3, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(batch, 2, size, size, generator=gen)).to(dtype)
    labels = (torch.rand(batch, size, size, generator=gen) < 0.4).long()
    return logits, labels


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("log_nu", [1.0, -1.5, 4.0])
def test_k2_equals_the_authors_value_and_gradient(dtype, tol, log_nu):
    logits, labels = _binary_batch(seed=int(10 * log_nu) + 7, dtype=dtype)
    # theirs: net output -> softmax(dim=1)[:, 1] (their train.py), binary float target
    theirs = _authors(16, nu=log_nu, dtype=dtype)
    logits_a = logits.clone().requires_grad_(True)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # their forward makes torch.tensor(np.pi) in the default dtype
    try:
        value_a = theirs(torch.softmax(logits_a, dim=1)[:, 1], labels.to(dtype))
    finally:
        torch.set_default_dtype(default)
    value_a.backward()
    # ours: the multi-class form on the same logits and labels
    log_nu_b = torch.tensor(log_nu, dtype=dtype, requires_grad=True)
    logits_b = logits.clone().requires_grad_(True)
    value_b = tloss_loss(logits_b, labels, log_nu_b, ignore_index=VOID)
    value_b.backward()
    assert value_b.dtype == dtype
    assert value_b.item() == pytest.approx(value_a.item(), rel=tol)
    scale = logits_a.grad.abs().max()
    assert scale > 0
    torch.testing.assert_close(logits_b.grad, logits_a.grad, rtol=tol, atol=tol * scale.item())
    assert log_nu_b.grad.item() == pytest.approx(theirs.nu.grad.item(), rel=tol, abs=tol)


def test_k2_through_the_method_equals_the_authors_value():
    logits, labels = _binary_batch(seed=3)
    ctx = MethodContext(num_classes=2, ignore_index=VOID, epochs=1, num_train=3, image_size=(16, 16))
    method = TLoss(TLoss.Params(), ctx)
    value, _ = method.loss(lambda x: x, logits, labels, epoch=0)
    expected = _authors(16)(torch.softmax(logits, dim=1)[:, 1], labels.float())
    assert value.item() == pytest.approx(expected.item(), rel=2e-5)
    assert method.nu() == pytest.approx(math.e, rel=1e-6)  # theta starts at 1.0, as theirs


def _multiclass(seed: int, k: int = 4, size: int = 8):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, k, size, size, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, k, (2, size, size), generator=gen)
    return logits, labels


@pytest.mark.parametrize("channels", ["foreground", "all"])
def test_void_pixels_count_nowhere(channels):
    logits, labels = _multiclass(0)
    labels[0, :, :3] = VOID  # image 0: 24 of 64 pixels void
    labels[1, 5, 5] = VOID
    log_nu = torch.tensor(0.5, dtype=torch.float64)
    x = logits.clone().requires_grad_(True)
    value = tloss_loss(x, labels, log_nu, VOID, channels=channels)
    value.backward()
    # nothing flows to a void pixel, and its logits do not change the value
    void = (labels == VOID).unsqueeze(1).expand_as(x)
    assert (x.grad[void] == 0).all() and (x.grad[~void] != 0).any()
    other = logits.clone()
    other[void] = 50.0
    assert tloss_loss(other, labels, log_nu, VOID, channels=channels).item() == pytest.approx(value.item(), rel=1e-12)
    # the same valid pixels without any void (D counts valid entries only): image 0 cropped to its
    # 40 valid pixels, image 1 as its 63 valid pixels in one row
    per_image = []
    for b, keep in ((0, (slice(None), slice(3, None))), (1, None)):
        if keep is None:
            flat = labels[1].flatten() != VOID
            lg, lb = logits[1].flatten(1)[:, flat][None, :, None, :], labels[1].flatten()[flat][None, None, :]
        else:
            lg, lb = logits[b][(slice(None), *keep)][None], labels[b][keep][None]
        assert (lb != VOID).all()
        per_image.append(tloss_loss(lg, lb, log_nu, VOID, channels=channels).item())
    assert value.item() == pytest.approx(sum(per_image) / 2, rel=1e-12)


def test_an_all_void_image_adds_zero_and_is_not_counted():
    logits, labels = _multiclass(1)
    log_nu = torch.tensor(1.0, dtype=torch.float64)
    alone = tloss_loss(logits[:1], labels[:1], log_nu, VOID)
    labels[1] = VOID
    both = tloss_loss(logits, labels, log_nu, VOID)
    assert both.item() == pytest.approx(alone.item(), rel=1e-12)
    everything_void = tloss_loss(logits, torch.full_like(labels, VOID), log_nu.requires_grad_(True), VOID)
    everything_void.backward()
    assert everything_void.item() == 0 and log_nu.grad.item() == 0


def test_small_nu_grows_sublinearly_in_the_residual_and_large_nu_tends_to_squares():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 2:6, 2:6] = 2
    right = 40 * torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).double()  # softmax ~ one-hot
    one, two = right.clone(), right.clone()
    one[0, :, 0, :] = right[0, :, 4, :]  # 4 background pixels predicted class 2: S = 4
    two[0, :, 0:2, :] = right[0, :, 4:6, :]  # 8 such pixels: S = 8

    def excess(logits, theta):
        t = torch.tensor(theta, dtype=torch.float64)
        return (tloss_loss(logits, labels, t, VOID) - tloss_loss(right, labels, t, VOID)).item()

    for theta in (-2.0, 0.0, 3.0, 12.0):
        assert 0 < excess(one, theta) < excess(two, theta)
    # heavy tails (nu = e^-2): doubling the wrong pixels adds far less than double the loss
    assert excess(two, -2.0) / excess(one, -2.0) < 1.5
    # nu = e^12 >> D = 128: (nu + D)/2 log(1 + e S / nu) -> e S / 2 (a weighted squared loss)
    assert excess(one, 12.0) == pytest.approx(math.e * 4 / 2, rel=2e-3)
    assert excess(two, 12.0) == pytest.approx(math.e * 8 / 2, rel=2e-3)


def _trial(**method) -> dict:
    return {"dataset": {"size": [16, 16], "num_train": 8, "num_val": 4, "num_test": 4},
            "noise": [{"kind": "morph", "rate": 1.0}],
            "model": {"kwargs": {"encoder_depth": 3, "decoder_channels": [16, 8, 4]}},
            "method": {"name": "tloss", **method},
            "train": {"epochs": 3, "batch_size": 4, "threads": 1, "optimizer": "adamw", "lr": 0.01}}


def test_nu_learns_in_its_own_group_with_its_own_fixed_rate():
    cfg = parse_trial(_trial(nu_lr=0.05))
    trainer = Trainer(cfg, prepare_data(cfg))
    method = trainer.method
    groups = [g for g in trainer.optimizer.param_groups if any(p is method.log_nu for p in g["params"])]
    assert len(groups) == 1 and len(groups[0]["params"]) == 1
    group = groups[0]
    assert group is not trainer.optimizer.param_groups[0]  # not among the model's parameters
    assert group["lr"] == 0.05 and group["weight_decay"] == 0.0
    assert trainer.optimizer.param_groups[0]["lr"] == 0.01
    before = method.nu()
    trainer.train_epoch(0, progress=False)
    after = method.nu()
    assert after != before and math.isfinite(after)
    # the poly schedule decays the model's rate, not nu's
    assert trainer.optimizer.param_groups[0]["lr"] < 0.01 and group["lr"] == 0.05
    # nu is part of the checkpointed state and restored in place (the optimiser keeps its tensor)
    state = method.state_dict()
    with torch.no_grad():
        method.log_nu.fill_(0.0)
    method.load_state_dict(state)
    assert method.nu() == pytest.approx(after) and group["params"][0] is method.log_nu


def test_params_defaults_and_validation():
    params = from_dict(TLoss.Params, {}, "method")
    assert params == TLoss.Params(log_nu=1.0, nu_lr=1e-3, epsilon=1e-8, channels="foreground")
    assert "tloss" in METHODS
    with pytest.raises(ConfigError, match=r"^method\.nu_lr: got 0\.0; allowed range \(0, inf\]$"):
        parse_trial({"method": {"name": "tloss", "nu_lr": 0.0}})
    with pytest.raises(ConfigError, match=r"^method\.channels: "):
        parse_trial({"method": {"name": "tloss", "channels": "background"}})


def test_one_epoch_trial_through_the_cli(tmp_path):
    config = tmp_path / "t.yaml"
    config.write_text(json.dumps(_trial() | {"train": {"epochs": 1, "batch_size": 4, "threads": 1}}))
    out = tmp_path / "run"
    assert run_cli.main([str(config), "--out", str(out), "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(rows) == 1
    assert math.isfinite(rows[0]["train_loss"]) and math.isfinite(rows[0]["method/nu"])
    assert rows[0]["method/nu"] != pytest.approx(math.e, rel=1e-9)  # theta took optimiser steps
    assert json.loads((out / "summary.json").read_text())["epoch"] == 1


class _KeepFirstCheckpoint:
    def __init__(self, where):
        self.where, self.rows = where, []

    def report(self, metrics, checkpoint_dir, images=None):
        self.rows.append(metrics)
        if len(self.rows) == 1:
            shutil.copytree(checkpoint_dir, self.where)


def test_resume_continues_nu_and_its_optimiser_state_exactly(tmp_path):
    cfg = parse_trial(_trial() | {"train": {"epochs": 2, "batch_size": 4, "threads": 1}})
    straight = _KeepFirstCheckpoint(tmp_path / "epoch1")
    fit(cfg, straight)
    resumed = _KeepFirstCheckpoint(tmp_path / "unused")
    fit(cfg, resumed, resume_from=tmp_path / "epoch1")
    assert [r["epoch"] for r in resumed.rows] == [2]
    assert resumed.rows[0]["method/nu"] == straight.rows[1]["method/nu"] != straight.rows[0]["method/nu"]
    assert resumed.rows[0]["train_loss"] == straight.rows[1]["train_loss"]
