"""Any dataset laid out as ``root/images/`` + ``root/masks/``, image and mask matched by file stem.

Splits come either from sub-folders (``images/train/``, ``images/val/``, ``images/test/`` and the
same under ``masks/``) or from list files of stems (``root/train.txt``, ``root/val.txt``,
``root/test.txt``) over flat ``images/`` and ``masks/``. Masks are single-channel: pixel value =
class id, or one of ``mask_values`` for grey-coded masks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..typed import check_range
from ..errors import ConfigError, DataError
from ._base import IGNORE_INDEX, SegData
from ._io import IMAGE_EXTS, decode_all, limit, load_pair, make_split, require_root, value_lut

SPLITS = ("train", "val", "test")
_HINT = ("expected root/images/ and root/masks/ with train/, val/, test/ sub-folders in each, "
         "or flat folders plus root/train.txt, val.txt, test.txt listing file stems")


@dataclass
class Options:
    class_names: list[str] | None = None  # index = class id; required unless num_classes is given
    num_classes: int | None = None  # names default to class_0, class_1, ...
    # Raw mask value of each class, for grey-coded masks: [0, 63, 126, 189, 252] -> classes 0..4.
    # None: the raw value is the class id.
    mask_values: list[int] | None = None
    # Raw mask value meaning void (-> 255). None: 255 is void unless it is a class value.
    ignore_value: int | None = None

    def validate(self, path: str) -> None:
        if self.class_names is None and self.num_classes is None:
            raise ConfigError(f"{path}.class_names: required key is missing; give class_names (a list) or num_classes")
        check_range(f"{path}.num_classes", self.num_classes, 1, 255)
        if self.class_names is not None:
            if not 1 <= len(self.class_names) <= 255:
                raise ConfigError(f"{path}.class_names: got {len(self.class_names)} names; expected 1..255")
            if self.num_classes is not None and self.num_classes != len(self.class_names):
                raise ConfigError(f"{path}.num_classes: got {self.num_classes} but class_names has "
                                  f"{len(self.class_names)} names; they must agree (or give only one)")
        k = self.num_classes if self.class_names is None else len(self.class_names)
        check_range(f"{path}.ignore_value", self.ignore_value, 0, 255)
        if self.mask_values is None:
            if self.ignore_value is not None and self.ignore_value < k:
                raise ConfigError(f"{path}.ignore_value: got {self.ignore_value}, which is class id "
                                  f"{self.ignore_value}; allowed: {k}..255 or set mask_values")
            return
        if len(self.mask_values) != k:
            raise ConfigError(f"{path}.mask_values: got {len(self.mask_values)} values for {k} classes; "
                              "expected one raw value per class")
        for i, v in enumerate(self.mask_values):
            check_range(f"{path}.mask_values[{i}]", v, 0, 255)
        if len(set(self.mask_values)) != k:
            raise ConfigError(f"{path}.mask_values: got {self.mask_values}; values must be distinct")
        if self.ignore_value in self.mask_values:
            raise ConfigError(f"{path}.ignore_value: {self.ignore_value} is also in mask_values; "
                              "expected a raw value that is not a class")


def class_names(opts: Options) -> list[str]:
    if opts.class_names is not None:
        return list(opts.class_names)
    return [f"class_{i}" for i in range(opts.num_classes)]


def mask_lut(opts: Options, k: int) -> tuple[np.ndarray, str]:
    """(raw value -> class id table, description of the allowed raw values for error messages)."""
    values = opts.mask_values if opts.mask_values is not None else list(range(k))
    void = opts.ignore_value
    if void is None and IGNORE_INDEX not in values:
        void = IGNORE_INDEX
    classes = f"0..{k - 1}" if opts.mask_values is None else ", ".join(map(str, values))
    allowed = f"{classes} (classes)" + (f" or {void} (void)" if void is not None else "")
    return value_lut(values, [] if void is None else [void]), allowed


def _index(folder: Path) -> dict[str, Path]:
    """stem -> file for the image files directly in ``folder``; a stem used twice is ambiguous."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; {_HINT}")
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
            if f.stem in found:
                raise DataError(f"{f}: same stem as {found[f.stem].name}; expected one file per stem")
            found[f.stem] = f
    return found


def _split_stems(root: Path, split: str, sub_folders: bool, images: dict[str, Path]) -> list[str]:
    if sub_folders:
        return sorted(images)
    lst = root / f"{split}.txt"
    if not lst.is_file():
        raise DataError(f"{lst}: split list not found; {_HINT}")
    stems = [Path(line.strip()).stem if Path(line.strip()).suffix.lower() in IMAGE_EXTS else line.strip()
             for line in lst.read_text().splitlines() if line.strip()]
    for s in stems:
        if s not in images:
            raise DataError(f"{lst}: lists {s!r} but {root / 'images'} has no image with that stem")
    return stems


def load(cfg) -> SegData:
    opts: Options = cfg.options
    root = require_root(cfg.root, _HINT)
    size = tuple(cfg.size) if cfg.size is not None else None  # None: native (must agree per split)
    names = class_names(opts)
    lut, allowed = mask_lut(opts, len(names))
    sub_folders = (root / "images" / "train").is_dir()
    limits = cfg.split_limits()
    splits, files = {}, {}
    for split in SPLITS:
        sub = split if sub_folders else ""
        images = _index(root / "images" / sub)
        masks = _index(root / "masks" / sub)
        stems = limit(_split_stems(root, split, sub_folders, images), limits[split])
        for s in stems:
            if s not in masks:
                raise DataError(f"{images[s]}: no mask; expected {root / 'masks' / sub / s}.png "
                                f"(or another image extension) with the same stem")
        decoded = decode_all(lambda s: load_pair(images[s], masks[s], lut, allowed, size), stems)
        files[split] = [images[s].relative_to(root).as_posix() for s in stems]  # the export's file column
        source = str(root / "images" / sub) if sub_folders else str(root / f"{split}.txt")
        splits[split] = make_split(split, source, [d[0] for d in decoded], [d[1] for d in decoded], stems)
    return SegData(**splits, class_names=names, ignore_index=IGNORE_INDEX,
                   meta={"root": str(root), "layout": "sub-folders" if sub_folders else "lists", "files": files})
