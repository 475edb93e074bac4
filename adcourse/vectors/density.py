r"""Density-based detectors: model :math:`\phi_0` and monitor the likelihood.

The lecture's first statistic. Fit a density :math:`\hat\phi_0` to normal data;
samples where :math:`\hat\phi_0` is low are anomalous, so the anomaly score is
the negative log-likelihood :math:`-\log\hat\phi_0(\mathbf{x})`.

The module goes from a parametric model to non-parametric ones:

* :class:`GaussianDetector` -- one Gaussian;
* :class:`GMMDetector` -- a mixture of Gaussians fitted with our own EM;
* :class:`KDEDetector` -- a kernel density estimate (log-sum-exp over the kernels);
* :class:`HistogramDetector` -- 1-D histograms of the marginals, which ignore
  the correlations among features (what the lecture warns about).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy import integrate, linalg, special
from scipy.spatial.distance import cdist
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from adcourse.base import BaseDetector
from adcourse.validation import check_vectors

__all__ = ["GaussianDetector", "GMMDetector", "KDEDetector", "HistogramDetector"]


class GaussianDetector(BaseDetector):
    r"""A multivariate Gaussian background model.

    Fitting estimates the mean and the (maximum-likelihood) covariance of the
    normal training data,

    .. math::

        \hat\mu = \frac1n\sum_i \mathbf{x}_i,\qquad
        \hat\Sigma = \frac1n\sum_i (\mathbf{x}_i-\hat\mu)(\mathbf{x}_i-\hat\mu)^\top
        + \varepsilon I,

    where :math:`\varepsilon` = ``reg`` keeps :math:`\hat\Sigma` invertible when
    features are collinear or ``n < d``. The score of a sample is either its
    Mahalanobis distance

    .. math:: d_M(\mathbf{x}) = \sqrt{(\mathbf{x}-\hat\mu)^\top\hat\Sigma^{-1}(\mathbf{x}-\hat\mu)}

    or its negative log-likelihood

    .. math::

        -\log\hat\phi_0(\mathbf{x}) = \tfrac12 d_M(\mathbf{x})^2
        + \tfrac12\log\det(2\pi\hat\Sigma).

    Both rank samples identically (one is a monotone function of the other);
    the log-likelihood is what the lecture monitors, the distance is easier to
    read: under the model, :math:`d_M^2` follows a :math:`\chi^2_d` law.

    Parameters
    ----------
    score : {"mahalanobis", "nll"}, default "mahalanobis"
        Which statistic :meth:`anomaly_score` returns.
    reg : float, default 1e-6
        :math:`\varepsilon`, added to the diagonal of the covariance.

    Attributes
    ----------
    mean_ : ndarray (d,)
    covariance_ : ndarray (d, d)
        Regularised covariance :math:`\hat\Sigma`.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> det = GaussianDetector().fit(X)
    >>> det.anomaly_score([[0.0, 0.0], [4.0, 4.0]]).round(1)
    array([0.1, 5.6])
    """

    _min_fit_samples = 2

    def __init__(self, score="mahalanobis", reg=1e-6):
        self.score = score
        self.reg = reg

    def _fit(self, X):
        if self.score not in ("mahalanobis", "nll"):
            raise ValueError(f"score must be 'mahalanobis' or 'nll', got {self.score!r}")
        if not self.reg >= 0:
            raise ValueError(f"reg must be >= 0, got {self.reg}")
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        cov = centred.T @ centred / X.shape[0]
        cov[np.diag_indices_from(cov)] += self.reg
        self.covariance_ = cov
        try:
            self._chol = linalg.cholesky(cov, lower=True)
        except linalg.LinAlgError as exc:
            raise ValueError(
                "the covariance of X is singular (constant or collinear features); "
                f"increase reg (now {self.reg})"
            ) from exc
        d = X.shape[1]
        self._log_norm = d * np.log(2 * np.pi) + 2 * np.log(np.diag(self._chol)).sum()

    def mahalanobis(self, X):
        """Mahalanobis distance :math:`d_M` of each row of ``X`` to the fitted Gaussian."""
        check_is_fitted(self, "mean_")
        X = check_vectors(X, "X", n_features=self.n_features_in_)
        return np.sqrt(self._squared_distance(X))

    def _squared_distance(self, X):
        # solve L z = (x - mu) with the Cholesky factor: ||z||^2 = d_M^2, no explicit inverse
        z = linalg.solve_triangular(self._chol, (X - self.mean_).T, lower=True)
        return (z**2).sum(axis=0)

    def _score(self, X):
        d2 = self._squared_distance(X)
        if self.score == "mahalanobis":
            return np.sqrt(d2)
        return 0.5 * (d2 + self._log_norm)


def _is_number(value):
    """True for a real number (and not a bool), for the checks of hyper-parameters."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# --------------------------------------------------------------------------- #
# Gaussian mixture, fitted with our own EM
# --------------------------------------------------------------------------- #
def _kmeans_plusplus(X, n_components, rng):
    r"""k-means++ seeding (Arthur & Vassilvitskii, 2007): ``n_components`` rows of ``X``.

    The first centre is a uniformly drawn sample; each next one is drawn with
    probability proportional to :math:`D(\mathbf{x})^2`, the squared distance
    from ``x`` to the nearest centre chosen so far (":math:`D^2` sampling"), so
    the centres spread over the data.
    """
    n = X.shape[0]
    centres = np.empty((n_components, X.shape[1]))
    centres[0] = X[rng.integers(n)]
    d2 = ((X - centres[0]) ** 2).sum(axis=1)  # D(x)^2 for every sample at once
    for k in range(1, n_components):
        total = d2.sum()
        # if every sample already coincides with a centre, fall back to a uniform draw
        index = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centres[k] = X[index]
        d2 = np.minimum(d2, ((X - centres[k]) ** 2).sum(axis=1))
    return centres


def _log_sum_exp(a):
    r"""Row-wise :math:`\log\sum_k e^{a_{ik}}` without underflow: shape (n,).

    Far from every component all :math:`a_{ik}` are very negative and
    :math:`e^{a_{ik}}` underflows to 0; factoring out :math:`m_i = \max_k a_{ik}`,

    .. math:: \log\sum_k e^{a_{ik}} = m_i + \log\sum_k e^{a_{ik}-m_i},

    leaves a sum whose largest term is :math:`e^0 = 1`. A row of ``-inf``
    (every term is 0) gives ``-inf``.
    """
    m = a.max(axis=1)
    m = np.where(np.isfinite(m), m, 0.0)  # an all -inf row: exp(-inf - 0) = 0, log 0 = -inf
    with np.errstate(divide="ignore"):
        return m + np.log(np.exp(a - m[:, None]).sum(axis=1))


def _gmm_m_step(X, resp, covariance_reg):
    r"""M-step: mixture parameters from the membership weights ``resp`` (n, K).

    Returns ``(weights, means, covariances)`` of shapes (K,), (K, d), (K, d, d).
    """
    n, d = X.shape
    n_components = resp.shape[1]
    # N_k = sum_i gamma_ik: the "number of samples" component k is responsible for
    # (+ 10 machine epsilons, as in scikit-learn, so an empty component divides by > 0)
    N_k = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
    weights = N_k / n  # pi_k = N_k / n
    means = resp.T @ X / N_k[:, None]  # mu_k = sum_i gamma_ik x_i / N_k (all k in one product)
    covariances = np.empty((n_components, d, d))
    for k in range(n_components):  # a loop over the K components, never over the samples
        centred = X - means[k]
        # Sigma_k = sum_i gamma_ik (x_i - mu_k)(x_i - mu_k)^T / N_k + eps I
        covariances[k] = (resp[:, k, None] * centred).T @ centred / N_k[k]
        covariances[k][np.diag_indices(d)] += covariance_reg
    return weights, means, covariances


def _gmm_cholesky(covariances, covariance_reg):
    """Lower Cholesky factors L_k (Sigma_k = L_k L_k^T) of each covariance, shape (K, d, d)."""
    factors = np.empty_like(covariances)
    for k, cov in enumerate(covariances):
        try:
            # (check_finite=False: the data were validated once, in fit; skip scipy's re-check)
            factors[k] = linalg.cholesky(cov, lower=True, check_finite=False)
        except linalg.LinAlgError as exc:
            raise ValueError(
                f"the covariance of component {k} is singular (a component collapsed on "
                f"collinear or repeated samples); increase covariance_reg (now {covariance_reg})"
            ) from exc
    return factors


def _gmm_log_joint(X, weights, means, cholesky_factors):
    r""":math:`\log\pi_k + \log\mathcal N(\mathbf{x}_i\mid\mu_k,\Sigma_k)` for all i, k: shape (n, K)."""
    n, d = X.shape
    log_joint = np.empty((n, len(weights)))
    for k, L in enumerate(cholesky_factors):
        # Mahalanobis distance with the Cholesky factor: solve L z = x - mu_k, then ||z||^2
        z = linalg.solve_triangular(L, (X - means[k]).T, lower=True, check_finite=False)
        squared_distance = (z**2).sum(axis=0)
        log_det = 2 * np.log(np.diag(L)).sum()  # log det Sigma_k = 2 sum_j log L_jj
        log_gauss = -0.5 * (d * np.log(2 * np.pi) + log_det + squared_distance)
        log_joint[:, k] = np.log(weights[k]) + log_gauss
    return log_joint


class GMMDetector(BaseDetector):
    r"""A Gaussian mixture background model, fitted with our own EM.

    The density of normal data is a mixture of :math:`K` Gaussians,

    .. math::

        \hat\phi_0(\mathbf{x}) = \sum_{k=1}^K \pi_k\,
        \mathcal N(\mathbf{x}\mid\mu_k,\Sigma_k),
        \qquad \pi_k \ge 0,\ \sum_k\pi_k = 1,

    and the anomaly score is the negative log-likelihood
    :math:`-\log\hat\phi_0(\mathbf{x})`. The parameters maximise the
    log-likelihood of the training set; Expectation-Maximisation alternates:

    **E-step** -- the membership weight of sample :math:`i` in component :math:`k`,

    .. math::

        \gamma_{ik} = \frac{\pi_k\,\mathcal N(\mathbf{x}_i\mid\mu_k,\Sigma_k)}
                           {\sum_{j=1}^K \pi_j\,\mathcal N(\mathbf{x}_i\mid\mu_j,\Sigma_j)},

    computed in the log domain (with log-sum-exp, since the densities underflow
    far from a component);

    **M-step** -- with :math:`N_k = \sum_i\gamma_{ik}`,

    .. math::

        \pi_k = \frac{N_k}{n},\qquad
        \mu_k = \frac1{N_k}\sum_i \gamma_{ik}\,\mathbf{x}_i,\qquad
        \Sigma_k = \frac1{N_k}\sum_i \gamma_{ik}(\mathbf{x}_i-\mu_k)(\mathbf{x}_i-\mu_k)^\top
                   + \varepsilon I.

    Each EM iteration cannot decrease the mean log-likelihood
    :math:`\frac1n\sum_i\log\hat\phi_0(\mathbf{x}_i)`; EM stops when it increases
    by less than ``tol``. The term :math:`\varepsilon I` (``covariance_reg``)
    keeps every :math:`\Sigma_k` invertible when a component sits on collinear
    or repeated samples.

    **Initialisation.** The means are seeded by k-means++ (:math:`D^2`
    sampling); every sample is then assigned to its nearest mean (hard
    membership weights :math:`\gamma_{ik}\in\{0,1\}`) and a first M-step gives
    the initial :math:`\pi_k,\mu_k,\Sigma_k` (:math:`\theta_0`). EM is run
    ``n_init`` times from different seeds and the run with the highest final
    log-likelihood is kept.

    Parameters
    ----------
    n_components : int, default 3
        :math:`K`, the number of Gaussians (at most the number of training samples).
    covariance_reg : float, default 1e-6
        :math:`\varepsilon`, added to the diagonal of every covariance.
    max_iter : int, default 500
        Maximum number of EM iterations per run (0: keep :math:`\theta_0`).
        Overlapping components converge slowly (a few hundred iterations for
        ``tol=1e-6``); a ``ConvergenceWarning`` says when ``max_iter`` was hit.
    tol : float, default 1e-6
        EM stops when the mean log-likelihood increases by less than ``tol``.
    n_init : int, default 1
        Number of runs from different k-means++ seeds; the best one is kept.
    init : {"k-means++", "random"} or array (K, d), default "k-means++"
        Initial means: k-means++ seeding, ``K`` distinct training samples drawn
        uniformly, or the given array (then every run is the same and EM runs once).
    history : bool, default False
        Store the parameters of every iteration in ``history_`` (for figures of
        the EM iterations).
    random_state : int, numpy.random.Generator or None, default None
        Seed of the initialisation.

    Attributes
    ----------
    weights_ : ndarray (K,)
        Mixing weights :math:`\pi_k`.
    means_ : ndarray (K, d)
    covariances_ : ndarray (K, d, d)
        Regularised covariances :math:`\Sigma_k`.
    converged_ : bool
        Whether the kept run stopped on ``tol`` (rather than on ``max_iter``).
    n_iter_ : int
        Number of EM iterations (E-step + M-step) of the kept run.
    lower_bound_ : float
        Mean log-likelihood of the training data under the final parameters (the
        same number as scikit-learn's ``GaussianMixture.score(X)``).
    log_likelihood_history_ : list of float
        Mean training log-likelihood of :math:`\theta_0,\theta_1,\dots,\theta_T`
        (``n_iter_ + 1`` values, the last one is ``lower_bound_``); non-decreasing.
    history_ : list of (weights, means, covariances)
        Only with ``history=True``: :math:`\theta_0,\dots,\theta_T`, aligned
        with ``log_likelihood_history_``.
    n_features_in_ : int

    Notes
    -----
    scikit-learn's ``GaussianMixture(init_params="k-means++")`` seeds the means
    in the same way but starts from membership weights that are 1 on the seeds
    only; we assign every sample to its nearest seed, which gives sensible
    initial covariances at once. Started from the same :math:`\theta_0`
    (``weights_init``, ``means_init``, ``precisions_init``) both run the same
    iterations. scikit-learn's ``score_samples`` is a log-likelihood (higher =
    more normal): our ``anomaly_score`` is its negative.

    References
    ----------
    Dempster, Laird & Rubin (1977), "Maximum likelihood from incomplete data via
    the EM algorithm"; Bishop (2006), *Pattern Recognition and Machine Learning*,
    section 9.2; Arthur & Vassilvitskii (2007), "k-means++".

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(-3, 1, size=(100, 2)), rng.normal(3, 1, size=(100, 2))]
    >>> det = GMMDetector(n_components=2, random_state=0).fit(X)
    >>> np.sort(det.weights_).round(2)
    array([0.5, 0.5])
    >>> bool(det.anomaly_score([[0.0, 0.0]])[0] > det.anomaly_score([[3.0, 3.0]])[0])
    True
    """

    def __init__(
        self,
        n_components=3,
        covariance_reg=1e-6,
        max_iter=500,
        tol=1e-6,
        n_init=1,
        init="k-means++",
        history=False,
        random_state=None,
    ):
        self.n_components = n_components
        self.covariance_reg = covariance_reg
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.init = init
        self.history = history
        self.random_state = random_state

    def _check_hyper_parameters(self, X):
        n, d = X.shape
        for name, low in (("n_components", 1), ("max_iter", 0), ("n_init", 1)):
            value = getattr(self, name)
            if not (_is_number(value) and isinstance(value, numbers.Integral) and value >= low):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.n_components > n:
            raise ValueError(
                f"n_components={self.n_components} exceeds the number of training samples "
                f"({n}): X has {n} samples, need at least n_components"
            )
        for name in ("covariance_reg", "tol"):
            value = getattr(self, name)
            if not (_is_number(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise ValueError(
                    "init must be 'k-means++', 'random' or an array of initial means, "
                    f"got {self.init!r}"
                )
        else:
            means = check_vectors(self.init, "init", n_features=d)
            if means.shape[0] != self.n_components:
                raise ValueError(
                    f"init must hold n_components={self.n_components} means of shape "
                    f"({self.n_components}, {d}), got shape {means.shape}"
                )

    def _initial_means(self, X, rng):
        if isinstance(self.init, str) and self.init == "k-means++":
            return _kmeans_plusplus(X, self.n_components, rng)
        if isinstance(self.init, str):  # "random": K distinct training samples
            return X[rng.choice(X.shape[0], size=self.n_components, replace=False)]
        return np.array(self.init, dtype=np.float64)

    def _e_step(self, X, params):
        """Membership weights gamma (n, K) under ``params`` and the mean log-likelihood."""
        weights, means, covariances = params
        log_joint = _gmm_log_joint(X, weights, means, _gmm_cholesky(covariances, self.covariance_reg))
        # log phi(x_i) = log sum_k pi_k N(x_i | mu_k, Sigma_k), by log-sum-exp
        log_likelihood = _log_sum_exp(log_joint)
        resp = np.exp(log_joint - log_likelihood[:, None])  # gamma_ik, each row sums to 1
        return resp, log_likelihood.mean()

    def _run_em(self, X, initial_means):
        """One EM run from the given initial means; returns a dict of its results."""
        # theta_0: assign each sample to its nearest initial mean, then one M-step
        nearest = cdist(X, initial_means, "sqeuclidean").argmin(axis=1)
        resp = np.eye(self.n_components)[nearest]  # hard membership weights (n, K)
        params = _gmm_m_step(X, resp, self.covariance_reg)
        log_likelihoods, all_params = [], []  # of theta_0, theta_1, ...
        converged, n_iter = False, 0
        for n_iter in range(1, self.max_iter + 1):
            # E-step under theta_{t-1}; its normaliser also gives the log-likelihood of theta_{t-1}
            resp, log_likelihood = self._e_step(X, params)
            log_likelihoods.append(log_likelihood)
            if self.history:
                all_params.append(params)
            params = _gmm_m_step(X, resp, self.covariance_reg)  # M-step: theta_t
            if n_iter > 1 and log_likelihoods[-1] - log_likelihoods[-2] < self.tol:
                converged = True
                break
        # the log-likelihood of the final parameters theta_T (one more E-step)
        _, log_likelihood = self._e_step(X, params)
        log_likelihoods.append(log_likelihood)
        if self.history:
            all_params.append(params)
        return dict(
            params=params,
            log_likelihoods=[float(v) for v in log_likelihoods],
            history=all_params,
            converged=converged,
            n_iter=n_iter,
        )

    def _fit(self, X):
        self._check_hyper_parameters(X)
        rng = np.random.default_rng(self.random_state)
        # with explicit initial means every run would be the same: run once
        n_runs = self.n_init if isinstance(self.init, str) else 1
        best = None
        for _ in range(n_runs):
            run = self._run_em(X, self._initial_means(X, rng))
            if best is None or run["log_likelihoods"][-1] > best["log_likelihoods"][-1]:
                best = run
        if not best["converged"] and self.max_iter > 0:
            warnings.warn(
                f"EM did not converge in max_iter={self.max_iter} iterations (last increase "
                f"of the mean log-likelihood: "
                f"{best['log_likelihoods'][-1] - best['log_likelihoods'][-2]:.3g} >= tol={self.tol}); "
                "increase max_iter or tol",
                ConvergenceWarning,
            )
        self.weights_, self.means_, self.covariances_ = best["params"]
        self.converged_ = best["converged"]
        self.n_iter_ = best["n_iter"]
        self.log_likelihood_history_ = best["log_likelihoods"]
        self.lower_bound_ = best["log_likelihoods"][-1]
        if self.history:
            self.history_ = best["history"]
        self._cholesky = _gmm_cholesky(self.covariances_, self.covariance_reg)

    def _log_joint(self, X):
        return _gmm_log_joint(X, self.weights_, self.means_, self._cholesky)

    def responsibilities(self, X):
        r"""Membership weights :math:`\gamma_{ik}` of each row of ``X``: shape (n, K), rows sum to 1.

        The posterior probability that :math:`\mathbf{x}_i` comes from component
        :math:`k` (scikit-learn's ``predict_proba``).
        """
        check_is_fitted(self, "means_")
        X = check_vectors(X, "X", n_features=self.n_features_in_)
        log_joint = self._log_joint(X)
        return np.exp(log_joint - _log_sum_exp(log_joint)[:, None])

    def _score(self, X):
        # -log phi(x) = -log sum_k pi_k N(x | mu_k, Sigma_k)
        return -_log_sum_exp(self._log_joint(X))


# --------------------------------------------------------------------------- #
# Kernel density estimate
# --------------------------------------------------------------------------- #
_KDE_KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine")


def _log_kernel(u2, kernel):
    r""":math:`\log k(u)` of the radial kernel profile, from :math:`u^2 = \lVert\mathbf{z}-\mathbf{z}_i\rVert^2/h^2`.

    ``-inf`` outside the support of a bounded kernel (:math:`u \ge 1`).
    (From :math:`u^2`, so that the Gaussian and Epanechnikov kernels take no square root.)
    """
    if kernel == "gaussian":  # exp(-u^2 / 2)
        return -0.5 * u2
    if kernel == "exponential":  # exp(-u)
        return -np.sqrt(u2)
    inside = u2 < 1
    u2_in = np.where(inside, u2, 0.0)  # (no log of a non-positive number outside the support)
    if kernel == "tophat":  # 1
        log_k = np.zeros_like(u2)
    elif kernel == "epanechnikov":  # 1 - u^2
        log_k = np.log1p(-u2_in)
    elif kernel == "linear":  # 1 - u
        log_k = np.log1p(-np.sqrt(u2_in))
    else:  # cosine: cos(pi u / 2)
        log_k = np.log(np.cos(0.5 * np.pi * np.sqrt(u2_in)))
    return np.where(inside, log_k, -np.inf)


def _log_kernel_norm(d, kernel):
    r""":math:`\log\int_{\mathbb R^d} k(\lVert\mathbf{u}\rVert)\,d\mathbf{u}`, the normaliser of a unit-width kernel.

    In polar coordinates the integral is :math:`S_{d-1}\int_0^\infty k(r)\,r^{d-1}dr` with
    :math:`S_{d-1} = 2\pi^{d/2}/\Gamma(d/2)` the area of the unit sphere:
    :math:`(2\pi)^{d/2}` (Gaussian), :math:`S_{d-1}\Gamma(d)` (exponential),
    :math:`S_{d-1}/d` (top-hat: the volume of the unit ball),
    :math:`S_{d-1}\,2/(d(d+2))` (Epanechnikov), :math:`S_{d-1}/(d(d+1))` (linear),
    :math:`S_{d-1}\int_0^1\cos(\pi r/2)\,r^{d-1}dr` (cosine, by quadrature).
    """
    if kernel == "gaussian":
        return 0.5 * d * np.log(2 * np.pi)
    log_sphere = np.log(2.0) + 0.5 * d * np.log(np.pi) - special.gammaln(0.5 * d)
    if kernel == "exponential":
        return log_sphere + special.gammaln(d)
    if kernel == "tophat":
        return log_sphere - np.log(d)
    if kernel == "epanechnikov":
        return log_sphere + np.log(2.0) - np.log(d) - np.log(d + 2.0)
    if kernel == "linear":
        return log_sphere - np.log(d) - np.log(d + 1.0)
    # cosine: in high d the mass of r^(d-1) sits just below r = 1, so help the quadrature there
    radial, _ = integrate.quad(
        lambda r: np.cos(0.5 * np.pi * r) * r ** (d - 1), 0.0, 1.0, points=[1 - 1 / d], epsabs=0, epsrel=1e-12, limit=200
    )
    return log_sphere + np.log(radial)


def _kde_log_density(Z_query, Z_train, h, kernel):
    r""":math:`\log\hat\phi_z` of each row of ``Z_query`` by log-sum-exp over the kernels, shape (m,).

    .. math::

        \log\hat\phi_z(\mathbf{z}) = \log\sum_{i=1}^n
        \exp\log k\!\left(\frac{\lVert\mathbf{z}-\mathbf{z}_i\rVert}{h}\right)
        - \log n - d\log h - \log c_d,

    with :math:`c_d` the kernel's normaliser (:func:`_log_kernel_norm`).
    ``-inf`` where a bounded kernel puts no mass. The queries go in chunks
    so that the distance matrix stays below ~32 MB.
    """
    n, d = Z_train.shape
    log_const = -np.log(n) - d * np.log(h) - _log_kernel_norm(d, kernel)
    chunk = max(1, 2**22 // n)
    out = np.empty(len(Z_query))
    for start in range(0, len(Z_query), chunk):
        u2 = cdist(Z_query[start : start + chunk], Z_train, "sqeuclidean") / h**2
        out[start : start + chunk] = _log_sum_exp(_log_kernel(u2, kernel)) + log_const
    return out


class KDEDetector(BaseDetector):
    r"""A kernel density estimate (KDE) of the normal data, computed in the log domain.

    A non-parametric :math:`\hat\phi_0`: one kernel :math:`K` of width :math:`h`
    on every training sample. Features are first standardised with the mean
    :math:`m_j` and standard deviation :math:`s_j` of the training data
    (:math:`z_j = (x_j - m_j)/s_j`), so one bandwidth fits features of any scale;
    the density is then reported in the original units,

    .. math::

        \hat\phi_0(\mathbf{x}) = \frac{1}{\prod_j s_j}\,\frac1n\sum_{i=1}^n
        \frac{1}{h^d}\,K\!\left(\frac{\mathbf{z}-\mathbf{z}_i}{h}\right),

    which is a KDE with the diagonal bandwidth matrix :math:`h\,\mathrm{diag}(s)`.
    The anomaly score is :math:`-\log\hat\phi_0(\mathbf{x})`.

    **Log-sum-exp.** In many dimensions every kernel value
    :math:`K(\cdot)` is far below the smallest float (in 784 dimensions a
    typical :math:`\lVert\mathbf{z}-\mathbf{z}_i\rVert^2/2h^2` is in the hundreds), so
    the sum is computed as :math:`\log\sum_i e^{a_i} = m + \log\sum_i e^{a_i - m}`
    with :math:`a_i = \log K(\cdot)` and :math:`m = \max_i a_i`: exact in any
    dimension, with the nearest kernels dominating far from the data. (We do
    the sum ourselves, over every training sample: scikit-learn's
    ``KernelDensity`` prunes its tree with bounds that go wrong in a few tens
    of dimensions; it agrees with ours in low dimension.)

    The bandwidth :math:`h` (in standardised units) is a number or a rule:

    * ``"scott"``: :math:`h = n^{-1/(d+4)}`;
    * ``"silverman"``: :math:`h = \left(\frac{n(d+2)}{4}\right)^{-1/(d+4)}`;

      (both are optimal for Gaussian data and a Gaussian kernel with unit
      variances -- what standardisation gives -- and are scipy's and
      scikit-learn's factors; in high dimension both tend to 1, smaller than
      the distances between samples, so the score there behaves like a soft
      nearest-neighbour distance);
    * ``"cv"``: the :math:`h` of the grid :math:`h_\text{Scott}\times` 21
      log-spaced factors in [0.1, 10] that maximises the held-out
      log-likelihood in 5-fold cross-validation on the (normal) training data
      only, never on anomalies. The folds are consecutive blocks of ``X``
      (no shuffling, hence no randomness): shuffle ``X`` first if it is sorted.

    Parameters
    ----------
    bandwidth : float or {"scott", "silverman", "cv"}, default "scott"
        :math:`h` in standardised units, or the rule that chooses it.
    kernel : str, default "gaussian"
        One of "gaussian", "tophat", "epanechnikov", "exponential", "linear",
        "cosine" (scikit-learn's kernels, with the same normalisation).
        Kernels with bounded support give density 0 far from the data; there
        a density of exactly 0 is replaced by that of a single kernel of height
        ``tiny`` (the smallest positive float) on one training sample, so
        scores stay finite, equal, and above those of every point inside the
        support (there a kernel value is at least about 1e-16).

    Attributes
    ----------
    bandwidth_ : float
        :math:`h`, in standardised units.
    mean_, scale_ : ndarray (d,)
        :math:`m_j` and :math:`s_j` (a constant feature gets :math:`s_j = 1`).
    training_data_ : ndarray (n, d)
        The standardised training data :math:`\mathbf{z}_i` (the kernel centres).
    cv_bandwidths_, cv_log_likelihood_ : ndarray (21,)
        Only with ``bandwidth="cv"``: the grid and the mean held-out
        log-likelihood (summed over a fold's samples) of each value.
    n_features_in_ : int

    Notes
    -----
    ``KernelDensity.score_samples`` is a log-density (higher = more normal); our
    ``anomaly_score`` is its negative (plus :math:`\sum_j\log s_j`).

    References
    ----------
    Scott (1992), *Multivariate Density Estimation*; Silverman (1986), *Density
    Estimation for Statistics and Data Analysis*.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> det = KDEDetector().fit(X)
    >>> round(det.bandwidth_, 3)  # 200 ** (-1 / 6)
    0.414
    >>> det.anomaly_score([[0.0, 0.0], [4.0, 4.0]]).round(1)
    array([ 2.1, 35.2])
    """

    _min_fit_samples = 2
    #: factors of Scott's bandwidth tried by bandwidth="cv"
    _cv_factors = np.geomspace(0.1, 10.0, 21)

    def __init__(self, bandwidth="scott", kernel="gaussian"):
        self.bandwidth = bandwidth
        self.kernel = kernel

    def _fit(self, X):
        if isinstance(self.bandwidth, str):
            valid = self.bandwidth in ("scott", "silverman", "cv")
        else:
            valid = _is_number(self.bandwidth) and 0 < self.bandwidth < np.inf
        if not valid:
            raise ValueError(
                "bandwidth must be a number > 0, 'scott', 'silverman' or 'cv', "
                f"got {self.bandwidth!r}"
            )
        if self.kernel not in _KDE_KERNELS:
            raise ValueError(f"kernel must be one of {_KDE_KERNELS}, got {self.kernel!r}")

        # standardise with the training mean and standard deviation
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0  # a constant feature: nothing to rescale
        self.scale_ = scale
        Z = (X - self.mean_) / self.scale_
        n, d = Z.shape

        scott = n ** (-1.0 / (d + 4))
        if self.bandwidth == "scott":
            h = scott
        elif self.bandwidth == "silverman":
            h = (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
        elif self.bandwidth == "cv":
            grid = scott * self._cv_factors
            folds = list(KFold(n_splits=min(5, n)).split(Z))
            # mean over folds of the held-out log-likelihood (summed over the fold's samples)
            self.cv_log_likelihood_ = np.array(
                [
                    np.mean([_kde_log_density(Z[test], Z[train], h, self.kernel).sum() for train, test in folds])
                    for h in grid
                ]
            )
            self.cv_bandwidths_ = grid
            h = float(grid[np.argmax(self.cv_log_likelihood_)])
        else:
            h = float(self.bandwidth)
        self.bandwidth_ = float(h)
        self.training_data_ = Z
        # the floor of bounded kernels: one kernel of height `tiny` on one of the n samples
        self._log_density_floor = np.log(np.finfo(np.float64).tiny) + _kde_log_density(
            np.zeros((1, d)), np.zeros((1, d)), self.bandwidth_, self.kernel
        )[0] - np.log(n)

    def _score(self, X):
        Z = (X - self.mean_) / self.scale_
        log_density_z = _kde_log_density(Z, self.training_data_, self.bandwidth_, self.kernel)
        # density 0 (a bounded kernel, far from the data): the floor, so that scores stay finite
        # (only there: a Gaussian's log-density is finite, however far below log(tiny) it is)
        log_density_z = np.where(np.isneginf(log_density_z), self._log_density_floor, log_density_z)
        # change of variables z = (x - m) / s: phi_x(x) = phi_z(z) / prod_j s_j
        return -(log_density_z - np.log(self.scale_).sum())


# --------------------------------------------------------------------------- #
# Histograms of the marginals
# --------------------------------------------------------------------------- #
_NUMPY_BIN_RULES = ("auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt")


def _bin_index(values, edges):
    """Index of the bin of each value (numpy's convention: the last bin is closed), and inside mask."""
    inside = (values >= edges[0]) & (values <= edges[-1])
    index = np.searchsorted(edges, values, side="right") - 1
    return np.clip(index, 0, len(edges) - 2), inside


class HistogramDetector(BaseDetector):
    r"""Product of smoothed 1-D histograms of the marginals (features taken as independent).

    For every feature :math:`j` a histogram with :math:`B_j` bins of widths
    :math:`w_{jb}` counts :math:`c_{jb}` training values per bin. With
    additive (Laplace) smoothing :math:`\alpha` the density of a value in bin
    :math:`b` is

    .. math::

        \hat p_j(x_j) = \frac{c_{jb}+\alpha}{(n + \alpha B_j)\,w_{jb}},

    a proper density on the training range in which no bin is empty. Outside
    the range a value gets the density of an empty edge bin,
    :math:`\alpha / ((n+\alpha B_j)\,w)` with :math:`w` the width of the
    nearest edge bin: small but finite (a floor: how far outside does not
    matter to a histogram). The score assumes independent features,

    .. math::

        s(\mathbf{x}) = -\sum_{j=1}^d \log\hat p_j(x_j)
        = -\log\prod_j \hat p_j(x_j),

    which is what monitoring the 1-D marginals does: it ignores the correlations
    among features, so a sample whose every coordinate is typical but whose
    combination is not (off the diagonal of correlated data) goes unnoticed,
    where a :class:`GaussianDetector` sees it.

    Parameters
    ----------
    bins : int or str, default "auto"
        Number of bins per feature, or a numpy rule (``"auto"``, ``"fd"``,
        ``"doane"``, ``"scott"``, ``"stone"``, ``"rice"``, ``"sturges"``,
        ``"sqrt"``; see :func:`numpy.histogram_bin_edges`), applied to each feature.
    alpha : float, default 1.0
        Pseudo-count added to every bin (> 0).

    Attributes
    ----------
    bin_edges_ : list of d ndarrays (B_j + 1,)
    log_densities_ : list of d ndarrays (B_j,)
        :math:`\log\hat p_j` in each bin.
    log_outside_density_ : ndarray (d, 2)
        :math:`\log\hat p_j` below and above the training range of feature j.
    n_features_in_ : int

    Examples
    --------
    >>> det = HistogramDetector(bins=2, alpha=1.0).fit([[0.0], [0.5], [2.0]])
    >>> det.bin_edges_[0]
    array([0., 1., 2.])
    >>> det.anomaly_score([[0.2], [1.5], [9.0]]).round(3)  # -log(3/5), -log(2/5), -log(1/5)
    array([0.511, 0.916, 1.609])
    """

    def __init__(self, bins="auto", alpha=1.0):
        self.bins = bins
        self.alpha = alpha

    def _fit(self, X):
        if isinstance(self.bins, str):
            valid = self.bins in _NUMPY_BIN_RULES
        else:
            valid = _is_number(self.bins) and isinstance(self.bins, numbers.Integral) and self.bins >= 1
        if not valid:
            raise ValueError(
                f"bins must be an integer >= 1 or one of {_NUMPY_BIN_RULES}, got {self.bins!r}"
            )
        if not (_is_number(self.alpha) and 0 < self.alpha < np.inf):
            raise ValueError(
                f"alpha must be a number > 0 (it keeps empty bins finite), got {self.alpha!r}"
            )
        n, d = X.shape
        self.bin_edges_, self.log_densities_ = [], []
        self.log_outside_density_ = np.empty((d, 2))
        for j in range(d):  # one histogram per feature (each has its own bins)
            edges = np.histogram_bin_edges(X[:, j], bins=self.bins)
            n_bins = len(edges) - 1
            index, _ = _bin_index(X[:, j], edges)
            counts = np.bincount(index, minlength=n_bins)  # c_jb
            widths = np.diff(edges)  # w_jb
            normaliser = n + self.alpha * n_bins
            self.bin_edges_.append(edges)
            self.log_densities_.append(np.log((counts + self.alpha) / (normaliser * widths)))
            # outside: an empty bin as wide as the nearest edge bin
            self.log_outside_density_[j] = np.log(self.alpha / (normaliser * widths[[0, -1]]))

    def _score(self, X):
        log_density = np.empty(X.shape)
        for j, (edges, log_p) in enumerate(zip(self.bin_edges_, self.log_densities_)):
            index, inside = _bin_index(X[:, j], edges)
            below, above = self.log_outside_density_[j]
            outside = np.where(X[:, j] < edges[0], below, above)
            log_density[:, j] = np.where(inside, log_p[index], outside)
        return -log_density.sum(axis=1)  # independence: log prod_j p_j = sum_j log p_j
