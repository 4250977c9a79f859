"""A contact sheet of the most suspect annotations: one row per image, image | label | model |
difference, with the rank, name and score above each row.

Colours: classes in the PASCAL VOC colour map (void white); the difference panel is the image dimmed,
with red where the model confidently disagrees with the label.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .label_writers import voc_palette

TILE_HEIGHT = 128  # every panel is resized to this height (labels nearest, images bilinear)
HEADER = 14  # pixels of text above each row
GAP = 4
COLUMNS = ("image", "label", "model", "difference")
DISAGREE = np.array([230, 25, 25], np.uint8)
VOID = np.array([255, 255, 255], np.uint8)


def colorize(labels: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """uint8 [H, W] class ids -> uint8 [H, W, 3] colours (void white)."""
    lut = np.asarray(voc_palette(), np.uint8).reshape(256, 3).copy()
    lut[ignore_index] = VOID
    return lut[labels]


def difference(image: np.ndarray, labels: np.ndarray, argmax: np.ndarray, confident: np.ndarray,
               ignore_index: int = 255) -> np.ndarray:
    """The image dimmed to 35 %, red where the model is confident, the label not void and they differ."""
    out = (image.astype(np.float32) * 0.35).astype(np.uint8)
    wrong = confident & (labels != ignore_index) & (argmax != labels)
    out[wrong] = DISAGREE
    return out


def _tile(arr: np.ndarray, width: int, smooth: bool) -> Image.Image:
    return Image.fromarray(arr).resize((width, TILE_HEIGHT), Image.BILINEAR if smooth else Image.NEAREST)


def contact_sheet(images: np.ndarray, labels: np.ndarray, argmax: np.ndarray, confident: np.ndarray,
                  order: np.ndarray, names: list[str], scores: np.ndarray, top_k: int = 16,
                  ignore_index: int = 255, score_name: str = "disagreement") -> Image.Image:
    """The first ``top_k`` images of ``order`` as rows of a sheet (RGB)."""
    rows = [int(i) for i in np.asarray(order)[:top_k]]
    h, w = labels.shape[1:]
    width = max(1, round(TILE_HEIGHT * w / h))
    sheet_w = len(COLUMNS) * width + (len(COLUMNS) - 1) * GAP
    row_h = HEADER + TILE_HEIGHT + GAP
    sheet = Image.new("RGB", (sheet_w, HEADER + row_h * max(1, len(rows))), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(COLUMNS):
        draw.text((c * (width + GAP) + 2, 1), title, fill=(0, 0, 0))
    for r, i in enumerate(rows):
        y = HEADER + r * row_h
        draw.text((2, y + 1), f"#{r + 1} {names[i]}  {score_name} {float(scores[i]):.3f}", fill=(0, 0, 0))
        panels = [(images[i], True), (colorize(labels[i], ignore_index), False),
                  (colorize(argmax[i], ignore_index), False),
                  (difference(images[i], labels[i], argmax[i], confident[i], ignore_index), False)]
        for c, (arr, smooth) in enumerate(panels):
            sheet.paste(_tile(np.ascontiguousarray(arr), width, smooth), (c * (width + GAP), y + HEADER))
    return sheet
