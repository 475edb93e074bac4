"""Tests of the local-feature image detector and the image-detector protocol."""

import numpy as np
import pytest
from sklearn.base import clone

from adcourse import metrics
from adcourse.data import make_nanofibers
from adcourse.images.features import LocalFeatureDetector, local_statistics


@pytest.fixture(scope="module")
def sets():
    train = make_nanofibers(n_images=6, size=64, anomaly_rate=0.0, random_state=1)
    test = make_nanofibers(n_images=12, size=64, anomaly_rate=0.5, random_state=3)
    return train, test


def test_local_statistics_equal_direct_computation():
    img = np.random.default_rng(0).random((1, 20, 24))
    f = local_statistics(img, window=5)
    assert f.shape == (1, 20, 24, 3)
    # an interior pixel, computed by hand from its 5x5 window
    w = img[0, 5:10, 7:12]
    np.testing.assert_allclose(f[0, 7, 9, 0], w.mean())
    np.testing.assert_allclose(f[0, 7, 9, 1], w.std())
    gy, gx = np.gradient(img[0])
    np.testing.assert_allclose(f[0, 7, 9, 2], (gx**2 + gy**2)[5:10, 7:12].mean())


def test_detector_protocol(sets):
    train, test = sets
    det = LocalFeatureDetector(window=7).fit(train.images)
    maps = det.anomaly_map(test.images)
    assert maps.shape == test.images.shape
    np.testing.assert_array_equal(det.anomaly_score(test.images), maps.max(axis=(1, 2)))
    # deterministic and clone-able
    np.testing.assert_array_equal(clone(det).fit(train.images).anomaly_map(test.images), maps)


def test_flags_a_textureless_region(sets):
    train, test = sets
    det = LocalFeatureDetector(window=7, sigma=0).fit(train.images)
    img = train.images[:1].copy()
    img[0, 20:44, 20:44] = img[0].mean()  # a flat "film" at the mean intensity: no texture
    inside = det.anomaly_map(img)[0, 24:40, 24:40]  # windows fully inside the film
    normal = det.anomaly_map(test.images[test.labels == 0])
    assert np.median(inside) > np.quantile(normal, 0.95)


def test_bad_input(sets):
    train, _ = sets
    det = LocalFeatureDetector().fit(train.images)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        det.anomaly_map(train.images * 255)
    with pytest.raises(ValueError, match="NaN"):
        det.anomaly_map(np.full((1, 64, 64), np.nan))
    with pytest.raises(ValueError, match="shaped like the training images"):
        det.anomaly_map(np.zeros((1, 3, 64, 64)))
    with pytest.raises(ValueError, match="window"):
        LocalFeatureDetector(window=4).fit(train.images)
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        det.anomaly_map(np.zeros((64, 64)))


# --- expert-driven patch features (chapter 4) ------------------------------------------------

from adcourse.vectors.density import GMMDetector  # noqa: E402
from adcourse.images.features import ExpertFeatureDetector, patch_features  # noqa: E402
from adcourse.images.patches import extract_patches  # noqa: E402


def test_patch_features_equal_direct_computation():
    img = np.random.default_rng(1).random((2, 23, 19))
    f = patch_features(img, size=5, stride=(3, 2))
    assert f.shape == (2, 7, 8, 3)  # (23-5)//3+1, (19-5)//2+1
    gy, gx = np.gradient(img, axis=(1, 2))
    for k, i, j in [(0, 0, 0), (1, 6, 7), (1, 3, 2)]:
        patch = extract_patches(img, 5, (3, 2))[k, i, j]
        np.testing.assert_allclose(f[k, i, j, 0], patch.mean())
        np.testing.assert_allclose(f[k, i, j, 1], patch.var(), atol=1e-15)
        rows, cols = slice(3 * i, 3 * i + 5), slice(2 * j, 2 * j + 5)
        np.testing.assert_allclose(f[k, i, j, 2], (gx[k, rows, cols] ** 2 + gy[k, rows, cols] ** 2).mean())
    with pytest.raises(ValueError, match="odd"):
        patch_features(img, size=4)
    with pytest.raises(ValueError, match="smaller than the patch size"):
        patch_features(img, size=25)


def test_expert_feature_detector(sets):
    train, test = sets
    det = ExpertFeatureDetector(patch_size=7, max_train_patches=5000).fit(train.images)
    maps = det.anomaly_map(test.images)
    assert maps.shape == test.images.shape
    np.testing.assert_array_equal(det.anomaly_score(test.images), maps.max(axis=(1, 2)))
    np.testing.assert_array_equal(clone(det).fit(train.images).anomaly_map(test.images), maps)
    assert det.density_.n_features_in_ == 3
    # any density model of chapter 2, and a strided grid
    gmm = ExpertFeatureDetector(patch_size=7, stride=2, density=GMMDetector(n_components=2, random_state=0))
    assert gmm.fit(train.images).anomaly_map(test.images[:2]).shape == (2, 64, 64)
    with pytest.raises(ValueError, match="grayscale"):
        det.fit(np.zeros((2, 3, 16, 16)))
    with pytest.raises(ValueError, match="mode"):
        ExpertFeatureDetector(mode="max").fit(train.images)


def test_expert_features_flag_a_flat_film(sets):
    train, test = sets
    det = ExpertFeatureDetector(patch_size=7).fit(train.images)
    img = train.images[:1].copy()
    img[0, 20:44, 20:44] = img[0].mean()  # flat film at the mean intensity: low variance, no edges
    inside = det.anomaly_map(img)[0, 26:38, 26:38]
    normal = det.anomaly_map(test.images[test.labels == 0])
    assert np.median(inside) > np.quantile(normal, 0.99)
