"""Trial data: labels corrupted once in a study's driver are shared by the trials with the same
noise config and seed (read-only, no private copy), and only by those."""
from __future__ import annotations

import numpy as np
import torch

from tests.conftest import REPO
from trainables.config import load_trial_config
from trainables.data import create_dataset
from trainables.trial_data import corrupt_once, prepare_data

TINY = str(REPO / "examples" / "tiny.yaml")


def test_shared_noisy_labels_equal_a_trials_own_and_are_not_copied() -> None:
    cfg = load_trial_config(TINY)
    dataset = create_dataset(cfg.dataset)
    shared = corrupt_once(cfg, dataset)
    shared.noisy.setflags(write=False)  # as they arrive from Ray's object store
    own, from_store = prepare_data(cfg, dataset), prepare_data(cfg, shared)
    assert torch.equal(own.noisy, from_store.noisy) and own.noise_miou == from_store.noise_miou < 1
    assert from_store.noisy.data_ptr() == shared.noisy.ctypes.data  # the store's array itself


def test_another_noise_seed_or_rate_corrupts_its_own_copy() -> None:
    cfg = load_trial_config(TINY)
    shared = corrupt_once(cfg, create_dataset(cfg.dataset))
    for other in (["noise_seed=7"], ["noise.0.rate=0.5"]):
        cfg2 = load_trial_config(TINY, other)
        got = prepare_data(cfg2, shared)
        assert got.noisy.data_ptr() != shared.noisy.ctypes.data
        assert torch.equal(got.noisy, prepare_data(cfg2).noisy)
        assert not np.array_equal(got.noisy.numpy(), shared.noisy)
