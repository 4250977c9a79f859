"""Datasets: name -> loader, behind one factory :func:`create_dataset`.

Each loader module defines an ``Options`` dataclass (its own YAML keys under ``dataset:``) and
``load(cfg: DatasetConfig) -> SegData`` returning uint8 arrays at ``cfg.size``.
"""
from __future__ import annotations

from typing import NamedTuple

from ..errors import ConfigError
from ._base import IGNORE_INDEX, SegData, Split
from . import camvid, folder, segthor, synthetic, voc


class DatasetEntry(NamedTuple):
    options: type
    load: object


DATASETS: dict[str, DatasetEntry] = {
    "synthetic": DatasetEntry(synthetic.Options, synthetic.load),
    "camvid": DatasetEntry(camvid.Options, camvid.load),
    "voc": DatasetEntry(voc.Options, voc.load),
    "folder": DatasetEntry(folder.Options, folder.load),
    "segthor": DatasetEntry(segthor.Options, segthor.load),
}


def dataset_entry(name: str, path: str = "dataset.name") -> DatasetEntry:
    if name not in DATASETS:
        raise ConfigError(f"{path}: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return DATASETS[name]


def create_dataset(cfg) -> SegData:
    """Decode the dataset described by ``cfg`` (a DatasetConfig) and apply its per-split limits."""
    data = dataset_entry(cfg.name).load(cfg)
    limits = cfg.split_limits()
    data.train = data.train.subset(limits["train"])
    data.val = data.val.subset(limits["val"])
    data.test = data.test.subset(limits["test"])
    return data


__all__ = ["DATASETS", "IGNORE_INDEX", "SegData", "Split", "create_dataset", "dataset_entry"]
