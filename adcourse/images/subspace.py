r"""Subspace (reconstruction-based) detectors: PCA and kernel PCA.

The lecture's reconstruction-based monitoring, with the simplest model that can
*encode and reconstruct* normal data: a linear subspace. Normal patches live
close to a low-dimensional manifold; approximate it by the span of the first
:math:`m` principal directions :math:`P \in \mathbb{R}^{d\times m}` of the
normal training patches (:math:`P^\top P = I_m`). Then

* encode: :math:`\mathbf{s}' = P^\top(\mathbf{s} - \mu)` (the PCA coefficients);
* reconstruct: :math:`\hat{\mathbf{s}} = \mu + P P^\top(\mathbf{s} - \mu)`;
* statistic: the reconstruction error
  :math:`\text{err}(\mathbf{s}) = \|\mathbf{s} - \hat{\mathbf{s}}\|_2`.

The lecture writes :math:`\|\mathbf{s} - PP^\top\mathbf{s}\|_2`, i.e. data that
are already centred (zero-mean). Raw patches are not -- they are all positive --
so the subspace is an *affine* one through the mean :math:`\mu` of the normal
patches; without centring the first direction would mostly encode the mean
brightness instead of the structure.

In the autoencoder notation of the lecture, :math:`\mathcal{E}(\mathbf{s}) =
P^\top(\mathbf{s}-\mu)` and :math:`\mathcal{D}(\mathbf{z}) = \mu + P\mathbf{z}`:
PCA is the optimal *linear* autoencoder. :class:`KernelPCADetector` is its
non-linear variant.

For images, wrap a detector in :class:`adcourse.images.patches.PatchDetector`::

    PatchDetector(PCADetector(n_components=10), patch_size=15)
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.decomposition import KernelPCA
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.utils.validation import check_is_fitted

from sklearn.base import clone

from adcourse.base import BaseDetector
from adcourse.vectors.density import GaussianDetector
from adcourse.validation import check_vectors

__all__ = ["PCADetector", "PCAFeatureDetector", "KernelPCADetector"]

_SCORES = ("reconstruction", "last_components", "gaussian")


def _check_int(value, name, low, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


class PCADetector(BaseDetector):
    r"""PCA background model; reconstruction error (or a related statistic) as score.

    Fitting computes the mean :math:`\mu` of the normal data and the
    eigen-decomposition of their covariance
    :math:`\hat\Sigma = \frac{1}{n-1}\sum_i (\mathbf{x}_i-\mu)(\mathbf{x}_i-\mu)^\top
    = V \Lambda V^\top` (eigenvalues in decreasing order). :math:`P = V_{:, :m}`
    spans the first ``n_components`` principal directions.

    Scores (higher = more anomalous), with :math:`\mathbf{r} = \mathbf{x} - \mu`:

    * ``"reconstruction"`` -- the distance to the affine subspace,
      :math:`\|\mathbf{r} - PP^\top\mathbf{r}\|_2 =
      \sqrt{\|\mathbf{r}\|^2 - \|P^\top\mathbf{r}\|^2}` (computed this way: no
      reconstruction is formed, one matrix product per batch);
    * ``"last_components"`` -- the energy of the projection on the *last*
      principal directions, :math:`\sum_{k \in L} (\mathbf{v}_k^\top\mathbf{r})^2`
      with :math:`L` the last ``n_last`` directions (default: all those beyond
      :math:`m`). With ``n_last=None`` this is exactly the squared
      reconstruction error, since :math:`V` is a complete orthonormal basis of
      :math:`\mathbb{R}^d`; a small ``n_last`` monitors only the directions in
      which normal data hardly vary (the lecture's "projection along the last
      principal component");
    * ``"gaussian"`` -- the lecture's "simple experiment": a Gaussian on the
      PCA coefficients :math:`\mathbf{z} = P^\top\mathbf{r}`. They are
      uncorrelated with variances :math:`\lambda_1..\lambda_m`, so the
      Mahalanobis distance is :math:`\sqrt{\sum_{k\le m} z_k^2/\lambda_k}`
      (this monitors the *features* :math:`\mathbf{z}`, not the residual).

    Parameters
    ----------
    n_components : int, default 10
        :math:`m`, the dimension of the subspace (``1 <= m < d``; ``m = d`` is
        allowed only with ``score="gaussian"``).
    score : {"reconstruction", "last_components", "gaussian"}, default "reconstruction"
    n_last : int or None, default None
        Number of last directions of the ``"last_components"`` score (None: all
        ``d - m`` beyond the first ``m``). Ignored by the other scores.

    Attributes
    ----------
    mean_ : ndarray (d,)
    components_ : ndarray (m, d)
        Principal directions, one per row (as in scikit-learn), orthonormal;
        the sign of each is fixed so that its largest-magnitude entry is positive.
    explained_variance_ : ndarray (m,)
        Variances :math:`\lambda_k` of the data along them (``n - 1`` in the
        denominator, as scikit-learn's ``PCA``).
    explained_variance_ratio_ : ndarray (m,)
    n_features_in_ : int

    Notes
    -----
    The decomposition uses :func:`numpy.linalg.eigh` of the :math:`d \times d`
    covariance, which gives the complete basis even when :math:`n < d`
    (cheap for patch sizes up to a few hundred pixels).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 2)) @ [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]  # a plane in 3-D
    >>> det = PCADetector(n_components=2).fit(X)
    >>> det.anomaly_score([[1.0, 2.0, 1.0], [1.0, 0.0, 1.0]]).round(2)
    array([0.  , 1.15])
    """

    _min_fit_samples = 2

    def __init__(self, n_components=10, score="reconstruction", n_last=None):
        self.n_components = n_components
        self.score = score
        self.n_last = n_last

    def _fit(self, X):
        n, d = X.shape
        if self.score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {self.score!r}")
        high = d if self.score == "gaussian" else d - 1
        if high < 1:
            raise ValueError(f"score={self.score!r} needs at least 2 features, got {d}")
        m = _check_int(self.n_components, "n_components", 1, high)
        if self.n_last is not None:
            _check_int(self.n_last, "n_last", 1, d - m)
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        cov = centred.T @ centred / (n - 1)
        eigval, eigvec = np.linalg.eigh(cov)
        eigval, eigvec = np.maximum(eigval[::-1], 0.0), eigvec[:, ::-1].T  # decreasing, rows
        # deterministic signs: largest-magnitude entry of each direction positive
        pivot = np.argmax(np.abs(eigvec), axis=1)
        eigvec *= np.sign(eigvec[np.arange(d), pivot])[:, None]
        self._basis = eigvec  # all d directions (the last ones serve "last_components")
        self.components_ = eigvec[:m]
        self.explained_variance_ = eigval[:m]
        total = eigval.sum()
        self.explained_variance_ratio_ = eigval[:m] / total if total > 0 else np.zeros(m)
        # variances floored for the "gaussian" score (directions of zero variance)
        floor = max(1e-12 * (eigval[0] if eigval[0] > 0 else 1.0), np.finfo(float).tiny)
        self._variance = np.maximum(eigval[:m], floor)

    def transform(self, X):
        r"""PCA coefficients :math:`P^\top(\mathbf{x} - \mu)`, shape (n, m)."""
        check_is_fitted(self, "components_")
        X = check_vectors(X, "X", n_features=self.n_features_in_)
        return (X - self.mean_) @ self.components_.T

    def inverse_transform(self, Z):
        r"""Points of the subspace with coefficients ``Z``: :math:`\mu + P\mathbf{z}`, (n, d)."""
        check_is_fitted(self, "components_")
        Z = check_vectors(Z, "Z", n_features=self.components_.shape[0])
        return Z @ self.components_ + self.mean_

    def reconstruct(self, X):
        r"""Projection on the subspace, :math:`\mu + PP^\top(\mathbf{x}-\mu)`, shape (n, d)."""
        return self.inverse_transform(self.transform(X))

    def _score(self, X):
        centred = X - self.mean_
        if self.score == "last_components":
            last = self._basis[self.components_.shape[0]:]
            if self.n_last is not None:
                last = last[-self.n_last:]
            proj = centred @ last.T
            return np.einsum("ij,ij->i", proj, proj)
        proj = centred @ self.components_.T
        if self.score == "gaussian":
            return np.sqrt(np.einsum("ij,ij,j->i", proj, proj, 1.0 / self._variance))
        energy = np.einsum("ij,ij->i", centred, centred) - np.einsum("ij,ij->i", proj, proj)
        return np.sqrt(np.maximum(energy, 0.0))  # clip the rounding of a tiny difference


class PCAFeatureDetector(BaseDetector):
    r"""Monitor *both* terms of the PCA model: residual and projection energy.

    The reconstruction error alone misses anomalies that are *simpler* than
    normal data: a flat, textureless patch sits close to the mean patch
    :math:`\mu`, so the subspace reconstructs it almost perfectly. What gives it
    away is its projection: normal patches have a typical amount of energy
    along the principal directions, a flat patch has almost none. As the
    lecture does for sparse coding (reconstruction error *and* sparsity), this
    detector monitors the feature vector

    .. math::

        \mathbf{x}(\mathbf{s}) = \Big[\log\|\mathbf{r} - PP^\top\mathbf{r}\|_2^2,\
        \log\|P^\top\mathbf{r}\|_2^2\Big],\qquad \mathbf{r} = \mathbf{s} - \mu,

    with a density model :math:`\hat\phi_0` (the lecture's "monitoring PCA
    projections"). Training follows the lecture's protocol: the subspace is
    learned on a part :math:`S` of the normal data, the density of the features
    on the rest :math:`V`, :math:`V \cap S = \emptyset`. The logarithms make the
    two energies (which are chi-square-like, skewed) closer to Gaussian; a small
    constant keeps :math:`\log 0` finite.

    Parameters
    ----------
    n_components : int, default 20
        :math:`m`, the dimension of the subspace.
    density : BaseDetector or None, default None
        Density model of the 2-D features (cloned); None = ``GaussianDetector()``.
    validation_fraction : float, default 0.5
        Fraction of the training rows used as :math:`V`.
    random_state : int, default 0
        Seed of the split between :math:`S` and :math:`V`.

    Attributes
    ----------
    pca_ : PCADetector
        The subspace, fitted on :math:`S`.
    density_ : BaseDetector
        :math:`\hat\phi_0`, fitted on the features of :math:`V`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3)) @ [[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0],
    ...                                   [0.0, 0.0, 1.0, 1.0]] + 0.1 * rng.normal(size=(400, 4))
    >>> det = PCAFeatureDetector(n_components=3).fit(X)
    >>> det.features(X[:2]).shape
    (2, 2)
    """

    _min_fit_samples = 4
    _EPS = 1e-8

    def __init__(self, n_components=20, density=None, validation_fraction=0.5, random_state=0):
        self.n_components = n_components
        self.density = density
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _features(self, X):
        centred = X - self.pca_.mean_
        proj = centred @ self.pca_.components_.T
        total = np.einsum("ij,ij->i", centred, centred)
        inside = np.einsum("ij,ij->i", proj, proj)
        residual = np.maximum(total - inside, 0.0)
        return np.log(np.c_[residual, inside] + self._EPS)

    def features(self, X):
        r"""The monitored features :math:`\mathbf{x}(\mathbf{s})`, shape (n, 2)."""
        check_is_fitted(self, "density_")
        return self._features(check_vectors(X, "X", n_features=self.n_features_in_))

    def _fit(self, X):
        if not 0.0 < float(self.validation_fraction) < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        order = np.random.default_rng(self.random_state).permutation(len(X))
        n_val = int(round(self.validation_fraction * len(X)))
        if n_val < 2 or len(X) - n_val < 2:
            raise ValueError(f"X has {len(X)} samples: too few to split into S and V")
        S, V = X[order[n_val:]], X[order[:n_val]]
        self.pca_ = PCADetector(n_components=self.n_components).fit(S)
        density = GaussianDetector() if self.density is None else clone(self.density)
        self.density_ = density.fit(self._features(V))

    def _score(self, X):
        return self.density_.anomaly_score(self._features(X))


class KernelPCADetector(BaseDetector):
    r"""Kernel PCA: reconstruction error in feature space (Hoffmann, 2007).

    Normal data live near a *non-linear* manifold; map them to a feature space
    :math:`\varphi(\mathbf{x})` with a kernel :math:`k(\mathbf{x}, \mathbf{y}) =
    \langle\varphi(\mathbf{x}), \varphi(\mathbf{y})\rangle` and do PCA there
    (scikit-learn's :class:`~sklearn.decomposition.KernelPCA`). The score is the
    squared distance of :math:`\varphi(\mathbf{x})` from the subspace of the
    first :math:`m` kernel principal directions, computed with kernels only:

    .. math::

        \text{err}^2(\mathbf{x}) = \tilde k(\mathbf{x}, \mathbf{x}) - \sum_{k=1}^{m} z_k(\mathbf{x})^2,
        \qquad
        \tilde k(\mathbf{x}, \mathbf{x}) = k(\mathbf{x}, \mathbf{x})
        - \frac{2}{n}\sum_i k(\mathbf{x}, \mathbf{x}_i)
        + \frac{1}{n^2}\sum_{i,j} k(\mathbf{x}_i, \mathbf{x}_j),

    where :math:`\tilde k` is the kernel centred on the training mean in
    feature space and :math:`z_k` the kernel PCA coefficients
    (``KernelPCA.transform``). Unlike an input-space error, this needs no
    pre-image (no ``fit_inverse_transform`` and its extra ridge parameter).
    With ``kernel="linear"`` it is the squared reconstruction error of
    :class:`PCADetector`.

    Kernel PCA stores and decomposes the :math:`n \times n` kernel matrix, so
    at most ``max_samples`` training samples are used (drawn at random).

    Parameters
    ----------
    n_components : int, default 10
    kernel : {"rbf", "poly", "linear"}, default "rbf"
    gamma : float or None, default None
        Kernel coefficient of ``"rbf"`` and ``"poly"``; None means
        :math:`1 / (d\,\mathrm{Var}(X))` (scikit-learn SVC's ``"scale"``), which
        adapts to the scale of the data.
    degree : int, default 3
        Degree of ``"poly"``.
    coef0 : float, default 1.0
        Constant of ``"poly"``.
    max_samples : int, default 2000
    random_state : int, default 0
        Seed of the subsampling and of scikit-learn's eigen-solver.

    Attributes
    ----------
    kpca_ : sklearn.decomposition.KernelPCA
    gamma_ : float
        The kernel coefficient used.
    X_fit_ : ndarray (n_used, d)
        Training samples kept.

    References
    ----------
    H. Hoffmann, "Kernel PCA for novelty detection", Pattern Recognition 40 (2007).
    """

    _min_fit_samples = 2

    def __init__(
        self,
        n_components=10,
        kernel="rbf",
        gamma=None,
        degree=3,
        coef0=1.0,
        max_samples=2000,
        random_state=0,
    ):
        self.n_components = n_components
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.max_samples = max_samples
        self.random_state = random_state

    def _kernel_params(self):
        if self.kernel == "rbf":
            return {"gamma": self.gamma_}
        if self.kernel == "poly":
            return {"gamma": self.gamma_, "degree": self.degree, "coef0": self.coef0}
        return {}

    def _fit(self, X):
        if self.kernel not in ("rbf", "poly", "linear"):
            raise ValueError(f"kernel must be 'rbf', 'poly' or 'linear', got {self.kernel!r}")
        max_samples = _check_int(self.max_samples, "max_samples", 2)
        if X.shape[0] > max_samples:
            rng = np.random.default_rng(self.random_state)
            X = X[np.sort(rng.choice(X.shape[0], max_samples, replace=False))]
        n = X.shape[0]
        m = _check_int(self.n_components, "n_components", 1, n - 1)
        if self.gamma is None:
            var = X.var()
            self.gamma_ = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        else:
            if isinstance(self.gamma, bool) or not isinstance(self.gamma, numbers.Real) or not self.gamma > 0:
                raise ValueError(f"gamma must be a positive number or None, got {self.gamma!r}")
            self.gamma_ = float(self.gamma)
        self.X_fit_ = X
        self.kpca_ = KernelPCA(
            n_components=m,
            kernel=self.kernel,
            random_state=self.random_state,
            **self._kernel_params(),
        ).fit(X)
        K = pairwise_kernels(X, metric=self.kernel, **self._kernel_params())
        self._k_mean_all = K.mean()

    def _self_kernel(self, X):
        """k(x, x) for each row, without forming the n x n matrix."""
        sq = np.einsum("ij,ij->i", X, X)
        if self.kernel == "rbf":
            return np.ones(X.shape[0])
        if self.kernel == "poly":
            return (self.gamma_ * sq + self.coef0) ** self.degree
        return sq

    def _score(self, X):
        out = np.empty(X.shape[0])
        step = 2048  # bounded memory: a (step, n_train) kernel block at a time
        for a in range(0, X.shape[0], step):
            x = X[a:a + step]
            k_mean = pairwise_kernels(x, self.X_fit_, metric=self.kernel, **self._kernel_params()).mean(axis=1)
            k_centred = self._self_kernel(x) - 2.0 * k_mean + self._k_mean_all
            z = self.kpca_.transform(x)
            out[a:a + step] = np.maximum(k_centred - np.einsum("ij,ij->i", z, z), 0.0)
        return out
