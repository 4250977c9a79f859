"""PASCAL VOC 2012 segmentation (21 classes, 255 = void), from a VOCdevkit folder.

Masks are palette PNGs whose indices are the class ids (``SegmentationClass``), or with
``augmented: true`` the greyscale index PNGs of the SBD-augmented set (``SegmentationClassAug``,
10582 training images via ``ImageSets/Segmentation/train_aug.txt``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ._base import IGNORE_INDEX, SegData
from ._io import (check_same_size, decode_all, limit, load_pair, make_split, read_labels,
                  require_root, resize_image, resize_labels, value_lut)

CLASS_NAMES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
# VOC images vary in size (up to 500x500) and splits are stacked into one array, so one common size
# is needed; 256x256 keeps the 10582-image augmented train set at ~2.7 GB of uint8.
DEFAULT_SIZE = (256, 256)
_HINT = ("expected a VOCdevkit folder (holding VOC2012/) or VOCdevkit/VOC2012 itself, "
         "with JPEGImages/ and SegmentationClass/")
_LUT = value_lut(range(len(CLASS_NAMES)), void=[IGNORE_INDEX])
_ALLOWED = f"0..{len(CLASS_NAMES) - 1} (classes) or {IGNORE_INDEX} (void)"


@dataclass
class Options:
    # Stems of list files in ImageSets/Segmentation/. VOC has no public test labels, so test
    # defaults to val: report test numbers as "val" when using the default.
    train_list: str | None = None  # None: train_aug when augmented and present, else train
    val_list: str = "val"
    test_list: str = "val"
    augmented: bool = False  # masks from SegmentationClassAug/ (SBD-augmented labels)
    # Instance ids from SegmentationObject/ into Split.instances. None: for every split whose
    # images all have one (only the 2913 original trainval images do); true: required.
    instances: bool | None = None

    def validate(self, path: str) -> None:
        for key in ("train_list", "val_list", "test_list"):
            value = getattr(self, key)
            if value is not None and (not value or "/" in value):
                raise ConfigError(f"{path}.{key}: got {value!r}; expected a list name in "
                                  "ImageSets/Segmentation/ without .txt, e.g. train, val, trainval")


def voc_dir(root: str | None) -> Path:
    """VOC2012 folder: ``root`` may be VOCdevkit or VOCdevkit/VOC2012."""
    base = require_root(root, _HINT)
    for cand in (base / "VOC2012", base):
        if (cand / "JPEGImages").is_dir():
            return cand
    raise DataError(f"{base / 'VOC2012' / 'JPEGImages'}: not found; {_HINT}")


def read_ids(list_path: Path) -> list[str]:
    """Image ids from a list file. Some train_aug.txt copies hold "/JPEGImages/x.jpg /Seg.../x.png"
    lines instead of bare ids, so the stem of the first token is taken."""
    if not list_path.is_file():
        raise DataError(f"{list_path}: split list not found; expected one image id per line")
    return [Path(line.split()[0]).stem for line in list_path.read_text().splitlines() if line.strip()]


def load(cfg) -> SegData:
    opts: Options = cfg.options
    vocdir = voc_dir(cfg.root)
    size = tuple(cfg.size) if cfg.size is not None else DEFAULT_SIZE
    mask_dir = vocdir / ("SegmentationClassAug" if opts.augmented else "SegmentationClass")
    if not mask_dir.is_dir():
        raise DataError(f"{mask_dir}: mask folder not found; "
                        + ("dataset.augmented: true needs the SBD-augmented labels there" if opts.augmented else _HINT))
    sets = vocdir / "ImageSets" / "Segmentation"
    has_aug_list = opts.augmented and (sets / "train_aug.txt").is_file()
    train_list = opts.train_list or ("train_aug" if has_aug_list else "train")
    obj_dir = vocdir / "SegmentationObject"
    limits = cfg.split_limits()

    splits, files = {}, {}
    for split, list_name in (("train", train_list), ("val", opts.val_list), ("test", opts.test_list)):
        list_path = sets / f"{list_name}.txt"
        ids = limit(read_ids(list_path), limits[split])
        files[split] = [f"JPEGImages/{i}.jpg" for i in ids]  # the export's file column
        for i in ids:
            if not (mask_dir / f"{i}.png").is_file():
                raise DataError(f"{vocdir / 'JPEGImages' / f'{i}.jpg'}: no mask; expected {mask_dir / f'{i}.png'} "
                                f"(listed in {list_path.name})")
        with_inst = opts.instances is not False and (
            opts.instances or all((obj_dir / f"{i}.png").is_file() for i in ids))

        def one(i: str) -> tuple:
            image_path = vocdir / "JPEGImages" / f"{i}.jpg"
            image, mask = load_pair(image_path, mask_dir / f"{i}.png", _LUT, _ALLOWED, None)
            inst = _instances(image_path, image, obj_dir / f"{i}.png") if with_inst else None
            return (resize_image(image, size), resize_labels(mask, size),
                    None if inst is None else resize_labels(inst, size))

        decoded = decode_all(one, ids)
        splits[split] = make_split(split, str(list_path), [d[0] for d in decoded], [d[1] for d in decoded], ids,
                                   [d[2] for d in decoded] if with_inst else None)
    return SegData(**splits, class_names=list(CLASS_NAMES), ignore_index=IGNORE_INDEX,
                   meta={"root": str(vocdir), "lists": [train_list, opts.val_list, opts.test_list], "files": files})


def _instances(image_path: Path, image: np.ndarray, path: Path) -> np.ndarray:
    """int32 instance ids (0 = none) at native size; the object PNG's void border (255) counts
    as no instance."""
    raw = read_labels(path)
    check_same_size(image, image_path, raw, path)
    return np.where(raw == IGNORE_INDEX, 0, raw).astype(np.int32)
