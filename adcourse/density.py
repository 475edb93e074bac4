r"""Density-based detectors: model :math:`\phi_0` and monitor the likelihood.

The lecture's first statistic. Fit a density :math:`\hat\phi_0` to normal data;
samples where :math:`\hat\phi_0` is low are anomalous, so the anomaly score is
the negative log-likelihood :math:`-\log\hat\phi_0(\mathbf{x})`.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from sklearn.utils.validation import check_is_fitted

from .base import BaseDetector
from .validation import check_vectors

__all__ = ["GaussianDetector"]


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
