"""A trial's data: decoded once, training labels corrupted once, as uint8 tensors that share the
decoded arrays' memory (Ray's object store included) wherever nothing writes to them."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .config import TrialConfig
from .data import SegData, create_dataset
from .errors import UserError
from .hot_path import label_quality_chunked, nbytes
from .noise import NoiseContext, apply_noise, transform_clean


@dataclass
class TrialData:
    """Everything a trial trains and evaluates on: uint8 tensors on the host (the engine moves them to
    the GPU when its plan keeps the dataset resident)."""

    images: dict[str, torch.Tensor]  # split -> uint8 [N, H, W, 3]
    clean: dict[str, torch.Tensor]  # split -> uint8 [N, H, W]
    noisy: torch.Tensor  # uint8 [N, H, W], the training labels as corrupted once
    class_names: list[str]
    ignore_index: int
    noise_miou: float  # corruption level: mIoU of the noisy training labels vs the clean ones


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory. Arrays from Ray's object store are read-only; the
    engine never writes into these tensors (labels a method may rewrite are cloned first), so sharing is
    safe and spares a copy of the dataset (and of shared noisy labels) per trial."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


@dataclass
class CorruptedData:
    """A decoded dataset and its training labels corrupted once for one noise config and noise seed.
    A study's driver builds it once per condition (:func:`corrupt_once`) and hands it to the trials
    through Ray's object store: every trial with that noise config and seed (a search's trials) then
    reads the same read-only noisy labels instead of corrupting a private copy."""

    dataset: SegData
    noise: list  # TrialConfig.to_dict()["noise"] the labels were corrupted with
    noise_seed: int
    noisy: np.ndarray  # uint8 [N, H, W]


def _noise(cfg: TrialConfig, data: SegData) -> np.ndarray:
    ctx = NoiseContext(data.num_classes, data.ignore_index, data.train.instances)
    return apply_noise(data.train.masks, cfg.noise, cfg.effective_noise_seed, ctx)


def corrupt_once(cfg: TrialConfig, dataset: SegData) -> CorruptedData:
    return CorruptedData(dataset, cfg.to_dict()["noise"], cfg.effective_noise_seed, _noise(cfg, dataset))


def prepare_data(cfg: TrialConfig, dataset: SegData | CorruptedData | None = None) -> TrialData:
    """Decode (unless given) and corrupt the training labels once, deterministically in the seed (or
    take them from a :class:`CorruptedData` made with the same noise config and seed)."""
    noisy_array = None
    if isinstance(dataset, CorruptedData):
        if dataset.noise == cfg.to_dict()["noise"] and dataset.noise_seed == cfg.effective_noise_seed:
            noisy_array = dataset.noisy
        dataset = dataset.dataset
    data = dataset if dataset is not None else create_dataset(cfg.dataset)
    if len(data.train) == 0 or len(data.val) == 0 or len(data.test) == 0:
        empty = [s for s, sp in data.splits().items() if len(sp) == 0]
        raise UserError(f"dataset: split(s) {', '.join(empty)} are empty; check dataset.root and max_images")
    k = data.num_classes
    clean = {s: _tensor(transform_clean(sp.masks, cfg.noise)) for s, sp in data.splits().items()}
    noisy = _tensor(noisy_array if noisy_array is not None else _noise(cfg, data))
    images = {s: _tensor(sp.images) for s, sp in data.splits().items()}
    return TrialData(images, clean, noisy, list(data.class_names), data.ignore_index,
                     label_quality_chunked(noisy, clean["train"], k, data.ignore_index).miou)


def data_bytes(data: TrialData) -> int:
    """Bytes of the uint8 arrays a trial would put on its device."""
    return nbytes([*data.images.values(), *data.clean.values(), data.noisy])
