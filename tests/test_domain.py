"""Domain-based detectors: one-class SVM and SVDD (adcourse.vectors.domain)."""

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.svm import OneClassSVM

from adcourse import metrics
from adcourse.data import make_shapes_2d
from adcourse.vectors.domain import OneClassSVMDetector, SVDDDetector

KINDS = ("blobs", "banana", "ring", "mixture")


@pytest.fixture(scope="module", params=KINDS)
def shapes(request):
    X_train, _ = make_shapes_2d(request.param, n_normal=200, n_anomalous=0, random_state=0)
    X_test, y_test = make_shapes_2d(request.param, n_normal=300, n_anomalous=100, random_state=1)
    return X_train, X_test, y_test


# --------------------------------------------------------------------------- one-class SVM


def test_ocsvm_score_is_minus_sklearn_decision_function(shapes):
    X_train, X_test, _ = shapes
    det = OneClassSVMDetector(nu=0.1).fit(X_train)
    ref = OneClassSVM(nu=0.1, gamma="scale").fit(X_train)
    np.testing.assert_allclose(det.anomaly_score(X_test), -ref.decision_function(X_test))
    assert det.n_support_ == ref.support_.size


@pytest.mark.parametrize("nu", [0.05, 0.1, 0.3])
def test_ocsvm_nu_property(shapes, nu):
    """nu bounds the training outlier fraction from above and the SV fraction from below."""
    X_train, _, _ = shapes
    n = len(X_train)
    det = OneClassSVMDetector(nu=nu).fit(X_train)
    assert det.training_outlier_fraction_ <= nu
    # at most floor(nu n) coefficients sit at libsvm's upper bound 1 (sum of them = nu n)
    assert det.n_support_ >= np.floor(nu * n)
    np.testing.assert_allclose(det.estimator_.dual_coef_.sum(), nu * n, rtol=1e-9)


def test_ocsvm_larger_nu_detects_more(shapes):
    X_train, X_test, y_test = shapes
    normal = X_test[y_test == 0]
    fpr = [np.mean(OneClassSVMDetector(nu=nu).fit(X_train).anomaly_score(normal) > 0)
           for nu in (0.02, 0.1, 0.3)]
    assert fpr[0] < fpr[1] < fpr[2]


def test_ocsvm_bad_hyperparameters():
    X = np.random.default_rng(0).normal(size=(50, 2))
    for kwargs, match in [({"nu": 0}, "nu"), ({"nu": 1.5}, "nu"), ({"kernel": "cubic"}, "kernel"),
                          ({"gamma": -1.0}, "gamma"), ({"gamma": "wide"}, "gamma")]:
        with pytest.raises(ValueError, match=match):
            OneClassSVMDetector(**kwargs).fit(X)


# --------------------------------------------------------------------------- SVDD: the solver


def _dual_objective(alpha, K):
    """The SVDD dual, to be maximised."""
    return alpha @ np.diag(K) - alpha @ K @ alpha


def _check_kkt(det, X, tol):
    """Constraints and KKT conditions of the dual solution, read off the public attributes."""
    alpha, C = det.alpha_, det.C_
    np.testing.assert_allclose(alpha.sum(), 1.0, atol=1e-10)
    assert np.all(alpha >= 0) and np.all(alpha <= C)
    # the training score is d_i^2 - R^2
    s = det.anomaly_score(X[det.sample_indices_])
    inside, outside = alpha == 0, alpha == C
    free = ~inside & ~outside
    assert np.all(s[inside] <= tol)  # alpha = 0: inside the sphere
    assert np.all(s[outside] >= -tol)  # alpha = C: outside
    assert np.all(np.abs(s[free]) <= tol)  # 0 < alpha < C: on the sphere
    assert free.sum() >= 1
    return alpha, s


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_svdd_dual_constraints_and_kkt(shapes, kernel):
    X_train, _, _ = shapes
    det = SVDDDetector(nu=0.1, kernel=kernel).fit(X_train)
    _check_kkt(det, X_train, tol=det.tol)
    assert np.array_equal(det.support_, np.flatnonzero(det.alpha_ > 0))


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_svdd_smo_matches_a_generic_qp_solver(kernel):
    """Our SMO reaches the optimum SciPy's SLSQP finds (small n: SLSQP is slow)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2)) * [1.0, 0.5]
    det = SVDDDetector(nu=0.2, kernel=kernel, tol=1e-9).fit(X)
    K = det._kernel(X, X)
    n, C = len(X), det.C_
    res = minimize(
        lambda a: -_dual_objective(a, K),
        np.full(n, 1.0 / n),
        jac=lambda a: -(np.diag(K) - 2 * K @ a),
        method="SLSQP",
        bounds=[(0, C)] * n,
        constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1, "jac": lambda a: np.ones(n)}],
        options={"maxiter": 1000, "ftol": 1e-10},
    )
    assert res.success
    ours, theirs = _dual_objective(det.alpha_, K), _dual_objective(res.x, K)
    assert ours >= theirs - 1e-9 * abs(theirs)
    np.testing.assert_allclose(det.alpha_, res.x, atol=1e-5)


def test_svdd_training_outlier_fraction_bounded_by_nu(shapes):
    """Exact on the training data: alpha_i = C = 1/(nu n) for every outlier and sum alpha = 1,
    so at most nu n outliers. The only slack is the solver tolerance: samples on the sphere
    have |d^2 - R^2| <= tol, so we count outliers as score > tol (no binomial term: nothing
    random is being estimated here; on *fresh* data the FPR is a different, noisier matter)."""
    X_train, _, _ = shapes
    n = len(X_train)
    for nu in (0.05, 0.1, 0.2):
        det = SVDDDetector(nu=nu).fit(X_train)
        assert np.sum(det.alpha_ == det.C_) <= nu * n + 1e-9
        frac = np.mean(det.anomaly_score(X_train) > det.tol)
        assert frac == det.training_outlier_fraction_ <= nu
        # and nu is also a lower bound on the fraction of support vectors
        assert det.support_.size >= np.floor(nu * n)


def test_svdd_rbf_ranks_like_ocsvm(shapes):
    """With K(x, x) = 1 the SVDD dual is the one-class SVM dual (C = 1/(nu n))."""
    X_train, X_test, y_test = shapes
    nu = 0.1
    svdd = SVDDDetector(nu=nu, kernel="rbf", gamma="scale").fit(X_train)
    ocsvm = OneClassSVMDetector(nu=nu, kernel="rbf", gamma="scale", tol=1e-6).fit(X_train)
    s1, s2 = svdd.anomaly_score(X_test), ocsvm.anomaly_score(X_test)
    assert spearmanr(s1, s2)[0] >= 0.99
    assert set(svdd.support_) == set(ocsvm.support_)
    assert abs(metrics.roc_auc(s1, y_test) - metrics.roc_auc(s2, y_test)) < 0.01
    # same boundary: the same test samples fall outside
    assert np.mean((s1 > 0) != (s2 > 0)) <= 0.01


def test_svdd_c_overrides_nu():
    X, _ = make_shapes_2d("blobs", 100, 0, random_state=0)
    a = SVDDDetector(C=1 / (0.2 * 100), nu=0.9).fit(X)
    b = SVDDDetector(nu=0.2).fit(X)
    np.testing.assert_allclose(a.alpha_, b.alpha_)


# --------------------------------------------------------------------------- SVDD: linear kernel


def _circle(centre, radius, n):
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.asarray(centre) + radius * np.c_[np.cos(angle), np.sin(angle)]


def _brute_force_meb(X):
    """Minimum enclosing ball in 2-D: the smallest circle through 2 or 3 points enclosing all."""
    best = (np.inf, None)
    candidates = []
    for i, j in itertools.combinations(range(len(X)), 2):
        candidates.append(((X[i] + X[j]) / 2, np.linalg.norm(X[i] - X[j]) / 2))
    for i, j, k in itertools.combinations(range(len(X)), 3):
        # circumcentre c: |c - a|^2 = |c - b|^2 = |c - d|^2, two linear equations
        a, b, d = X[i], X[j], X[k]
        A = 2 * np.array([b - a, d - a])
        if abs(np.linalg.det(A)) < 1e-12:
            continue
        c = np.linalg.solve(A, [b @ b - a @ a, d @ d - a @ a])
        candidates.append((c, np.linalg.norm(c - a)))
    for c, r in candidates:
        if r < best[0] and np.all(np.linalg.norm(X - c, axis=1) <= r + 1e-9):
            best = (r, c)
    return best


@pytest.mark.parametrize(
    "X, radius, centre",
    [
        # points on a circle, plus some inside it
        (np.r_[_circle([1.0, 2.0], 3.0, 12), [[1.0, 2.0], [2.0, 2.5], [0.0, 1.0]]],
         3.0, [1.0, 2.0]),
        # obtuse triangle: half the longest side, centred on it
        (np.array([[0.0, 0.0], [4.0, 0.0], [1.0, 0.5]]), 2.0, [2.0, 0.0]),
        # equilateral triangle of side sqrt(3): circumradius 1, centre the origin
        (_circle([0.0, 0.0], 1.0, 3), 1.0, [0.0, 0.0]),
    ],
    ids=["circle", "obtuse-triangle", "equilateral-triangle"],
)
def test_svdd_linear_large_c_is_minimum_enclosing_ball(X, radius, centre):
    det = SVDDDetector(C=1.0, kernel="linear", tol=1e-10).fit(X)
    np.testing.assert_allclose(det.radius_, radius, atol=1e-6)
    np.testing.assert_allclose(det.center_, centre, atol=1e-6)
    assert np.all(det.anomaly_score(X) <= 1e-8)  # every point inside the ball


def test_svdd_linear_matches_brute_force_meb():
    X = np.random.default_rng(7).normal(size=(15, 2)) * [2.0, 1.0]
    r, c = _brute_force_meb(X)
    det = SVDDDetector(C=10.0, kernel="linear", tol=1e-10).fit(X)
    np.testing.assert_allclose(det.radius_, r, rtol=1e-6)
    np.testing.assert_allclose(det.center_, c, atol=1e-5)
    # the score of a point is |x - a|^2 - R^2 in input space
    x = np.array([[5.0, -1.0]])
    np.testing.assert_allclose(det.anomaly_score(x), [np.sum((x - c) ** 2) - r**2], rtol=1e-5)


# --------------------------------------------------------------------------- SVDD: practicalities


def test_svdd_subsamples_with_random_state():
    X, _ = make_shapes_2d("banana", 600, 0, random_state=0)
    a = SVDDDetector(max_samples=150, random_state=1).fit(X)
    b = clone(a).fit(X)
    c = SVDDDetector(max_samples=150, random_state=2).fit(X)
    assert a.alpha_.shape == (150,) and a.sample_indices_.shape == (150,)
    np.testing.assert_array_equal(a.anomaly_score(X[:50]), b.anomaly_score(X[:50]))
    assert not np.array_equal(a.sample_indices_, c.sample_indices_)
    # support_ indexes the rows of X that was passed to fit
    np.testing.assert_array_equal(X[a.support_], a.support_vectors_)
    assert np.isclose(a.C_, 1 / (0.1 * 150))


def test_svdd_separates_anomalies(shapes):
    X_train, X_test, y_test = shapes
    assert metrics.roc_auc(SVDDDetector().fit(X_train).anomaly_score(X_test), y_test) > 0.8


def test_svdd_bad_hyperparameters():
    X = np.random.default_rng(0).normal(size=(50, 2))
    for kwargs, match in [
        ({"C": 0.01}, "at least 1/n"),  # 0.01 * 50 < 1: infeasible
        ({"C": -1.0}, "C must"),
        ({"nu": 0.0}, "nu"),
        ({"kernel": "poly"}, "kernel"),
        ({"gamma": 0}, "gamma"),
        ({"max_samples": 1}, "max_samples"),
        ({"tol": 0}, "tol"),
    ]:
        with pytest.raises(ValueError, match=match):
            SVDDDetector(**kwargs).fit(X)


def test_svdd_warns_when_not_converged():
    X, _ = make_shapes_2d("ring", 200, 0, random_state=0)
    with pytest.warns(RuntimeWarning, match="max_iter"):
        SVDDDetector(max_iter=3).fit(X)


def test_svdd_duplicate_points_do_not_break_the_solver():
    X = np.repeat(np.random.default_rng(0).normal(size=(20, 2)), 5, axis=0)
    det = SVDDDetector(nu=0.1).fit(X)
    _check_kkt(det, X, tol=det.tol)
