"""Datasets: name -> loader, behind one factory :func:`create_dataset`.

Each loader module defines an ``Options`` dataclass (its own YAML keys under ``dataset:``) and
``load(cfg: DatasetConfig) -> SegData`` returning uint8 arrays at ``cfg.size``. ``DATASETS`` is a
:class:`trainables.registry.Registry` (one line per built-in loader); a plugin adds its own with
``DATASETS.register("name", DatasetEntry(Options, load))`` (docs/plugins.md).
"""
from __future__ import annotations

from typing import NamedTuple

from ..registry import Registry
from ._base import IGNORE_INDEX, SegData, Split
from . import camvid, folder, segthor, synthetic, voc


class DatasetEntry(NamedTuple):
    options: type
    load: object


def _check(name: str, entry) -> None:
    if not isinstance(entry, DatasetEntry) or not callable(entry.load):
        raise TypeError(f"got {entry!r}; expected trainables.data.DatasetEntry(Options, load)")


# one line per built-in dataset; plugins call DATASETS.register(name, DatasetEntry(Options, load))
DATASETS: Registry[DatasetEntry] = Registry("dataset", key="name", path="dataset.name", params=lambda e: e.options,
                                            check=_check, entries={
    "synthetic": DatasetEntry(synthetic.Options, synthetic.load),
    "camvid": DatasetEntry(camvid.Options, camvid.load),
    "voc": DatasetEntry(voc.Options, voc.load),
    "folder": DatasetEntry(folder.Options, folder.load),
    "segthor": DatasetEntry(segthor.Options, segthor.load),
})


def dataset_entry(name: str, path: str = "dataset.name") -> DatasetEntry:
    return DATASETS.get(name, path)


def create_dataset(cfg) -> SegData:
    """Decode the dataset described by ``cfg`` (a DatasetConfig) and apply its per-split limits."""
    data = dataset_entry(cfg.name).load(cfg)
    limits = cfg.split_limits()
    data.train = data.train.subset(limits["train"])
    data.val = data.val.subset(limits["val"])
    data.test = data.test.subset(limits["test"])
    return data


__all__ = ["DATASETS", "IGNORE_INDEX", "SegData", "Split", "create_dataset", "dataset_entry"]
