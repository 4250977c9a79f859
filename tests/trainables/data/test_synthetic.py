"""The synthetic default dataset: deterministic, clean, and classes of clearly different size/contrast."""
import numpy as np
import pytest
from scipy import ndimage

from trainables.config import parse_trial
from trainables.data import create_dataset
from trainables.errors import ConfigError


def _load(**dataset):
    return create_dataset(parse_trial({"dataset": {"name": "synthetic", **dataset}}).dataset)


def test_shapes_dtypes_and_determinism() -> None:
    a = _load(num_train=6, num_val=3, num_test=2, size=[48, 40])
    b = _load(num_train=6, num_val=3, num_test=2, size=[48, 40])
    assert a.train.images.shape == (6, 48, 40, 3) and a.train.images.dtype == np.uint8
    assert (len(a.val), len(a.test)) == (3, 2)
    assert a.class_names == ["background", "disc", "box", "triangle", "bar"]
    for split in ("train", "val", "test"):
        assert np.array_equal(getattr(a, split).images, getattr(b, split).images)
        assert np.array_equal(getattr(a, split).masks, getattr(b, split).masks)
    assert not np.array_equal(a.train.masks[:2], a.val.masks[:2])  # splits are different scenes
    c = _load(num_train=6, num_val=3, num_test=2, size=[48, 40], seed=1)
    assert not np.array_equal(a.train.masks, c.train.masks)  # the dataset seed changes the scenes


def test_max_images_limits_generation() -> None:
    data = _load(max_images={"train": 5})
    assert len(data.train) == 5 and len(data.val) == 40


def test_classes_differ_in_size_and_contrast() -> None:
    data = _load(num_train=80)
    masks, images = data.train.masks, data.train.images.astype(float)
    areas, contrast = [], []
    background = images[masks == 0].mean(0)
    for cls in range(1, 5):
        sizes = [np.bincount(ndimage.label(m == cls)[0].ravel())[1:] for m in masks]
        sizes = np.concatenate([s for s in sizes if len(s)])
        areas.append(np.median(sizes))
        contrast.append(np.abs(images[masks == cls].mean(0) - background).sum())
    # disc > box > triangle and bar in size (the bar is thin, the triangle small), and the bar is the
    # faintest against the background
    assert areas[0] > areas[1] > max(areas[2], areas[3])
    assert areas[0] > 2.5 * min(areas[2], areas[3])
    assert contrast[3] == min(contrast)
    assert set(np.unique(masks)) == {0, 1, 2, 3, 4}


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"dataset.num_classes: got 9; allowed range \[2, 5\]"):
        _load(num_classes=9)
    with pytest.raises(ConfigError, match="dataset.root: the synthetic dataset is generated"):
        _load(root="/data")
