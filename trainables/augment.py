"""Training-time augmentation on batched tensors, driven by an explicit generator (reproducible).

Random horizontal flip and random rescale (0.75-1.25) with a crop or pad back to the input size;
labels follow with nearest-neighbour resampling and padding is void, so no false label is invented.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_batch(images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
                  ignore_index: int = 255, scale: tuple[float, float] = (0.75, 1.25)) -> tuple[torch.Tensor, torch.Tensor]:
    """images float [B, C, H, W], labels long [B, H, W] -> augmented copies of the same shapes."""
    b, _, h, w = images.shape
    out_x, out_y = [], []
    flips = torch.rand(b, generator=gen) < 0.5
    factors = torch.empty(b).uniform_(*scale, generator=gen)
    offsets = torch.rand(b, 2, generator=gen)
    for i in range(b):
        x, y = images[i : i + 1], labels[i : i + 1, None].float()
        if flips[i]:
            x, y = x.flip(-1), y.flip(-1)
        sh, sw = max(1, round(h * float(factors[i]))), max(1, round(w * float(factors[i])))
        x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False)
        y = F.interpolate(y, size=(sh, sw), mode="nearest")
        if sh < h or sw < w:  # pad to at least the input size; padded labels are void
            ph, pw = max(0, h - sh), max(0, w - sw)
            x = F.pad(x, (0, pw, 0, ph))
            y = F.pad(y, (0, pw, 0, ph), value=float(ignore_index))
        top = int(offsets[i, 0] * (x.shape[-2] - h + 1)) if x.shape[-2] > h else 0
        left = int(offsets[i, 1] * (x.shape[-1] - w + 1)) if x.shape[-1] > w else 0
        out_x.append(x[..., top : top + h, left : left + w])
        out_y.append(y[..., top : top + h, left : left + w])
    return torch.cat(out_x), torch.cat(out_y)[:, 0].long()
