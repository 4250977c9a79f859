"""Class-id checks shared by the noise kinds that name classes in their config."""
from __future__ import annotations

from typing import Iterable

from ..errors import ConfigError


def check_foreground(path: str, ids: Iterable[int], num_classes: int | None = None) -> None:
    """Raise ConfigError unless every id is a foreground class: >= 1 (0 is background) and, once
    the dataset is known, below ``num_classes``. Parsing checks the first; ``apply`` the second."""
    allowed = ">= 1; 0 is background" if num_classes is None else f"1..{num_classes - 1} in this dataset"
    for c in ids:
        if c < 1 or (num_classes is not None and c >= num_classes):
            raise ConfigError(f"{path}: got class {c}; allowed: foreground class ids ({allowed})")
