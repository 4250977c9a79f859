"""The in-memory form every dataset is decoded into once: uint8 arrays at the configured size."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE_INDEX = 255  # every loader maps its void/unlabelled value here; losses and metrics skip it


@dataclass
class Split:
    """One split. ``images``: uint8 [N, H, W, 3]; ``masks``: uint8 [N, H, W] with class ids in
    0..K-1 or IGNORE_INDEX; ``instances``: optional int32 [N, H, W] instance ids shipped by the
    dataset (0 = none), used by instance-level noise instead of connected components."""

    images: np.ndarray
    masks: np.ndarray
    names: list[str]
    instances: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert self.images.dtype == np.uint8 and self.images.ndim == 4 and self.images.shape[-1] == 3
        assert self.masks.dtype == np.uint8 and self.masks.shape == self.images.shape[:3]
        assert len(self.names) == len(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, n: int | None) -> "Split":
        """The first ``n`` items (deterministic subsets for smoke runs)."""
        if n is None or n >= len(self):
            return self
        inst = None if self.instances is None else self.instances[:n]
        return Split(self.images[:n], self.masks[:n], self.names[:n], inst)


@dataclass
class SegData:
    """A decoded dataset: three splits, class names (index = class id, 0 = background)."""

    train: Split
    val: Split
    test: Split
    class_names: list[str]
    ignore_index: int = IGNORE_INDEX
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}
