"""Instance extraction: 8-connected components of one class, or dataset-shipped ids."""
import numpy as np

from trainables.noise._instances import label_instances, relabel_instances


def _mask(rows: list[str]) -> np.ndarray:
    """A one-image stack from strings of digits ('v' = void)."""
    return np.array([[255 if ch == "v" else int(ch) for ch in row] for row in rows], dtype=np.uint8)[None]


def test_diagonal_touch_is_one_instance_and_a_gap_is_two():
    masks = _mask(["1000",
                   "0101",
                   "0000"])
    labels, class_of = label_instances(masks, [1])
    # (0,0) and (1,1) touch diagonally -> one instance; (1,3) is two columns away -> another.
    assert len(class_of) == 3 and list(class_of) == [0, 1, 1]
    assert labels[0, 0, 0] == labels[0, 1, 1] != labels[0, 1, 3]
    assert labels[0, 0, 1] == 0


def test_classes_void_and_images_separate_instances():
    one = _mask(["1122",
                 "11v2"])
    masks = np.concatenate([one, one])  # the same pixels in two images are not connected
    labels, class_of = label_instances(masks, [1, 2])
    assert sorted(class_of[1:].tolist()) == [1, 1, 2, 2]
    assert labels[0, 0, 0] != labels[1, 0, 0]
    assert labels[0, 1, 2] == 0  # void is never an instance
    labels, class_of = label_instances(masks, [2])  # only the listed classes
    assert class_of[1:].tolist() == [2, 2] and (labels[masks == 1] == 0).all()


def test_shipped_ids_override_components_and_id_zero_falls_back():
    masks = _mask(["1101100",
                   "1101100",
                   "0000022"])
    ids = np.array([[[5, 5, 0, 5, 5, 0, 0],
                     [7, 7, 0, 5, 5, 0, 0],
                     [0, 0, 0, 0, 0, 5, 0]]], dtype=np.int32)
    labels, class_of = label_instances(masks, [1, 2], ids)
    lab = labels[0]
    # id 5 of class 1 spans two unconnected squares: one instance
    assert lab[0, 0] == lab[0, 1] == lab[0, 3] == lab[1, 4]
    # one connected square split by ids 5/7: two instances
    assert lab[1, 0] == lab[1, 1] != lab[0, 0]
    # id 5 on class 2 is a different instance from id 5 on class 1; id 0 pixel -> its own component
    assert lab[2, 5] not in (lab[0, 0], lab[2, 6]) and lab[2, 6] > 0
    assert sorted(class_of[1:].tolist()) == [1, 1, 2, 2]


def test_relabel_instances_changes_whole_instances():
    masks = _mask(["110v",
                   "0002"])
    out = relabel_instances(masks, [1, 2], 1.0, np.random.default_rng(0), None, lambda old, _: old + 1)
    np.testing.assert_array_equal(out, _mask(["220v", "0003"]))
    out = relabel_instances(masks, [1, 2], 0.0, np.random.default_rng(0), None, lambda old, _: old + 1)
    np.testing.assert_array_equal(out, masks)
