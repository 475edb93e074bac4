"""load_mvtec / mvtec_defect_types on a tiny fake MVTec AD folder (no download)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from adcourse.data import ImageSet, load_mvtec, mvtec_defect_types

CATEGORY = "widget"


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def mvtec_root(tmp_path):
    """3 train/good, 2 test/good, 2 test/scratch (with masks); 16x16 RGB PNGs.

    Pixel (0, 0) of each image encodes its index so the order can be checked.
    """
    base = tmp_path / "mvtec" / CATEGORY
    rng = np.random.default_rng(0)

    def rgb(value):
        img = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        img[0, 0] = value
        return img

    for name in ["002.png", "000.png", "001.png"]:  # written out of order
        _save(base / "train" / "good" / name, rgb(10 * int(name[:3])))
    for i in range(2):
        _save(base / "test" / "good" / f"{i:03d}.png", rgb(100 + i))
        _save(base / "test" / "scratch" / f"{i:03d}.png", rgb(200 + i))
        mask = np.zeros((16, 16), dtype=np.uint8)
        mask[4:8, 4 + 4 * i:8 + 4 * i] = 255
        _save(base / "ground_truth" / "scratch" / f"{i:03d}_mask.png", mask)
    return tmp_path / "mvtec"


def test_train_split(mvtec_root):
    ds = load_mvtec(mvtec_root, CATEGORY, "train")
    assert isinstance(ds, ImageSet)
    assert ds.images.shape == (3, 16, 16) and ds.images.dtype == np.float64
    assert ds.masks.shape == (3, 16, 16) and ds.masks.dtype == bool
    assert not ds.masks.any()
    assert ds.labels.tolist() == [0, 0, 0]
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    # sorted by file name: 000, 001, 002 -> pixel (0, 0) = 0, 10, 20 (gray of equal RGB)
    np.testing.assert_allclose(ds.images[:, 0, 0] * 255, [0, 10, 20], atol=1e-6)
    assert mvtec_defect_types(mvtec_root, CATEGORY, "train") == ["good"] * 3


def test_test_split_labels_masks_order(mvtec_root):
    ds = load_mvtec(mvtec_root, CATEGORY, split="test")
    assert ds.images.shape == (4, 16, 16)
    assert mvtec_defect_types(mvtec_root, CATEGORY, "test") == [
        "good", "good", "scratch", "scratch"
    ]
    assert ds.labels.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(ds.images[:, 0, 0] * 255, [100, 101, 200, 201], atol=1e-6)
    assert not ds.masks[:2].any()
    expected = np.zeros((16, 16), dtype=bool)
    expected[4:8, 4:8] = True
    np.testing.assert_array_equal(ds.masks[2], expected)
    expected = np.zeros((16, 16), dtype=bool)
    expected[4:8, 8:12] = True
    np.testing.assert_array_equal(ds.masks[3], expected)
    # deterministic
    again = load_mvtec(mvtec_root, CATEGORY, split="test")
    np.testing.assert_array_equal(again.images, ds.images)


def test_grayscale_conversion_matches_rgb2gray(mvtec_root):
    from skimage.color import rgb2gray

    path = mvtec_root / CATEGORY / "test" / "scratch" / "001.png"
    rgb = np.asarray(Image.open(path)) / 255.0
    ds = load_mvtec(mvtec_root, CATEGORY, "test")
    np.testing.assert_allclose(ds.images[3], rgb2gray(rgb), atol=1e-12)


def test_grayscale_source_images(tmp_path):
    base = tmp_path / CATEGORY / "train" / "good"
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    _save(base / "a.png", img)
    ds = load_mvtec(tmp_path, CATEGORY)
    np.testing.assert_allclose(ds.images[0], img / 255.0)


def test_grayscale_false_is_refused(mvtec_root):
    with pytest.raises(ValueError, match="grayscale"):
        load_mvtec(mvtec_root, CATEGORY, grayscale=False)


def test_resize(mvtec_root):
    ds = load_mvtec(mvtec_root, CATEGORY, "test", size=8)
    assert ds.images.shape == (4, 8, 8) and ds.masks.shape == (4, 8, 8)
    assert ds.masks.dtype == bool
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    # nearest-neighbour masks: the 4x4 square at [4:8, 4:8] becomes 2x2 at [2:4, 2:4]
    expected = np.zeros((8, 8), dtype=bool)
    expected[2:4, 2:4] = True
    np.testing.assert_array_equal(ds.masks[2], expected)
    assert ds.labels.tolist() == [0, 0, 1, 1]
    rect = load_mvtec(mvtec_root, CATEGORY, "train", size=(32, 24))
    assert rect.images.shape == (3, 32, 24)


def test_bad_size(mvtec_root):
    with pytest.raises(ValueError, match="size"):
        load_mvtec(mvtec_root, CATEGORY, size=0)


def test_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_mvtec(missing, CATEGORY)
    msg = str(info.value)
    assert str(missing) in msg and "mvtec.com" in msg and "CC BY-NC-SA 4.0" in msg
    assert "ground_truth" in msg


def test_missing_category(mvtec_root):
    with pytest.raises(FileNotFoundError) as info:
        load_mvtec(mvtec_root, "bottle", "test")
    msg = str(info.value)
    assert str(mvtec_root / "bottle" / "test") in msg and CATEGORY in msg
    assert "mvtec.com" in msg


def test_missing_mask(mvtec_root):
    (mvtec_root / CATEGORY / "ground_truth" / "scratch" / "001_mask.png").unlink()
    with pytest.raises(ValueError, match="001.png"):
        load_mvtec(mvtec_root, CATEGORY, "test")
    # the train split does not need masks
    assert len(load_mvtec(mvtec_root, CATEGORY, "train")) == 3


@pytest.mark.parametrize("split", ["val", "Train", None])
def test_bad_split(mvtec_root, split):
    with pytest.raises(ValueError, match="split"):
        load_mvtec(mvtec_root, CATEGORY, split=split)
    with pytest.raises(ValueError, match="split"):
        mvtec_defect_types(mvtec_root, CATEGORY, split=split)


def test_mixed_shapes_need_size(mvtec_root):
    _save(mvtec_root / CATEGORY / "train" / "good" / "003.png",
          np.zeros((20, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="size="):
        load_mvtec(mvtec_root, CATEGORY)
    assert load_mvtec(mvtec_root, CATEGORY, size=16).images.shape == (4, 16, 16)
