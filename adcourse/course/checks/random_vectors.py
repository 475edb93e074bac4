r"""Checks of exercise 2, "Random vectors" (``solutions/02-random-vectors.ipynb``).

Each check asks the student's function questions on data it makes itself (from
the task's seed, never the notebook's data) and compares the answers with the
detector of chapter 2 that computes the same thing: :class:`~adcourse.vectors.density.GaussianDetector`,
:class:`~adcourse.vectors.density.GMMDetector`, :func:`adcourse.vectors.isolation.c_factor` and
:class:`~adcourse.vectors.isolation.IsolationForestDetector`,
:class:`~adcourse.vectors.distance.KNNDetector`, :class:`~adcourse.vectors.domain.OneClassSVMDetector`.
A wrong answer raises :class:`~adcourse.course.checks.CheckFailed` with the input, the
expected and the received values and, when the answer matches a typical
mistake (the unbiased covariance instead of the maximum-likelihood one, a
squared distance, an off-by-one neighbour, ...), what the mistake probably was.

======  ================================  ==============================================
task    check                             the student's function(s)
======  ================================  ==============================================
task-1  :func:`check_mahalanobis_scores`  ``mahalanobis_scores(X_train, X)``
task-2  :func:`check_em_step`             ``em_step(X, weights, means, covariances)``
task-3  :func:`check_isolation`           ``c_factor(n)``, ``isolation_score(mean_path_length, psi)``
task-4  :func:`check_knn_score`           ``knn_score(X_train, X, k)``
task-5  :func:`check_choose_nu`           ``choose_nu(X_train, X_val, target_fpr, grid)``
======  ================================  ==============================================

The detectors (and :mod:`scipy.stats`) are imported inside the judges, not at the
top: they pull in scikit-learn, which exercise 1's kernels, importing
:mod:`adcourse.course.checks`, need not pay for.

What the student's functions may use (:data:`ALLOW`, enforced by the grader): NumPy
in every task, and SciPy's special functions; :mod:`scipy.stats` in task 2
(``multivariate_normal``); ``OneClassSVMDetector`` of :mod:`adcourse.vectors.domain` in
task 5 -- never the chapter-2 detector that solves the task.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from adcourse.course.checks._base import (
    Call,
    CheckFailed,
    _allclose,
    _as_array,
    _as_float,
    _close,
    _fmt,
    _inputs,
    _mismatch,
    task,
)

__all__ = [
    "check_mahalanobis_scores",
    "check_em_step",
    "check_isolation",
    "check_knn_score",
    "check_choose_nu",
    "TASKS",
]


#: What the student's functions may use, by task.
ALLOW = {
    "task-1": ("numpy", "scipy.special"),
    "task-2": ("numpy", "scipy.special", "scipy.stats"),
    "task-3": ("numpy", "scipy.special"),
    "task-4": ("numpy", "scipy.special"),
    "task-5": ("numpy", "scipy.special", "adcourse.vectors.domain.OneClassSVMDetector"),
}

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _correlated(rng, n, d, shift=1.5):
    """n samples of a correlated Gaussian in R^d with a mean far from 0 (so centring matters)."""
    A = rng.normal(size=(d, d)) + 2.0 * np.eye(d)
    mean = shift + rng.normal(size=d)
    return rng.normal(size=(n, d)) @ A.T + mean


def _ratio_pattern(got, expected):
    """'all your values are r times the expected ones' when that holds, else ''."""
    ok = np.abs(expected) > 1e-12
    if not ok.any():
        return ""
    r = got[ok] / expected[ok]
    if np.all(np.isfinite(r)) and np.ptp(r) <= 1e-6 * max(1.0, abs(r.mean())):
        return f"every value you returned is {r.mean():.6g} times the expected one"
    return ""


# --------------------------------------------------------------------------------------
# task 1: Mahalanobis distance to a Gaussian fitted on normal data
# --------------------------------------------------------------------------------------


def _mahalanobis(X_train, X, ddof=0, centre_cov=True, centre_x=True, inverse=True):
    n = X_train.shape[0]
    mu = X_train.mean(axis=0)
    Z = X_train - mu if centre_cov else X_train
    cov = Z.T @ Z / (n - ddof)
    D = X - mu if centre_x else X
    M = np.linalg.inv(cov) if inverse else cov
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", D, M, D), 0.0))


def _mahalanobis_questions(rng):
    return [Call("mahalanobis_scores", X_train, X) for X_train, X in [
        (_correlated(rng, 12, 3), _correlated(rng, 6, 3, shift=3.0)),  # small n: 1/n vs 1/(n-1)
        (_correlated(rng, 80, 2), _correlated(rng, 10, 2, shift=2.5)),
        (_correlated(rng, 300, 5), _correlated(rng, 15, 5, shift=0.0)),
    ]]


@task(1, "mahalanobis_scores", _mahalanobis_questions, uses=("mahalanobis_scores",), seed=2101,
      allow=ALLOW["task-1"])
def check_mahalanobis_scores(answers):
    r"""Check ``mahalanobis_scores(X_train, X) -> ndarray (m,)``.

    The Mahalanobis distance of each row of ``X`` to the Gaussian fitted on
    ``X_train`` with the maximum-likelihood estimates (covariance divided by
    ``n``): exactly ``GaussianDetector(reg=0.0).fit(X_train).anomaly_score(X)``.
    """
    __tracebackhide__ = True  # noqa: F841
    from adcourse.vectors.density import GaussianDetector

    for call, got in answers:
        X_train, X = call.args
        expected = GaussianDetector(reg=0.0).fit(X_train).anomaly_score(X)
        got = _as_array(got, "the value returned by mahalanobis_scores", (X.shape[0],))
        if _allclose(got, expected):
            continue
        n = X_train.shape[0]
        unbiased = _mahalanobis(X_train, X, ddof=1)
        variants = [
            (f"you used the unbiased covariance (np.cov, which divides by n - 1 = {n - 1}); the "
             f"Gaussian's maximum-likelihood covariance divides by n = {n}: every distance comes "
             f"out sqrt((n-1)/n) = {math.sqrt((n - 1) / n):.4g} times too small. Use "
             "np.cov(X_train, rowvar=False, bias=True) or (X - mu).T @ (X - mu) / n", unbiased),
            ("you returned the SQUARED distance (x - mu)^T Sigma^-1 (x - mu); the Mahalanobis "
             "distance is its square root", expected ** 2),
            ("you returned the squared distance, with the unbiased covariance (1/(n-1)): take the "
             "square root, and divide the covariance by n", unbiased ** 2),
            ("you did not centre the new samples: the distance is of x - mu, with mu the mean of "
             "X_train", _mahalanobis(X_train, X, centre_x=False)),
            ("you did not centre the training data when estimating the covariance: Sigma = "
             "sum_i (x_i - mu)(x_i - mu)^T / n, not sum_i x_i x_i^T / n",
             _mahalanobis(X_train, X, centre_cov=False)),
            ("you centred neither the training data nor the new samples: subtract the mean mu of "
             "X_train from both", _mahalanobis(X_train, X, centre_cov=False, centre_x=False)),
            ("you multiplied by Sigma instead of its inverse: d = sqrt((x - mu)^T Sigma^-1 (x - mu))",
             _mahalanobis(X_train, X, inverse=False)),
            ("that is the Euclidean distance to the mean: the Mahalanobis distance weighs "
             "x - mu by the inverse covariance Sigma^-1",
             np.linalg.norm(X - X_train.mean(axis=0), axis=1)),
        ]

        def default(got, expected=expected):
            pattern = _ratio_pattern(got, expected)
            base = ("d(x) = sqrt((x - mu)^T Sigma^-1 (x - mu)), with mu = mean of X_train and "
                    "Sigma = (X_train - mu)^T (X_train - mu) / n")
            return f"{pattern}; {base}" if pattern else base

        raise _mismatch("distances", "mahalanobis_scores",
                        _inputs(X_train=X_train, X=X) + f" (n = {n} training samples)",
                        expected, got, variants, default)


# --------------------------------------------------------------------------------------
# task 2: one EM iteration of a Gaussian mixture
# --------------------------------------------------------------------------------------


def _em_reference(X, weights, means, covariances, *, old_means=False, no_norm_weights=False,
                  gamma_unnormalised=False, gamma_over_samples=False, no_prior=False,
                  cov_over_n=False):
    """One E-step + M-step (no regularisation), computed directly; the flags make the mistakes."""
    from scipy.stats import multivariate_normal

    n, K = X.shape[0], len(weights)
    dens = np.column_stack([
        multivariate_normal(means[k], covariances[k]).pdf(X).reshape(n) for k in range(K)
    ])
    joint = dens if no_prior else weights * dens
    if gamma_unnormalised:
        gamma = joint
    elif gamma_over_samples:
        gamma = joint / joint.sum(axis=0, keepdims=True)
    else:
        gamma = joint / joint.sum(axis=1, keepdims=True)
    N = gamma.sum(axis=0)
    new_weights = N if no_norm_weights else N / n
    new_means = gamma.T @ X / N[:, None]
    centres = means if old_means else new_means
    new_cov = np.empty_like(np.asarray(covariances, dtype=float))
    for k in range(K):
        C = X - centres[k]
        new_cov[k] = (gamma[:, k, None] * C).T @ C / (n if cov_over_n else N[k])
    return new_weights, new_means, new_cov


def _mixture_data(rng, n, d, K):
    centres = rng.normal(scale=1.5, size=(K, d))  # overlapping clusters: soft memberships
    labels = rng.integers(K, size=n)
    X = centres[labels] + rng.normal(size=(n, d)) @ (0.6 * np.eye(d) + 0.3 * rng.normal(size=(d, d)))
    return X


def _hard_start(X, init):
    """theta_0 as GMMDetector makes it: every sample assigned to its nearest initial mean, one M-step."""
    K = len(init)
    nearest = np.argmin(((X[:, None, :] - init[None]) ** 2).sum(axis=2), axis=1)
    resp = np.eye(K)[nearest]
    N = resp.sum(axis=0)
    means = resp.T @ X / N[:, None]
    covs = np.stack([(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) / N[k] for k in range(K)])
    return N / X.shape[0], means, covs


def _em_questions(rng):
    """EM from the state GMMDetector starts in (K training samples as initial means), then from a
    state that is not a hard assignment (unequal weights, round covariances)."""
    calls = []
    for n, d, K in [(40, 2, 2), (150, 3, 3), (90, 2, 4)]:
        X = _mixture_data(rng, n, d, K)
        while True:  # initial means whose clusters all hold enough samples for a covariance
            init = X[rng.choice(X.shape[0], size=K, replace=False)]
            nearest = np.argmin(((X[:, None, :] - init[None]) ** 2).sum(axis=2), axis=1)
            if np.bincount(nearest, minlength=K).min() >= 3 * d:
                break
        calls.append(Call("em_step", X, *_hard_start(X, init)))
    X = _mixture_data(rng, 60, 2, 2)
    calls.append(Call("em_step", X, np.array([0.25, 0.75]), X[[3, 17]].copy(),
                      np.stack([np.eye(2) * 2.0, np.eye(2) * 0.5])))
    return calls


_EM_NAMES = ("weights", "means", "covariances")


@task(2, "em_step", _em_questions, uses=("em_step",), seed=2201, allow=ALLOW["task-2"])
def check_em_step(answers):
    r"""Check ``em_step(X, weights, means, covariances) -> (weights, means, covariances)``.

    One E-step (membership weights :math:`\gamma_{ik}`) then one M-step
    (:math:`\pi_k = N_k/n`, :math:`\mu_k`, :math:`\Sigma_k` centred on the new
    means, no regularisation), from the state ``GMMDetector`` starts in and from another
    one, compared with a direct computation (``scipy.stats.multivariate_normal``).
    """
    __tracebackhide__ = True  # noqa: F841
    for call, result in answers:
        X, theta0 = call.args[0], call.args[1:]
        expected = _em_reference(X, *theta0)
        n, d = X.shape
        K = len(theta0[0])
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise CheckFailed(
                "em_step must return three arrays (weights, means, covariances), received "
                f"{type(result).__name__}"
                + (f" of length {len(result)}" if hasattr(result, "__len__") else "")
            )
        shapes = [(K,), (K, d), (K, d, d)]
        got = [_as_array(r, f"the {name} returned by em_step", s)
               for r, name, s in zip(result, _EM_NAMES, shapes)]
        wrong = [i for i in range(3) if not _allclose(got[i], expected[i], 1e-6)]
        if not wrong:
            continue
        mistakes = [
            (dict(old_means=True),
             "your covariances are centred on the OLD means (the ones passed in): compute the new "
             "means mu_k first, then Sigma_k = sum_i gamma_ik (x_i - mu_k)(x_i - mu_k)^T / N_k "
             "with those new mu_k"),
            (dict(no_norm_weights=True),
             "your mixing weights are N_k = sum_i gamma_ik, which sum to n: divide by n, "
             "pi_k = N_k / n, so that they sum to 1"),
            (dict(gamma_unnormalised=True),
             "your membership weights are not normalised over the components: gamma_ik = "
             "pi_k N(x_i | mu_k, Sigma_k) / sum_j pi_j N(x_i | mu_j, Sigma_j), so that each "
             "row sums to 1"),
            (dict(gamma_over_samples=True),
             "you normalised the membership weights over the samples (each column sums to 1); "
             "normalise over the components k instead: each ROW of gamma sums to 1"),
            (dict(no_prior=True),
             "the E-step forgot the mixing weights: gamma_ik is proportional to "
             "pi_k N(x_i | mu_k, Sigma_k), not to N(x_i | mu_k, Sigma_k) alone"),
            (dict(cov_over_n=True),
             "the covariances divide by n; each one divides by its own N_k = sum_i gamma_ik"),
        ]
        hint = None
        for flags, why in mistakes:
            variant = _em_reference(X, *theta0, **flags)
            if all(_allclose(g, v, 1e-6) for g, v in zip(got, variant)):
                hint = why
                break
        if hint is None and all(_allclose(g, t) for g, t in zip(got, theta0)):
            hint = ("you returned the parameters you were given: return the NEW ones, after one "
                    "E-step and one M-step")
        if hint is None:
            first = _EM_NAMES[wrong[0]]
            hint = {
                "weights": "pi_k = N_k / n with N_k = sum_i gamma_ik; the weights sum to 1",
                "means": "mu_k = sum_i gamma_ik x_i / N_k (a gamma-weighted mean of the samples)",
                "covariances": "Sigma_k = sum_i gamma_ik (x_i - mu_k)(x_i - mu_k)^T / N_k, with "
                               "the NEW mu_k and no regularisation",
            }[first]
            if 0 in wrong and abs(float(np.sum(got[0])) - 1.0) < 1e-6 and len(wrong) == 3:
                hint = ("every parameter is wrong but the weights sum to 1: check the E-step, "
                        "gamma_ik = pi_k N(x_i | mu_k, Sigma_k) / sum_j pi_j N(x_i | mu_j, Sigma_j)")
        lines = [f"wrong {', '.join(_EM_NAMES[i] for i in wrong)} returned by em_step",
                 _inputs(X=X) + f" ({n} samples in R^{d}), K = {K} components, "
                 + f"weights={_fmt(theta0[0])}, means={_fmt(theta0[1])}"]
        for i in wrong:
            lines.append(f"expected {_EM_NAMES[i]} = {_fmt(expected[i])}")
            lines.append(f"received {_EM_NAMES[i]} = {_fmt(got[i])}")
        lines.append("hint: " + hint)
        raise CheckFailed("\n".join(lines))


# --------------------------------------------------------------------------------------
# task 3: the normalisation c(n) and the isolation score
# --------------------------------------------------------------------------------------


def _c_variant(n, log=np.log, shift=1, special=True):
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 2.0 * (log(n - 1.0 + (1 - shift)) + np.euler_gamma) - 2.0 * (n - 1.0) / n
    if special:
        out = np.where(n == 2, 1.0, np.where(n <= 1, 0.0, out))
    return out


def _c_exact_harmonic(n):
    n = np.asarray(n, dtype=int)
    out = np.zeros(n.shape)
    for idx, m in np.ndenumerate(n):
        if m == 2:
            out[idx] = 1.0
        elif m > 2:
            out[idx] = 2.0 * np.sum(1.0 / np.arange(1, m)) - 2.0 * (m - 1) / m
    return out


def _check_c_factor(answers):
    from adcourse.vectors import isolation

    (call, value), (_, single) = answers.of("c_factor")
    ns = call.args[0]
    expected = isolation.c_factor(ns)
    with np.errstate(all="ignore"):
        got = _as_array(value, "the value returned by c_factor", ns.shape)
    if not _allclose(got, expected):
        generic = _c_variant(ns, special=False)
        big = ns > 2
        variants = [
            ("the formula 2H(n-1) - 2(n-1)/n only holds for n > 2: the special cases are c(1) = 0 "
             "(a single point is isolated at once) and c(2) = 1; use np.where (or a mask) to set "
             "them", generic),
            ("you used log2; H(i) is approximated with the NATURAL logarithm, H(i) ~ ln(i) + "
             "0.5772 (np.log)", _c_variant(ns, log=np.log2)),
            ("you used log2 (H(i) ~ ln(i) + 0.5772 uses the natural log, np.log) and forgot the "
             "special cases c(1) = 0, c(2) = 1", _c_variant(ns, log=np.log2, special=False)),
            ("you used H(n) instead of H(n-1): c(n) = 2H(n-1) - 2(n-1)/n",
             _c_variant(ns, shift=0)),
            ("you used the exact harmonic number sum_{j<=i} 1/j; the course (like the original "
             "paper and scikit-learn) uses the approximation H(i) ~ ln(i) + 0.5772156649 (Euler's "
             "constant, np.euler_gamma)", _c_exact_harmonic(ns)),
        ]
        if _allclose(got[big], expected[big]) and not _allclose(got[~big], expected[~big]):
            hint0 = (f"c(n) is right for n > 2 but c(1) = {_fmt(got[0])}, c(2) = {_fmt(got[1])}: "
                     "the special cases are c(1) = 0 and c(2) = 1")
        else:
            hint0 = ("c(n) = 2H(n-1) - 2(n-1)/n with H(i) ~ ln(i) + 0.5772156649 (np.euler_gamma), "
                     "c(2) = 1, c(1) = 0")
        raise _mismatch("values", "c_factor", _inputs(n=ns), expected, got, variants,
                        lambda g: hint0)
    value = single
    if isinstance(value, np.ndarray) and value.size != 1:
        raise CheckFailed(f"c_factor(256) must be one number, received an array of shape {value.shape}")
    got = _as_float(value, "c_factor(256)")
    if not _close(got, isolation.c_factor(256), 1e-6):
        raise CheckFailed(
            f"wrong value of c_factor(256) (a plain int): expected {isolation.c_factor(256):.6g}, "
            f"received {got:.6g}; it works on arrays, but not on a single number?"
        )


def _check_isolation_score(value, h, psi, where):
    from adcourse.vectors import isolation

    expected = 2.0 ** (-h / isolation.c_factor(psi))
    got = _as_array(value, "the value returned by isolation_score", h.shape)
    if _allclose(got, expected):
        return
    c = isolation.c_factor(psi)
    variants = [
        ("you used exp: the score is a power of 2, s = 2 ** (-E[h] / c(psi))", np.exp(-h / c)),
        ("you forgot the minus sign in the exponent: s = 2 ** (-E[h] / c(psi)), which is in "
         "(0, 1] and larger for shorter paths", 2.0 ** (h / c)),
        ("you normalised by psi; normalise by c(psi), the average path length of psi points",
         2.0 ** (-h / psi)),
        ("you normalised by log2(psi); normalise by c(psi), the average path length of psi points",
         2.0 ** (-h / np.log2(psi))),
        ("that is 1 - s; s = 2 ** (-E[h] / c(psi)) is close to 1 for anomalies (short paths)",
         1.0 - expected),
    ]
    raise _mismatch("scores", "isolation_score", where, expected, got, variants,
                    "s(x) = 2 ** (-E[h(x)] / c(psi)): use your c_factor for c(psi)")


def _isolation_questions(rng):
    """c(n) on an array and on one int; the score on given path lengths and on mean path
    lengths like a forest's (a mixture of short and long paths, psi = 64)."""
    h = np.array([1.0, 2.5, 4.0, 6.2, 8.0, 10.2448, 12.0, 15.5])
    forest_like = np.r_[rng.uniform(6.0, 9.0, size=6), rng.uniform(2.0, 5.0, size=4)]
    return [Call("c_factor", np.array([1, 2, 3, 4, 5, 8, 10, 64, 100, 256, 1000])),
            Call("c_factor", 256),
            Call("isolation_score", h, 256),
            Call("isolation_score", forest_like, 64)]


@task(3, "c_factor and isolation_score", _isolation_questions, uses=("c_factor", "isolation_score"),
      seed=2303, allow=ALLOW["task-3"])
def check_isolation(answers):
    r"""Check ``c_factor(n)`` (vectorised, against :func:`adcourse.vectors.isolation.c_factor`) and
    ``isolation_score(mean_path_length, psi)`` = :math:`2^{-E[h]/c(\psi)}` (the score
    ``IsolationForestDetector.anomaly_score`` gives for the mean path lengths of its trees)."""
    __tracebackhide__ = True  # noqa: F841
    _check_c_factor(answers)
    for call, got in answers.of("isolation_score"):
        h, psi = call.args
        _check_isolation_score(got, h, psi, _inputs(mean_path_length=h, psi=psi))


# --------------------------------------------------------------------------------------
# task 4: distance to the k-th nearest neighbour
# --------------------------------------------------------------------------------------


def _sorted_distances(X_train, X):
    D2 = ((X[:, None, :] - X_train[None, :, :]) ** 2).sum(axis=2)
    return np.sort(np.sqrt(D2), axis=1)


def _ordinal(i):
    suffix = "th" if 10 <= i % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(i % 10, "th")
    return f"{i}{suffix}"


def _knn_questions(rng):
    return [Call("knn_score", X_train, X, k) for X_train, X, k in [
        (np.array([[0.0], [1.0], [2.0], [3.0], [5.0]]), np.array([[1.4], [10.0]]), 2),
        (rng.normal(size=(30, 2)), rng.normal(size=(8, 2)) * 2, 1),
        (rng.normal(size=(100, 3)), rng.normal(size=(12, 3)) * 1.5, 5),
        (rng.normal(size=(60, 2)), rng.normal(size=(10, 2)) * 2, 10),
    ]]


@task(4, "knn_score", _knn_questions, uses=("knn_score",), seed=2404, allow=ALLOW["task-4"])
def check_knn_score(answers):
    r"""Check ``knn_score(X_train, X, k) -> ndarray (m,)``: the distance from each row of
    ``X`` (new samples) to its k-th nearest training sample, as
    ``KNNDetector(n_neighbors=k, method="kth").fit(X_train).anomaly_score(X)``."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.vectors.distance import KNNDetector

    for call, got in answers:
        X_train, X, k = call.args
        expected = KNNDetector(n_neighbors=k, method="kth").fit(X_train).anomaly_score(X)
        got = _as_array(got, "the value returned by knn_score", (X.shape[0],))
        if _allclose(got, expected):
            continue
        D = _sorted_distances(X_train, X)
        skip = ("with the distances sorted in increasing order the k-th nearest is at index "
                f"k - 1 = {k - 1} (the samples of X are new: none of them is in X_train, so there "
                "is nothing to skip)")
        variants = [
            ("you returned the squared distance; take its square root", expected ** 2),
            (f"off by one: that is the distance to the {_ordinal(k - 1)} nearest training sample, "
             f"not the {_ordinal(k)}; " + skip,
             D[:, k - 2] if k >= 2 else np.zeros(X.shape[0])),
            (f"off by one: that is the distance to the {_ordinal(k + 1)} nearest training sample, "
             f"not the {_ordinal(k)}; " + skip,
             D[:, k] if k < D.shape[1] else np.full(X.shape[0], np.nan)),
            ("that is the mean distance to the k nearest; the score of this task is the distance "
             "to the k-th one", D[:, :k].mean(axis=1)),
            ("you took the k-th LARGEST distance: sort in increasing order (np.sort) and take the "
             "k-th smallest", D[:, -k]),
            (f"off by one and squared: take the square root, and the index k - 1 = {k - 1} of the "
             "sorted distances", D[:, k] ** 2 if k < D.shape[1] else np.full(X.shape[0], np.nan)),
        ]
        raise _mismatch("scores", "knn_score", _inputs(X_train=X_train, X=X, k=k), expected, got,
                        variants, "the score is the Euclidean distance from x to its k-th nearest "
                        "training sample: the (k-1)-th entry of its sorted distances")


# --------------------------------------------------------------------------------------
# task 5: choose nu on normal validation data
# --------------------------------------------------------------------------------------


def _nu_table(X_train, X_val, grid):
    """{nu: (validation FPR, training outlier fraction, FPR on the training set)}."""
    from adcourse.vectors.domain import OneClassSVMDetector

    out = {}
    for nu in grid:
        det = OneClassSVMDetector(nu=nu).fit(X_train)
        out[nu] = (float(np.mean(det.anomaly_score(X_val) > 0)),
                   det.training_outlier_fraction_,
                   float(np.mean(det.anomaly_score(X_train) > 0)))
    return out


def _choose(table, target, which=0, largest=True, strict=False, order=None):
    ok = [nu for nu in (order or table) if
          (table[nu][which] < target if strict else table[nu][which] <= target)]
    if not ok:
        return None
    if order is not None:  # "the last one of the grid", whatever the grid's order
        return ok[-1] if largest else ok[0]
    return max(ok) if largest else min(ok)


def _nu_questions(rng):
    """The chapter's test beds: a fine grid, the same data with a target no nu of the grid meets
    (None), an unsorted grid (fixed data, the cases are chosen for their answers), then new
    banana data drawn from ``rng`` with a shuffled grid."""
    from adcourse.data import make_shapes_2d  # the chapter's test bed

    X_train, _ = make_shapes_2d("banana", n_normal=200, n_anomalous=0, random_state=2501)
    X_val, _ = make_shapes_2d("banana", n_normal=200, n_anomalous=0, random_state=2502)
    blobs_train, _ = make_shapes_2d("blobs", n_normal=150, n_anomalous=0, random_state=2503)
    blobs_val, _ = make_shapes_2d("blobs", n_normal=250, n_anomalous=0, random_state=2504)
    seeds = rng.integers(1, 2 ** 31, size=2)
    new_train, _ = make_shapes_2d("banana", n_normal=150, n_anomalous=0, random_state=int(seeds[0]))
    new_val, _ = make_shapes_2d("banana", n_normal=200, n_anomalous=0, random_state=int(seeds[1]))
    return [
        # validation FPR 0.07, 0.07, 0.08, 0.155, 0.195, 0.205 (training outlier
        # fractions 0, 0, 0.025, 0.08, 0.13, 0.185): nu = 0.05
        Call("choose_nu", X_train, X_val, 0.08, [0.01, 0.02, 0.05, 0.1, 0.15, 0.2]),
        # the same data, target 0.05: every nu of the grid flags more than 5 %: None
        Call("choose_nu", X_train, X_val, 0.05, [0.01, 0.02, 0.05, 0.1]),
        # an unsorted grid; validation FPR 0.076 for nu = 0.1, 0.196 for 0.2: nu = 0.1
        Call("choose_nu", blobs_train, blobs_val, 0.08, [0.1, 0.02, 0.2, 0.05, 0.01]),
        Call("choose_nu", new_train, new_val, 0.1, [float(v) for v in rng.permutation([0.02, 0.05, 0.1, 0.15, 0.2])]),
    ]


def _fmt_nu(nu):
    return "None" if nu is None else f"{nu:g}"


@task(5, "choose_nu", _nu_questions, uses=("choose_nu",), seed=2505, allow=ALLOW["task-5"])
def check_choose_nu(answers):
    r"""Check ``choose_nu(X_train, X_val, target_fpr, grid) -> float or None``: the largest
    :math:`\nu` of ``grid`` whose ``OneClassSVMDetector(nu=nu)``, fitted on ``X_train``,
    flags (``anomaly_score > 0``) at most a fraction ``target_fpr`` of the normal
    validation samples ``X_val``; None when no :math:`\nu` of the grid does."""
    __tracebackhide__ = True  # noqa: F841
    for call, got in answers:
        X_train, X_val, target, grid = call.args
        table = _nu_table(X_train, X_val, grid)
        expected = _choose(table, target)
        if got is not None:
            if isinstance(got, np.ndarray) and got.size == 1:
                got = got.item()
            got = _as_float(got, "the value returned by choose_nu")
        if (got is None and expected is None) or (
                got is not None and expected is not None and _close(got, expected)):
            continue
        rows = "; ".join(f"nu={nu:g}: validation FPR {table[nu][0]:.3f}" for nu in sorted(grid))
        where = (_inputs(X_train=X_train, X_val=X_val, target_fpr=target, grid=list(grid))
                 + f" ({len(X_train)} training and {len(X_val)} validation samples)")
        naive = [nu for nu in grid if nu <= target]
        variants = [
            (max(naive) if naive else None,
             "you returned the largest nu <= target_fpr without measuring anything: nu bounds the "
             "fraction of TRAINING samples left outside, not the false-positive rate on new data, "
             "which can be larger or smaller; measure np.mean(anomaly_score(X_val) > 0) for each nu"),
            (_choose(table, target, which=1),
             "you selected nu with the training outlier fraction (training_outlier_fraction_, "
             "which the nu-property keeps <= nu); what matters is the false-positive rate on NEW "
             "normal data: the fraction of X_val with anomaly_score > 0"),
            (_choose(table, target, which=2),
             "you measured the FPR on the training samples, which the boundary was drawn around; "
             "measure it on the normal validation samples X_val (anomaly_score(X_val) > 0)"),
            (_choose(table, target, order=list(grid)),
             "you returned the last acceptable nu in the order of the grid; the grid is not "
             "sorted: return the largest acceptable nu"),
            (_choose(table, target, largest=False),
             "you returned the SMALLEST nu whose validation FPR is <= target_fpr; return the "
             "LARGEST one (the tightest boundary, hence the most anomalies detected, that still "
             "keeps the false alarms within budget)"),
            (_choose(table, target, strict=True),
             "a validation FPR exactly equal to target_fpr is acceptable: keep nu when FPR <= "
             "target_fpr"),
        ]
        hint = None
        for value, why in variants:
            same = (value is None and got is None) or (
                value is not None and got is not None and _close(got, value))
            if same and value != expected:
                hint = why
                break
        if hint is None:
            if got is not None and not any(_close(got, nu) for nu in grid):
                hint = f"return one of the values of the grid (or None), received {got:.6g}"
            elif expected is None:
                hint = ("no nu of this grid keeps the validation FPR <= target_fpr: return None")
            else:
                hint = ("for each nu: fit OneClassSVMDetector(nu=nu) on X_train, measure "
                        "np.mean(detector.anomaly_score(X_val) > 0), keep nu if <= target_fpr; "
                        "return the largest kept nu")
        raise CheckFailed("\n".join([
            "wrong nu returned by choose_nu", where,
            f"expected {_fmt_nu(expected)}, received {_fmt_nu(got)}",
            f"(the reference measures {rows})",
            "hint: " + hint,
        ]))


#: The checks of exercise 2 by task id (the ids of the ``check`` cells' metadata).
TASKS = {
    "task-1": check_mahalanobis_scores,
    "task-2": check_em_step,
    "task-3": check_isolation,
    "task-4": check_knn_score,
    "task-5": check_choose_nu,
}
