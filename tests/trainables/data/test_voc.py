"""VOC loader on a tiny VOCdevkit written into tmp_path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainables.config import parse_trial
from trainables.data import create_dataset
from trainables.errors import ConfigError, DataError

PALETTE = [v for i in range(256) for v in (i, (i * 7) % 256, (i * 13) % 256)]
SIZES = {"a": (20, 30), "b": (30, 20), "c": (24, 24), "d": (16, 16)}  # (H, W), VOC sizes vary


def save_palette(arr: np.ndarray, path: Path) -> None:
    im = Image.fromarray(arr.astype(np.uint8), mode="P")
    im.putpalette(PALETTE)
    im.save(path)


def class_mask(h: int, w: int) -> np.ndarray:
    """Left half class 15 (person), right half void (255), top-left pixel background."""
    m = np.full((h, w), 15, np.uint8)
    m[:, w // 2:] = 255
    m[0, 0] = 0
    return m


def make_voc(tmp_path: Path, aug: bool = False) -> Path:
    """VOCdevkit/VOC2012 with 4 images: train a, b; val c, d; object masks for a, b, c only."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    for stem, (h, w) in SIZES.items():
        Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(voc / "JPEGImages" / f"{stem}.jpg")
        save_palette(class_mask(h, w), voc / "SegmentationClass" / f"{stem}.png")
        if stem != "d":
            obj = np.zeros((h, w), np.uint8)
            obj[:, : w // 4] = 1
            obj[:, w // 4: w // 2] = 2
            obj[:, w // 2] = 255  # void border
            save_palette(obj, voc / "SegmentationObject" / f"{stem}.png")
    sets = voc / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("a\nb\n")
    (sets / "val.txt").write_text("c\nd\n")
    (sets / "trainval.txt").write_text("a\nb\nc\nd\n")
    if aug:
        (voc / "SegmentationClassAug").mkdir()
        for stem, (h, w) in SIZES.items():  # greyscale index PNGs, all class 7 (car)
            Image.fromarray(np.full((h, w), 7, np.uint8)).save(voc / "SegmentationClassAug" / f"{stem}.png")
        (sets / "train_aug.txt").write_text("/JPEGImages/a.jpg /SegmentationClassAug/a.png\n"
                                            "/JPEGImages/b.jpg /SegmentationClassAug/b.png\n"
                                            "/JPEGImages/d.jpg /SegmentationClassAug/d.png\n")
    return voc


def load(**ds):
    return create_dataset(parse_trial({"dataset": {"name": "voc", **ds}}).dataset)


@pytest.mark.parametrize("sub", ["VOCdevkit", "VOCdevkit/VOC2012"])
def test_decodes_either_root(tmp_path, sub):
    make_voc(tmp_path)
    data = load(root=str(tmp_path / sub), size=[24, 24])
    assert data.num_classes == 21 and data.class_names[15] == "person" and data.class_names[0] == "background"
    assert data.train.names == ["a", "b"] and data.val.names == ["c", "d"]
    assert data.train.images.shape == (2, 24, 24, 3) and data.train.images.dtype == np.uint8
    assert data.train.masks.shape == (2, 24, 24) and data.train.masks.dtype == np.uint8
    assert abs(int(data.train.images.mean()) - 120) <= 2  # JPEG is lossy
    m = data.val.masks[0]  # "c" is 24x24 natively: exact palette indices
    assert m[0, 0] == 0 and (m[1:, :12] == 15).all() and (m[:, 12:] == 255).all()
    for mask in data.train.masks:  # resized nearest: only the original values
        assert set(np.unique(mask)) <= {0, 15, 255}
        assert (mask[:, -1] == 255).all() and (mask[-1, 0] == 15)


def test_test_split_defaults_to_val(tmp_path):
    make_voc(tmp_path)
    data = load(root=str(tmp_path / "VOCdevkit"), size=[16, 16])
    assert data.test.names == data.val.names
    assert np.array_equal(data.test.masks, data.val.masks)


def test_default_size_and_list_options(tmp_path):
    make_voc(tmp_path)
    data = load(root=str(tmp_path / "VOCdevkit"), train_list="trainval", test_list="train", max_images={"train": 3})
    assert data.train.names == ["a", "b", "c"] and data.test.names == ["a", "b"]
    assert data.train.images.shape == (3, 256, 256, 3)


def test_instances_auto(tmp_path):
    make_voc(tmp_path)
    data = load(root=str(tmp_path / "VOCdevkit"), size=[24, 24])
    inst = data.train.instances
    assert inst is not None and inst.dtype == np.int32 and inst.shape == (2, 24, 24)
    assert set(np.unique(inst)) == {0, 1, 2}  # the 255 border became 0
    c = load(root=str(tmp_path / "VOCdevkit"), size=[24, 24], max_images=1).val.instances[0]
    assert (c[:, :6] == 1).all() and (c[:, 6:12] == 2).all() and (c[:, 12:] == 0).all()
    assert data.val.instances is None  # "d" has no object mask, so val goes without


def test_instances_off_and_required(tmp_path):
    make_voc(tmp_path)
    root = str(tmp_path / "VOCdevkit")
    assert load(root=root, size=[16, 16], instances=False).train.instances is None
    with pytest.raises(DataError, match=r"SegmentationObject/d\.png: mask file not found"):
        load(root=root, size=[16, 16], instances=True)


def test_augmented_uses_aug_masks_and_train_aug(tmp_path):
    make_voc(tmp_path, aug=True)
    data = load(root=str(tmp_path / "VOCdevkit"), size=[16, 16], augmented=True)
    assert data.train.names == ["a", "b", "d"]
    assert (data.train.masks == 7).all() and (data.val.masks == 7).all()
    assert data.meta["lists"][0] == "train_aug"


# -- bad input -----------------------------------------------------------------------------------

def test_root_unset_or_without_voc(tmp_path):
    with pytest.raises(DataError, match=r"dataset\.root: not set; expected a VOCdevkit folder"):
        load()
    with pytest.raises(DataError, match=r"VOC2012/JPEGImages: not found; expected a VOCdevkit folder"):
        load(root=str(tmp_path))


def test_augmented_without_aug_folder(tmp_path):
    make_voc(tmp_path)
    with pytest.raises(DataError, match=r"SegmentationClassAug: mask folder not found; dataset\.augmented"):
        load(root=str(tmp_path / "VOCdevkit"), augmented=True)


def test_mask_value_out_of_range(tmp_path):
    voc = make_voc(tmp_path)
    save_palette(np.full((30, 20), 30), voc / "SegmentationClass" / "b.png")
    with pytest.raises(DataError, match=r"SegmentationClass/b\.png: mask value\(s\) 30 .*allowed: 0\.\.20 \(classes\) or 255 \(void\)"):
        load(root=str(tmp_path / "VOCdevkit"))


def test_image_without_mask(tmp_path):
    voc = make_voc(tmp_path)
    (voc / "SegmentationClass" / "c.png").unlink()
    with pytest.raises(DataError, match=r"JPEGImages/c\.jpg: no mask; expected .*SegmentationClass/c\.png"):
        load(root=str(tmp_path / "VOCdevkit"))


def test_size_mismatch(tmp_path):
    voc = make_voc(tmp_path)
    save_palette(np.zeros((20, 20)), voc / "SegmentationClass" / "a.png")
    with pytest.raises(DataError, match=r"SegmentationClass/a\.png: mask is 20x20 but image .*JPEGImages/a\.jpg is 20x30"):
        load(root=str(tmp_path / "VOCdevkit"))


def test_corrupt_image(tmp_path):
    voc = make_voc(tmp_path)
    (voc / "JPEGImages" / "d.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match=r"JPEGImages/d\.jpg: cannot read image"):
        load(root=str(tmp_path / "VOCdevkit"))


def test_colour_mask_rejected(tmp_path):
    voc = make_voc(tmp_path)
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 128
    Image.fromarray(rgb).save(voc / "SegmentationClass" / "a.png")
    with pytest.raises(DataError, match=r"a\.png: colour-coded RGB mask; expected a single-channel index mask"):
        load(root=str(tmp_path / "VOCdevkit"))


def test_empty_and_missing_list(tmp_path):
    voc = make_voc(tmp_path)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("")
    with pytest.raises(DataError, match=r"val\.txt: val split is empty"):
        load(root=str(tmp_path / "VOCdevkit"))
    with pytest.raises(DataError, match=r"nope\.txt: split list not found"):
        load(root=str(tmp_path / "VOCdevkit"), val_list="nope")


def test_bad_list_option():
    with pytest.raises(ConfigError, match=r"dataset\.train_list: got 'a/b'; expected a list name"):
        parse_trial({"dataset": {"name": "voc", "train_list": "a/b"}})
