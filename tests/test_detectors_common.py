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
