r"""Domain-based detectors: a boundary around normal data, not its density.

The lecture's second family. A density estimate is accurate where data are
dense, but anomalies live where data are rare; domain-based methods skip the
density and estimate the **boundary** of the normal region directly. The
boundary is defined by a few normal samples at the periphery of the data, the
*support vectors*, in a kernel feature space :math:`\Phi(\mathbf{x})` where a
simple shape (a hyperplane, a sphere) becomes a flexible boundary in the space
of :math:`\mathbf{x}`.

* :class:`OneClassSVMDetector` — Schölkopf et al. (1999): a hyperplane that
  separates the normal data from the origin in feature space (wraps
  scikit-learn's :class:`~sklearn.svm.OneClassSVM`).
* :class:`SVDDDetector` — Tax & Duin (1999, 2004): the smallest hypersphere in
  feature space that encloses most of the normal data (our own dual solver).

In both, a regularisation parameter (:math:`\nu`, or :math:`C = 1/(\nu n)`)
sets how many training samples may fall outside the boundary, and with it the
false-positive rate of the detector. With a Gaussian (RBF) kernel the two
methods are the same optimisation problem and rank samples identically.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.svm import OneClassSVM

from adcourse.base import BaseDetector

__all__ = ["OneClassSVMDetector", "SVDDDetector"]


def _check_nu(nu):
    if isinstance(nu, bool) or not isinstance(nu, numbers.Real) or not 0.0 < nu <= 1.0:
        raise ValueError(f"nu must be a number in (0, 1], got {nu!r}")
    return float(nu)


def _resolve_gamma(gamma, X):
    """The RBF width :math:`\\gamma` as scikit-learn computes it ("scale", "auto" or a number)."""
    if isinstance(gamma, str):
        if gamma == "scale":  # 1 / (d * Var[X]): invariant to the scale of X
            var = X.var()
            return 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        if gamma == "auto":
            return 1.0 / X.shape[1]
        raise ValueError(f"gamma must be 'scale', 'auto' or a positive number, got {gamma!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not gamma > 0:
        raise ValueError(f"gamma must be 'scale', 'auto' or a positive number, got {gamma!r}")
    return float(gamma)


class OneClassSVMDetector(BaseDetector):
    r"""One-class SVM (Schölkopf et al., 1999): separate normal data from the origin.

    Map the data to a feature space, :math:`\mathbf{x}\mapsto\Phi(\mathbf{x})`
    with :math:`\langle\Phi(\mathbf{x}),\Phi(\mathbf{y})\rangle = K(\mathbf{x},\mathbf{y})`,
    and find the hyperplane :math:`\langle w,\Phi(\mathbf{x})\rangle = \rho` that
    leaves most of the ``n`` training samples on the far side from the origin,
    with the largest margin :math:`\rho/\|w\|`:

    .. math::

        \min_{w,\,\boldsymbol\xi,\,\rho}\;
        \tfrac12\|w\|^2 + \frac{1}{\nu n}\sum_{i=1}^n \xi_i - \rho
        \quad\text{s.t.}\quad
        \langle w,\Phi(\mathbf{x}_i)\rangle \ge \rho - \xi_i,\;\; \xi_i \ge 0.

    The solution is :math:`w = \sum_i \alpha_i\Phi(\mathbf{x}_i)`, with
    :math:`\alpha_i > 0` only for the *support vectors*, so the decision
    function is :math:`f(\mathbf{x}) = \sum_i \alpha_i K(\mathbf{x}_i,\mathbf{x}) - \rho`
    (positive inside the normal region) and the lecture's detector is
    :math:`\operatorname{sign} f(\mathbf{x})`.

    **The anomaly score is** :math:`-f(\mathbf{x})` — the *negative* of
    scikit-learn's ``decision_function`` (which is higher = more normal): higher
    = more anomalous, and :math:`> 0` outside the learned boundary.

    **What ν means (the ν-property).** The dual constraints
    :math:`0\le\alpha_i\le 1/(\nu n)`, :math:`\sum_i\alpha_i = 1` imply that

    * at most a fraction :math:`\nu` of the training samples are *outliers*
      (:math:`\xi_i > 0`, score :math:`> 0`): each has :math:`\alpha_i = 1/(\nu n)`;
    * at least a fraction :math:`\nu` of them are support vectors.

    Asymptotically both fractions equal :math:`\nu`. Hence **to operate at a
    target false-positive rate, set** :math:`\nu` **≈ the FPR you accept on normal
    data**: the boundary leaves out at most that fraction of the *training*
    samples (``training_outlier_fraction_`` reports it). A small :math:`\nu`
    gives a loose boundary and few false alarms; a large one, a tight boundary
    and more detections. On *fresh* normal data the FPR is usually somewhat
    higher than :math:`\nu`, since the boundary was drawn around the very
    samples it is checked on (e.g. 0.07–0.18, mean 0.12, for :math:`\nu = 0.1`
    on 200 samples of :func:`adcourse.data.make_shapes_2d`). So treat
    :math:`\nu` as the first guess, measure the FPR on held-out normal data, or
    keep the score and set the threshold on normal validation scores with
    :meth:`adcourse.decision.Threshold.from_fpr`.

    Parameters
    ----------
    nu : float in (0, 1], default 0.1
        Upper bound on the fraction of training outliers, lower bound on the
        fraction of support vectors.
    kernel : {"rbf", "linear", "poly", "sigmoid"}, default "rbf"
        Kernel :math:`K`; the RBF kernel
        :math:`K(\mathbf{x},\mathbf{y}) = e^{-\gamma\|\mathbf{x}-\mathbf{y}\|^2}`
        gives flexible, closed boundaries.
    gamma : "scale", "auto" or float, default "scale"
        :math:`\gamma` of the RBF kernel; "scale" is :math:`1/(d\,\mathrm{Var}[X])`.
    tol : float, default 1e-3
        Tolerance of the solver's stopping criterion (libsvm's).

    Attributes
    ----------
    estimator_ : sklearn.svm.OneClassSVM
        The fitted scikit-learn model.
    n_support_ : int
        Number of support vectors.
    support_ : ndarray (n_support,)
        Indices of the support vectors in the training data.
    training_outlier_fraction_ : float
        Fraction of training samples outside the boundary by more than the
        solver tolerance (score > ``tol``; the support vectors *on* the
        boundary have scores within ``tol`` of 0): at most :math:`\nu`.
    n_features_in_ : int

    References
    ----------
    B. Schölkopf, R. Williamson, A. Smola, J. Shawe-Taylor, J. Platt, "Support
    vector method for novelty detection", NIPS 1999.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> det = OneClassSVMDetector(nu=0.1).fit(X)
    >>> bool(det.training_outlier_fraction_ <= 0.1)
    True
    >>> [bool(s > 0) for s in det.anomaly_score([[0.0, 0.0], [4.0, 4.0]])]
    [False, True]
    """

    _min_fit_samples = 2

    def __init__(self, nu=0.1, kernel="rbf", gamma="scale", tol=1e-3):
        self.nu = nu
        self.kernel = kernel
        self.gamma = gamma
        self.tol = tol

    def _fit(self, X):
        nu = _check_nu(self.nu)
        if self.kernel not in ("rbf", "linear", "poly", "sigmoid"):
            raise ValueError(
                f"kernel must be 'rbf', 'linear', 'poly' or 'sigmoid', got {self.kernel!r}"
            )
        _resolve_gamma(self.gamma, X)  # same checks (and messages) as SVDDDetector
        if not self.tol > 0:
            raise ValueError(f"tol must be > 0, got {self.tol}")
        self.estimator_ = OneClassSVM(nu=nu, kernel=self.kernel, gamma=self.gamma, tol=self.tol)
        self.estimator_.fit(X)
        self.support_ = self.estimator_.support_
        self.n_support_ = int(self.support_.size)
        # libsvm stops when the KKT conditions hold up to tol, in units of f: the support
        # vectors on the boundary have |f| <= tol, the outliers f < -tol
        self.training_outlier_fraction_ = float(np.mean(self._score(X) > self.tol))

    def _score(self, X):
        # scikit-learn: decision_function = f(x), higher = more normal; we flip the sign
        return -self.estimator_.decision_function(X)


class SVDDDetector(BaseDetector):
    r"""Support Vector Data Description (Tax & Duin): the smallest enclosing hypersphere.

    Find the sphere of centre :math:`\mathbf{a}` and radius :math:`R`, in the
    kernel feature space :math:`\Phi`, that encloses the ``n`` training samples
    up to slacks :math:`\xi_i`:

    .. math::

        \min_{R,\,\mathbf{a},\,\boldsymbol\xi}\; R^2 + C\sum_{i=1}^n\xi_i
        \quad\text{s.t.}\quad
        \|\Phi(\mathbf{x}_i)-\mathbf{a}\|^2 \le R^2 + \xi_i,\;\; \xi_i\ge 0.

    Its Lagrange dual is a quadratic programme in :math:`\boldsymbol\alpha\in\mathbb{R}^n`
    that only needs the kernel matrix :math:`K_{ij} = K(\mathbf{x}_i,\mathbf{x}_j)`:

    .. math::

        \max_{\boldsymbol\alpha}\; \sum_i\alpha_i K_{ii} - \sum_{i,j}\alpha_i\alpha_j K_{ij}
        \quad\text{s.t.}\quad \sum_i\alpha_i = 1,\;\; 0\le\alpha_i\le C,

    with centre :math:`\mathbf{a} = \sum_i\alpha_i\Phi(\mathbf{x}_i)`. The
    Karush-Kuhn-Tucker (KKT) conditions split the samples, with
    :math:`d_i^2 = \|\Phi(\mathbf{x}_i)-\mathbf{a}\|^2`, into

    * :math:`\alpha_i = 0`: inside the sphere, :math:`d_i^2\le R^2`;
    * :math:`0<\alpha_i<C`: on the sphere, :math:`d_i^2 = R^2` (unbounded support vectors);
    * :math:`\alpha_i = C`: outside, :math:`d_i^2\ge R^2` (the training outliers).

    So :math:`R^2` is read off the unbounded support vectors (averaged over
    them), and since :math:`\sum\alpha_i = 1` at most :math:`1/C` samples are
    outliers. Setting :math:`C = 1/(\nu n)` makes :math:`\nu` the bound on the
    fraction of training outliers, as in the one-class SVM.

    **The anomaly score** is the squared distance from the centre minus the
    squared radius,

    .. math::

        s(\mathbf{x}) = \|\Phi(\mathbf{x})-\mathbf{a}\|^2 - R^2
        = K(\mathbf{x},\mathbf{x}) - 2\sum_i\alpha_i K(\mathbf{x}_i,\mathbf{x})
        + \boldsymbol\alpha^\top K\boldsymbol\alpha - R^2,

    higher = more anomalous, :math:`> 0` outside the sphere. Only the support
    vectors (:math:`\alpha_i>0`) enter the sum.

    **Relation to the one-class SVM.** With the RBF kernel
    :math:`K(\mathbf{x},\mathbf{x}) = 1` for every :math:`\mathbf{x}`: the
    linear term of the dual is constant and the dual becomes that of the
    one-class SVM (:class:`OneClassSVMDetector`), and :math:`s(\mathbf{x})` is a
    decreasing function of :math:`\sum_i\alpha_iK(\mathbf{x}_i,\mathbf{x})`: the
    two detectors rank samples identically. With the linear kernel SVDD is
    the (soft) minimum enclosing ball of the data in input space; with
    :math:`C\ge 1` the constraint :math:`\alpha_i\le C` is inactive and the ball
    encloses every training sample.

    **Solver.** A general-purpose QP solver (e.g. SciPy's SLSQP) needs seconds
    to minutes at n = 300, so the dual is solved by *sequential minimal
    optimisation* (SMO, Platt 1998, with the second-order choice of the pair
    of Fan, Chen & Lin 2005): at each step, move weight between the two
    coefficients that most violate the KKT conditions, solving that 2-variable
    problem exactly; stop when the largest violation is below ``tol``. The
    kernel matrix is dense (:math:`n^2` numbers), so at most ``max_samples``
    training samples are used (a random subset drawn with ``random_state``).

    Parameters
    ----------
    nu : float in (0, 1], default 0.1
        Bound on the fraction of training outliers; :math:`C = 1/(\nu n)`.
        Ignored when ``C`` is given.
    C : float or None, default None
        The box constraint :math:`C`, at least :math:`1/n` (the constraints are
        infeasible below). :math:`C\ge1` gives a hard sphere enclosing all data.
    kernel : {"rbf", "linear"}, default "rbf"
        :math:`K(\mathbf{x},\mathbf{y}) = e^{-\gamma\|\mathbf{x}-\mathbf{y}\|^2}`
        or :math:`\mathbf{x}^\top\mathbf{y}`.
    gamma : "scale", "auto" or float, default "scale"
        :math:`\gamma` of the RBF kernel, as in scikit-learn ("scale" is
        :math:`1/(d\,\mathrm{Var}[X])`).
    tol : float, default 1e-6
        Stopping tolerance on the largest KKT violation of the dual.
    max_iter : int, default 100_000
        Maximal number of SMO steps.
    max_samples : int, default 500
        Train on a random subset of this size when ``X`` has more rows.
    random_state : int or None, default None
        Seed of that subset (the only randomness).

    Attributes
    ----------
    alpha_ : ndarray (n_train,)
        Dual coefficients of the training samples used (``sample_indices_``).
    sample_indices_ : ndarray (n_train,)
        Rows of ``X`` used for training (all of them when n ≤ ``max_samples``).
    support_ : ndarray (n_support,)
        Rows of ``X`` that are support vectors (:math:`\alpha_i > 0`).
    support_vectors_ : ndarray (n_support, d)
    radius_ : float
        :math:`R` (in feature space).
    center_ : ndarray (d,) or None
        :math:`\mathbf{a}` in input space for the linear kernel, else None.
    C_ : float
        The :math:`C` used.
    gamma_ : float or None
        The RBF :math:`\gamma` used (None for the linear kernel).
    n_iter_ : int
        SMO steps taken.
    training_outlier_fraction_ : float
        Fraction of the training samples outside the sphere (≤ ν up to ``tol``).
    n_features_in_ : int

    References
    ----------
    D. Tax, R. Duin, "Support vector domain description", Pattern Recognition
    Letters 20, 1999; "Support vector data description", Machine Learning 54, 2004.
    R.-E. Fan, P.-H. Chen, C.-J. Lin, "Working set selection using second order
    information for training SVM", JMLR 6, 2005.

    Examples
    --------
    >>> import numpy as np
    >>> angle = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    >>> X = np.c_[3 * np.cos(angle), 3 * np.sin(angle)] + [1.0, 2.0]
    >>> det = SVDDDetector(C=1.0, kernel="linear").fit(X)
    >>> round(det.radius_, 6), det.center_.round(6).tolist()
    (3.0, [1.0, 2.0])
    >>> det.anomaly_score([[1.0, 2.0], [1.0, 6.0]]).round(6)
    array([-9.,  7.])
    """

    _min_fit_samples = 2

    def __init__(
        self,
        nu=0.1,
        C=None,
        kernel="rbf",
        gamma="scale",
        tol=1e-6,
        max_iter=100_000,
        max_samples=500,
        random_state=None,
    ):
        self.nu = nu
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.tol = tol
        self.max_iter = max_iter
        self.max_samples = max_samples
        self.random_state = random_state

    # --- kernel --------------------------------------------------------------------------

    def _kernel(self, A, B):
        """Kernel matrix :math:`K(\\mathbf{a}_i, \\mathbf{b}_j)`, shape (len(A), len(B))."""
        if self.kernel == "linear":
            return A @ B.T
        return np.exp(-self.gamma_ * cdist(A, B, "sqeuclidean"))

    def _kernel_diagonal(self, A):
        """:math:`K(\\mathbf{a}_i, \\mathbf{a}_i)` of each row, without the full matrix."""
        if self.kernel == "linear":
            return np.einsum("ij,ij->i", A, A)
        return np.ones(len(A))  # RBF: K(x, x) = exp(0) = 1

    # --- fit -----------------------------------------------------------------------------

    def _check_params(self, n_total):
        """Validate the hyper-parameters; return (number of training samples used, C)."""
        if self.kernel not in ("rbf", "linear"):
            raise ValueError(f"kernel must be 'rbf' or 'linear', got {self.kernel!r}")
        for name in ("max_iter", "max_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
        if not (isinstance(self.tol, numbers.Real) and self.tol > 0):
            raise ValueError(f"tol must be a number > 0, got {self.tol!r}")
        n = min(n_total, self.max_samples)
        if self.C is None:
            return n, 1.0 / (_check_nu(self.nu) * n)
        if isinstance(self.C, bool) or not isinstance(self.C, numbers.Real) or not self.C > 0:
            raise ValueError(f"C must be None or a number > 0, got {self.C!r}")
        if self.C * n < 1.0 - 1e-12:
            raise ValueError(
                f"C must be at least 1/n = {1.0 / n:.4g} (n = {n} training samples), got "
                f"{self.C}: with sum(alpha) = 1 and alpha <= C the dual is infeasible"
            )
        return n, float(self.C)

    def _fit(self, X):
        # 0. at most max_samples rows: the dual needs the dense n x n kernel matrix
        n_total = X.shape[0]
        n, C = self._check_params(n_total)
        if n < n_total:
            rng = np.random.default_rng(self.random_state)
            idx = np.sort(rng.choice(n_total, size=n, replace=False))
        else:
            idx = np.arange(n_total)
        X = X[idx]
        self.C_ = C
        self.gamma_ = _resolve_gamma(self.gamma, X) if self.kernel == "rbf" else None

        # 1. solve the dual QP for alpha
        K = self._kernel(X, X)
        alpha, n_iter = self._solve_dual(K, C)

        # 2. squared distance of each training sample from the centre a = sum_i alpha_i Phi(x_i):
        #    d_i^2 = K_ii - 2 (K alpha)_i + alpha^T K alpha
        K_alpha = K @ alpha
        alpha_K_alpha = float(alpha @ K_alpha)
        d2 = np.diag(K) - 2.0 * K_alpha + alpha_K_alpha

        # 3. R^2 from the KKT conditions: d_i^2 = R^2 on the unbounded support vectors
        #    (0 < alpha_i < C); without any, R^2 lies between the largest d^2 inside
        #    (alpha = 0) and the smallest d^2 outside (alpha = C): take the midpoint
        #    (the solver sets coefficients at a bound to exactly 0 or C)
        at_zero, at_C = alpha == 0.0, alpha == C
        free = ~at_zero & ~at_C
        if free.any():
            R2 = float(d2[free].mean())
        else:
            inside = d2[at_zero].max() if at_zero.any() else d2.min()
            outside = d2[at_C].min() if at_C.any() else d2.max()
            R2 = 0.5 * float(inside + outside)
        R2 = max(R2, 0.0)

        # 4. keep what scoring needs: the support vectors and their alpha
        sv = ~at_zero
        self.alpha_ = alpha
        self.sample_indices_ = idx
        self.support_ = idx[sv]
        self.support_vectors_ = X[sv]
        self._support_alpha = alpha[sv]
        self._alpha_K_alpha = alpha_K_alpha
        self.radius_ = float(np.sqrt(R2))
        self.center_ = alpha @ X if self.kernel == "linear" else None
        self.n_iter_ = n_iter
        # an outlier has d^2 > R^2 beyond the solver's accuracy (tol on the gradient scale)
        self.training_outlier_fraction_ = float(np.mean(d2 - R2 > self.tol))

    def _solve_dual(self, K, C):
        r"""SMO on :math:`\min_\alpha f(\alpha) = \alpha^\top K\alpha - \sum_i\alpha_iK_{ii}`.

        Constraints :math:`\sum_i\alpha_i = 1`, :math:`0\le\alpha_i\le C`. A step
        moves :math:`\delta` from :math:`\alpha_j` to :math:`\alpha_i` (the sum is
        kept); along that direction
        :math:`f` changes by :math:`\delta(G_i - G_j) + \tfrac12\delta^2 a_{ij}` with
        :math:`G = \nabla f = 2K\alpha - \operatorname{diag}K` and
        :math:`a_{ij} = 2(K_{ii} + K_{jj} - 2K_{ij})`, so the best step is
        :math:`\delta = (G_j - G_i)/a_{ij}`, clipped to the box. Each step costs O(n).
        """
        n = K.shape[0]
        diag = np.diag(K).copy()
        # feasible start: uniform weights (sum 1, and 1/n <= C)
        alpha = np.full(n, 1.0 / n)
        G = 2.0 * (K @ alpha) - diag
        eps = 1e-12 * C
        tau = 1e-12  # guards the curvature a_ij against 0 (duplicate points)
        for n_iter in range(1, self.max_iter + 1):
            # KKT: the optimum has max_{alpha_t < C} (-G_t) <= min_{alpha_t > 0} (-G_t)
            can_grow = alpha < C - eps
            can_shrink = alpha > eps
            minus_G_up = np.where(can_grow, -G, -np.inf)
            i = int(np.argmax(minus_G_up))  # most profitable coefficient to increase
            m_up = minus_G_up[i]
            minus_G_low = np.where(can_shrink, -G, np.inf)
            if m_up - minus_G_low.min() < self.tol:
                break  # KKT conditions hold up to tol
            # second-order choice of j among those to decrease: largest guaranteed decrease of f
            b = m_up + G  # = G_j - G_i, > 0 for violating j
            a = np.maximum(2.0 * (diag[i] + diag - 2.0 * K[i]), tau)
            gain = np.where(can_shrink & (b > 0), b * b / a, -np.inf)
            j = int(np.argmax(gain))
            # exact step on the pair (i, j), clipped so that alpha stays in [0, C]
            delta = min(b[j] / a[j], C - alpha[i], alpha[j])
            alpha[i] += delta
            alpha[j] -= delta
            G += 2.0 * delta * (K[i] - K[j])
        else:
            warnings.warn(
                f"SVDD solver stopped after max_iter={self.max_iter} steps before reaching "
                f"tol={self.tol}; increase max_iter or tol",
                RuntimeWarning,
                stacklevel=3,
            )
        # clean round-off at the bounds
        alpha[alpha < eps] = 0.0
        alpha[alpha > C - eps] = C
        return alpha, n_iter

    def _score(self, X):
        # ||Phi(x) - a||^2 - R^2 = K(x, x) - 2 sum_i alpha_i K(x_i, x) + alpha^T K alpha - R^2
        cross = self._kernel(X, self.support_vectors_) @ self._support_alpha
        return self._kernel_diagonal(X) - 2.0 * cross + self._alpha_K_alpha - self.radius_**2
