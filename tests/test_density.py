"""Tests of the detector protocol and GaussianDetector against scipy / scikit-learn."""

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.covariance import EmpiricalCovariance

from adcourse import metrics
from adcourse.density import GaussianDetector


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 0.5]])
    X = rng.multivariate_normal([1, -1, 0], cov, size=400)
    X_test = rng.multivariate_normal([1, -1, 0], cov, size=50)
    return X, X_test


def test_matches_sklearn_and_scipy(data):
    X, X_test = data
    det = GaussianDetector(reg=0.0).fit(X)
    emp = EmpiricalCovariance().fit(X)
    np.testing.assert_allclose(det.covariance_, emp.covariance_, rtol=1e-10)
    np.testing.assert_allclose(det.anomaly_score(X_test) ** 2, emp.mahalanobis(X_test), rtol=1e-9)
    nll = GaussianDetector(score="nll", reg=0.0).fit(X).anomaly_score(X_test)
    ref = -stats.multivariate_normal(det.mean_, det.covariance_).logpdf(X_test)
    np.testing.assert_allclose(nll, ref, rtol=1e-10)
    np.testing.assert_allclose(det.mahalanobis(X_test), det.anomaly_score(X_test))


def test_sign_shape_and_auc(data):
    X, X_test = data
    det = GaussianDetector().fit(X)
    outliers = X_test + np.array([0, 0, 4.0])
    s = det.anomaly_score(np.r_[X_test, outliers])
    assert s.shape == (100,)
    assert metrics.roc_auc(s, np.r_[np.zeros(50), np.ones(50)]) > 0.99  # higher = more anomalous


def test_mahalanobis_is_chi2_under_the_model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20000, 4))
    d2 = GaussianDetector().fit(X[:10000]).anomaly_score(X[10000:]) ** 2
    assert stats.kstest(d2, stats.chi2(df=4).cdf).pvalue > 1e-3


def test_clone_and_params(data):
    X, _ = data
    det = GaussianDetector(score="nll", reg=1e-3)
    c = clone(det)
    assert c.get_params() == {"score": "nll", "reg": 1e-3}
    assert not hasattr(c, "mean_")
    np.testing.assert_array_equal(det.fit(X).anomaly_score(X), c.fit(X).anomaly_score(X))


def test_regularisation_handles_collinear_features():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(100, 1))
    X = np.hstack([a, 2 * a])  # singular covariance
    with pytest.raises(ValueError, match="singular"):
        GaussianDetector(reg=0.0).fit(X)
    s = GaussianDetector(reg=1e-3).fit(X).anomaly_score(X)
    assert np.all(np.isfinite(s))


def test_bad_input(data):
    X, _ = data
    det = GaussianDetector().fit(X)
    with pytest.raises(ValueError, match="fitted on 3 features"):
        det.anomaly_score(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        det.anomaly_score(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        det.anomaly_score(X[0])
    with pytest.raises(ValueError, match="at least 2"):
        GaussianDetector().fit(X[:1])
    with pytest.raises(ValueError, match="score must be"):
        GaussianDetector(score="bogus").fit(X)
    with pytest.raises(TypeError, match="numbers"):
        GaussianDetector().fit([["a", "b"]])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianDetector().anomaly_score(X)
