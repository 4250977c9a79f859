"""``ce``: pixel cross-entropy on the (noisy) training labels — the baseline."""
from __future__ import annotations

from .base import Method


class CrossEntropy(Method):
    """Plain pixel cross-entropy; void pixels ignored."""
