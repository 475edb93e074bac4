r"""Checks of exercise 6, "Autoencoders" (``solutions/06-autoencoders.ipynb``).

Each check asks the student's functions questions made from the task's seed (never the
notebook's data) and compares the answers with the references of :mod:`adcourse`, imported by
the judges only: the SSIM map of :func:`adcourse.deep.losses.ssim`, the autoencoder's anomaly
map of :func:`adcourse.deep.losses.reconstruction_loss` with a threshold of
:meth:`adcourse.decision.Threshold.from_fpr`, the responsibilities and the negative
log-likelihood of chapter 2's Gaussian mixture (:mod:`adcourse.vectors.density`), and DAGMM's
mixture and energy (:func:`adcourse.deep.dagmm.gmm_parameters`,
:func:`~adcourse.deep.dagmm.gmm_energy`). A wrong answer raises
:class:`~adcourse.course.checks.CheckFailed` with the input, the expected and the received
values and, when the answer matches a typical mistake (scipy's default padding, a uniform
window, unsquared constants, the mean of the map instead of its maximum, an interpolating
quantile, no log-sum-exp, the determinant rooted twice, ...), its likely cause.

======  =====================================  =================================================
task    check                                  the student's function
======  =====================================  =================================================
task-1  :func:`check_ssim_map`                 ``ssim_map(x, y)``
task-2  :func:`check_reconstruction_threshold` ``reconstruction_threshold(images, reconstructions, fpr, lam)``
task-3  :func:`check_gmm_scores`               ``gmm_scores(codes, weights, means, covariances)``
task-4  :func:`check_dagmm_energy`             ``dagmm_energy(z_train, memberships, z_test, eps)``
======  =====================================  =================================================

What the student's functions may use (:data:`ALLOW`, enforced by the grader): NumPy and SciPy
(``scipy.ndimage.gaussian_filter``, ``scipy.special.logsumexp``, ``scipy.linalg``), never
:mod:`adcourse`, whose functions solve the tasks. Importing this module needs NumPy alone.
"""

from __future__ import annotations

import numpy as np

from adcourse.course.checks._base import Call, CheckFailed, _allclose, _as_array, _as_float, _fmt, _mismatch, task

__all__ = [
    "check_ssim_map",
    "check_reconstruction_threshold",
    "check_gmm_scores",
    "check_dagmm_energy",
    "TASKS",
]

#: What the student's functions may use, by task.
ALLOW = {
    "task-1": ("numpy", "scipy"),
    "task-2": ("numpy", "scipy"),
    "task-3": ("numpy", "scipy"),
    "task-4": ("numpy", "scipy"),
}

_C1, _C2 = 0.01**2, 0.03**2


# --------------------------------------------------------------------------------------
# task 1: the SSIM map of two images
# --------------------------------------------------------------------------------------

def _images(rng, h, w, kind):
    """A test image in [0, 1] and a second one made from it (``kind`` says how)."""
    from_noise = rng.random((h, w))
    # a smooth random image with structure: noise averaged over 3x3, stretched to [0, 1]
    x = (from_noise + np.roll(from_noise, 1, 0) + np.roll(from_noise, 1, 1)) / 3
    x = (x - x.min()) / (x.max() - x.min())
    if kind == "same":
        y = x.copy()
    elif kind == "noise":
        y = np.clip(x + 0.15 * rng.normal(size=x.shape), 0, 1)
    elif kind == "shift":
        y = np.clip(0.8 * x + 0.15, 0, 1)
    elif kind == "flat":
        x, y = np.full((h, w), 0.3), np.full((h, w), 0.3)
        y[h // 2 :, : w // 2] = 0.6
    else:  # an unrelated image
        y = rng.random((h, w))
    return x, y


def _ssim_questions(rng):
    cases = [(16, 16, "same"), (16, 16, "noise"), (20, 27, "shift"), (14, 18, "flat"), (24, 24, "other"),
             (32, 32, "noise")]
    return [Call("ssim_map", *_images(rng, h, w, kind)) for h, w, kind in cases]


def _reference_ssim(x, y):
    import torch

    from adcourse.deep.losses import ssim

    return ssim(torch.as_tensor(x[None, None], dtype=torch.float64),
                torch.as_tensor(y[None, None], dtype=torch.float64)).map[0, 0].numpy()


def _ssim_variants(x, y):
    """What typical mistakes compute: (hint, map)."""
    from scipy import ndimage

    def ssim_with(blur, c1=_C1, c2=_C2, luminance=True):
        mx, my = blur(x), blur(y)
        vx = np.maximum(blur(x * x) - mx**2, 0)
        vy = np.maximum(blur(y * y) - my**2, 0)
        cov = blur(x * y) - mx * my
        cs = (2 * cov + c2) / (vx + vy + c2)
        return cs * ((2 * mx * my + c1) / (mx**2 + my**2 + c1)) if luminance else cs

    def gauss(mode="mirror", truncate=3.5):
        return lambda a: ndimage.gaussian_filter(a, 1.5, mode=mode, truncate=truncate)

    return [
        ("scipy's default padding mode 'reflect' repeats the edge pixel; the course (and torch) pads "
         "with 'mirror': gaussian_filter(a, 1.5, truncate=3.5, mode='mirror')", ssim_with(gauss("reflect"))),
        ("gaussian_filter's default truncate=4.0 gives 13 taps; the window has 11 taps: truncate=3.5 "
         "(radius 5)", ssim_with(gauss(truncate=4.0))),
        ("that is SSIM with a uniform 11x11 window; the window is Gaussian (sigma = 1.5)",
         ssim_with(lambda a: ndimage.uniform_filter(a, 11, mode="mirror"))),
        ("your constants are not squared: C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with L = 1",
         ssim_with(gauss(), 0.01, 0.03)),
        ("the luminance factor (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) is missing",
         ssim_with(gauss(), luminance=False)),
        ("variances and covariance are local averages of products minus products of local means: "
         "sigma_xy = G*(x y) - mu_x mu_y; you averaged the global covariance",
         None),
    ]


@task(1, "ssim_map", _ssim_questions, uses=("ssim_map",), seed=6101, allow=ALLOW["task-1"])
def check_ssim_map(answers):
    r"""Check ``ssim_map(x, y) -> ndarray (H, W)``: the SSIM map of two grey images in [0, 1],
    local statistics weighted by a Gaussian window (:math:`\sigma = 1.5`, 11 taps) with mirror
    padding, :math:`C_1 = 0.01^2`, :math:`C_2 = 0.03^2`."""
    __tracebackhide__ = True  # noqa: F841
    for call, got in answers:
        x, y = call.args
        where = f"on two images x, y of shape {x.shape} (x={_fmt(x)}, y={_fmt(y)})"
        expected = _reference_ssim(x, y)
        got = _as_array(got, "the SSIM map returned by ssim_map", x.shape)
        if _allclose(got, expected, 1e-6):
            continue
        raise _mismatch("SSIM map", "ssim_map", where, expected, got, _ssim_variants(x, y),
                        "SSIM(c) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + "
                        "sigma_y^2 + C2)), every local statistic a Gaussian average", lead=1, name="map")


# --------------------------------------------------------------------------------------
# task 2: the reconstruction-error threshold on validation images
# --------------------------------------------------------------------------------------

def _validation_set(rng, n, size):
    """n validation images and imperfect reconstructions of them (smoothed, with a small error)."""
    images = np.stack([_images(rng, size, size, "same")[0] for _ in range(n)])
    smooth = (images + np.roll(images, 1, 1) + np.roll(images, 1, 2) + np.roll(images, -1, 1)) / 4
    reconstructions = np.clip(smooth + 0.03 * rng.normal(size=images.shape), 0, 1)
    return images, reconstructions


def _threshold_questions(rng):
    out = []
    for n, size, fpr, lam in [(10, 16, 0.1, 1.0), (20, 16, 0.05, 1.0), (25, 20, 0.2, 0.5), (12, 16, 0.01, 2.0),
                              (30, 14, 0.1, 0.0)]:
        images, reconstructions = _validation_set(rng, n, size)
        out.append(Call("reconstruction_threshold", images, reconstructions, fpr, lam))
    return out


def _reference_parts(images, reconstructions):
    """The two terms of the per-pixel loss: (s - s_hat)^2 and 1 - SSIM, each (n, H, W)."""
    import torch

    from adcourse.deep.losses import reconstruction_loss

    x = torch.as_tensor(images[:, None], dtype=torch.float64)
    x_hat = torch.as_tensor(reconstructions[:, None], dtype=torch.float64)
    squared = reconstruction_loss(x, x_hat, "l2").map.numpy()
    structural = reconstruction_loss(x, x_hat, "ssim", weight=1.0).map.numpy() - squared
    return squared, structural


@task(2, "reconstruction_threshold", _threshold_questions, uses=("reconstruction_threshold",), seed=6202,
      allow=ALLOW["task-2"])
def check_reconstruction_threshold(answers):
    r"""Check ``reconstruction_threshold(images, reconstructions, fpr, lam) -> float``: the anomaly
    map :math:`(s(c) - \hat s(c))^2 + \lambda(1 - \mathrm{SSIM}(c))` of every validation image,
    the image score its maximum, and :math:`\gamma` the smallest threshold that detects
    :math:`m = \lfloor n \cdot \text{fpr} \rfloor` of the :math:`n` validation images (the
    :math:`m`-th largest score; just above the largest when :math:`m = 0`)."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.decision import Threshold

    def gamma(maps, reduce="max"):
        flat = maps.reshape(len(maps), -1)
        return Threshold.from_fpr(flat.max(axis=1) if reduce == "max" else flat.mean(axis=1), fpr).value

    for call, got in answers:
        images, reconstructions, fpr, lam = call.args
        n = len(images)
        where = (f"on n = {n} validation images of {images.shape[1]}x{images.shape[2]} and their "
                 f"reconstructions, fpr = {fpr}, lam = {lam}")
        squared, structural = _reference_parts(images, reconstructions)
        maps = squared + lam * structural
        scores = maps.reshape(n, -1).max(axis=1)
        expected = gamma(maps)
        value = _as_float(got, "the threshold returned by reconstruction_threshold")
        if abs(value - expected) <= 1e-6 * max(1.0, abs(expected)):
            continue
        m = int(np.floor(n * fpr + 1e-9))
        s_sorted = np.sort(scores)[::-1]
        variants = [
            ("your image score is the mean of the map; the course scores an image by the maximum of its map",
             gamma(maps, "mean")),
            ("that is numpy's interpolating quantile np.quantile(scores, 1 - fpr); the threshold must be a "
             f"score itself: the m-th largest, m = floor(n fpr) = {m}", float(np.quantile(scores, 1 - fpr))),
            ("that is the (m+1)-th largest score: it detects m + 1 validation images; take the m-th "
             f"largest (m = floor(n fpr) = {m})", float(s_sorted[m]) if m < n else None),
            ("the map is (s - s_hat)^2 + lam (1 - SSIM): the structural term is missing", gamma(squared)),
            ("the map is (s - s_hat)^2 + lam (1 - SSIM): the squared error is missing", gamma(lam * structural)),
            ("lam weights the structural term 1 - SSIM, not the squared error", gamma(lam * squared + structural)),
            ("the structural term is 1 - SSIM, not SSIM", gamma(squared + lam * (1 - structural))),
        ]
        hint = next((h for h, v in variants if v is not None and abs(value - v) <= 1e-6 * max(1.0, abs(v))
                     and abs(v - expected) > 1e-6 * max(1.0, abs(expected))), None)
        if hint is None:
            detected = int(np.sum(scores >= value))
            hint = (f"your threshold detects {detected} of the {n} validation images; it must detect "
                    f"m = floor(n fpr) = {m}, and be the smallest such value (a score itself"
                    + (", or just above the largest score when m = 0)" if m == 0 else ")"))
        raise CheckFailed(f"wrong threshold returned by reconstruction_threshold\n{where}\n"
                          f"expected {_fmt(expected)}\nreceived {_fmt(value)}\nhint: {hint}")


# --------------------------------------------------------------------------------------
# task 3: responsibilities and score of codes under a Gaussian mixture
# --------------------------------------------------------------------------------------

def _mixture(rng, K, d, spread=1.0):
    weights = rng.dirichlet(np.ones(K) * 2)
    means = rng.normal(scale=3 * spread, size=(K, d))
    A = rng.normal(scale=spread, size=(K, d, d))
    covariances = A @ np.transpose(A, (0, 2, 1)) + 0.2 * spread**2 * np.eye(d)
    return weights, means, covariances


def _codes(rng, means, n, far=0):
    K, d = means.shape
    z = means[rng.integers(K, size=n)] + rng.normal(size=(n, d))
    if far:
        z[:far] = 60.0 + 20 * rng.random((far, d))  # far from every component: exp() underflows
    return z


def _gmm_questions(rng):
    out = []
    for n, K, d, far in [(6, 2, 2, 0), (40, 3, 2, 0), (25, 4, 5, 0), (30, 2, 3, 2), (1, 1, 2, 0)]:
        params = _mixture(rng, K, d)
        out.append(Call("gmm_scores", _codes(rng, params[1], n, far), *params))
    return out


def _reference_gmm(codes, weights, means, covariances):
    from adcourse.vectors.density import _gmm_cholesky, _gmm_log_joint, _log_sum_exp

    log_joint = _gmm_log_joint(codes, weights, means, _gmm_cholesky(covariances, 0.0))
    log_like = _log_sum_exp(log_joint)
    return np.exp(log_joint - log_like[:, None]), -log_like, log_joint


@task(3, "gmm_scores", _gmm_questions, uses=("gmm_scores",), seed=6303, allow=ALLOW["task-3"])
def check_gmm_scores(answers):
    r"""Check ``gmm_scores(codes, weights, means, covariances) -> (responsibilities, scores)``:
    the E-step :math:`r_{ik} = \pi_k\mathcal N(\mathbf z_i\mid\mu_k,\Sigma_k) / \sum_j
    \pi_j\mathcal N(\mathbf z_i\mid\mu_j,\Sigma_j)` (n, K) and the feature-monitoring score
    :math:`-\log\sum_k \pi_k\mathcal N(\mathbf z_i\mid\mu_k,\Sigma_k)` (n,), finite and exact for
    codes far from every component (log-sum-exp)."""
    __tracebackhide__ = True  # noqa: F841
    from scipy.stats import multivariate_normal

    for call, got in answers:
        codes, weights, means, covariances = call.args
        n, d = codes.shape
        K = len(weights)
        far = bool(np.any(codes > 50))
        where = (f"on n = {n} codes of dimension d = {d}, a mixture of K = {K} components"
                 + (" (the first codes lie far from every component)" if far else "")
                 + f"\nweights={_fmt(weights)}, means={_fmt(means)}")
        r_exp, s_exp, log_joint = _reference_gmm(codes, weights, means, covariances)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailed(f"gmm_scores must return two arrays (responsibilities (n, K), scores (n,)), "
                              f"received {type(got).__name__}\n{where}")
        r = _as_array(got[0], "the responsibilities returned by gmm_scores", (n, K))
        s = _as_array(got[1], "the scores returned by gmm_scores", (n,))
        lse_hint = ("far from every component pi_k N(z | mu_k, Sigma_k) underflows to 0: compute "
                    "log pi_k + log N(z | mu_k, Sigma_k) and use log-sum-exp (scipy.special.logsumexp), "
                    "r_ik = exp(a_ik - logsumexp_k a_ik)")
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(s))):
            raise CheckFailed(f"gmm_scores returned NaN or inf\n{where}\nhint: {lse_hint}")
        if not _allclose(r, r_exp, 1e-6):
            dens = np.exp(log_joint)
            variants = [
                ("you normalised over the codes (each column sums to 1); normalise over the components: "
                 "each ROW of r sums to 1", dens / dens.sum(axis=0, keepdims=True)),
                ("the mixing weights pi_k are missing from the numerator and the denominator",
                 (lambda a: np.exp(a - a.max(1, keepdims=True)) / np.exp(a - a.max(1, keepdims=True)).sum(
                     1, keepdims=True))(log_joint - np.log(weights)[None])),
            ]
            raise _mismatch("responsibilities", "gmm_scores", where, r_exp, r, variants,
                            "r_ik = pi_k N(z_i | mu_k, Sigma_k) / sum_j pi_j N(z_i | mu_j, Sigma_j)", lead=1,
                            name="r")
        if not _allclose(s, s_exp, 1e-6):
            logpdf = np.stack([multivariate_normal(m, c).logpdf(codes).reshape(n) for m, c in
                               zip(means, covariances)], axis=1)
            dets = np.array([np.linalg.slogdet(c)[1] for c in covariances])
            variants = [
                ("that is the log-likelihood; the anomaly score is its NEGATIVE, -log sum_k pi_k N(z | mu_k, "
                 "Sigma_k) (higher = more anomalous)", -s_exp),
                ("the term -1/2 log|Sigma_k| of log N is missing",
                 -np.logaddexp.reduce(np.log(weights) + logpdf + 0.5 * dets, axis=1)),
                ("the term -d/2 log(2 pi) of log N is missing",
                 s_exp - 0.5 * d * np.log(2 * np.pi)),
                ("the mixing weights are missing: sum_k pi_k N(...), not sum_k N(...)",
                 -np.logaddexp.reduce(logpdf, axis=1)),
            ]
            raise _mismatch("scores", "gmm_scores", where, s_exp, s, variants,
                            lse_hint if far else "score = -log sum_k pi_k N(z | mu_k, Sigma_k)")


# --------------------------------------------------------------------------------------
# task 4: DAGMM's mixture from memberships and the energy of new samples
# --------------------------------------------------------------------------------------

def _dagmm_questions(rng):
    out = []
    for n, m, K, d, eps, far in [(8, 3, 2, 2, 1e-6, 0), (64, 20, 4, 3, 1e-6, 0), (40, 10, 3, 3, 1e-3, 2),
                                 (32, 5, 1, 2, 1e-6, 0), (50, 12, 4, 4, 1e-6, 1)]:
        params = _mixture(rng, K, d, spread=0.3)
        z_train = _codes(rng, params[1], n)
        logits = rng.normal(scale=2.0, size=(n, K))
        memberships = np.exp(logits - logits.max(1, keepdims=True))
        memberships /= memberships.sum(1, keepdims=True)
        out.append(Call("dagmm_energy", z_train, memberships, _codes(rng, params[1], m, far), eps))
    return out


def _reference_dagmm(z_train, memberships, z_test, eps):
    import torch

    from adcourse.deep.dagmm import gmm_energy, gmm_parameters

    t = [torch.as_tensor(a, dtype=torch.float64) for a in (z_train, memberships, z_test)]
    phi, mu, cov = gmm_parameters(t[0], t[1])
    return (gmm_energy(t[2], phi, mu, cov, eps).numpy(),
            tuple(v.numpy() for v in (phi, mu, cov)))


def _energy(z, phi, mu, cov, eps, root_twice=False, with_eps=True):
    """The energy by hand (float64), optionally with a mistake."""
    d = z.shape[1]
    out = []
    for k in range(len(phi)):
        c = cov[k] + (eps * np.eye(d) if with_eps else 0)
        L = np.linalg.cholesky(c)
        y = np.linalg.solve(L, (z - mu[k]).T)
        half_logdet = np.log(np.diag(L)).sum()
        if root_twice:
            half_logdet = 0.5 * half_logdet
        out.append(np.log(phi[k]) - 0.5 * (y**2).sum(0) - half_logdet - 0.5 * d * np.log(2 * np.pi))
    return -np.logaddexp.reduce(np.stack(out, 1), axis=1)


@task(4, "dagmm_energy", _dagmm_questions, uses=("dagmm_energy",), seed=6404, allow=ALLOW["task-4"])
def check_dagmm_energy(answers):
    r"""Check ``dagmm_energy(z_train, memberships, z_test, eps) -> ndarray (m,)``: the mixture of
    the memberships :math:`\hat r_{ik}` of the training samples (:math:`\hat\pi_k = \frac1n\sum_i
    \hat r_{ik}`, weighted means and covariances), then the energy
    :math:`E(\mathbf z) = -\log\sum_k \hat\pi_k\mathcal N(\mathbf z\mid\hat\mu_k, \hat\Sigma_k + \varepsilon I)`
    of every test sample, finite for samples far from every component."""
    __tracebackhide__ = True  # noqa: F841
    for call, got in answers:
        z_train, memberships, z_test, eps = call.args
        (n, d), (m, K) = z_train.shape, (len(z_test), memberships.shape[1])
        far = bool(np.any(z_test > 50))
        where = (f"on n = {n} training samples z_train (d = {d}) with memberships (n, K = {K}), "
                 f"m = {m} test samples z_test, eps = {eps}"
                 + (" (the first test samples lie far from every component)" if far else ""))
        expected, (phi, mu, cov) = _reference_dagmm(z_train, memberships, z_test, eps)
        e = _as_array(got, "the energies returned by dagmm_energy", (m,))
        if not np.all(np.isfinite(e)):
            raise CheckFailed(f"dagmm_energy returned NaN or inf\n{where}\nhint: far from every component "
                              "the densities underflow to 0 and log(0) = -inf; compute log phi_k + log N(z | "
                              "mu_k, Sigma_k) and use log-sum-exp (a maximum taken over the exponents "
                              "themselves, not clamped at 0)")
        if _allclose(e, expected, 1e-6):
            continue
        n_k = memberships.sum(0)
        mu_old = memberships.T @ z_train / n_k[:, None]
        unweighted = np.stack([np.cov(z_train.T, bias=True)] * K)
        variants = [
            ("the determinant is square-rooted twice: the product of the Cholesky diagonal is already "
             "sqrt(|Sigma|) (log|Sigma| = 2 sum_j log L_jj)", _energy(z_test, phi, mu, cov, eps, root_twice=True)),
            ("eps is missing: add eps I to every covariance before factorising it",
             _energy(z_test, phi, mu, cov, eps, with_eps=False)),
            ("the mixing weights are pi_k = sum_i r_ik / n (they sum to 1), not sum_i r_ik",
             _energy(z_test, n_k, mu, cov, eps)),
            ("each covariance is weighted by its memberships: Sigma_k = sum_i r_ik (z_i - mu_k)(z_i - mu_k)^T "
             "/ sum_i r_ik", _energy(z_test, phi, mu_old, unweighted, eps)),
            ("that is the log-likelihood; the energy is its negative", -expected),
        ]
        raise _mismatch("energies", "dagmm_energy", where, expected, e, variants,
                        "pi_k = mean_i r_ik, mu_k = sum_i r_ik z_i / sum_i r_ik, Sigma_k = sum_i r_ik (z_i - mu_k)"
                        "(z_i - mu_k)^T / sum_i r_ik; E(z) = -log sum_k pi_k N(z | mu_k, Sigma_k + eps I)")


TASKS = {
    "task-1": check_ssim_map,
    "task-2": check_reconstruction_threshold,
    "task-3": check_gmm_scores,
    "task-4": check_dagmm_energy,
}
