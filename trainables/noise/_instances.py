"""Instances: the unit an annotator gets right or wrong in the instance-level noise kinds.

An instance is a connected component of one class within one image (8-connectivity, so two pixels
touching only diagonally are one instance). Where the dataset ships instance ids (``ctx.instances``,
int [N, H, W], 0 = none), the pixels of one class sharing a non-zero id in one image are one
instance instead, even when not connected (an occluded car); pixels with id 0 (stuff classes, which
datasets give no ids) fall back to connected components.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

# 8-connectivity within each image of an [N, H, W] stack, never across images.
_EIGHT_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_EIGHT_IN_PLANE[1] = True


def label_instances(masks: np.ndarray, classes: Sequence[int],
                    instances: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Number the instances of ``classes`` in ``masks`` (uint8 [N, H, W]) 1..M across the stack.

    Returns ``labels`` (int32 [N, H, W], 0 = not an instance of ``classes``) and ``class_of``
    (int64 [M + 1]: the class of each instance, ``class_of[0] = 0``).
    """
    labels = np.zeros(masks.shape, dtype=np.int32)
    class_of = [np.zeros(1, dtype=np.int64)]
    count = 0
    eligible = np.isin(masks, np.asarray(classes, dtype=np.int64))
    if instances is not None:
        assert instances.shape == masks.shape, (instances.shape, masks.shape)
        shipped = eligible & (instances > 0)
        eligible &= ~shipped
        if shipped.any():
            # One key per (image, instance id, class): an id spanning two classes is two instances.
            image = np.nonzero(shipped)[0].astype(np.int64)
            ids = instances[shipped].astype(np.int64)
            key = (image * (int(ids.max()) + 1) + ids) * 256 + masks[shipped]
            unique, inverse = np.unique(key, return_inverse=True)
            labels[shipped] = inverse.reshape(-1) + 1
            class_of.append(unique % 256)
            count = len(unique)
    for c in classes:
        components, n = ndimage.label(eligible & (masks == c), structure=_EIGHT_IN_PLANE)
        if n:
            inside = components > 0
            labels[inside] = components[inside] + count
            class_of.append(np.full(n, c, dtype=np.int64))
            count += n
    return labels, np.concatenate(class_of)


def relabel_instances(masks: np.ndarray, classes: Sequence[int], rate: float, rng: np.random.Generator,
                      instances: np.ndarray | None,
                      new_class: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> np.ndarray:
    """A copy of ``masks`` where each instance of ``classes`` independently, with probability
    ``rate``, takes the class ``new_class(old_classes, rng)`` returns for the chosen instances."""
    labels, class_of = label_instances(masks, classes, instances)
    chosen = np.flatnonzero(rng.random(len(class_of) - 1) < rate) + 1
    table = class_of.copy()
    table[chosen] = new_class(class_of[chosen], rng)
    out = masks.copy()
    inside = labels > 0
    out[inside] = table[labels[inside]].astype(np.uint8)
    return out
