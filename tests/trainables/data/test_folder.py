"""Folder loader: images/ + masks/ matched by stem, split by sub-folders or list files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainables.config import parse_trial
from trainables.data import create_dataset
from trainables.errors import ConfigError, DataError

GREY = [0, 63, 126]  # grey-coded classes 0..2
STEMS = {"train": ["t0", "t1", "t2"], "val": ["v0"], "test": ["s0", "s1"]}
EXTS = [".png", ".jpg", ".bmp"]


def grey_mask(h: int = 16, w: int = 20) -> np.ndarray:
    """Three vertical bands of the grey codes, bottom row void (255)."""
    m = np.zeros((h, w), np.uint8)
    m[:, w // 3: 2 * w // 3] = 63
    m[:, 2 * w // 3:] = 126
    m[-1] = 255
    return m


def write_pair(images: Path, masks: Path, stem: str, ext: str, mask: np.ndarray) -> None:
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*mask.shape, 3), 90, np.uint8)).save(images / f"{stem}{ext}")
    Image.fromarray(mask).save(masks / f"{stem}.png")


def make_folder(tmp_path: Path, lists: bool = False) -> Path:
    """Sub-folder layout by default; ``lists``: flat folders plus root/{split}.txt of stems."""
    for split, stems in STEMS.items():
        sub = "" if lists else split
        for i, stem in enumerate(stems):
            write_pair(tmp_path / "images" / sub, tmp_path / "masks" / sub, stem, EXTS[i % 3], grey_mask())
        if lists:
            (tmp_path / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return tmp_path


def load(root: Path, **ds):
    ds = {"class_names": ["bg", "a", "b"], "mask_values": GREY, **ds}
    return create_dataset(parse_trial({"dataset": {"name": "folder", "root": str(root), **ds}}).dataset)


@pytest.mark.parametrize("lists", [False, True])
def test_layouts_decode_with_mask_values(tmp_path, lists):
    data = load(make_folder(tmp_path, lists))
    assert data.class_names == ["bg", "a", "b"]
    assert {s: sp.names for s, sp in data.splits().items()} == STEMS
    assert data.train.images.shape == (3, 16, 20, 3) and data.train.images.dtype == np.uint8  # native
    m = data.train.masks[1]
    assert m.dtype == np.uint8
    expected = grey_mask()
    for raw, cls in [(0, 0), (63, 1), (126, 2), (255, 255)]:
        assert (m[expected == raw] == cls).all()
    assert data.meta["layout"] == ("lists" if lists else "sub-folders")


def test_resize_and_limits(tmp_path):
    data = load(make_folder(tmp_path), size=[8, 10], max_images={"train": 2})
    assert data.train.images.shape == (2, 8, 10, 3) and data.test.masks.shape == (2, 8, 10)
    assert set(np.unique(data.train.masks)) == {0, 1, 2, 255}


def test_raw_ids_num_classes_and_ignore_value(tmp_path):
    mask = np.array([[0, 1, 2, 100]] * 8, np.uint8)
    for split in STEMS:
        write_pair(tmp_path / "images" / split, tmp_path / "masks" / split, "x", ".png", mask)
    data = load(tmp_path, class_names=None, mask_values=None, num_classes=3, ignore_value=100)
    assert data.class_names == ["class_0", "class_1", "class_2"]
    assert data.train.masks[0, 0].tolist() == [0, 1, 2, 255]


def test_binary_255_is_a_class_when_listed(tmp_path):
    mask = np.array([[0, 255]] * 8, np.uint8)
    for split in STEMS:
        write_pair(tmp_path / "images" / split, tmp_path / "masks" / split, "x", ".png", mask)
    data = load(tmp_path, class_names=["bg", "fg"], mask_values=[0, 255])
    assert data.train.masks[0, 0].tolist() == [0, 1]


def test_grey_rgb_mask_accepted(tmp_path):
    root = make_folder(tmp_path)
    Image.fromarray(np.repeat(grey_mask()[..., None], 3, axis=2)).save(root / "masks" / "val" / "v0.png")
    assert set(np.unique(load(root).val.masks)) == {0, 1, 2, 255}


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("ds, match", [
    ({"class_names": None}, r"dataset\.class_names: required key is missing; give class_names .* or num_classes"),
    ({"num_classes": 4}, r"dataset\.num_classes: got 4 but class_names has 3 names"),
    ({"mask_values": [0, 63]}, r"dataset\.mask_values: got 2 values for 3 classes"),
    ({"mask_values": [0, 63, 63]}, r"dataset\.mask_values: .*must be distinct"),
    ({"mask_values": [0, 63, 300]}, r"dataset\.mask_values\[2\]: got 300; allowed range \[0, 255\]"),
    ({"ignore_value": 63}, r"dataset\.ignore_value: 63 is also in mask_values"),
    ({"mask_values": None, "ignore_value": 1}, r"dataset\.ignore_value: got 1, which is class id 1"),
])
def test_bad_options(ds, match):
    base = {"name": "folder", "class_names": ["bg", "a", "b"], "mask_values": GREY}
    with pytest.raises(ConfigError, match=match):
        parse_trial({"dataset": {**base, **ds}})


def test_root_missing(tmp_path):
    with pytest.raises(DataError, match=r"dataset\.root: .* is not a folder; expected root/images/ and root/masks/"):
        load(tmp_path / "nope")


def test_missing_split_folder_or_list(tmp_path):
    root = make_folder(tmp_path)
    for f in (root / "images" / "test").iterdir():
        f.unlink()
    (root / "images" / "test").rmdir()
    with pytest.raises(DataError, match=r"images/test: folder not found"):
        load(root)
    flat = make_folder(tmp_path / "flat", lists=True)
    (flat / "val.txt").unlink()
    with pytest.raises(DataError, match=r"val\.txt: split list not found"):
        load(flat)


def test_list_names_unknown_stem(tmp_path):
    root = make_folder(tmp_path, lists=True)
    (root / "train.txt").write_text("t0\nghost\n")
    with pytest.raises(DataError, match=r"train\.txt: lists 'ghost' but .*images has no image with that stem"):
        load(root)


def test_image_without_mask(tmp_path):
    root = make_folder(tmp_path)
    (root / "masks" / "train" / "t1.png").unlink()
    with pytest.raises(DataError, match=r"images/train/t1\.jpg: no mask; expected .*masks/train/t1\.png"):
        load(root)


def test_duplicate_stem(tmp_path):
    root = make_folder(tmp_path)
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(root / "images" / "val" / "v0.jpg")
    with pytest.raises(DataError, match=r"v0\.png: same stem as v0\.jpg"):
        load(root)


def test_mask_value_not_a_class(tmp_path):
    root = make_folder(tmp_path)
    Image.fromarray(np.full((16, 20), 64, np.uint8)).save(root / "masks" / "test" / "s1.png")
    with pytest.raises(DataError, match=r"masks/test/s1\.png: mask value\(s\) 64 .*allowed: 0, 63, 126 \(classes\) or 255 \(void\)"):
        load(root)


def test_size_mismatch(tmp_path):
    root = make_folder(tmp_path)
    Image.fromarray(grey_mask(16, 21)).save(root / "masks" / "train" / "t0.png")
    with pytest.raises(DataError, match=r"masks/train/t0\.png: mask is 16x21 but image .*t0\.png is 16x20"):
        load(root)


def test_mixed_native_sizes_need_size(tmp_path):
    root = make_folder(tmp_path)
    write_pair(root / "images" / "train", root / "masks" / "train", "t9", ".png", grey_mask(12, 12))
    with pytest.raises(DataError, match=r"images/train: train images differ in size .*set dataset\.size"):
        load(root)
    assert load(root, size=[12, 12]).train.images.shape == (4, 12, 12, 3)


def test_colour_mask_and_corrupt_image(tmp_path):
    root = make_folder(tmp_path)
    rgb = np.zeros((16, 20, 3), np.uint8)
    rgb[..., 1] = 63
    Image.fromarray(rgb).save(root / "masks" / "val" / "v0.png")
    with pytest.raises(DataError, match=r"masks/val/v0\.png: colour-coded RGB mask; expected a single-channel index mask"):
        load(root)
    (root / "images" / "test" / "s0.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(grey_mask()).save(root / "masks" / "val" / "v0.png")
    with pytest.raises(DataError, match=r"images/test/s0\.png: cannot read image"):
        load(root)


def test_empty_split(tmp_path):
    root = make_folder(tmp_path, lists=True)
    (root / "test.txt").write_text("\n")
    with pytest.raises(DataError, match=r"test\.txt: test split is empty"):
        load(root)
