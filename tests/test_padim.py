"""Tests of the per-location Gaussian (PaDiM) detector, with a small numpy feature extractor."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import mahalanobis
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from adcourse.deep.padim import PerLocationGaussian

STRIDE = 4


class FakeExtractor:
    """Deterministic stand-in for a CNN: local statistics of 4x4 blocks, (n, 5, H/4, W/4)."""

    def embed(self, images):
        x = np.asarray(images, dtype=np.float64)
        if x.ndim == 4:
            x = x.mean(axis=1)
        n, H, W = x.shape
        h, w = H // STRIDE, W // STRIDE
        blocks = x[:, : h * STRIDE, : w * STRIDE].reshape(n, h, STRIDE, w, STRIDE)
        gx = np.abs(np.diff(x, axis=2, append=x[:, :, -1:]))
        gy = np.abs(np.diff(x, axis=1, append=x[:, -1:, :]))
        block = lambda a: a[:, : h * STRIDE, : w * STRIDE].reshape(n, h, STRIDE, w, STRIDE)  # noqa: E731
        feats = [
            blocks.mean(axis=(2, 4)),
            blocks.std(axis=(2, 4)),
            block(gx).mean(axis=(2, 4)),
            block(gy).mean(axis=(2, 4)),
            blocks.max(axis=(2, 4)),
        ]
        return np.stack(feats, axis=1)


def _textures(n, size=32, seed=0):
    rng = np.random.default_rng(seed)
    imgs = ndimage.gaussian_filter(rng.normal(size=(n, size, size)), sigma=(0, 1.5, 1.5))
    return np.clip(0.5 + 0.8 * imgs, 0, 1)


def _all_embeddings(images):
    emb = FakeExtractor().embed(images)  # (n, C, h, w)
    n, c, h, w = emb.shape
    return emb.reshape(n, c, h * w).transpose(2, 0, 1)  # (L, n, C)


@pytest.fixture(scope="module")
def train():
    return _textures(40, seed=0)


@pytest.mark.parametrize("batch_size", [1, 3, 8, 40, 100])
def test_online_statistics_equal_batch_statistics(train, batch_size):
    det = PerLocationGaussian(FakeExtractor(), eps=0.01, batch_size=batch_size).fit(train)
    x = _all_embeddings(train)
    assert det.n_train_ == 40
    np.testing.assert_allclose(det.mean_, x.mean(axis=1), rtol=0, atol=1e-10)
    cov = np.stack([np.cov(x_l, rowvar=False) for x_l in x]) + 0.01 * np.eye(x.shape[-1])
    np.testing.assert_allclose(det.cov_, cov, rtol=0, atol=1e-10)
    np.testing.assert_allclose(det.cov_inv_, np.linalg.inv(cov), rtol=1e-8, atol=1e-8)


def test_mahalanobis_matches_scipy(train):
    det = PerLocationGaussian(FakeExtractor(), eps=0.01).fit(train)
    test = _textures(3, seed=1)
    dist = det.mahalanobis(test)  # (n, h, w)
    c, h, w = det.feature_shape_
    assert dist.shape == (3, h, w)
    emb = FakeExtractor().embed(test)
    cov_inv = det.cov_inv_
    for k, (i, j) in enumerate([(0, 0), (3, 5), (7, 7), (2, 6)]):
        loc = i * w + j
        n = k % 3
        ref = mahalanobis(emb[n, :, i, j], det.mean_[loc], cov_inv[loc])
        assert dist[n, i, j] == pytest.approx(ref, rel=1e-9)


def test_accumulator_memory_does_not_grow_with_training_set():
    def nbytes(n):
        det = PerLocationGaussian(FakeExtractor(), batch_size=4).fit(_textures(n, seed=n))
        return det.mean_.nbytes + det.scatter_.nbytes + det.chol_inv_.nbytes

    assert nbytes(4) == nbytes(40)
    h = w = 32 // STRIDE
    assert nbytes(4) == 8 * (h * w * 5 + 2 * h * w * 5 * 5)


def test_partial_fit_in_two_halves_equals_fit(train):
    full = PerLocationGaussian(FakeExtractor()).fit(train)
    half = PerLocationGaussian(FakeExtractor()).partial_fit(train[:17]).partial_fit(train[17:])
    assert half.n_train_ == full.n_train_ == 40
    np.testing.assert_allclose(half.mean_, full.mean_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(half.scatter_, full.scatter_, rtol=0, atol=1e-10)
    test = _textures(2, seed=3)
    np.testing.assert_allclose(half.anomaly_map(test), full.anomaly_map(test), rtol=1e-9)
    # fit starts again from scratch
    full.fit(train[:10])
    assert full.n_train_ == 10


def test_map_shape_score_and_planted_anomaly(train):
    det = PerLocationGaussian(FakeExtractor(), eps=1e-4, sigma=2.0).fit(train)
    test = _textures(4, seed=7)
    test[1, 12:20, 16:24] = 1.0  # bright square
    maps = det.anomaly_map(test)
    assert maps.shape == test.shape
    np.testing.assert_array_equal(det.anomaly_score(test), maps.reshape(4, -1).max(axis=1))
    scores = det.anomaly_score(test)
    assert scores.argmax() == 1
    i, j = np.unravel_index(maps[1].argmax(), maps[1].shape)
    assert 10 <= i < 22 and 14 <= j < 26  # the peak is on the square
    square = np.zeros((32, 32), bool)
    square[12:20, 16:24] = True
    near = ndimage.binary_dilation(square, iterations=4)
    top = np.argsort(maps[1].ravel())[-32:]  # the 32 highest pixels (half the square's area)
    assert near.ravel()[top].all()
    assert maps[1][square].mean() > 2 * maps[1][~near].mean()
    assert maps[1][square].min() > np.percentile(maps[1][~near], 95)


def test_rgb_images_and_clone(train):
    rgb = np.repeat(train[:, None], 3, axis=1)
    det = PerLocationGaussian(FakeExtractor(), eps=0.05, sigma=1.0, batch_size=5)
    assert clone(det).get_params()["eps"] == 0.05
    maps = det.fit(rgb).anomaly_map(rgb[:2])
    assert maps.shape == (2, 32, 32)
    gray = PerLocationGaussian(FakeExtractor(), eps=0.05, sigma=1.0).fit(train).anomaly_map(train[:2])
    np.testing.assert_allclose(maps, gray, rtol=1e-9)


def test_bad_input(train):
    det = PerLocationGaussian(FakeExtractor()).fit(train)
    # one Gaussian per location: another size is refused, and the error says how to tile
    with pytest.raises(ValueError, match=r"shape of the training images.*crops of size s and score "
                                         r"tiles of size s.*tiled_anomaly_map.*32x32 tiles"):
        det.anomaly_map(_textures(2, size=48))
    with pytest.raises(ValueError, match="shape of the training images"):
        det.partial_fit(_textures(2, size=48))
    with pytest.raises(ValueError, match="eps"):
        PerLocationGaussian(FakeExtractor(), eps=-0.1).fit(train)
    with pytest.raises(ValueError, match="batch_size"):
        PerLocationGaussian(FakeExtractor(), batch_size=0).fit(train)
    with pytest.raises(TypeError, match="embed"):
        PerLocationGaussian(object()).fit(train)
    with pytest.raises(NotFittedError):
        PerLocationGaussian(FakeExtractor()).anomaly_map(train[:1])
    one = PerLocationGaussian(FakeExtractor()).partial_fit(train[:1])
    with pytest.raises(NotFittedError, match="at least 2"):
        one.anomaly_map(train[:1])
    one.partial_fit(train[1:3])  # streaming one image at a time works once there are two
    assert one.anomaly_map(train[:1]).shape == (1, 32, 32)


def test_singular_covariance_without_eps_is_a_clear_error():
    flat = np.full((5, 32, 32), 0.5)  # zero variance everywhere
    with pytest.raises(ValueError, match="larger eps"):
        PerLocationGaussian(FakeExtractor(), eps=0.0).fit(flat)
    det = PerLocationGaussian(FakeExtractor(), eps=0.01).fit(flat)
    assert np.all(det.anomaly_map(flat) == 0)


def test_auto_eps_is_relative_to_feature_scale():
    train = np.random.default_rng(0).random((12, 16, 16))
    test = np.random.default_rng(1).random((3, 16, 16))
    det = PerLocationGaussian(FakeExtractor(), sigma=0.0).fit(train)
    assert det.eps == "auto"
    variances = np.diagonal(det.scatter_, axis1=1, axis2=2) / (det.n_train_ - 1)
    assert det.eps_ == pytest.approx(0.01 * np.median(variances))
    idx = np.arange(det.cov_.shape[-1])
    np.testing.assert_allclose(det.cov_[:, idx, idx], variances + det.eps_)

    class Scaled(FakeExtractor):
        def embed(self, images):
            return 10.0 * super().embed(images)

    scaled = PerLocationGaussian(Scaled(), sigma=0.0).fit(train)
    assert scaled.eps_ == pytest.approx(100 * det.eps_)
    # the Mahalanobis distance does not see a global change of feature scale
    np.testing.assert_allclose(scaled.mahalanobis(test), det.mahalanobis(test), rtol=1e-8)
    # an absolute eps does
    fixed = PerLocationGaussian(FakeExtractor(), eps=0.01, sigma=0.0).fit(train)
    fixed_scaled = PerLocationGaussian(Scaled(), eps=0.01, sigma=0.0).fit(train)
    assert fixed.eps_ == 0.01
    assert not np.allclose(fixed_scaled.mahalanobis(test), fixed.mahalanobis(test), rtol=1e-3)
    for bad in ("big", True, -1.0):
        with pytest.raises(ValueError, match="eps must be 'auto' or a number"):
            PerLocationGaussian(FakeExtractor(), eps=bad).fit(train)


def test_streaming_factorises_once_at_first_use(train, monkeypatch):
    det = PerLocationGaussian(FakeExtractor())
    calls = []
    original = PerLocationGaussian._finalise
    monkeypatch.setattr(PerLocationGaussian, "_finalise",
                        lambda self: (calls.append(1), original(self))[1])
    for start in range(0, 40, 8):
        det.partial_fit(train[start:start + 8])
    assert calls == []  # five chunks, no factorisation yet
    assert det.eps_ > 0  # the regulariser is known already
    test = _textures(2, seed=3)
    maps = det.anomaly_map(test)
    det.anomaly_map(test)
    assert len(calls) == 1  # one factorisation, cached for the next scoring
    det.partial_fit(train[:4])  # new data make the factors stale
    det.mahalanobis(test)
    assert len(calls) == 2
    full = PerLocationGaussian(FakeExtractor()).fit(train)
    np.testing.assert_allclose(maps, full.anomaly_map(test), rtol=1e-9)


def test_tiles_score_large_images(train):
    # fitted on 32-px crops, the per-location Gaussian scores a 64 x 80 image tile by tile:
    # each tile's map is the map of that tile alone
    from adcourse.base import tiled_anomaly_map

    det = PerLocationGaussian(FakeExtractor(), sigma=0.0).fit(train)
    scene = _textures(1, size=80, seed=5)[:, :64]
    maps = tiled_anomaly_map(det, scene)
    assert maps.shape == (1, 64, 80)
    np.testing.assert_allclose(maps[:, :32, :32], det.anomaly_map(scene[:, :32, :32]))
    # (the last column of tiles, flush with the border, starts at 48 and overlaps the one at 32)
    np.testing.assert_allclose(maps[:, 32:, 64:], det.anomaly_map(scene[:, 32:, 48:])[..., 16:])
    overlap = (det.anomaly_map(scene[:, 32:, 32:64])[..., 16:] + det.anomaly_map(scene[:, 32:, 48:])[..., :16]) / 2
    np.testing.assert_allclose(maps[:, 32:, 48:64], overlap)
