"""SegTHOR loader on tiny NIfTI volumes written into tmp_path."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from trainables.config import parse_trial
from trainables.data import create_dataset
from trainables.data.segthor import window
from trainables.errors import ConfigError, DataError

X, Y, Z = 16, 12, 5  # voxel grid; upright slices are Y x X = 12 x 16
FG_SLICES = (1, 3)  # slices with organ labels; 0, 2, 4 are empty
RAS = np.diag([1.0, 1.0, 2.5, 1.0])


def write_patient(root: Path, num: int, affine: np.ndarray = RAS, gt: np.ndarray | None = None) -> Path:
    """CT with HU = 10 * x - 1000 + 100 * z (known per voxel); GT: heart (2) on one voxel row."""
    folder = root / f"Patient_{num:02d}"
    folder.mkdir(parents=True)
    x = np.arange(X)[:, None, None]
    ct = (np.zeros((X, Y, Z)) + 10 * x - 1000 + 100 * np.arange(Z)).astype(np.int16)
    if gt is None:
        gt = np.zeros((X, Y, Z), np.uint8)
        for k in FG_SLICES:
            gt[2, 3, k] = 2
            gt[5:9, 6, k] = 4
    nib.Nifti1Image(ct, affine).to_filename(folder / f"{folder.name}.nii.gz")
    nib.Nifti1Image(gt, affine).to_filename(folder / "GT.nii.gz")
    return folder


def make_segthor(tmp_path: Path, n: int = 5) -> Path:
    for i in range(1, n + 1):
        write_patient(tmp_path, i)
    return tmp_path


def load(root: Path, **ds):
    return create_dataset(parse_trial({"dataset": {"name": "segthor", "root": str(root), **ds}}).dataset)


def test_default_split_filtering_and_shapes(tmp_path):
    data = load(make_segthor(tmp_path), size=[Y, X])
    assert data.class_names == ["background", "esophagus", "heart", "trachea", "aorta"]
    assert data.meta["patients"] == {"train": ["Patient_01", "Patient_02", "Patient_03"],
                                     "val": ["Patient_04"], "test": ["Patient_05"]}  # 60/20/20
    assert data.train.images.shape == (6, Y, X, 3) and data.train.images.dtype == np.uint8
    assert data.train.masks.shape == (6, Y, X) and data.train.masks.dtype == np.uint8
    assert data.val.names == ["Patient_04/001", "Patient_04/003"]  # only slices with foreground
    img = data.train.images[0]
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 0] == img[..., 2]).all()  # grey -> RGB
    assert set(np.unique(data.test.masks)) == {0, 2, 4}


def test_keep_empty_and_limits(tmp_path):
    data = load(make_segthor(tmp_path), size=[Y, X], keep_empty=True, max_images={"train": 7})
    assert data.val.names == [f"Patient_04/{k:03d}" for k in range(Z)]
    assert len(data.train) == 7 and data.train.names[-1] == "Patient_02/001"  # stops mid-patient 2


def test_window_on_known_hu():
    hu = np.array([-1000, -160, 40, 100, 240, 1000])
    assert window(hu, 40, 400).tolist() == [0, 0, 128, 166, 255, 255]  # 127.5 rounds to 128


def test_windowing_and_upright_orientation_in_ras(tmp_path):
    make_segthor(tmp_path)
    data = load(tmp_path, size=[Y, X], window=[-850, 300], train_patients=[1], val_patients=["Patient_02"],
                test_patients=["3"])
    slice1, mask = data.train.images[0, ..., 0], data.train.masks[0]
    # RAS voxel (x, y) is shown at row Y-1-y (anterior up), col X-1-x (patient's right on the left)
    assert mask[Y - 1 - 3, X - 1 - 2] == 2 and (mask[Y - 1 - 6, X - 9: X - 5] == 4).all()
    assert (mask == 2).sum() == 1 and (mask == 4).sum() == 4
    hu = 10 * (X - 1 - np.arange(X)) - 1000 + 100 * 1  # slice 1, per column
    assert (slice1 == window(hu, -850, 300)[None, :]).all()


def test_orientation_follows_affine(tmp_path):
    write_patient(tmp_path, 1, affine=np.diag([-1.0, -1.0, 2.5, 1.0]))  # LPS storage
    for i in (2, 3):
        write_patient(tmp_path, i)
    mask = load(tmp_path, size=[Y, X]).train.masks[0]
    # flipped x and y on disk: the same voxel (2, 3) now lies at the opposite corner on screen
    assert mask[3, 2] == 2 and (mask == 2).sum() == 1


def test_resize(tmp_path):
    data = load(make_segthor(tmp_path), size=[24, 32])
    assert data.train.images.shape == (6, 24, 32, 3) and data.train.masks.shape == (6, 24, 32)
    assert set(np.unique(data.train.masks)) == {0, 2, 4}
    assert load(tmp_path, max_images=1).train.images.shape == (1, 256, 256, 3)  # default size


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("ds, match", [
    ({"window": [40, 0]}, r"dataset\.window\[1\]: got 0\.0; allowed range \(0, inf\]"),
    ({"train_patients": [1]}, r"dataset\.val_patients: missing while train_patients is set"),
    ({"train_patients": [1], "val_patients": ["Patient_01"], "test_patients": [3]},
     r"dataset\.val_patients\[0\]: patient 1 is also in train_patients"),
    ({"train_patients": ["P1"], "val_patients": [2], "test_patients": [3]},
     r"dataset\.train_patients\[0\]: got 'P1'; expected a patient number"),
    ({"train_patients": [], "val_patients": [2], "test_patients": [3]}, r"dataset\.train_patients: empty list"),
])
def test_bad_options(ds, match):
    with pytest.raises(ConfigError, match=match):
        parse_trial({"dataset": {"name": "segthor", **ds}})


def test_root_problems(tmp_path):
    with pytest.raises(DataError, match=r"dataset\.root: not set; expected root/Patient_01/Patient_01\.nii\.gz"):
        create_dataset(parse_trial({"dataset": {"name": "segthor"}}).dataset)
    with pytest.raises(DataError, match=r"no Patient_XX folders; expected root/Patient_01"):
        load(tmp_path)
    make_segthor(tmp_path, n=2)
    with pytest.raises(DataError, match=r"found 2 patient\(s\); the default 60/20/20 patient split needs at least 3"):
        load(tmp_path)


def test_unknown_patient(tmp_path):
    make_segthor(tmp_path, n=3)
    with pytest.raises(DataError, match=r"dataset\.test_patients: Patient_09 not found in .*available: Patient_01, Patient_02, Patient_03"):
        load(tmp_path, train_patients=[1], val_patients=[2], test_patients=[9])


def test_missing_gt(tmp_path):
    make_segthor(tmp_path, n=3)
    (tmp_path / "Patient_02" / "GT.nii.gz").unlink()
    with pytest.raises(DataError, match=r"Patient_02/GT\.nii\.gz: not found"):
        load(tmp_path, size=[Y, X])


def test_label_out_of_range(tmp_path):
    gt = np.zeros((X, Y, Z), np.uint8)
    gt[0, 0, 0] = 7
    write_patient(tmp_path, 1, gt=gt)
    for i in (2, 3):
        write_patient(tmp_path, i)
    with pytest.raises(DataError, match=r"Patient_01/GT\.nii\.gz: mask value\(s\) 7 .*allowed: 0\.\.4"):
        load(tmp_path, size=[Y, X])


def test_shape_mismatch(tmp_path):
    make_segthor(tmp_path, n=3)
    nib.Nifti1Image(np.zeros((X, Y, Z + 1), np.uint8), RAS).to_filename(tmp_path / "Patient_03" / "GT.nii.gz")
    with pytest.raises(DataError, match=r"Patient_03/GT\.nii\.gz: shape \(16, 12, 6\) differs from CT .*Patient_03\.nii\.gz"):
        load(tmp_path, size=[Y, X])


def test_corrupt_volume(tmp_path):
    make_segthor(tmp_path, n=3)
    (tmp_path / "Patient_01" / "Patient_01.nii.gz").write_bytes(b"\x1f\x8b\x08 not really gzip")
    with pytest.raises(DataError, match=r"Patient_01/Patient_01\.nii\.gz: cannot read NIfTI volume"):
        load(tmp_path, size=[Y, X])


def test_empty_split(tmp_path):
    make_segthor(tmp_path, n=2)
    write_patient(tmp_path, 3, gt=np.zeros((X, Y, Z), np.uint8))  # no foreground at all
    with pytest.raises(DataError, match=r"test split is empty"):
        load(tmp_path, size=[Y, X], train_patients=[1], val_patients=[2], test_patients=[3])
