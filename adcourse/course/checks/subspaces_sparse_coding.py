r"""Checks of exercise 4, "Subspaces and sparse coding" (``solutions/04-subspaces-sparse-coding.ipynb``).

Each check asks the student's function questions on data it makes itself (from
the task's seed, never the notebook's data) and compares the answers with chapter
4's code:
:class:`~adcourse.images.subspace.PCADetector`, :func:`adcourse.images.sparse.soft_threshold`,
one ADMM iteration computed here independently (and :func:`adcourse.images.sparse.bpdn_admm`,
which the student's iteration must converge to), the sparse-coding features, and
:meth:`adcourse.decision.Threshold.from_fpr` on the negative log-likelihood of
:class:`~adcourse.vectors.density.GaussianDetector`. A wrong answer raises
:class:`~adcourse.course.checks.CheckFailed` with the input, the expected and the
received values and, when the answer matches a typical mistake (hard instead
of soft thresholding, :math:`\lambda` instead of :math:`\lambda/\rho`, a norm
that should be squared, ...), what the mistake probably was.

======  ==================================  ========================================
task    check                               the student's function
======  ==================================  ========================================
task-1  :func:`check_reconstruction_error`  ``reconstruction_error(X_train, X, m)``
task-2  :func:`check_soft_threshold`        ``soft_threshold(x, t)``
task-3  :func:`check_admm_step`             ``admm_step(D, s, z, u, lam, rho)``
task-4  :func:`check_sparse_features`       ``sparse_features(D, S, lam)``
task-5  :func:`check_density_threshold`     ``density_threshold(val_features, fpr)``
======  ==================================  ========================================

The package's detectors are imported inside the judges (they pull in scikit-learn).
What the student's functions may use (:data:`ALLOW`, enforced by the grader): NumPy and
SciPy's linear algebra; in task 4 also :mod:`adcourse.images.sparse` (the BPDN solver the
features are built on), in task 5 :class:`adcourse.decision.Threshold` -- never the chapter's
detector that solves the task.
"""

from __future__ import annotations

import math

import numpy as np

from adcourse.course.checks._base import (
    Call,
    CheckFailed,
    Probe,
    _allclose,
    _as_array,
    _as_float,
    _fmt,
    _inputs,
    _mismatch,
    task,
)
from adcourse.course.checks.image_patches import _pair_of_arrays, _pca_data

__all__ = [
    "check_reconstruction_error",
    "check_soft_threshold",
    "check_admm_step",
    "check_sparse_features",
    "check_density_threshold",
    "TASKS",
]


#: What the student's functions may use, by task.
ALLOW = {
    "task-1": ("numpy", "scipy.linalg"),
    "task-2": ("numpy",),
    "task-3": ("numpy", "scipy.linalg"),
    "task-4": ("numpy", "scipy.linalg", "adcourse.images.sparse"),
    "task-5": ("numpy", "scipy.linalg", "adcourse.decision.Threshold"),
}


def _unit_dictionary(rng, d, k):
    D = rng.normal(size=(d, k))
    return D / np.linalg.norm(D, axis=0)


def _soft(x, t):
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


# --------------------------------------------------------------------------------------
# task 1: PCA reconstruction error
# --------------------------------------------------------------------------------------


def _recon_questions(rng):
    scales = np.array([3.0, 2.0, 1.5, 0.5, 0.3, 0.2, 0.1])
    X_train = _pca_data(rng, 300, scales)
    X = np.r_[_pca_data(rng, 5, scales), X_train.mean(axis=0) + 1.5 * rng.normal(size=(4, 7))]
    calls = [Call("reconstruction_error", X_train, X, 3)]
    scales = np.array([2.0, 1.0, 0.4, 0.3, 0.2])
    X_train = _pca_data(rng, 150, scales, shift=6.0)
    calls.append(Call("reconstruction_error", X_train, X_train[:4] + rng.normal(size=(4, 5)), 2))
    return calls


@task(1, "reconstruction_error", _recon_questions, uses=("reconstruction_error",), seed=4101,
      allow=ALLOW["task-1"])
def check_reconstruction_error(answers):
    r"""Check ``reconstruction_error(X_train, X, m) -> ndarray (n,)``: the distance
    :math:`\|\mathbf{r} - PP^\top\mathbf{r}\|_2`, :math:`\mathbf{r} = \mathbf{x} - \mu`, of
    each row of ``X`` to the affine subspace of the first ``m`` principal directions of
    ``X_train``: ``PCADetector(m).fit(X_train).anomaly_score(X)``."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.images.subspace import PCADetector

    for call, got in answers:
        X_train, X, m = call.args
        det = PCADetector(n_components=m).fit(X_train)
        expected = det.anomaly_score(X)
        got = _as_array(got, "the value returned by reconstruction_error", (X.shape[0],))
        if _allclose(got, expected):
            continue
        n, d = X_train.shape
        mu = X_train.mean(axis=0)
        w, V = np.linalg.eigh((X_train - mu).T @ (X_train - mu) / n)  # increasing
        _, V_raw = np.linalg.eigh(X_train.T @ X_train / n)

        def residual(P, centre=True):
            R = X - mu if centre else X
            return np.linalg.norm(R - R @ P @ P.T, axis=1)

        variants = [
            ("you returned the SQUARED error ||r - P P^T r||^2; the reconstruction error is its "
             "square root, the Euclidean norm", expected ** 2),
            ("you did not subtract the mean: with r = x - mu, err = ||r - P P^T r|| (the subspace "
             "goes through the mean of X_train: reconstruction = mu + P P^T (x - mu))",
             residual(V[:, -m:], centre=False)),
            ("you did not centre X_train before the PCA (nor the samples): the principal "
             "directions are those of the covariance of X_train, around its mean",
             residual(V_raw[:, -m:], centre=False)),
            ("you did not centre X_train before the PCA: the principal directions are those of "
             "its covariance, (X_train - mu)^T (X_train - mu) / n", residual(V_raw[:, -m:])),
            ("you used the LAST m principal directions: np.linalg.eigh returns the eigenvalues in "
             "increasing order, the first principal directions are its last columns",
             residual(V[:, :m])),
            ("that is the norm of the projection ||P^T r||, the energy INSIDE the subspace; the "
             "reconstruction error is what is left outside, ||r - P P^T r||",
             np.linalg.norm((X - mu) @ V[:, -m:], axis=1)),
        ]
        raise _mismatch("errors", "reconstruction_error", _inputs(X_train=X_train, X=X, m=m),
                        expected, got, variants,
                        "fit mu and P (d, m) on X_train, then err(x) = ||r - P P^T r||_2 with "
                        "r = x - mu, for each row x of X")


# --------------------------------------------------------------------------------------
# task 2: soft thresholding
# --------------------------------------------------------------------------------------


def _soft_questions(rng):
    return [Call("soft_threshold", x, t) for x, t in [
        (np.array([-3.0, -1.5, -0.4, 0.0, 0.2, 0.9, 1.7, 4.0]), 1.0),
        (rng.normal(size=(4, 5)), 0.3),
        (rng.normal(size=6) * 2, 0.0),
        (np.array([0.5, -0.5, 2.0]), 2.5),
    ]]


@task(2, "soft_threshold", _soft_questions, uses=("soft_threshold",), seed=4202, allow=ALLOW["task-2"])
def check_soft_threshold(answers):
    r"""Check ``soft_threshold(x, t)``: :math:`\operatorname{sign}(x)\max(|x| - t, 0)`
    elementwise, same shape as ``x`` (as :func:`adcourse.images.sparse.soft_threshold`)."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.images import sparse

    for call, got in answers:
        x, t = call.args
        expected = sparse.soft_threshold(x, t)
        got = _as_array(got, "the value returned by soft_threshold", x.shape)
        if _allclose(got, expected, 1e-12):
            continue
        variants = [
            ("that is HARD thresholding (x where |x| > t, else 0): soft thresholding also moves the "
             "surviving values towards 0 by t", np.where(np.abs(x) > t, x, 0.0)),
            ("you forgot the sign: max(|x| - t, 0) is the magnitude; multiply it by sign(x)",
             np.maximum(np.abs(x) - t, 0.0)),
            ("max(x - t, 0) only handles the positive values: negative values below -t must become "
             "x + t; use sign(x) * max(|x| - t, 0)", np.maximum(x - t, 0.0)),
            ("you shrank every value by t without stopping at 0: values in [-t, t] must become "
             "exactly 0 (the max(., 0))", x - t * np.sign(x)),
            ("that is np.clip(x, -t, t), the part soft thresholding REMOVES: S_t(x) = x - clip(x, -t, t)",
             np.clip(x, -t, t)),
        ]
        raise _mismatch("values", "soft_threshold", _inputs(x=x, t=t), expected, got, variants,
                        "S_t(x) = sign(x) * max(|x| - t, 0), elementwise", tol=1e-12)


# --------------------------------------------------------------------------------------
# task 3: one ADMM iteration for BPDN
# --------------------------------------------------------------------------------------


def _admm_reference(D, s, z, u, lam, rho):
    """One plain ADMM iteration, written here independently of adcourse.images.sparse."""
    k = D.shape[1]
    x = np.linalg.solve(D.T @ D + rho * np.eye(k), D.T @ s + rho * (z - u))
    z_new = _soft(x + u, lam / rho)
    return x, z_new, u + x - z_new


def _admm_cases(rng):
    for d, k, lam, rho in [(10, 6, 0.2, 0.5), (8, 14, 0.1, 2.0), (12, 12, 0.3, 0.7)]:
        D = _unit_dictionary(rng, d, k)
        s = D[:, :3] @ rng.normal(size=3) + 0.1 * rng.normal(size=d)
        z = _soft(rng.normal(size=k), 0.8)
        u = 0.1 * rng.normal(size=k)
        yield D, s, z, u, lam, rho


_N_ITER = 300


def _iterate_admm(functions, D, s, lam, rho, n_iter):
    """Probe: z after ``n_iter`` iterations of the student's admm_step from z = u = 0."""
    k = D.shape[1]
    z, u = np.zeros(k), np.zeros(k)
    for _ in range(n_iter):
        _, z, u = functions["admm_step"](D, s, z, u, lam, rho)
    return z


def _admm_questions(rng):
    calls = [Call("admm_step", *case) for case in _admm_cases(rng)]
    D = _unit_dictionary(rng, 16, 24)  # the iteration converges to the BPDN solution
    s = D[:, [2, 7, 11]] @ np.array([1.0, -0.7, 0.5]) + 0.05 * rng.normal(size=16)
    calls.append(Probe(_iterate_admm, D, s, 0.1, 0.3, _N_ITER))
    return calls


@task(3, "admm_step", _admm_questions, uses=("admm_step",), seed=4303, allow=ALLOW["task-3"])
def check_admm_step(answers):
    r"""Check ``admm_step(D, s, z, u, lam, rho) -> (x, z, u)``: one plain (not over-relaxed)
    ADMM iteration for :math:`\tfrac12\|D\mathbf{x}-\mathbf{s}\|^2+\lambda\|\mathbf{z}\|_1`,
    :math:`\mathbf{x} = \mathbf{z}` (computed here independently), then that
    300 iterations from :math:`\mathbf{z} = \mathbf{u} = 0` reach the objective
    of :func:`adcourse.images.sparse.bpdn_admm` within 1e-4 (relative)."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.images.sparse import bpdn_admm, bpdn_objective

    for call, value in answers.of("admm_step"):
        D, s, z, u, lam, rho = call.args
        k = D.shape[1]
        where = _inputs(D=D, s=s, z=z, u=u, lam=lam, rho=rho) + f" (D is {D.shape[0]}x{k})"
        x1, z1, u1 = _pair_of_arrays(value, "admm_step",
                                     ["x", "z", "u"], [(k,), (k,), (k,)])
        ex, ez, eu = _admm_reference(D, s, z, u, lam, rho)
        G = D.T @ D
        if not _allclose(x1, ex, 1e-8):
            variants = [
                ("rho is missing on the right-hand side: x = (D^T D + rho I)^-1 (D^T s + "
                 "rho (z - u))", np.linalg.solve(G + rho * np.eye(k), D.T @ s + (z - u))),
                ("the matrix is D^T D + rho I, not D^T D + I", np.linalg.solve(G + np.eye(k),
                                                                                D.T @ s + rho * (z - u))),
                ("rho is missing in the x-update (both in the matrix and on the right-hand side): "
                 "x = (D^T D + rho I)^-1 (D^T s + rho (z - u))",
                 np.linalg.solve(G + np.eye(k), D.T @ s + (z - u))),
                ("the sign of u: the x-update uses z - u (scaled dual variable), not z + u",
                 np.linalg.solve(G + rho * np.eye(k), D.T @ s + rho * (z + u))),
                ("the x-update must use the z and u you were given; x = (D^T D + rho I)^-1 (D^T s + "
                 "rho (z - u))", np.linalg.solve(G + rho * np.eye(k), D.T @ s)),
            ]
            raise _mismatch("x", "admm_step", where, ex, x1, variants,
                            "x = (D^T D + rho I)^-1 (D^T s + rho (z - u)): np.linalg.solve", tol=1e-8)
        if not _allclose(z1, ez, 1e-8):
            u_first = u + ex - z
            variants = [
                (f"you thresholded at lam = {lam:g}; the z-update thresholds at lam / rho = "
                 f"{lam / rho:g} (the l1 term is divided by rho in the augmented Lagrangian)",
                 _soft(ex + u, lam)),
                (f"you thresholded at lam * rho = {lam * rho:g}; the threshold is lam / rho = "
                 f"{lam / rho:g}", _soft(ex + u, lam * rho)),
                ("you thresholded x alone; the z-update is z = S_{lam/rho}(x + u)", _soft(ex, lam / rho)),
                ("you updated u before z: the z-update uses the u of the previous iteration "
                 "(order: x, then z = S_{lam/rho}(x + u), then u = u + x - z)",
                 _soft(ex + u_first, lam / rho)),
                ("that is hard thresholding; the proximal operator of the l1 norm is SOFT "
                 "thresholding, sign(v) max(|v| - t, 0)",
                 np.where(np.abs(ex + u) > lam / rho, ex + u, 0.0)),
            ]
            raise _mismatch("z", "admm_step", where, ez, z1, variants,
                            "z = S_{lam/rho}(x + u), soft thresholding at lam / rho, with the new x",
                            tol=1e-8)
        if not _allclose(u1, eu, 1e-8):
            variants = [
                ("u was updated with the OLD z: the dual update uses the z just computed, "
                 "u = u + x - z_new", u + ex - z),
                ("the sign: u = u + x - z (it accumulates the residual x - z)", u + ez - ex),
                ("u accumulates: u_new = u + x - z, you returned x - z alone", ex - ez),
                ("u = u + x - z with the NEW x and z; you used x + u - z from before the "
                 "z-update?", u + ex - _soft(ex, lam / rho)),
            ]
            raise _mismatch("u", "admm_step", where, eu, u1, variants,
                            "u = u + x - z, with the new x and the new z", tol=1e-8)
    # the iteration converges to the BPDN solution
    for call, z in answers.of("_iterate_admm"):
        D, s, lam, rho, _ = call.args
        z = _as_array(z, "z returned by admm_step", (D.shape[1],))
    best = bpdn_admm(D, s, lam, tol_abs=1e-10, tol_rel=1e-10, max_iter=20000)
    f_ref = float(bpdn_objective(D, s[:, None], best[:, None], lam)[0])
    f_got = float(bpdn_objective(D, s[:, None], z[:, None], lam)[0])
    if not (abs(f_got - f_ref) <= 1e-4 * abs(f_ref)):
        raise CheckFailed(
            f"{_N_ITER} iterations of admm_step from z = u = 0 do not solve BPDN\n"
            + _inputs(D=D, s=s, lam=lam, rho=rho) + "\n"
            f"objective 1/2 ||D z - s||^2 + lam ||z||_1 of bpdn_admm: {f_ref:.8g}, of your z: "
            f"{f_got:.8g}\nhint: one step matched the reference on the test inputs; does your "
            "function keep state between calls, or change its inputs in place?")


# --------------------------------------------------------------------------------------
# task 4: sparse-coding features
# --------------------------------------------------------------------------------------


def _close_rel(a, b, rtol=2e-3, atol=1e-6):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rtol * np.abs(b) + atol))


def _feature_questions(rng):
    return [Call("sparse_features", *case) for case in _feature_cases(rng)]


def _feature_cases(rng):
    for d, k, N, lam in [(16, 24, 12, 0.1), (9, 6, 8, 0.2)]:
        D = _unit_dictionary(rng, d, k)
        A = _soft(rng.normal(size=(k, N)), 1.2)  # sparse codes
        S = D @ A + 0.05 * rng.normal(size=(d, N))
        S[:, -2:] = rng.normal(size=(d, 2))       # two columns unlike the dictionary
        yield D, S, lam


@task(4, "sparse_features", _feature_questions, uses=("sparse_features",), seed=4404, allow=ALLOW["task-4"])
def check_sparse_features(answers):
    r"""Check ``sparse_features(D, S, lam) -> ndarray (N, 2)``: for each column
    :math:`\mathbf{s}` of ``S`` (d, N), with :math:`\boldsymbol\alpha` its BPDN code from
    :func:`adcourse.images.sparse.bpdn_admm`, the row
    :math:`[\|D\boldsymbol\alpha - \mathbf{s}\|_2^2, \|\boldsymbol\alpha\|_1]` (to 2e-3 relative:
    any accurate BPDN solver passes)."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.images.sparse import bpdn_admm

    for call, value in answers:
        D, S, lam = call.args
        d, N = S.shape
        where = _inputs(D=D, S=S, lam=lam) + f" (D is {D.shape[0]}x{D.shape[1]}, {N} patches as columns)"
        A = bpdn_admm(D, S, lam)
        R = D @ A - S
        err, l1 = np.einsum("ij,ij->j", R, R), np.abs(A).sum(axis=0)
        expected = np.c_[err, l1]
        got = _as_array_2(value, N, where)
        if _close_rel(got, expected):
            continue
        variants = [
            ("the features are in the wrong order: column 0 is the reconstruction error "
             "||D alpha - s||^2, column 1 the sparsity ||alpha||_1", expected[:, ::-1]),
            ("the reconstruction error is the SQUARED norm ||D alpha - s||_2^2",
             np.c_[np.sqrt(err), l1]),
            ("the sparsity term is the l1 norm sum_i |alpha_i|, not the l2 norm",
             np.c_[err, np.linalg.norm(A, axis=0)]),
            ("the sparsity term is the l1 norm sum_i |alpha_i|, not the squared l2 norm",
             np.c_[err, np.sum(A ** 2, axis=0)]),
            ("the reconstruction error is ||D alpha - s||^2, without the factor 1/2 of the BPDN "
             "objective", np.c_[0.5 * err, l1]),
            ("the sparsity feature is ||alpha||_1, without the weight lam of the BPDN objective",
             np.c_[err, lam * l1]),
            ("the sparsity term is the l1 norm of the code alpha, sum_i |alpha_i|: you forgot the "
             "absolute value", np.c_[err, A.sum(axis=0)]),
        ]

        def default(got, expected=expected):
            return ("code S with A = bpdn_admm(D, S, lam) (one code per column), then per column "
                    "||D alpha - s||_2^2 and ||alpha||_1, stacked as (N, 2)")

        hint = next((h for h, v in variants if _close_rel(got, v) and not _close_rel(v, expected)),
                    None) or default(got)
        raise CheckFailed("\n".join(["wrong features returned by sparse_features", where,
                                     f"expected {_fmt(expected)}", f"received {_fmt(got)}",
                                     "hint: " + hint]))


def _as_array_2(value, N, where):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(f"sparse_features must return an array of numbers (N, 2), received "
                          f"{type(value).__name__}") from None
    if arr.shape == (N, 2):
        return arr
    if arr.shape == (2, N):
        raise CheckFailed(
            f"wrong shape of the features returned by sparse_features\n{where}\nexpected shape "
            f"{(N, 2)}, received {arr.shape}\nhint: one ROW per patch (the rest of the package "
            "keeps samples as rows): np.stack([error, l1], axis=1), or transpose")
    raise CheckFailed(f"wrong shape of the features returned by sparse_features\n{where}\n"
                      f"expected shape {(N, 2)} (one row [error, l1] per column of S), received "
                      f"{arr.shape}")


# --------------------------------------------------------------------------------------
# task 5: a threshold on the negative log-likelihood, for a target FPR
# --------------------------------------------------------------------------------------


def _threshold_questions(rng):
    return [Call("density_threshold", val, fpr) for val, fpr in _threshold_cases(rng)]


def _threshold_cases(rng):
    for n, fpr in [(400, 0.05), (250, 0.02), (1000, 0.1)]:  # n * fpr whole
        z = rng.normal(size=(n, 2))
        # features like the chapter's: a skewed error and a correlated sparsity
        err = np.exp(0.5 * z[:, 0] - 0.5)
        l1 = 1.5 + 0.8 * z[:, 0] + 0.4 * z[:, 1]
        yield np.c_[err, l1], fpr


def _n_detected(scores, t):
    return int(np.sum(scores >= t))


def _detects(scores, t, k, rtol=1e-9):
    """Does ``t``, up to rounding (``rtol``), detect exactly ``k`` of ``scores``? (The student
    computes the scores in their own way: at a threshold equal to a score, the last bits decide.)"""
    tol = rtol * max(1.0, abs(t))
    return _n_detected(scores, t + tol) <= k <= _n_detected(scores, t - tol)


@task(5, "density_threshold", _threshold_questions, uses=("density_threshold",), seed=4505,
      allow=ALLOW["task-5"])
def check_density_threshold(answers):
    r"""Check ``density_threshold(val_features, fpr) -> Threshold or float``: a threshold
    :math:`\gamma` on the negative log-likelihood of a Gaussian fitted on the validation
    features that detects (score :math:`\ge \gamma`) as many validation samples as
    ``Threshold.from_fpr(GaussianDetector(score="nll").fit(val).anomaly_score(val), fpr)``:
    the largest number allowed, :math:`\lfloor n\,\text{fpr}\rfloor`. Any value in the
    interval between two consecutive validation scores is accepted, with or without the
    detector's regularisation ``reg`` of the covariance."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.decision import Threshold
    from adcourse.vectors.density import GaussianDetector

    for call, value in answers:
        val, fpr = call.args
        n = val.shape[0]
        nll = GaussianDetector(score="nll").fit(val).anomaly_score(val)
        nll_0 = GaussianDetector(score="nll", reg=0.0).fit(val).anomaly_score(val)  # by hand
        expected = Threshold.from_fpr(nll, fpr)
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.item()
        got = _as_float(value, "the value returned by density_threshold")
        k_exp, k_got = _n_detected(nll, expected.value), _n_detected(nll, got)
        if _detects(nll, got, k_exp) or _detects(nll_0, got, k_exp):
            continue
        # the scores of typical mistakes, with and without the detector's regularisation
        maha = [GaussianDetector(reg=r).fit(val).anomaly_score(val) for r in (1e-6, 0.0)]
        m = int(math.floor(n * fpr + 1e-9))
        candidates = [
            ([*maha], "your threshold is on the Mahalanobis distance d_M; this task sets it on the "
             "negative log-likelihood -log phi(x) = d_M^2 / 2 + log det(2 pi Sigma) / 2"),
            ([0.5 * d ** 2 for d in maha], "your threshold is on d_M^2 / 2: the negative "
             "log-likelihood also has the constant log det(2 pi Sigma) / 2, which moves every "
             "score (and the threshold)"),
            ([d ** 2 for d in maha], "your threshold is on the squared Mahalanobis distance; this "
             "task sets it on the negative log-likelihood d_M^2 / 2 + log det(2 pi Sigma) / 2"),
            ([-nll, -nll_0], "that threshold is on the log-likelihood log phi(x), where LOW values "
             "are anomalous; the score is the NEGATIVE log-likelihood, higher = more anomalous"),
        ]
        hint = None
        for variants, why in candidates:
            if any(_n_detected(v, got) in (m, n - m) for v in variants) and abs(
                    got - expected.value) > 1e-6:
                hint = why
                break
        if hint is None and k_got in (n - m, n - m + 1, n - m - 1):
            hint = (f"you took the fpr-quantile of the scores; the threshold leaves a fraction fpr "
                    f"ABOVE it: the (1 - fpr)-quantile (Threshold.from_fpr(scores, fpr))")
        if hint is None and abs(k_got - k_exp) <= max(2, int(0.01 * n)):
            hint = ("close: check the Gaussian's maximum-likelihood estimates (covariance divided by "
                    "n: np.cov(val, rowvar=False, bias=True)) and that exactly floor(n * fpr) "
                    "validation scores are >= your threshold")
        if hint is None:
            hint = ("fit a Gaussian on val_features (GaussianDetector(score='nll')), score the same "
                    "validation features, and return Threshold.from_fpr(scores, fpr)")
        raise CheckFailed("\n".join([
            "wrong threshold returned by density_threshold",
            _inputs(val_features=val, fpr=fpr) + f" ({n} validation samples)",
            f"expected a threshold detecting floor(n * fpr) = {k_exp} of the {n} validation "
            f"scores (e.g. {expected.value:.6g}); yours, {got:.6g}, detects {k_got} "
            f"(validation FPR {k_got / n:.3f} for a target {fpr:g})",
            "hint: " + hint,
        ]))


#: The checks of exercise 4 by task id (the ids of the ``check`` cells' metadata).
TASKS = {
    "task-1": check_reconstruction_error,
    "task-2": check_soft_threshold,
    "task-3": check_admm_step,
    "task-4": check_sparse_features,
    "task-5": check_density_threshold,
}
