"""Tests of the density-based detectors (Gaussian, GMM with our EM, KDE, histograms)."""

import warnings

import numpy as np
import pytest
from scipy import ndimage, special, stats
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.covariance import EmpiricalCovariance
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.neighbors import KernelDensity

from adcourse import data as addata
from adcourse import metrics
from adcourse.vectors.density import (
    GaussianDetector,
    GMMDetector,
    HistogramDetector,
    KDEDetector,
    _kmeans_plusplus,
)


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


# --------------------------------------------------------------------------- #
# GMMDetector: our EM against scikit-learn's GaussianMixture
# --------------------------------------------------------------------------- #
def _sklearn_from_our_theta0(det, X, **kwargs):
    """scikit-learn's GaussianMixture started from our initial parameters theta_0."""
    weights, means, covariances = det.history_[0]
    return GaussianMixture(
        n_components=det.n_components,
        covariance_type="full",
        reg_covar=det.covariance_reg,
        tol=det.tol,
        max_iter=det.max_iter,
        weights_init=weights,
        means_init=means,
        precisions_init=np.linalg.inv(covariances),
        **kwargs,
    ).fit(X)


@pytest.mark.parametrize(
    "dataset, n_components",
    [("banana", 3), ("ring", 4), ("breast_cancer", 2)],
)
def test_gmm_parity_with_sklearn_from_the_same_init(dataset, n_components):
    if dataset == "breast_cancer":
        X = addata.load_breast_cancer_oneclass(random_state=0)[0]  # 30-D
    else:
        X, _ = addata.make_shapes_2d(dataset, 400, 0, random_state=1)
    det = GMMDetector(n_components, tol=1e-6, max_iter=500, history=True, random_state=0).fit(X)
    assert det.converged_ and det.n_iter_ > 1
    sk = _sklearn_from_our_theta0(det, X)
    assert sk.n_iter_ == det.n_iter_
    # the final mean log-likelihood, to 1e-6 relative (it agrees to round-off)
    assert abs(det.lower_bound_ - sk.score(X)) <= 1e-6 * abs(sk.score(X))
    np.testing.assert_allclose(det.weights_, sk.weights_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(det.means_, sk.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(det.covariances_, sk.covariances_, rtol=1e-6, atol=1e-8)
    # anomaly score = minus scikit-learn's score_samples (sign flipped), gamma = predict_proba
    X_new = X[:50] + 1.0
    np.testing.assert_allclose(det.anomaly_score(X_new), -sk.score_samples(X_new), rtol=1e-8)
    np.testing.assert_allclose(det.responsibilities(X_new), sk.predict_proba(X_new), atol=1e-8)


def test_gmm_log_likelihood_is_non_decreasing_and_recomputes():
    X, _ = addata.make_shapes_2d("banana", 300, 0, random_state=0)
    det = GMMDetector(4, history=True, random_state=3).fit(X)
    ll = np.asarray(det.log_likelihood_history_)
    assert len(ll) == len(det.history_) == det.n_iter_ + 1
    assert ll[-1] == det.lower_bound_
    assert np.all(np.diff(ll) >= -1e-12), np.diff(ll).min()  # EM never decreases it
    assert ll[-1] - ll[0] > 0.01  # and EM did improve on theta_0
    # each recorded value is the mean log-likelihood of the recorded parameters (scipy)
    for t in (0, len(ll) // 2, len(ll) - 1):
        weights, means, covs = det.history_[t]
        log_joint = np.column_stack(
            [np.log(w) + stats.multivariate_normal(m, c).logpdf(X) for w, m, c in zip(weights, means, covs)]
        )
        assert logsumexp(log_joint, axis=1).mean() == pytest.approx(ll[t], rel=1e-10)
    # final parameters: anomaly score = -log sum_k pi_k N(x | mu_k, Sigma_k)
    np.testing.assert_allclose(-det.anomaly_score(X).mean(), det.lower_bound_, rtol=1e-10)


def test_gmm_theta0_is_one_m_step_from_hard_assignment():
    X, _ = addata.make_shapes_2d("blobs", 300, 0, random_state=0)
    means0 = np.array([[-2.0, -2.0], [2.0, 2.0], [2.0, -2.0]])
    det = GMMDetector(3, init=means0, max_iter=0, history=True).fit(X)
    nearest = ((X[:, None, :] - means0[None]) ** 2).sum(-1).argmin(1)
    for k in range(3):
        members = X[nearest == k]
        assert det.weights_[k] == pytest.approx(len(members) / len(X))
        np.testing.assert_allclose(det.means_[k], members.mean(0))
        np.testing.assert_allclose(det.covariances_[k], np.cov(members.T, bias=True) + 1e-6 * np.eye(2))
    assert det.n_iter_ == 0 and not det.converged_ and len(det.history_) == 1


def test_gmm_n_init_keeps_the_best_run():
    X, _ = addata.make_shapes_2d("ring", 300, 0, random_state=0)
    finals = []

    class Recording(GMMDetector):
        def _run_em(self, X, initial_means):
            run = super()._run_em(X, initial_means)
            finals.append(run["log_likelihoods"][-1])
            return run

    det = Recording(4, n_init=4, tol=1e-3, random_state=0).fit(X)
    assert len(finals) == 4 and len(set(np.round(finals, 6))) == 4  # the runs differ
    assert det.lower_bound_ == max(finals) > finals[0]  # here the best is not the first
    # the first of the n_init runs is the n_init=1 run with the same seed
    single = GMMDetector(4, n_init=1, tol=1e-3, random_state=0).fit(X)
    assert single.lower_bound_ == finals[0] < det.lower_bound_


def test_kmeans_plusplus_is_deterministic_and_spreads_the_seeds():
    X, _ = addata.make_shapes_2d("blobs", 300, 0, random_state=0)
    a = _kmeans_plusplus(X, 3, np.random.default_rng(7))
    b = _kmeans_plusplus(X, 3, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _kmeans_plusplus(X, 3, np.random.default_rng(8)))
    assert all((X == c).all(1).any() for c in a)  # seeds are training samples
    # D^2 sampling puts one seed in each of the three far-apart blobs (almost always)
    blob_centres = np.array([[-2.5, -2.0], [2.0, 2.5], [2.5, -2.0]])
    hits = 0
    for seed in range(20):
        seeds = _kmeans_plusplus(X, 3, np.random.default_rng(seed))
        blobs = ((seeds[:, None] - blob_centres[None]) ** 2).sum(-1).argmin(1)
        hits += len(set(blobs)) == 3
    assert hits >= 18
    # the detector: same seed, identical parameters; another seed, another start
    fit = lambda s: GMMDetector(3, random_state=s, history=True).fit(X)  # noqa: E731
    np.testing.assert_array_equal(fit(1).means_, fit(1).means_)
    X_ring, _ = addata.make_shapes_2d("ring", 300, 0, random_state=0)
    theta0 = lambda s: GMMDetector(4, max_iter=0, random_state=s, history=True).fit(X_ring).history_[0]  # noqa: E731
    assert not np.allclose(theta0(1)[1], theta0(2)[1])


def test_gmm_responsibilities():
    X, _ = addata.make_shapes_2d("blobs", 300, 0, random_state=0)
    det = GMMDetector(3, random_state=0).fit(X)
    gamma = det.responsibilities(np.r_[X, [[30.0, -30.0]]])  # far away: no underflow to 0/0
    assert gamma.shape == (301, 3) and np.all(np.isfinite(gamma)) and np.all(gamma >= 0)
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0, rtol=1e-12)
    # the blobs are separated: memberships are nearly hard, with weights pi_k = mean gamma
    assert np.mean(gamma[:300].max(1) > 0.99) > 0.95
    np.testing.assert_allclose(gamma[:300].mean(0), det.weights_, atol=1e-3)
    with pytest.raises(ValueError, match="fitted on 2 features"):
        det.responsibilities(np.zeros((2, 3)))


def test_gmm_beats_a_single_gaussian_on_clusters():
    X_train, _ = addata.make_shapes_2d("blobs", 300, 0, random_state=0)
    X_test, y_test = addata.make_shapes_2d("blobs", 300, 100, random_state=10)
    gauss = metrics.roc_auc(GaussianDetector().fit(X_train).anomaly_score(X_test), y_test)
    gmm = metrics.roc_auc(GMMDetector(3, random_state=0).fit(X_train).anomaly_score(X_test), y_test)
    assert gmm > 0.93 and gmm > gauss + 0.15, (gmm, gauss)


def test_gmm_regularisation_handles_singular_data():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(200, 1))
    X = np.hstack([a, 2 * a])  # every component's covariance is singular
    with pytest.raises(ValueError, match="singular.*covariance_reg"):
        GMMDetector(2, covariance_reg=0.0, random_state=0).fit(X)
    s = GMMDetector(2, covariance_reg=1e-6, random_state=0).fit(X).anomaly_score(np.r_[X, [[0.0, 1.0]]])
    assert np.all(np.isfinite(s)) and s[-1] > s[:-1].max()  # off the line: most anomalous
    # repeated samples: a component can collapse on one point, the regulariser keeps it finite
    X_rep = np.r_[np.zeros((50, 2)), rng.normal(size=(50, 2))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        det = GMMDetector(2, random_state=0).fit(X_rep)
    assert np.all(np.isfinite(det.anomaly_score(X_rep)))


def test_gmm_hyper_parameter_errors():
    X = np.random.default_rng(0).normal(size=(4, 2))
    with pytest.raises(ValueError, match="n_components=5 exceeds the number of training samples"):
        GMMDetector(5).fit(X)
    for bad in ({"n_components": 0}, {"n_components": 2.5}, {"max_iter": -1}, {"n_init": 0},
                {"tol": -1.0}, {"covariance_reg": -1e-3}, {"init": "kmeans"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            GMMDetector(**{"n_components": 2, **bad}).fit(X)
    with pytest.raises(ValueError, match=r"init must hold n_components=2 means of shape \(2, 2\)"):
        GMMDetector(2, init=np.zeros((3, 2))).fit(X)
    with pytest.raises(ValueError, match="init has 3 features"):
        GMMDetector(2, init=np.zeros((2, 3))).fit(X)


def test_gmm_warns_when_max_iter_is_hit():
    X, _ = addata.make_shapes_2d("banana", 300, 0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        det = GMMDetector(4, max_iter=3, random_state=0).fit(X)
    assert not det.converged_ and det.n_iter_ == 3


# --------------------------------------------------------------------------- #
# KDEDetector
# --------------------------------------------------------------------------- #
@pytest.fixture
def kde_data():
    rng = np.random.default_rng(0)
    X = rng.normal([1.0, 2.0, -1.0], [3.0, 0.1, 1.0], size=(300, 3))
    X_test = rng.normal([1.0, 2.0, -1.0], [6.0, 0.3, 2.0], size=(60, 3))
    return X, X_test


KERNELS = ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"]


@pytest.mark.parametrize("kernel", KERNELS)
def test_kde_equals_minus_kernel_density(kde_data, kernel):
    # near the data, where scikit-learn's tree is exact, every kernel (and its normaliser
    # in d dimensions) agrees with KernelDensity.score_samples, sign flipped
    X, _ = kde_data
    rng = np.random.default_rng(1)
    m, s = X.mean(0), X.std(0)
    X_test = m + 0.5 * s * rng.normal(size=(60, 3))
    det = KDEDetector(bandwidth=0.8, kernel=kernel).fit(X)
    kd = KernelDensity(bandwidth=0.8, kernel=kernel).fit((X - m) / s)
    ref = -kd.score_samples((X_test - m) / s) + np.log(s).sum()
    assert np.all(np.isfinite(ref))
    np.testing.assert_allclose(det.anomaly_score(X_test), ref, rtol=1e-10)
    # on standardised data the Jacobian is 1: exactly -KernelDensity.score_samples
    Z, Z_test = (X - m) / s, (X_test - m) / s
    Z = (Z - Z.mean(0)) / Z.std(0)
    ref = -KernelDensity(bandwidth=0.8, kernel=kernel).fit(Z).score_samples(Z_test)
    ours = KDEDetector(bandwidth=0.8, kernel=kernel).fit(Z).anomaly_score(Z_test)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def _kde_reference(Z_test, Z, h, kernel="gaussian"):
    """log phi_z by brute force: log-sum-exp over every kernel (scipy's logsumexp)."""
    n, d = Z.shape
    u = np.sqrt(((Z_test[:, None] - Z[None]) ** 2).sum(-1)) / h
    if kernel == "gaussian":
        log_k, log_c = -0.5 * u**2, d / 2 * np.log(2 * np.pi)
    else:  # tophat: 1 inside the unit ball, whose volume is pi^(d/2) / Gamma(d/2 + 1)
        with np.errstate(divide="ignore"):
            log_k = np.log((u < 1).astype(float))
        log_c = d / 2 * np.log(np.pi) - special.gammaln(d / 2 + 1)
    return logsumexp(log_k, axis=1) - np.log(n) - d * np.log(h) - log_c


def test_kde_gaussian_formula_and_units(kde_data):
    X, X_test = kde_data
    det = KDEDetector(bandwidth=0.5).fit(X)
    h, m, s = 0.5, X.mean(0), X.std(0)
    log_phi = _kde_reference((X_test - m) / s, (X - m) / s, h)
    # the sum is exact (every kernel, in the log domain), also far from the data
    np.testing.assert_allclose(det.anomaly_score(X_test), -(log_phi - np.log(s).sum()), rtol=1e-12)
    # changing the unit of a feature shifts every score by the log of the factor (same ranking)
    X2, X2_test = X * [1000.0, 1.0, 1.0], X_test * [1000.0, 1.0, 1.0]
    np.testing.assert_allclose(
        KDEDetector(bandwidth=0.5).fit(X2).anomaly_score(X2_test),
        det.anomaly_score(X_test) + np.log(1000.0),
        rtol=1e-9,
    )


@pytest.fixture(scope="module")
def images_784():
    """28 x 28 images flattened (784 features): smooth random fields; anomalies carry extra noise."""
    rng = np.random.default_rng(0)

    def fields(n):
        return ndimage.gaussian_filter(rng.normal(size=(n, 28, 28)), (0, 2, 2)).reshape(n, 784)

    X = fields(200)
    X_test = np.r_[fields(30), fields(30) + 0.3 * rng.normal(size=(30, 784))]
    return X, X_test, np.r_[np.zeros(30, int), np.ones(30, int)]


def test_kde_in_784_dimensions_does_not_underflow(images_784):
    # every kernel value is below the smallest float here (exp(-hundreds)): only the
    # log-sum-exp keeps the scores apart (the old code gave one constant score, AUROC 0.5)
    X, X_test, y_test = images_784
    det = KDEDetector().fit(X)
    s = det.anomaly_score(X_test)
    assert np.all(np.isfinite(s)) and len(np.unique(s)) == len(s)
    assert metrics.roc_auc(s, y_test) > 0.99
    # the scores are -log phi, checked against scipy's Gaussian density, kernel by kernel
    h, d = det.bandwidth_, X.shape[1]
    Z, Z_test = (X - det.mean_) / det.scale_, (X_test[::6] - det.mean_) / det.scale_
    kernel = stats.multivariate_normal(np.zeros(d), stats.Covariance.from_diagonal(np.full(d, h * h)))
    log_kernels = kernel.logpdf(Z_test[:, None] - Z[None])  # (m, n): log N(z | z_i, h^2 I)
    assert log_kernels.max() < np.log(np.finfo(float).tiny)  # each kernel alone underflows
    log_phi = logsumexp(log_kernels, axis=1) - np.log(len(Z))
    np.testing.assert_allclose(s[::6], -(log_phi - np.log(det.scale_).sum()), rtol=1e-10)


def test_kde_bandwidth_rules_in_784_dimensions(images_784):
    X, X_test, y_test = images_784
    n, d = X.shape
    # Scott and Silverman tend to 1 (standardised units) as d grows
    scott, silverman = (KDEDetector(rule).fit(X).bandwidth_ for rule in ("scott", "silverman"))
    assert 0.98 < silverman < scott < 1 and scott == pytest.approx(n ** (-1 / (d + 4)))
    # cross-validation on normal data finds an interior optimum of the held-out likelihood,
    # and the chosen bandwidth still separates the anomalies
    det = KDEDetector("cv").fit(X)
    best = int(np.argmax(det.cv_log_likelihood_))
    assert 0 < best < 20 and np.all(np.isfinite(det.cv_log_likelihood_))
    assert metrics.roc_auc(det.anomaly_score(X_test), y_test) > 0.99


def test_kde_scott_and_silverman(kde_data):
    X, _ = kde_data
    n, d = X.shape
    scott = KDEDetector("scott").fit(X).bandwidth_
    assert scott == pytest.approx(n ** (-1 / (d + 4)), rel=1e-12)
    silverman = KDEDetector("silverman").fit(X).bandwidth_
    assert silverman == pytest.approx((n * (d + 2) / 4) ** (-1 / (d + 4)), rel=1e-12)
    # the same factors as scikit-learn's rules on the standardised data
    Z = (X - X.mean(0)) / X.std(0)
    assert scott == pytest.approx(KernelDensity(bandwidth="scott").fit(Z).bandwidth_, rel=1e-12)
    assert silverman == pytest.approx(KernelDensity(bandwidth="silverman").fit(Z).bandwidth_, rel=1e-12)
    # a rule is the same as passing its value
    np.testing.assert_allclose(
        KDEDetector("silverman").fit(X).anomaly_score(X), KDEDetector(silverman).fit(X).anomaly_score(X)
    )


def test_kde_cv_picks_the_held_out_best_from_the_grid(kde_data):
    X, _ = kde_data
    X = X[:150]
    det = KDEDetector("cv").fit(X)
    grid = det.cv_bandwidths_
    assert len(grid) == 21 and det.bandwidth_ in grid
    np.testing.assert_allclose(grid[10], KDEDetector("scott").fit(X).bandwidth_)
    best = int(np.argmax(det.cv_log_likelihood_))
    assert det.bandwidth_ == grid[best] and 0 < best < 20  # an interior optimum on Gaussian data
    # a grid value's score is the mean held-out log-likelihood over 5 consecutive folds
    Z = (X - X.mean(0)) / X.std(0)
    for k in (3, 10):
        held_out = [_kde_reference(Z[test], Z[train], grid[k]).sum() for train, test in KFold(5).split(Z)]
        assert det.cv_log_likelihood_[k] == pytest.approx(np.mean(held_out), rel=1e-12)


def test_kde_bounded_kernel_scores_stay_finite_and_errors(kde_data):
    X, _ = kde_data
    det = KDEDetector(bandwidth=0.3, kernel="tophat").fit(X)
    s = det.anomaly_score(np.r_[X[:5], [[100.0, 0.0, 0.0]]])
    assert np.all(np.isfinite(s)) and s[-1] > s[:5].max()
    # in 40 dimensions too, the floor of density 0 stays above every point inside the support
    rng = np.random.default_rng(0)
    X40, X40_test = rng.normal(size=(200, 40)), rng.normal(size=(100, 40))
    det = KDEDetector(bandwidth=6.5, kernel="tophat").fit(X40)
    s = det.anomaly_score(X40_test)
    log_phi = _kde_reference((X40_test - det.mean_) / det.scale_, det.training_data_, 6.5, "tophat")
    inside = np.isfinite(log_phi)
    assert 10 < inside.sum() < 90 and np.all(np.isfinite(s))
    np.testing.assert_allclose(s[inside], -(log_phi[inside] - np.log(det.scale_).sum()), rtol=1e-12)
    assert np.ptp(s[~inside]) == 0 and s[~inside].min() > s[inside].max()
    for bad in ("bogus", 0.0, -1.0, np.inf):
        with pytest.raises(ValueError, match="bandwidth must be"):
            KDEDetector(bandwidth=bad).fit(X)
    with pytest.raises(ValueError, match="kernel must be one of"):
        KDEDetector(kernel="triangle").fit(X)


# --------------------------------------------------------------------------- #
# HistogramDetector
# --------------------------------------------------------------------------- #
def test_histogram_hand_computed():
    # feature 0: values 0, 1, 1, 3 in 3 bins [0,1) [1,2) [2,3] -> counts 1, 2, 1, widths 1
    # feature 1: values 0, 0, 0, 4 in 2 bins [0,2) [2,4]       -> counts 3, 1, widths 2
    X = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    det = HistogramDetector(bins=2, alpha=0.5).fit(X[:, 1:])
    np.testing.assert_allclose(det.bin_edges_[0], [0, 2, 4])
    # smoothed: (c + alpha) / ((n + alpha * B) * w) = (3.5, 1.5) / (5 * 2)
    np.testing.assert_allclose(np.exp(det.log_densities_[0]), [0.35, 0.15])
    det = HistogramDetector(bins=3, alpha=1.0).fit(X[:, :1])
    np.testing.assert_allclose(np.exp(det.log_densities_[0]), [2 / 7, 3 / 7, 2 / 7])

    # two features, each with its own bins: the score is a sum over features
    det3 = HistogramDetector(bins=3, alpha=1.0).fit(X)
    # feature 1 with 3 bins of width 4/3: counts 3, 0, 1 -> (4, 1, 2) / (7 * 4/3)
    p0 = {0.5: 2 / 7, 1.5: 3 / 7, 3.0: 2 / 7, -1.0: 1 / 7, 10.0: 1 / 7}
    p1 = {0.5: 4 / 7 * 0.75, 2.0: 1 / 7 * 0.75, 4.0: 2 / 7 * 0.75, 9.0: 1 / 7 * 0.75}
    queries = [(0.5, 0.5), (1.5, 2.0), (3.0, 4.0), (-1.0, 9.0), (10.0, 0.5)]
    expected = [-np.log(p0[a]) - np.log(p1[b]) for a, b in queries]
    np.testing.assert_allclose(det3.anomaly_score(queries), expected, rtol=1e-12)


def test_histogram_outside_the_range_is_finite_and_low_density():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 2))
    det = HistogramDetector().fit(X)
    far = np.array([[50.0, 0.0], [-50.0, 0.0], [0.0, 1e6]])
    s_far, s_in = det.anomaly_score(far), det.anomaly_score(X)
    assert np.all(np.isfinite(s_far)) and s_far.min() > np.quantile(s_in, 0.99)
    # the density of an empty edge bin: alpha / ((n + alpha B) w), below and above
    edges, n_bins = det.bin_edges_[0], len(det.bin_edges_[0]) - 1
    expected_below = np.log(1.0 / ((500 + n_bins) * (edges[1] - edges[0])))
    assert det.log_outside_density_[0, 0] == pytest.approx(expected_below)
    # the last edge belongs to the last bin (numpy's convention), just above it is outside
    top = edges[-1]
    s_top, s_above = det.anomaly_score([[top, 0.0], [np.nextafter(top, np.inf), 0.0]])
    assert s_top < s_above
    # counts agree with numpy's histogram
    counts = np.round(
        np.exp(det.log_densities_[0]) * (500 + n_bins) * np.diff(edges) - 1.0
    ).astype(int)
    np.testing.assert_array_equal(counts, np.histogram(X[:, 0], bins=edges)[0])


def test_histogram_ignores_correlations_and_loses_to_gaussian():
    X_train, _ = addata.make_toy_2d(400, 0, random_state=0)
    X_test, y_test = addata.make_toy_2d(400, 100, random_state=10)
    gauss = metrics.roc_auc(GaussianDetector().fit(X_train).anomaly_score(X_test), y_test)
    hist = metrics.roc_auc(HistogramDetector().fit(X_train).anomaly_score(X_test), y_test)
    assert gauss > 0.9 and gauss > hist + 0.05, (gauss, hist)
    # a point off the diagonal whose coordinates are both typical: the marginals see nothing
    det = HistogramDetector().fit(X_train)
    s_on, s_off = det.anomaly_score([[1.0, 1.0], [1.0, -1.0]])
    assert s_off == pytest.approx(s_on, abs=0.7)
    g_on, g_off = GaussianDetector().fit(X_train).anomaly_score([[1.0, 1.0], [1.0, -1.0]])
    assert g_off > 2 * g_on


def test_histogram_hyper_parameter_errors():
    X = np.random.default_rng(0).normal(size=(50, 2))
    for bad in (0, 2.5, "many", True):
        with pytest.raises(ValueError, match="bins must be"):
            HistogramDetector(bins=bad).fit(X)
    for bad in (0.0, -1.0, np.inf):
        with pytest.raises(ValueError, match="alpha must be"):
            HistogramDetector(alpha=bad).fit(X)
    assert len(HistogramDetector(bins="sturges").fit(X).log_densities_[1]) == int(np.ceil(np.log2(50))) + 1
