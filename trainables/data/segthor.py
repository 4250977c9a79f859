"""SegTHOR (thoracic organs at risk in CT): ``root/Patient_XX/Patient_XX.nii.gz`` with
``root/Patient_XX/GT.nii.gz``, decoded into windowed axial 2-D slices.

Splits are by patient (slices of one patient never straddle splits). Volumes are reoriented to
RAS+ before slicing and shown in radiological convention (anterior up, patient's right on the
image's left), so every patient looks the same whatever the affine it was stored with.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..typed import check_range
from ..errors import ConfigError, DataError
from ._base import IGNORE_INDEX, SegData
from ._io import (decode_all, make_split, map_mask, one_line, require_root, resize_image, resize_labels,
                  value_lut)

CLASS_NAMES = ["background", "esophagus", "heart", "trachea", "aorta"]
# CT slices are 512x512; halving them keeps ~8k foreground slices of 40 patients near 2 GB.
DEFAULT_SIZE = (256, 256)
SPLITS = ("train", "val", "test")
_HINT = ("expected root/Patient_01/Patient_01.nii.gz and root/Patient_01/GT.nii.gz, ... "
         "(the SegTHOR training set)")
_LUT = value_lut(range(len(CLASS_NAMES)))
_ALLOWED = f"0..{len(CLASS_NAMES) - 1} (background, esophagus, heart, trachea, aorta)"
_ID = re.compile(r"(?:Patient_)?0*(\d+)")
_NIFTI_ERRORS = (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError, zlib.error)


@dataclass
class Options:
    # CT display window [level, width] in HU. The soft-tissue/mediastinal window W400 L40 is the
    # clinical choice for these organs: heart, aorta and oesophagus wall separate from fat, and the
    # trachea's air (-1000 HU) saturates to black, which still delineates it.
    window: tuple[float, float] = (40.0, 400.0)
    keep_empty: bool = False  # false: only slices with some organ label (in every split)
    # Patient ids (1 or "Patient_01"). All omitted: sorted patients split 60/20/20 (first/next/last);
    # give all three or none.
    train_patients: list[int | str] | None = None
    val_patients: list[int | str] | None = None
    test_patients: list[int | str] | None = None

    def validate(self, path: str) -> None:
        check_range(f"{path}.window[1]", self.window[1], 0, lo_open=True)
        lists = {s: getattr(self, f"{s}_patients") for s in SPLITS}
        given = [s for s, v in lists.items() if v is not None]
        if given and len(given) != 3:
            missing = ", ".join(f"{s}_patients" for s in SPLITS if s not in given)
            raise ConfigError(f"{path}.{missing.split(',')[0]}: missing while {given[0]}_patients is set; "
                              "give train_patients, val_patients and test_patients together, or none")
        seen: dict[int, str] = {}
        for split in given:
            key = f"{path}.{split}_patients"
            if not lists[split]:
                raise ConfigError(f"{key}: empty list; expected at least one patient")
            for i, pid in enumerate(lists[split]):
                num = patient_number(pid, f"{key}[{i}]")
                if num in seen:
                    raise ConfigError(f"{key}[{i}]: patient {num} is also in {seen[num]}; "
                                      "splits must not share patients")
                seen[num] = f"{split}_patients"


def patient_number(pid: int | str, key: str) -> int:
    """1, "1", "01" or "Patient_01" -> 1."""
    m = _ID.fullmatch(str(pid))
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"{key}: got {pid!r}; expected a patient number >= 1 or a name like 'Patient_01'")
    return int(m.group(1))


def window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """HU -> uint8: [level - width/2, level + width/2] maps linearly onto 0..255, clipped."""
    scaled = (hu.astype(np.float32) - (level - width / 2)) * (255.0 / width)
    return np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)


def _upright(axial: np.ndarray) -> np.ndarray:
    """RAS+ slice [x, y] -> display [row, col]: rows anterior-to-posterior, cols right-to-left."""
    return axial.T[::-1, ::-1]


def _read_volume(path: Path) -> np.ndarray:
    try:
        img = nib.as_closest_canonical(nib.load(path))
        vol = np.asanyarray(img.dataobj)
    except _NIFTI_ERRORS as exc:
        raise DataError(f"{path}: cannot read NIfTI volume ({one_line(exc)})") from None
    if vol.ndim == 4 and vol.shape[3] == 1:
        vol = vol[..., 0]
    if vol.ndim != 3:
        raise DataError(f"{path}: volume has shape {vol.shape}; expected a 3-D CT volume")
    return vol


def _nifti(folder: Path, stem: str) -> Path:
    for ext in (".nii.gz", ".nii"):
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    raise DataError(f"{folder / (stem + '.nii.gz')}: not found; {_HINT}")


def _load_patient(folder: Path, opts: Options, size: tuple[int, int]) -> tuple[list, list, list[str]]:
    """(images, masks, names) of one patient's kept slices."""
    ct_path, gt_path = _nifti(folder, folder.name), _nifti(folder, "GT")
    ct = _read_volume(ct_path)
    gt = _read_volume(gt_path)
    if ct.shape != gt.shape:
        raise DataError(f"{gt_path}: shape {gt.shape} differs from CT {ct_path} shape {ct.shape}; they must match")
    labels = map_mask(np.rint(gt).astype(np.int32) if gt.dtype.kind == "f" else gt, _LUT, gt_path, _ALLOWED)
    keep = range(ct.shape[2]) if opts.keep_empty else np.flatnonzero(labels.any(axis=(0, 1)))
    images, masks = [], []
    for k in keep:
        grey = resize_image(window(_upright(ct[:, :, k]), *opts.window), size)
        images.append(np.repeat(grey[..., None], 3, axis=2))
        masks.append(resize_labels(np.ascontiguousarray(_upright(labels[:, :, k])), size))
    return images, masks, [f"{folder.name}/{k:03d}" for k in keep]


def _patients(root: Path) -> dict[int, Path]:
    found = {int(m.group(1)): p for p in root.iterdir()
             if p.is_dir() and (m := re.fullmatch(r"Patient_(\d+)", p.name))}
    if not found:
        raise DataError(f"{root}: no Patient_XX folders; {_HINT}")
    return dict(sorted(found.items()))


def split_patients(opts: Options, available: dict[int, Path], root: Path) -> dict[str, list[Path]]:
    """Patient folders per split: the configured lists, or 60/20/20 of the sorted patients."""
    if opts.train_patients is None:
        nums = list(available)
        n_val = n_test = max(1, round(0.2 * len(nums)))
        if len(nums) - n_val - n_test < 1:
            raise DataError(f"{root}: found {len(nums)} patient(s); the default 60/20/20 patient split needs "
                            "at least 3, or set dataset.train_patients, val_patients and test_patients")
        cut = len(nums) - n_val - n_test
        chosen = {"train": nums[:cut], "val": nums[cut:cut + n_val], "test": nums[cut + n_val:]}
    else:
        chosen = {}
        for split in SPLITS:
            key = f"dataset.{split}_patients"
            chosen[split] = [patient_number(p, key) for p in getattr(opts, f"{split}_patients")]
            for num in chosen[split]:
                if num not in available:
                    raise DataError(f"{key}: Patient_{num:02d} not found in {root}; available: "
                                    f"{', '.join(p.name for p in available.values())}")
    return {s: [available[n] for n in nums] for s, nums in chosen.items()}


def load(cfg) -> SegData:
    opts: Options = cfg.options
    root = require_root(cfg.root, _HINT)
    size = tuple(cfg.size) if cfg.size is not None else DEFAULT_SIZE
    per_split = split_patients(opts, _patients(root), root)
    limits = cfg.split_limits()
    splits = {}
    for split, folders in per_split.items():
        n = limits[split]
        if n is None:  # everything is needed: decode patients in parallel
            parts = decode_all(lambda f: _load_patient(f, opts, size), folders)
        else:  # stop decoding once the split limit is reached
            parts, got = [], 0
            for f in folders:
                if got >= n:
                    break
                parts.append(_load_patient(f, opts, size))
                got += len(parts[-1][0])
        images, masks, names = ([x for p in parts for x in p[i]] for i in range(3))
        source = f"{root} ({split}: {', '.join(f.name for f in folders)})"
        splits[split] = make_split(split, source, images[:n], masks[:n], names[:n])
    return SegData(**splits, class_names=list(CLASS_NAMES), ignore_index=IGNORE_INDEX,
                   meta={"root": str(root), "window": list(opts.window),
                         "patients": {s: [f.name for f in fs] for s, fs in per_split.items()}})
