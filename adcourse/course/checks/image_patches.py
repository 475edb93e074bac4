r"""Checks of exercise 3, "Image patches" (``solutions/03-image-patches.ipynb``).

Each check asks the student's function questions on data it makes itself (from
the task's seed, never the notebook's data) and compares the answers with what
chapter 3's code computes: :func:`~adcourse.images.patches.extract_patches` and
:func:`~adcourse.images.patches.patches_as_vectors`,
:func:`~adcourse.images.patches.patch_scores_to_map`,
:class:`~adcourse.images.subspace.PCADetector`, and the two energies that
:class:`~adcourse.images.subspace.PCAFeatureDetector` monitors. A wrong answer raises
:class:`~adcourse.course.checks.CheckFailed` with the input, the expected and the
received values and, when the answer matches a typical mistake (patches in
column order, a grid one patch too small, sums instead of means, the last
principal directions instead of the first, ...), what the mistake probably was.

======  =================================  =============================================
task    check                              the student's function
======  =================================  =============================================
task-1  :func:`check_extract_all_patches`  ``extract_all_patches(image, p)``
task-2  :func:`check_average_map`          ``average_map(patch_scores, image_shape, p)``
task-3  :func:`check_pca_directions`       ``pca_directions(X, m)``
task-4  :func:`check_two_energies`         ``two_energies(S, mean, P)``
======  =================================  =============================================

:mod:`adcourse.images.patches` and :mod:`adcourse.images.subspace` are imported inside the
judges (the latter pulls in scikit-learn). Every task asks for plain NumPy (:data:`ALLOW`):
the student's functions may not call the chapter's code that solves them.
"""

from __future__ import annotations

import numpy as np

from adcourse.course.checks._base import (
    Call,
    CheckFailed,
    _allclose,
    _as_array,
    _fmt,
    _inputs,
    _mismatch,
    task,
)

__all__ = [
    "check_extract_all_patches",
    "check_average_map",
    "check_pca_directions",
    "check_two_energies",
    "TASKS",
]


#: What the student's functions may use in every task: plain NumPy (and the standard library).
ALLOW = ("numpy",)

# --------------------------------------------------------------------------------------
# helpers (also used by exercise 4's checks)
# --------------------------------------------------------------------------------------


def _pair_of_arrays(value, func, names, shapes):
    """The two (or more) arrays a function returns as a tuple, each of its shape, or CheckFailed."""
    k = len(names)
    if isinstance(value, np.ndarray) or not isinstance(value, (tuple, list)) or len(value) != k:
        what = (f"an array of shape {value.shape}" if isinstance(value, np.ndarray)
                else f"{type(value).__name__}"
                + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
        raise CheckFailed(f"{func} must return {k} arrays, ({', '.join(names)}), received {what}")
    return [_as_array(v, f"{n} (returned by {func})", s) for v, n, s in zip(value, names, shapes)]


def _grid(image, p):
    """All p x p patches of one image, stride 1, as an array (nH, nW, p, p) (a copy)."""
    H, W = image.shape
    nh, nw = H - p + 1, W - p + 1
    return np.array([[image[i:i + p, j:j + p] for j in range(nw)] for i in range(nh)])


# --------------------------------------------------------------------------------------
# task 1: all the patches of one image, as vectors
# --------------------------------------------------------------------------------------


def _patch_questions(rng):
    return [Call("extract_all_patches", image, p) for image, p in _patch_cases(rng)]


def _patch_cases(rng):
    # positions as values first: a patch tells where it comes from
    yield np.arange(20.0).reshape(4, 5), 2
    yield np.arange(42.0).reshape(6, 7), 3
    yield rng.random((9, 12)), 4
    yield rng.random((11, 8)), 5
    yield rng.random((6, 6)), 6  # one patch: the whole image
    yield rng.random((5, 3)), 1


def _shape_hint(got_shape, H, W, p):
    nh, nw = H - p + 1, W - p + 1
    n, d = nh * nw, p * p
    if got_shape == (n, p, p):
        return "you returned p x p patches: flatten each one to a row of p*p numbers (reshape(n, p * p))"
    if got_shape == (nh, nw, p, p) or got_shape == (nh, nw, d):
        return ("you returned the grid of patches: one row per patch, (n_patches, p*p), with "
                "reshape(-1, p * p)")
    if got_shape == (d, n):
        return "one ROW per patch, (n_patches, p*p): you returned one patch per column (transpose)"
    if len(got_shape) == 2 and got_shape[1] == d:
        if got_shape[0] == (H - p) * (W - p):
            return (f"off by one: a {H}x{W} image has (H - p + 1) x (W - p + 1) = {nh} x {nw} = "
                    f"{n} patch positions, you returned {got_shape[0]} = {H - p} x {W - p} "
                    "(range(H - p) stops one position early: use range(H - p + 1))")
        if got_shape[0] == (H - p + 2) * (W - p + 2) or got_shape[0] == H * W:
            return (f"a {H}x{W} image has only (H - p + 1) x (W - p + 1) = {n} WHOLE p x p "
                    f"patches; you returned {got_shape[0]} (patches running off the border?)")
    return f"a {H}x{W} image has (H - p + 1) x (W - p + 1) = {n} patches of p*p = {d} pixels"


@task(1, "extract_all_patches", _patch_questions, uses=("extract_all_patches",), seed=3101,
      allow=ALLOW)
def check_extract_all_patches(answers):
    r"""Check ``extract_all_patches(image, p) -> ndarray (n_patches, p*p)``: every p x p patch
    of one 2-D image (stride 1), one per row, read row by row, in the row-major order of their
    top-left corners: ``patches_as_vectors(extract_patches(image[None], p))``."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.images.patches import extract_patches, patches_as_vectors

    for call, raw in answers:
        image, p = call.args
        H, W = image.shape
        expected = patches_as_vectors(extract_patches(image[None], p))
        where = _inputs(image=image, p=p) + f" (a {H}x{W} image)"
        try:
            arr = np.asarray(raw, dtype=float)
        except (TypeError, ValueError):
            raise CheckFailed(f"extract_all_patches must return an array of numbers, received "
                              f"{type(raw).__name__}") from None
        if arr.shape != expected.shape:
            raise CheckFailed(
                f"wrong shape of the array returned by extract_all_patches\n{where}\n"
                f"expected shape {expected.shape}, received shape {arr.shape}\n"
                "hint: " + _shape_hint(arr.shape, H, W, p))
        if _allclose(arr, expected, 1e-12):
            continue
        grid = _grid(image, p)
        nh, nw = grid.shape[:2]
        column_major = grid.transpose(1, 0, 2, 3)
        variants = [
            ("the right patches in the wrong order: the rows must follow the top-left corners "
             "(i, j) row by row, i.e. j (the column) changes fastest: for i in range(H - p + 1): "
             "for j in range(W - p + 1)", column_major.reshape(nh * nw, -1)),
            ("each patch is read column by column (transposed): flatten image[i:i+p, j:j+p] row by "
             "row, with .ravel() or .reshape(-1) (C order)",
             grid.swapaxes(-1, -2).reshape(nh * nw, -1)),
            ("the patches are in column order AND transposed: take image[i:i+p, j:j+p] (rows i.., "
             "columns j..) with j changing fastest, flattened row by row",
             column_major.swapaxes(-1, -2).reshape(nh * nw, -1)),
        ]
        bad = int(np.flatnonzero(~np.all(np.isclose(arr, expected, rtol=0, atol=1e-12), axis=1))[0])
        i, j = divmod(bad, nw)
        same_rows = np.array_equal(np.unique(arr, axis=0), np.unique(expected, axis=0))
        default = (f"row {bad} must be the patch with top-left corner ({i}, {j}): "
                   f"image[{i}:{i + p}, {j}:{j + p}].ravel() = {_fmt(expected[bad])}, you returned "
                   f"{_fmt(arr[bad])}")
        if same_rows:
            default = ("the right patches in the wrong order; " + default)
        raise _mismatch("patches", "extract_all_patches", where, expected, arr, variants, default,
                        tol=1e-12)


# --------------------------------------------------------------------------------------
# task 2: patch scores back to a pixel map, by averaging
# --------------------------------------------------------------------------------------


def _coverage(n_grid, length, p):
    """For each pixel 0..length-1 of one axis, the number of patch positions covering it."""
    starts = np.arange(n_grid)
    pixels = np.arange(length)
    return ((pixels[:, None] >= starts) & (pixels[:, None] < starts + p)).sum(axis=1)


def _sum_map(scores, image_shape, p):
    H, W = image_shape
    out = np.zeros((H, W))
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            out[i:i + p, j:j + p] += scores[i, j]
    return out


def _average_questions(rng):
    return [Call("average_map", scores, shape, p) for scores, shape, p in [
        (np.arange(12.0).reshape(3, 4), (5, 6), 3),
        (rng.exponential(size=(7, 4)), (8, 5), 2),
        (rng.normal(size=(12, 9)), (16, 13), 5),
        (rng.random((4, 6)), (4, 6), 1),
    ]]


@task(2, "average_map", _average_questions, uses=("average_map",), seed=3202, allow=ALLOW)
def check_average_map(answers):
    r"""Check ``average_map(patch_scores, image_shape, p) -> ndarray (H, W)``: each pixel gets
    the mean of the scores of all the p x p patches (stride 1) that contain it, as
    ``patch_scores_to_map(patch_scores, image_shape, p, mode="average")``."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.images.patches import patch_scores_to_map

    for call, got in answers:
        scores, shape, p = call.args
        expected = patch_scores_to_map(scores, shape, p, mode="average")[0]
        got = _as_array(got, "the map returned by average_map", shape)
        if _allclose(got, expected, 1e-9):
            continue
        total = _sum_map(scores, shape, p)
        count = np.outer(_coverage(scores.shape[0], shape[0], p), _coverage(scores.shape[1], shape[1], p))
        variants = [
            ("you returned the SUM of the scores of the covering patches; divide by their number "
             "(which is smaller near the borders)", total),
            ("you divided by p*p: pixels near the border are covered by fewer patches than p*p; "
             "divide by the number of patches that actually contain each pixel (accumulate a count "
             "map alongside the sum)", total / p ** 2),
            ("that is the centre assignment (each patch's score given to its centre pixel, the "
             "others copied from the nearest centre); this task averages the scores of ALL the "
             "patches that contain the pixel", patch_scores_to_map(scores, shape, p, mode="centre")[0]),
            ("you returned the number of patches covering each pixel; the map is the sum of their "
             "scores divided by that number", count.astype(float)),
        ]
        where = f"on the input patch_scores={_fmt(scores)}, image_shape={shape!r}, p={p}"
        raise _mismatch("map", "average_map", where,
                        expected, got, variants,
                        "for every patch (i, j): add its score to sums[i:i+p, j:j+p] and 1 to "
                        "counts[i:i+p, j:j+p]; the map is sums / counts", tol=1e-9)


# --------------------------------------------------------------------------------------
# task 3: the first m principal directions
# --------------------------------------------------------------------------------------


def _pca_data(rng, n, scales, shift=4.0):
    """n samples with distinct variances scales**2 along random orthonormal directions, far from 0."""
    d = len(scales)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    mean = shift + rng.normal(size=d)
    return rng.normal(size=(n, d)) * scales @ Q.T + mean


def _pca_questions(rng):
    return [Call("pca_directions", X, m) for X, m in _pca_cases(rng)]


def _pca_cases(rng):
    yield _pca_data(rng, 300, np.array([4.0, 2.5, 1.5, 1.0, 0.6, 0.3])), 2
    yield _pca_data(rng, 200, np.array([5.0, 3.0, 2.2, 1.6, 1.1, 0.8, 0.5, 0.3, 0.1])), 4
    yield _pca_data(rng, 120, np.array([2.0, 1.0, 0.5, 0.25])), 1


def _eig(M):
    """Eigenvectors of a symmetric matrix as columns, eigenvalues decreasing."""
    w, V = np.linalg.eigh(M)
    return V[:, ::-1]


def _projector(P):
    return P @ P.T


@task(3, "pca_directions", _pca_questions, uses=("pca_directions",), seed=3303, allow=ALLOW)
def check_pca_directions(answers):
    r"""Check ``pca_directions(X, m) -> (mean, P)``: the mean of the rows of ``X`` and a
    ``(d, m)`` matrix whose orthonormal columns span the first ``m`` principal directions of
    the rows of ``X``. The subspace is compared through the projector :math:`PP^\top`
    (independent of the signs and of the basis chosen), with ``PCADetector(m).fit(X)``."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.images.subspace import PCADetector

    for call, value in answers:
        X, m = call.args
        n, d = X.shape
        where = _inputs(X=X, m=m) + f" ({n} samples of dimension d = {d})"
        if isinstance(value, (tuple, list)) and len(value) == 2:
            P_raw = np.asarray(value[1], dtype=float)
            if P_raw.shape == (m, d) and m != d:
                raise CheckFailed(
                    f"wrong shape of P returned by pca_directions\n{where}\nexpected shape "
                    f"{(d, m)}, received {P_raw.shape}\nhint: you returned the directions as ROWS; "
                    "P has one direction per COLUMN, (d, m) (np.linalg.eigh returns the "
                    "eigenvectors as the columns of its second output: take eigvecs[:, order[:m]])")
        mean, P = _pair_of_arrays(value, "pca_directions", ["mean", "P"], [(d,), (d, m)])
        det = PCADetector(n_components=m).fit(X)
        if not _allclose(mean, det.mean_, 1e-9):
            raise _mismatch("mean", "pca_directions", where, det.mean_, mean, [],
                            "the mean of the rows of X: X.mean(axis=0)")
        gram = P.T @ P
        if not _allclose(gram, np.eye(m), 1e-6):
            norms = np.sqrt(np.diag(gram))
            raise CheckFailed(
                f"the columns of P returned by pca_directions are not orthonormal\n{where}\n"
                f"P^T P should be the identity, received {_fmt(gram)} (column norms {_fmt(norms)})\n"
                "hint: return unit-norm eigenvectors of the covariance (those of np.linalg.eigh "
                "are), not scaled by their eigenvalues or by anything else")
        expected = _projector(det.components_.T)
        got = _projector(P)
        if _allclose(got, expected, 1e-6):
            continue
        centred = X - X.mean(axis=0)
        cov = centred.T @ centred / n
        V = _eig(cov)
        w, V_inc = np.linalg.eigh(cov)  # increasing, as eigh returns them
        variants = [
            ("you did not centre X: the principal directions are the eigenvectors of the COVARIANCE "
             "(X - mean)^T (X - mean) / n; those of X^T X / n point towards the mean",
             _projector(_eig(X.T @ X / n)[:, :m])),
            ("those are the LAST m principal directions (the smallest variances): np.linalg.eigh "
             "returns the eigenvalues in INCREASING order, so take the last m columns (or sort the "
             "eigenvalues in decreasing order first: np.argsort(eigvals)[::-1])",
             _projector(V_inc[:, :m])),
            ("you took ROWS of the eigenvector matrix: np.linalg.eigh returns the eigenvectors as "
             "its COLUMNS, eigvecs[:, i]", _projector(V_inc[-m:, :].T)),
            ("you took ROWS of the eigenvector matrix: np.linalg.eigh returns the eigenvectors as "
             "its COLUMNS, eigvecs[:, i]", _projector(V_inc[:m, :].T)),
            ("you took ROWS of the eigenvector matrix: np.linalg.eigh returns the eigenvectors as "
             "its COLUMNS, eigvecs[:, i]", _projector(V[:m, :].T)),
        ]
        top = det.explained_variance_ * (n - 1) / n
        captured = np.trace(P.T @ cov @ P)
        raise _mismatch(
            "subspace", "pca_directions", where + " (the subspaces compared through P P^T)",
            expected, got, variants,
            f"your directions capture a variance of {captured:.4g}, the first {m} principal "
            f"directions {top.sum():.4g}: P = the eigenvectors of the covariance of X with the "
            f"{m} largest eigenvalues, as columns")


# --------------------------------------------------------------------------------------
# task 4: residual and projection energies
# --------------------------------------------------------------------------------------


def _energies(S, mean, P, centre=True, recon_mean=True):
    r = S - mean if centre else S
    z = r @ P
    resid = (r if recon_mean else S) - z @ P.T
    return np.einsum("ij,ij->i", resid, resid), np.einsum("ij,ij->i", z, z)


def _subspace(X, m):
    """The mean and the first m principal directions (columns) of the rows of X."""
    mean = X.mean(axis=0)
    return mean, _eig((X - mean).T @ (X - mean) / X.shape[0])[:, :m]


def _energy_questions(rng):
    """Rows near a fitted subspace, rows off it and the mean itself; then scaled training rows."""
    scales = np.array([3.0, 2.0, 1.2, 0.4, 0.3, 0.2, 0.1])
    X = _pca_data(rng, 400, scales)
    S = np.r_[_pca_data(rng, 6, scales), X.mean(axis=0) + rng.normal(size=(3, 7)) * 2.0,
              np.tile(X.mean(axis=0), (1, 1))]  # normal rows, off-subspace rows, the mean itself
    calls = [Call("two_energies", S, *_subspace(X, 3))]
    X = _pca_data(rng, 200, np.array([2.0, 1.5, 0.3, 0.2]), shift=2.0)
    calls.append(Call("two_energies", X[:8] * 1.5, *_subspace(X, 1)))
    return calls


@task(4, "two_energies", _energy_questions, uses=("two_energies",), seed=3404, allow=ALLOW)
def check_two_energies(answers):
    r"""Check ``two_energies(S, mean, P) -> (residual_energy, projection_energy)``: for each
    row :math:`\mathbf{s}` of ``S``, with :math:`\mathbf{r} = \mathbf{s} - \mu`,
    :math:`\|\mathbf{r} - PP^\top\mathbf{r}\|^2` and :math:`\|P^\top\mathbf{r}\|^2` (the two
    energies whose logarithms :class:`~adcourse.images.subspace.PCAFeatureDetector` monitors)."""
    __tracebackhide__ = True  # noqa: F841
    for call, value in answers:
        S, mean, P = call.args
        n = S.shape[0]
        where = _inputs(S=S, mean=mean, P=P) + f" ({n} rows, a subspace of dimension {P.shape[1]})"
        res, proj = _pair_of_arrays(value, "two_energies",
                                    ["residual_energy", "projection_energy"], [(n,), (n,)])
        exp_res, exp_proj = _energies(S, mean, P)
        if _allclose(res, exp_res) and _allclose(proj, exp_proj):
            continue
        if _allclose(res, exp_proj) and _allclose(proj, exp_res):
            raise CheckFailed(
                f"two_energies returned the two energies in the wrong order\n{where}\n"
                "hint: return (residual_energy, projection_energy): the energy OUTSIDE the "
                "subspace first, the energy of the projection second")
        eps = 1e-8
        nc_res, nc_proj = _energies(S, mean, P, centre=False)
        common = [
            ("you did not subtract the mean: the energies are those of r = s - mean, not of s", None),
            ("you returned the logarithms (PCAFeatureDetector monitors log-energies); this task "
             "asks for the energies themselves", None),
            ("you returned norms: the energies are SQUARED norms (np.sum(v ** 2, axis=1))", None),
        ]
        for got, expected, name, nc, sq_hint, extra in [
            (res, exp_res, "residual_energy", nc_res,
             "||r - P P^T r||^2 with r = s - mean",
             [("your residual is s - P P^T r: the reconstruction of s is mean + P P^T r, so the "
               "residual is r - P P^T r with r = s - mean (the mean must be subtracted from s too)",
               _energies(S, mean, P, recon_mean=False)[0])]),
            (proj, exp_proj, "projection_energy", nc_proj,
             "||P^T r||^2 = sum of the squared coefficients z = P^T r, with r = s - mean", []),
        ]:
            if _allclose(got, expected):
                continue
            with np.errstate(divide="ignore"):
                logs = np.log(expected)
            variants = [(common[0][0], nc), (common[1][0], np.log(expected + eps)),
                        (common[1][0], logs), (common[2][0], np.sqrt(expected)), *extra]
            raise _mismatch(name, "two_energies", where, expected, got, variants,
                            f"{name} of each row: " + sq_hint)


#: The checks of exercise 3 by task id (the ids of the ``check`` cells' metadata).
TASKS = {
    "task-1": check_extract_all_patches,
    "task-2": check_average_map,
    "task-3": check_pca_directions,
    "task-4": check_two_energies,
}
