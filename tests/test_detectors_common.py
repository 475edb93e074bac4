"""One shared suite that every vector detector of the course must pass.

Like scikit-learn's common estimator checks: the protocol of DESIGN.md (fit on normal
data, anomaly_score higher = more anomalous, numpy in / numpy out), clone and
get_params, determinism, an AUROC floor on a clear case, and clear errors on bad input.
"""

import importlib

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from adcourse import metrics

# (module, class, constructor arguments): every detector on vectors, with a seed if it has one
DETECTORS = [
    ("vectors.density", "GaussianDetector", {}),
    ("vectors.density", "GMMDetector", {"random_state": 0}),
    ("vectors.density", "KDEDetector", {}),
    ("vectors.density", "HistogramDetector", {}),
    ("vectors.domain", "OneClassSVMDetector", {}),
    ("vectors.domain", "SVDDDetector", {}),
    ("vectors.distance", "KNNDetector", {}),
    ("vectors.distance", "LOFDetector", {}),
    ("vectors.distance", "ClusterDetector", {"random_state": 0}),
    ("vectors.isolation", "IsolationForestDetector", {"random_state": 0}),
    ("vectors.isolation", "IsolationForestDetector", {"random_state": 0, "extended": True}),
    ("images.subspace", "PCADetector", {"n_components": 2, "score": "gaussian"}),
    ("images.subspace", "KernelPCADetector", {"n_components": 5, "random_state": 0}),
]


def _make(spec):
    module, name, kwargs = spec
    cls = getattr(importlib.import_module(f"adcourse.{module}"), name)
    return cls(**kwargs)


def _id(spec):
    module, name, kwargs = spec
    extra = ",".join(f"{k}={v}" for k, v in kwargs.items() if k != "random_state")
    return f"{name}({extra})" if extra else name


@pytest.fixture(scope="module")
def clear_case():
    """A clear 2-D case: a Gaussian blob vs points on a ring far away."""
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(200, 2))
    angle = rng.uniform(0, 2 * np.pi, 20)
    X_test = np.r_[rng.normal(size=(100, 2)), 6 * np.c_[np.cos(angle), np.sin(angle)]]
    y_test = np.r_[np.zeros(100, int), np.ones(20, int)]
    return X_train, X_test, y_test


specs = pytest.mark.parametrize("spec", DETECTORS, ids=[_id(s) for s in DETECTORS])


@specs
def test_shape_sign_and_auroc_floor(spec, clear_case):
    X_train, X_test, y_test = clear_case
    det = _make(spec)
    assert det.fit(X_train) is det
    s = det.anomaly_score(X_test)
    assert isinstance(s, np.ndarray) and s.shape == (len(X_test),) and s.dtype == np.float64
    assert np.all(np.isfinite(s))
    assert metrics.roc_auc(s, y_test) > 0.95  # higher = more anomalous
    # lists work as well as arrays (numpy in, numpy out)
    np.testing.assert_allclose(det.anomaly_score(X_test[:3].tolist()), s[:3])


@specs
def test_clone_and_determinism(spec, clear_case):
    X_train, X_test, _ = clear_case
    det = _make(spec)
    params = det.get_params()
    fresh = clone(det)
    assert fresh.get_params() == params
    s1 = det.fit(X_train).anomaly_score(X_test)
    s2 = fresh.fit(X_train).anomaly_score(X_test)
    np.testing.assert_array_equal(s1, s2)
    # fitting did not change the hyper-parameters
    assert det.get_params() == params


@specs
def test_bad_input(spec, clear_case):
    X_train, X_test, _ = clear_case
    det = _make(spec)
    with pytest.raises(NotFittedError):
        det.anomaly_score(X_test)
    with pytest.raises(ValueError, match="empty|0 samples|at least"):
        clone(det).fit(np.empty((0, 2)))
    with pytest.raises(ValueError, match="NaN"):
        clone(det).fit(np.r_[X_train, [[np.nan, 0.0]]])
    det.fit(X_train)
    with pytest.raises(ValueError, match="features"):
        det.anomaly_score(np.c_[X_test, X_test[:, :1]])
    with pytest.raises(ValueError, match="NaN"):
        det.anomaly_score(np.r_[X_test[:2], [[np.nan, 0.0]]])
    with pytest.raises(ValueError, match="2-D"):
        det.anomaly_score(X_test[0])
    with pytest.raises(TypeError):
        det.anomaly_score([["a", "b"]])


# --------------------------------------------------------------------------- #
# image detectors: location-free models score images of any size
# --------------------------------------------------------------------------- #
def _course(layers):
    from adcourse.deep.backbones import FeatureExtractor

    return FeatureExtractor("course", layers=layers, device="cpu")


# (module, class, arguments, margin): every image detector whose model does not depend on the
# position, with small settings; `margin` is how far from a crop's border its map may differ
# from the map of the whole image (the reach of the patch, receptive field and smoothing)
LOCATION_FREE = [
    ("images.patches", "PatchDetector", {"patch_size": 5}, 5),
    ("images.features", "LocalFeatureDetector", {"window": 7, "sigma": 2.0}, 16),
    ("images.features", "ExpertFeatureDetector", {"patch_size": 7}, 7),
    ("images.sparse", "SparseCodingDetector",
     {"patch_size": 7, "n_atoms": 16, "n_train_patches": 500, "n_val_patches": 500, "n_iter": 2,
      "admm_tol": 1e-9, "float32": False}, 7),
    ("deep.latent", "LatentPatchDetector", {"n_components": 8, "max_samples": 2000, "sigma": 0.0}, 40),
    ("deep.student_teacher", "StudentTeacher",
     {"teacher": "course layer1", "n_students": 2, "n_epochs": 1, "sigma": 0.0, "progress": False,
      "device": "cpu"}, 40),
]


def _make_image_detector(spec):
    module, name, kwargs, _ = spec
    kwargs = dict(kwargs)
    if kwargs.get("teacher") == "course layer1":
        kwargs["teacher"] = _course(("layer1",))
    return getattr(importlib.import_module(f"adcourse.{module}"), name)(**kwargs)


@pytest.fixture(scope="module")
def crops_and_scene():
    """64-px normal crops to train on, and one larger 192 x 192 scene of the same material."""
    from adcourse.data import make_nanofibers

    crops = make_nanofibers(n_images=6, size=64, anomaly_rate=0.0, random_state=0).images
    scene = make_nanofibers(n_images=1, size=192, anomaly_rate=0.0, random_state=1).images
    return crops, scene


@pytest.mark.parametrize("spec", LOCATION_FREE, ids=[s[1] for s in LOCATION_FREE])
def test_location_free_detectors_score_any_size(spec, crops_and_scene):
    crops, scene = crops_and_scene
    det = _make_image_detector(spec).fit(crops)
    margin = spec[3]
    whole = det.anomaly_map(scene)[0]
    # two regions of other sizes than the crops, at offsets that are multiples of 16 (the
    # deepest stride of the CNNs), scored on their own and compared with the scene's map
    for top, left, height, width in ((32, 48, 96, 128), (16, 64, 128, 80)):
        region = scene[:, top:top + height, left:left + width]
        maps = det.anomaly_map(region)
        assert maps.shape == (1, height, width) and np.all(np.isfinite(maps))
        scores = det.anomaly_score(region)
        np.testing.assert_allclose(scores, maps.max(axis=(1, 2)))
        inner = (slice(margin, height - margin), slice(margin, width - margin))
        expected = whole[top:top + height, left:left + width][inner]
        np.testing.assert_allclose(maps[0][inner], expected, rtol=1e-4, atol=1e-5 * np.abs(whole).max())


# --------------------------------------------------------------------------- #
# tiling, for detectors with one model per position
# --------------------------------------------------------------------------- #
class _TileProbe:
    """A fake fitted detector: the map of a tile is its own pixels (+ 1 per call), 20 x 30 tiles."""

    image_shape_ = (20, 30)

    def __init__(self):
        self.tiles = []

    def anomaly_map(self, tiles):
        assert tiles.shape[-2:] == self.image_shape_  # only ever called on tiles of its size
        self.tiles.append(tiles.shape)
        return np.asarray(tiles, dtype=np.float64) + len(self.tiles)


def _expected_tiling(images, rows, cols):
    """The probe's stitched map for tiles at ``rows`` x ``cols``: pixels + mean index of the covering tiles."""
    index, count = np.zeros(images.shape[1:]), np.zeros(images.shape[1:])
    for k, (r, c) in enumerate((r, c) for r in rows for c in cols):
        index[r:r + 20, c:c + 30] += k + 1
        count[r:r + 20, c:c + 30] += 1
    assert count.min() >= 1  # every pixel covered
    return images + index / count


def test_tiled_anomaly_map_stitches_and_averages():
    from adcourse.base import tiled_anomaly_map

    images = np.random.default_rng(0).uniform(size=(2, 50, 70))
    # side by side: rows start at 0, 20 and 30 (the last flush with the border), columns at 0, 30, 40
    probe = _TileProbe()
    maps = tiled_anomaly_map(probe, images)
    assert maps.shape == (2, 50, 70) and len(probe.tiles) == 9 and probe.tiles[0] == (2, 20, 30)
    np.testing.assert_allclose(maps, _expected_tiling(images, (0, 20, 30), (0, 30, 40)))
    # an explicit tile size and overlapping tiles (stride 10)
    probe = _TileProbe()
    maps = tiled_anomaly_map(probe, images, tile_shape=(20, 30), stride=10)
    np.testing.assert_allclose(maps, _expected_tiling(images, (0, 10, 20, 30), (0, 10, 20, 30, 40)))
    with pytest.raises(ValueError, match=r"at least as large as a tile \(20x30\)"):
        tiled_anomaly_map(_TileProbe(), images[:, :10])
    with pytest.raises(ValueError, match="positive"):
        tiled_anomaly_map(_TileProbe(), images, stride=0)
