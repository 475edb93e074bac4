"""Tests of the latent-space detectors (chapter 5): pooled CNN features and patch features."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from adcourse import metrics
from adcourse.deep.backbones import FeatureExtractor
from adcourse.data import make_nanofibers, make_textures
from adcourse.decision import Threshold
from adcourse.vectors.density import GaussianDetector
from adcourse.vectors.distance import KNNDetector
from adcourse.deep.latent import LatentImageDetector, LatentPatchDetector

torch.set_num_threads(1)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def bricks():
    """Normal brick crops: training, validation and fresh test sets (64 px)."""
    train = make_textures("brick", n_images=16, size=64, anomaly_rate=0.0, split="train", random_state=0).images
    val = make_textures("brick", n_images=30, size=64, anomaly_rate=0.0, split="test", random_state=1).images
    fresh = make_textures("brick", n_images=40, size=64, anomaly_rate=0.0, split="test", random_state=2).images
    return train, val, fresh


@pytest.fixture(scope="module")
def other_textures():
    """Images of another kind: grass and gravel crops."""
    return np.concatenate([
        make_textures(t, n_images=10, size=64, anomaly_rate=0.0, split="test", random_state=3).images
        for t in ("grass", "gravel")
    ])


@pytest.fixture(scope="module")
def fibres():
    return make_nanofibers(n_images=20, size=64, anomaly_rate=0.0, random_state=0).images


def _pooled(images, layers):
    """Reference global average pooling, straight from the extractor."""
    maps = FeatureExtractor("course", layers=layers).extract(images)
    return np.concatenate([maps[name].astype(np.float64).mean(axis=(2, 3)) for name in layers], axis=1)


def _paste_squares(images, side, seed):
    """Bright squares pasted at random positions: the images and the exact masks."""
    rng = np.random.default_rng(seed)
    out, masks = images.copy(), np.zeros(images.shape, dtype=bool)
    H, W = images.shape[1:]
    for k in range(len(images)):
        r, c = rng.integers(4, H - side - 4), rng.integers(4, W - side - 4)
        out[k, r:r + side, c:c + side] = 1.0
        masks[k, r:r + side, c:c + side] = True
    return out, masks


class DictExtractor:
    """Numpy stand-in with ``extract`` and ``embed``: block means and stds, optional NaN."""

    def __init__(self, nan=False):
        self.nan = nan

    def embed(self, images):
        x = np.asarray(images, dtype=np.float64)
        n, H, W = x.shape
        blocks = x.reshape(n, H // 4, 4, W // 4, 4)
        feats = np.stack([blocks.mean(axis=(2, 4)), blocks.std(axis=(2, 4)), blocks.max(axis=(2, 4))], axis=1)
        if self.nan:
            feats[0, 0, 0, 0] = np.nan
        return feats

    def extract(self, images):
        return {"blocks": self.embed(images)}


# --------------------------------------------------------------------------- image level: the chain
def test_pooled_features_and_pca_match_a_direct_computation(fibres):
    train, test = fibres[:16], fibres[16:]
    det = LatentImageDetector(layers=("layer2",), n_components=5, standardize=True).fit(train)
    X, Y = _pooled(train, ("layer2",)), _pooled(test, ("layer2",))
    np.testing.assert_allclose(det.pooled_features(test), Y, rtol=1e-6, atol=1e-8)
    assert det.n_features_latent_ == 64 and det.n_components_ == 5
    # standardisation then PCA, written out with numpy: SVD of the centred standardised data
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std == 0] = 1.0
    U = (X - mean) / std
    centre = U.mean(axis=0)
    _, _, vt = np.linalg.svd(U - centre, full_matrices=False)
    ref = ((Y - mean) / std - centre) @ vt[:5].T
    got = det.features(test)
    signs = np.sign(np.sum(got * ref, axis=0))  # directions are defined up to sign
    np.testing.assert_allclose(got, ref * signs, rtol=1e-5, atol=1e-6)


def test_float_n_components_keeps_at_least_that_variance(fibres):
    train = fibres[:16]
    X = _pooled(train, ("layer2", "layer3"))
    eig = np.linalg.svd(X - X.mean(axis=0), compute_uv=False) ** 2  # standardize=False by default
    ratio = np.cumsum(eig) / eig.sum()
    for frac in (0.5, 0.8, 0.95):
        det = LatentImageDetector(n_components=frac).fit(train)
        m = det.n_components_
        assert det.features(train[:2]).shape == (2, m)
        assert det.pca_.explained_variance_ratio_.sum() >= frac
        assert ratio[m - 1] >= frac - 1e-9 and (m == 1 or ratio[m - 2] < frac)  # the smallest such m


def test_gaussian_without_pca_is_the_mahalanobis_distance_of_pooled_features():
    train = make_nanofibers(n_images=48, size=32, anomaly_rate=0.0, random_state=0).images
    test = make_nanofibers(n_images=4, size=32, anomaly_rate=0.5, random_state=1).images
    det = LatentImageDetector(layers=("layer1",), n_components=None, standardize=False,
                              detector="gaussian").fit(train)
    X, Y = _pooled(train, ("layer1",)), _pooled(test, ("layer1",))
    mu = X.mean(axis=0)
    cov = (X - mu).T @ (X - mu) / len(X) + 1e-6 * np.eye(X.shape[1])  # GaussianDetector's estimate
    ref = [mahalanobis(y, mu, np.linalg.inv(cov)) for y in Y]
    np.testing.assert_allclose(det.anomaly_score(test), ref, rtol=1e-4)
    # and the same as the chapter-2 detector fed the pooled features directly
    np.testing.assert_allclose(det.anomaly_score(test), GaussianDetector().fit(X).anomaly_score(Y), rtol=1e-6)


def test_default_detector_is_2nn_in_the_reduced_space(fibres):
    det = LatentImageDetector().fit(fibres[:16])
    assert isinstance(det.detector_, KNNDetector) and det.detector_.n_neighbors == 2
    Z, Zt = det.features(fibres[:16]), det.features(fibres[16:])
    dist = np.sqrt(((Zt[:, None, :] - Z[None, :, :]) ** 2).sum(axis=-1))
    np.testing.assert_allclose(det.anomaly_score(fibres[16:]), np.sort(dist, axis=1)[:, 1], rtol=1e-9)


# --------------------------------------------------------------------------- image level: detection
@pytest.mark.parametrize("detector", [None, "gaussian", KNNDetector(n_neighbors=1, method="mean")])
def test_other_textures_are_detected(bricks, other_textures, detector):
    train, _, fresh = bricks
    det = LatentImageDetector(detector=detector).fit(train)
    scores = np.r_[det.anomaly_score(fresh[:20]), det.anomaly_score(other_textures)]
    labels = np.r_[np.zeros(20, int), np.ones(len(other_textures), int)]
    assert metrics.roc_auc(scores, labels) > 0.9


def test_noise_and_flat_images_are_detected_among_nanofibres(fibres):
    rng = np.random.default_rng(0)
    noise = rng.uniform(size=(5, 64, 64))
    flat = np.broadcast_to(rng.uniform(0.2, 0.6, size=(5, 1, 1)), (5, 64, 64))
    det = LatentImageDetector().fit(fibres[:16])
    scores = det.anomaly_score(np.concatenate([fibres[16:], noise, flat]))
    assert metrics.roc_auc(scores, np.r_[np.zeros(4, int), np.ones(10, int)]) > 0.9


def test_thresholds_on_validation_scores_control_the_fpr(bricks, other_textures):
    train, val, fresh = bricks
    det = LatentImageDetector().fit(train)
    val_scores, fresh_scores = det.anomaly_score(val), det.anomaly_score(fresh)
    anomaly_scores = det.anomaly_score(other_textures)
    for threshold in (Threshold.three_sigma(val_scores), Threshold.bootstrap(val_scores, fpr=0.05)):
        fpr = threshold.predict(fresh_scores).mean()
        tpr = threshold.predict(anomaly_scores).mean()
        assert fpr <= 0.15, (threshold, fpr)
        assert tpr >= 0.8, (threshold, tpr)
    # a threshold set on the *training* images' own 2-NN scores is biased low: more false alarms
    naive = Threshold.from_fpr(det.anomaly_score(train), fpr=0.05)
    proper = Threshold.from_fpr(val_scores, fpr=0.05)
    assert naive.value < proper.value


# --------------------------------------------------------------------------- image level: API and errors
def test_image_detector_clone_determinism_and_detector_untouched(fibres):
    knn = KNNDetector(n_neighbors=3)
    det = LatentImageDetector(detector=knn, n_components=4).fit(fibres[:16])
    assert not hasattr(knn, "training_scores_") and det.detector_ is not knn
    twin = clone(det)
    assert twin.get_params()["n_components"] == 4 and not hasattr(twin, "detector_")
    np.testing.assert_array_equal(twin.fit(fibres[:16]).anomaly_score(fibres[16:]),
                                  det.anomaly_score(fibres[16:]))


def test_image_detector_errors(fibres):
    train = fibres[:8]
    with pytest.raises(NotFittedError):
        LatentImageDetector().anomaly_score(train)
    det = LatentImageDetector(n_components=3).fit(train)
    # any size (the pooled vector is a mean over locations), but the channels of training
    assert det.anomaly_score(make_nanofibers(n_images=2, size=48, anomaly_rate=0.0).images).shape == (2,)
    with pytest.raises(ValueError, match="channels of the training images"):
        det.anomaly_score(np.repeat(train[:2, None], 3, axis=1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        det.anomaly_score(train * 255)
    for bad in (0, -2, 1.0, 1.5, 0.0):
        with pytest.raises(ValueError, match="n_components"):
            LatentImageDetector(n_components=bad).fit(train)
    for bad in (True, "all"):
        with pytest.raises(TypeError, match="n_components"):
            LatentImageDetector(n_components=bad).fit(train)
    with pytest.raises(ValueError, match=r"n_components=8 is too large.*min\(n - 1, d\) = 7"):
        LatentImageDetector(n_components=8).fit(train)
    with pytest.raises(ValueError, match="at least 2"):
        LatentImageDetector().fit(train[:1])
    with pytest.raises(ValueError, match=r"KNNDetector on the 2 latent training vectors.*n_neighbors \+ 1 = 3"):
        LatentImageDetector(n_components=None).fit(train[:2])
    with pytest.raises(ValueError, match="detector must be one of"):
        LatentImageDetector(detector="lof").fit(train)
    with pytest.raises(TypeError, match="detector must be a vector detector"):
        LatentImageDetector(detector=42).fit(train)
    with pytest.raises(TypeError, match="standardize"):
        LatentImageDetector(standardize="yes").fit(train)
    with pytest.raises(ValueError, match="layers is only used"):
        LatentImageDetector(extractor=DictExtractor(), layers=("layer1",)).fit(train)
    with pytest.raises(TypeError, match="extract"):
        LatentImageDetector(extractor=object()).fit(train)
    with pytest.raises(ValueError, match="non-finite"):
        LatentImageDetector(extractor=DictExtractor(nan=True), n_components=None).fit(train)
    with pytest.raises(ValueError, match="unknown layer"):
        LatentImageDetector(layers=("layer9",)).fit(train)


# --------------------------------------------------------------------------- patch level
@pytest.fixture(scope="module")
def squares(fibres):
    """Nanofibre images with a pasted bright 12x12 square: (train, defective, masks, clean)."""
    train = fibres[:10]
    clean = fibres[10:]
    defective, masks = _paste_squares(clean[:6], side=12, seed=0)
    return train, defective, masks, clean[6:]


@pytest.fixture(scope="module")
def patch_det(squares):
    return LatentPatchDetector(max_samples=2000).fit(squares[0])


def test_patch_maps_locate_a_pasted_square(patch_det, squares):
    _, defective, masks, clean = squares
    maps = patch_det.anomaly_map(defective)
    assert maps.shape == (6, 64, 64)
    assert patch_det.feature_shape_ == (96, 16, 16)
    assert patch_det.n_train_samples_ == 2000
    assert metrics.pixel_roc_auc(maps, masks) > 0.8
    scores = np.r_[patch_det.anomaly_score(clean), maps.reshape(6, -1).max(axis=1)]
    assert metrics.roc_auc(scores, np.r_[np.zeros(len(clean), int), np.ones(6, int)]) > 0.9


@pytest.mark.parametrize("detector", ["gaussian", KNNDetector(n_neighbors=3)])
def test_patch_maps_with_other_detectors(squares, detector):
    train, defective, masks, _ = squares
    det = LatentPatchDetector(detector=detector, max_samples=2000, layers=("layer1",)).fit(train)
    assert metrics.pixel_roc_auc(det.anomaly_map(defective), masks) > 0.8


def test_location_scores_are_the_detector_on_each_location_vector(squares):
    """No PCA, no standardisation, all locations: a GaussianDetector on the embeddings."""
    train, defective, _, _ = squares
    ext = DictExtractor()
    det = LatentPatchDetector(extractor=ext, n_components=None, standardize=False, detector="gaussian",
                              max_samples=None, sigma=0.0).fit(train)
    emb = ext.embed(train)  # (n, 3, 16, 16)
    bank = emb.transpose(0, 2, 3, 1).reshape(-1, 3)
    assert det.n_train_samples_ == len(bank) == 10 * 16 * 16
    ref_det = GaussianDetector().fit(bank)
    test_emb = ext.embed(defective[:2])
    got = det.location_scores(defective[:2])
    for k, i, j in [(0, 0, 0), (0, 3, 11), (1, 15, 2), (1, 7, 7)]:
        assert got[k, i, j] == pytest.approx(ref_det.anomaly_score(test_emb[k, :, i, j][None])[0], rel=1e-9)
    # the map is the bilinear upsampling of those scores (sigma=0): block centres keep the value
    maps = det.anomaly_map(defective[:2])
    assert maps.shape == (2, 64, 64)
    assert maps.max() <= got.max() + 1e-9 and maps.min() >= got.min() - 1e-9


def test_patch_pca_is_fitted_on_the_subsample(patch_det, squares):
    Z = patch_det.features(squares[1][:2])
    assert Z.shape == (2, 16, 16, patch_det.n_components_)
    assert patch_det.pca_.n_samples_ == 2000
    assert patch_det.pca_.explained_variance_ratio_.sum() >= 0.95


def test_patch_determinism_subsample_streaming_and_clone(squares, patch_det):
    train, defective, _, _ = squares
    maps = patch_det.anomaly_map(defective[:2])
    # the subsample is drawn once over all training locations: the batch size does not change it
    other = LatentPatchDetector(max_samples=2000, batch_size=3).fit(train)
    assert other.n_train_samples_ == 2000  # (the CNN's float32 rounding depends on the batch)
    np.testing.assert_allclose(other.anomaly_map(defective[:2]), maps, rtol=1e-5)
    twin = clone(patch_det)
    assert not hasattr(twin, "detector_") and twin.get_params() == patch_det.get_params()
    np.testing.assert_array_equal(twin.fit(train).anomaly_map(defective[:2]), maps)
    reseeded = LatentPatchDetector(max_samples=2000, random_state=1).fit(train)
    assert not np.array_equal(reseeded.anomaly_map(defective[:2]), maps)


def test_patch_detector_errors(squares, patch_det):
    train = squares[0]
    with pytest.raises(NotFittedError):
        LatentPatchDetector().anomaly_map(train)
    assert patch_det.anomaly_map(make_nanofibers(n_images=1, size=48, anomaly_rate=0.0).images).shape == (1, 48, 48)
    with pytest.raises(ValueError, match="shaped like the training images"):
        patch_det.anomaly_map(np.repeat(train[:1, None], 3, axis=1))
    with pytest.raises(ValueError, match="max_samples"):
        LatentPatchDetector(max_samples=1).fit(train)
    with pytest.raises(ValueError, match="sigma"):
        LatentPatchDetector(sigma=-1.0).fit(train)
    with pytest.raises(ValueError, match="batch_size"):
        LatentPatchDetector(batch_size=0).fit(train)
    with pytest.raises(ValueError, match="n_components"):
        LatentPatchDetector(n_components=2.0).fit(train)
    with pytest.raises(ValueError, match="too large"):
        LatentPatchDetector(extractor=DictExtractor(), n_components=4).fit(train)
    with pytest.raises(ValueError, match="non-finite"):
        LatentPatchDetector(extractor=DictExtractor(nan=True)).fit(train)
    with pytest.raises(TypeError, match="embed"):
        LatentPatchDetector(extractor=object()).fit(train)
    with pytest.raises(ValueError, match=r"KNNDetector.*needs at least n_neighbors \+ 1 = 21"):
        LatentPatchDetector(detector=KNNDetector(n_neighbors=20), max_samples=20).fit(train)
