"""``misannotate``: misannotation, 0 -> k (PU-transfer draft).

The task changes: the ``nontarget`` classes are not to be segmented, so ``transform_clean`` merges
them into background in the clean labels of every split. In the noisy training labels each
nontarget instance (see ``_instances``) is, with probability ``rate``, annotated as the ``target``
class (an annotator labelling a toy dog as a dog) and otherwise correctly left background.
``apply`` therefore receives the original masks, which still hold the nontarget classes.

Parameters: ``nontarget`` (required: class ids), ``target`` (required: a class id, not nontarget),
``rate`` (1.0, the draft's "all instances misannotated" setting), in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..typed import check_range, join
from ..errors import ConfigError
from ._classes import check_foreground
from ._instances import relabel_instances


@dataclass
class Params:
    nontarget: tuple[int, ...]
    target: int
    rate: float = 1.0

    def validate(self, path: str) -> None:
        check_range(join(path, "rate"), self.rate, 0, 1)
        if not self.nontarget:
            raise ConfigError(f"{join(path, 'nontarget')}: got no classes; expected a list of class ids")
        check_foreground(join(path, "nontarget"), self.nontarget)
        check_foreground(join(path, "target"), [self.target])
        if self.target in self.nontarget:
            raise ConfigError(f"{join(path, 'target')}: got {self.target}, which is also in nontarget; "
                              f"the target must be a class that stays in the task")


def transform_clean(masks: np.ndarray, params: Params) -> np.ndarray:
    """Merge the nontarget classes into background (a new array; void and other classes kept)."""
    return np.where(np.isin(masks, params.nontarget), np.uint8(0), masks)


def apply(masks: np.ndarray, params: Params, rng: np.random.Generator, ctx) -> np.ndarray:
    check_foreground("noise.nontarget", params.nontarget, ctx.num_classes)
    check_foreground("noise.target", [params.target], ctx.num_classes)
    misannotated = relabel_instances(masks, params.nontarget, params.rate, rng, ctx.instances,
                                     lambda old, _rng: np.full_like(old, params.target))
    # The instances not misannotated are still nontarget: they are background in this task.
    return transform_clean(misannotated, params)
