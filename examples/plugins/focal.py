"""A plugin: the focal loss (Lin et al., ICCV 2017) as the method ``focal``.

Use it with ``--plugin examples/plugins/focal.py --set method.name=focal`` or ``plugins: [focal.py]``.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainables.methods import METHODS, Method
from trainables.typed import check_range, join


@METHODS.register("focal")
class Focal(Method):
    """Cross-entropy down-weighted where a pixel is already well classified: (1 - p_y)^gamma * CE."""

    @dataclass
    class Params:
        gamma: float = 2.0  # 0 gives plain cross-entropy

        def validate(self, path: str) -> None:
            check_range(join(path, "gamma"), self.gamma, 0)

    def loss(self, model, images, labels, epoch):
        ce = F.cross_entropy(model(images).float(), labels, ignore_index=self.ctx.ignore_index, reduction="none")
        weight = (1 - torch.exp(-ce)).clamp(min=1e-6) ** self.params.gamma  # p_y = exp(-CE)
        focal = weight * ce  # void pixels have CE 0
        valid = (labels != self.ctx.ignore_index).sum().clamp(min=1)
        return focal.sum() / valid, {}
