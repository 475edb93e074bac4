r"""Checks of exercise 7, "Self-supervision" (``solutions/07-self-supervision.ipynb``).

Each check asks the student's functions questions made from the task's seed (never the
notebook's data) and compares the answers with the reference of
:mod:`adcourse.deep.selfsup` and :mod:`adcourse.deep.inpainting`, imported by the judges
only: the labelled set :math:`TR_{new}` of a set of transformations
(:class:`~adcourse.deep.selfsup.TRNew` orders it the same way), the simple score of GEOM from
given posteriors (:func:`~adcourse.deep.selfsup.simple_score`), the Dirichlet log-density
(:func:`~adcourse.deep.selfsup.dirichlet_log_pdf`, the same numbers as
``scipy.stats.dirichlet.logpdf``), random tile masks that partition an image (judged by their
properties: a random answer has no single right value) and the inpainted image
:math:`\hat{\mathbf s} = \sum_\ell f(\mathbf s \odot \mathbf m_\ell) \odot (1 - \mathbf m_\ell)`
(:func:`~adcourse.deep.inpainting.inpaint`). A wrong answer raises
:class:`~adcourse.course.checks.CheckFailed` with the input, the expected and the received values
and, when the answer matches a typical mistake (the transformations in the outer loop, labels
from 1, the largest posterior instead of the right one, :math:`\eta` instead of
:math:`\eta - 1`, a missing normalising constant, a tile in two masks, the output kept where it
was visible, ...), its likely cause.

======  ===================================  ======================================================
task    check                                the student's function
======  ===================================  ======================================================
task-1  :func:`check_build_tr_new`           ``build_tr_new(images, transformations)``
task-2  :func:`check_simple_score`           ``simple_score(posteriors)``
task-3  :func:`check_dirichlet_log_pdf`      ``dirichlet_log_pdf(p, eta)``
task-4  :func:`check_tile_masks`             ``tile_masks(shape, tile_size, n_masks, seed)``
task-5  :func:`check_inpaint`                ``inpaint(f, image, masks)``
======  ===================================  ======================================================

What the student's functions may use (:data:`ALLOW`, enforced by the grader): NumPy, and
``scipy.special.gammaln`` in task 3; never :mod:`adcourse`, whose functions solve the tasks.
"""

from __future__ import annotations

import numpy as np

from adcourse.course.checks._base import Call, CheckFailed, _allclose, _as_array, _fmt, _mismatch, task

__all__ = [
    "check_build_tr_new",
    "check_simple_score",
    "check_dirichlet_log_pdf",
    "check_tile_masks",
    "check_inpaint",
    "TASKS",
]

#: What the student's functions may use, by task.
ALLOW = {
    "task-1": ("numpy",),
    "task-2": ("numpy",),
    "task-3": ("numpy", "scipy.special.gammaln"),
    "task-4": ("numpy",),
    "task-5": ("numpy",),
}


# --------------------------------------------------------------------------------------
# task 1: TR_new
# --------------------------------------------------------------------------------------

def identity(image):
    """The identity transformation."""
    return np.array(image, dtype=float)


def rot90(image):
    """Rotation by 90 degrees counter-clockwise."""
    return np.rot90(image, 1).copy()


def rot180(image):
    """Rotation by 180 degrees."""
    return np.rot90(image, 2).copy()


def flip(image):
    """Horizontal flip (left-right)."""
    return np.fliplr(image).copy()


def flip_rot90(image):
    """Horizontal flip, then rotation by 90 degrees."""
    return np.rot90(np.fliplr(image), 1).copy()


def gamma2(image):
    """Gamma correction s -> s^2."""
    return np.asarray(image, dtype=float) ** 2


_SETS = {
    "rotations": (identity, rot90, rot180),
    "flips": (identity, flip, flip_rot90, rot180),
    "mixed": (identity, gamma2),
}


def _tr_questions(rng):
    calls = []
    for name, n, size in (("rotations", 2, 3), ("flips", 3, 4), ("mixed", 4, 5)):
        images = np.round(rng.random((n, size, size)), 3)
        calls.append(Call("build_tr_new", images, list(_SETS[name])))
    return calls


@task(1, "build_tr_new", _tr_questions, uses=("build_tr_new",), seed=7101, allow=ALLOW["task-1"])
def check_build_tr_new(answers):
    r"""Check ``build_tr_new(images, transformations) -> (X, y)``: ``X`` (n T, H, W) holds
    :math:`\tau_i(\mathbf s_j)` at row :math:`jT + i` (all the transformations of the first image,
    then of the second, ...) and ``y`` (n T,) the label :math:`i` (from 0)."""
    __tracebackhide__ = True  # noqa: F841
    for call, got in answers:
        images, transformations = call.args
        n, T = len(images), len(transformations)
        names = [t.__name__ for t in transformations]
        where = f"on images = {n} random {images.shape[1]}x{images.shape[2]} images, transformations = {names}"
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise CheckFailed(f"build_tr_new must return a pair (X, y), received {type(got).__name__}\n{where}")
        X = _as_array(got[0], "X returned by build_tr_new", (n * T,) + images.shape[1:])
        y = _as_array(got[1], "y returned by build_tr_new", (n * T,))
        expected_X = np.stack([t(s) for s in images for t in transformations])
        expected_y = np.tile(np.arange(T), n)
        if not _allclose(y, expected_y):
            variants = [("the labels count from 0: y = i for transformation i = 0, ..., T-1", expected_y + 1),
                        ("the rows go image by image: row j T + i is transformation i of image j, so "
                         "y = 0, 1, ..., T-1, 0, 1, ...", np.repeat(np.arange(T), n))]
            raise _mismatch("labels y", "build_tr_new", where, expected_y, y, variants,
                            "y[j T + i] = i, the index of the transformation")
        if not _allclose(X, expected_X):
            by_transform = np.stack([t(s) for t in transformations for s in images])
            variants = [("the order must be image by image: X[j T + i] = transformations[i](images[j]); "
                         "you looped over the transformations first", by_transform)]
            raise _mismatch("images X", "build_tr_new", where, expected_X, X, variants,
                            "X[j T + i] = transformations[i](images[j])", lead=1, name="X")


# --------------------------------------------------------------------------------------
# task 2: the simple score
# --------------------------------------------------------------------------------------

def _posteriors(rng, n, T, confident):
    """Posteriors (n, T, T) whose rows sum to 1; ``confident`` rows put most mass on the diagonal."""
    logits = rng.normal(size=(n, T, T))
    logits += confident * np.eye(T)[None] * rng.uniform(1, 4, size=(n, 1, 1))
    p = np.exp(logits)
    return np.round(p / p.sum(axis=2, keepdims=True), 6)


def _simple_questions(rng):
    p = _posteriors(rng, 4, 3, 2.0)
    p[0] = np.eye(3)                                      # recognised with certainty: score 0
    q = _posteriors(rng, 6, 5, 1.0)
    q[1] = np.roll(np.eye(5), 1, axis=1)                  # always wrong with certainty: score 1
    return [Call("simple_score", p), Call("simple_score", q), Call("simple_score", _posteriors(rng, 3, 8, 3.0))]


@task(2, "simple_score", _simple_questions, uses=("simple_score",), seed=7202, allow=ALLOW["task-2"])
def check_simple_score(answers):
    r"""Check ``simple_score(posteriors) -> ndarray (n,)``: :math:`1 - \frac1T\sum_i [\mathbf p_i]_i`
    of each image, ``posteriors[s, i]`` being :math:`\mathbf p_i` of image ``s``."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.deep.selfsup import simple_score

    for call, got in answers:
        (p,) = call.args
        n, T = p.shape[:2]
        where = f"on posteriors of shape {p.shape} (posteriors[s, i] = p_i of image s; rows sum to 1):\n{_fmt(p[0])} ..."
        got = _as_array(got, "the scores returned by simple_score", (n,))
        expected = simple_score(p)
        diag = np.einsum("sii->si", p)
        variants = [
            ("you returned the mean right posterior; the score is 1 minus it (0 = every transformation "
             "recognised with certainty)", diag.mean(axis=1)),
            ("that uses the largest posterior of each row; the score uses the posterior of the RIGHT "
             "transformation, [p_i]_i (the diagonal)", 1 - p.max(axis=2).mean(axis=1)),
            ("you summed the right posteriors; divide by T (a mean)", 1 - diag.sum(axis=1)),
            ("that averages every entry of the matrix (always 1/T, the rows sum to 1); use only the "
             "diagonal entries [p_i]_i", 1 - p.mean(axis=(1, 2))),
        ]
        if not _allclose(got, expected):
            raise _mismatch("scores", "simple_score", where, expected, got, variants,
                            "score(s) = 1 - mean over i of posteriors[s, i, i]")


# --------------------------------------------------------------------------------------
# task 3: the Dirichlet log-density
# --------------------------------------------------------------------------------------

def _dirichlet_questions(rng):
    calls = []
    for K, n, scale in ((3, 4, 1.0), (5, 6, 10.0), (8, 3, 0.5)):
        eta = np.round(rng.uniform(0.2, 3.0, size=K) * scale, 3)
        p = rng.dirichlet(np.ones(K) * 2.0, size=n)
        calls.append(Call("dirichlet_log_pdf", np.clip(p, 1e-6, None) / np.clip(p, 1e-6, None).sum(axis=1, keepdims=True), eta))
    return calls


@task(3, "dirichlet_log_pdf", _dirichlet_questions, uses=("dirichlet_log_pdf",), seed=7303,
      allow=ALLOW["task-3"])
def check_dirichlet_log_pdf(answers):
    r"""Check ``dirichlet_log_pdf(p, eta) -> ndarray (N,)``: the log-density of
    :math:`\mathrm{Dir}(\boldsymbol\eta)` at each row of ``p`` (N, K),
    :math:`\log\Gamma(\sum_j\eta_j) - \sum_j\log\Gamma(\eta_j) + \sum_j (\eta_j - 1)\log p_j`."""
    __tracebackhide__ = True  # noqa: F841
    from scipy.special import gammaln

    from adcourse.deep.selfsup import dirichlet_log_pdf

    for call, got in answers:
        p, eta = call.args
        where = f"on p of shape {p.shape} (rows on the simplex), first row {_fmt(p[0])}, eta = {_fmt(eta)}"
        got = _as_array(got, "the log-densities returned by dirichlet_log_pdf", (len(p),))
        expected = dirichlet_log_pdf(np.log(p), eta)
        const = gammaln(eta.sum()) - gammaln(eta).sum()
        data_term = ((eta - 1) * np.log(p)).sum(axis=1)
        variants = [
            ("the exponent is eta_j - 1, not eta_j", const + (eta * np.log(p)).sum(axis=1)),
            ("the normalising constant log Gamma(sum eta) - sum log Gamma(eta_j) is missing", data_term),
            ("the constant has the wrong sign: + log Gamma(sum_j eta_j) - sum_j log Gamma(eta_j)",
             -const + data_term),
            ("that is the density, not its logarithm", np.exp(expected)),
            ("log Gamma(sum_j eta_j) is the log-gamma of the SUM, not the sum of the log-gammas",
             gammaln(eta).sum() - gammaln(eta).sum() + data_term),
        ]
        if not _allclose(got, expected, 1e-6):
            raise _mismatch("log-densities", "dirichlet_log_pdf", where, expected, got, variants,
                            "log Gamma(sum_j eta_j) - sum_j log Gamma(eta_j) + sum_j (eta_j - 1) log p_j, "
                            "for each row of p (scipy.special.gammaln is log Gamma)")


# --------------------------------------------------------------------------------------
# task 4: tile masks that partition the image
# --------------------------------------------------------------------------------------

_MASK_CASES = (((8, 8), 2, 3), ((12, 10), 4, 2), ((16, 16), 4, 3), ((9, 7), 2, 4))


def _mask_questions(rng):
    seeds = [int(s) for s in rng.integers(0, 2**31, size=len(_MASK_CASES))]
    calls = [Call("tile_masks", shape, a, L, seed) for (shape, a, L), seed in zip(_MASK_CASES, seeds)]
    shape, a, L = _MASK_CASES[2]
    calls.append(Call("tile_masks", shape, a, L, seeds[2]))          # the same seed again: same masks
    calls.append(Call("tile_masks", shape, a, L, seeds[2] + 1))      # another seed: other masks
    return calls


@task(4, "tile_masks", _mask_questions, uses=("tile_masks",), seed=7404, allow=ALLOW["task-4"])
def check_tile_masks(answers):
    r"""Check ``tile_masks(shape, tile_size, n_masks, seed) -> ndarray (L, H, W)``: masks of 0
    (hidden) and 1 (visible) such that every ``tile_size`` x ``tile_size`` tile (cut at the borders)
    is hidden by exactly one mask, whole, the masks hide (almost) the same number of tiles (at
    most one apart), and the assignment is random: the same ``seed`` gives the same masks, another
    seed other masks."""
    __tracebackhide__ = True  # noqa: F841
    seen = []
    for call, got in answers:
        shape, a, L, seed = call.args
        H, W = shape
        where = f"on shape = {shape}, tile_size = {a}, n_masks = {L}, seed = {seed}"
        M = _as_array(got, "the masks returned by tile_masks", (L, H, W))
        if not np.all(np.isin(M, (0.0, 1.0))):
            raise CheckFailed(f"the masks must hold 0 (hidden) and 1 (visible) only, received values "
                              f"{_fmt(np.unique(M))}\n{where}")
        hidden = (1 - M).sum(axis=0)
        if not np.all(hidden == 1):
            r, c = np.argwhere(hidden != 1)[0]
            raise CheckFailed(
                f"pixel ({r}, {c}) is hidden by {int(hidden[r, c])} masks; every pixel must be hidden "
                f"by exactly one\n{where}\nhint: deal every tile to exactly one mask: M[l] = 0 on the "
                "tiles of mask l and 1 elsewhere, so that sum over l of (1 - M[l]) = 1 everywhere")
        gh, gw = -(-H // a), -(-W // a)
        counts = np.zeros(L, int)
        for i in range(gh):
            for j in range(gw):
                block = M[:, i * a:(i + 1) * a, j * a:(j + 1) * a]
                owners = np.flatnonzero((block == 0).all(axis=(1, 2)))
                if len(owners) != 1:
                    raise CheckFailed(
                        f"the tile of rows {i * a}..{min((i + 1) * a, H) - 1}, columns {j * a}.."
                        f"{min((j + 1) * a, W) - 1} is not hidden as a whole by one mask\n{where}\n"
                        "hint: a tile is hidden or visible as a whole; tiles at the right and bottom "
                        "borders are cut to the image")
                counts[owners[0]] += 1
        if counts.max() - counts.min() > 1:
            raise CheckFailed(
                f"the masks hide {counts.tolist()} tiles: the {gh * gw} tiles must be shared out in "
                f"(almost) equal numbers (at most one apart)\n{where}\nhint: shuffle the tile indices "
                "with the seeded generator, then cut the shuffled list into n_masks equal runs")
        seen.append(((shape, a, L, seed), M))
    (args0, first), (args1, again), (args2, other) = seen[2], seen[-2], seen[-1]
    if not np.array_equal(first, again):
        raise CheckFailed(f"two calls with the same arguments {args0} gave different masks: draw the "
                          "assignment with np.random.default_rng(seed), not the global random state")
    if np.array_equal(first, other):
        raise CheckFailed(f"the seeds {args0[3]} and {args2[3]} gave the same masks: the assignment of the "
                          "tiles must be random (drawn with np.random.default_rng(seed))")


# --------------------------------------------------------------------------------------
# task 5: the inpainted image
# --------------------------------------------------------------------------------------

def blur3(image):
    """A test network f: the 3x3 mean filter (edges repeated)."""
    padded = np.pad(np.asarray(image, dtype=float), 1, mode="edge")
    h, w = np.shape(image)
    return sum(padded[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


def twice_plus_half(image):
    """A test network f: s -> 2 s + 0.5 (on a hidden pixel, where its input is 0, it returns 0.5)."""
    return 2.0 * np.asarray(image, dtype=float) + 0.5


_NETS = {"blur3": "the 3x3 mean filter", "twice_plus_half": "s -> 2 s + 0.5"}


def _inpaint_questions(rng):
    from_rng = [int(s) for s in rng.integers(0, 2**31, size=3)]
    calls = []
    for ((H, W), a, L), f, seed in zip((((6, 6), 2, 3), ((8, 8), 2, 2), ((8, 10), 4, 3)),
                                        (twice_plus_half, blur3, blur3), from_rng):
        image = np.round(np.random.default_rng(seed).random((H, W)), 3)
        calls.append(Call("inpaint", f, image, _reference_masks((H, W), a, L, seed)))
    return calls


def _reference_masks(shape, a, L, seed):
    """Tile masks as numpy (L, H, W) (the course's algorithm with a numpy generator)."""
    H, W = shape
    gh, gw = -(-H // a), -(-W // a)
    order = np.random.default_rng(seed).permutation(gh * gw)
    group = np.empty(gh * gw, int)
    group[order] = (np.arange(gh * gw) * L) // (gh * gw)
    tiles = group.reshape(gh, gw)
    owner = np.repeat(np.repeat(tiles, a, axis=0), a, axis=1)[:H, :W]
    return np.stack([(owner != k).astype(float) for k in range(L)])


@task(5, "inpaint", _inpaint_questions, uses=("inpaint",), seed=7505, allow=ALLOW["task-5"])
def check_inpaint(answers):
    r"""Check ``inpaint(f, image, masks) -> ndarray (H, W)``:
    :math:`\hat{\mathbf s} = \sum_\ell f(\mathbf s \odot \mathbf m_\ell) \odot (1 - \mathbf m_\ell)`,
    for a function ``f`` (an (H, W) array to an (H, W) array) and masks (L, H, W) of 0 (hidden)
    and 1 (visible)."""
    __tracebackhide__ = True  # noqa: F841
    for call, got in answers:
        f, image, masks = call.args
        L = len(masks)
        where = (f"on f = {f.__name__} ({_NETS[f.__name__]}), a {image.shape[0]}x{image.shape[1]} random "
                 f"image and {L} tile masks")
        got = _as_array(got, "the image returned by inpaint", image.shape)
        expected = sum(f(image * m) * (1 - m) for m in masks)
        variants = [
            ("you kept the outputs where the input was VISIBLE (times m); keep each output where its "
             "input was hidden: times (1 - m)", sum(f(image * m) * m for m in masks)),
            ("the network must see the masked image s * m, not the whole image s (it would copy the "
             "pixels it has to paint)", sum(f(image) * (1 - m) for m in masks)),
            ("every pixel is hidden by exactly one mask: SUM the kept parts, do not average them",
             sum(f(image * m) * (1 - m) for m in masks) / L),
            ("you kept the outputs where the input was hidden but also added the visible pixels",
             sum(f(image * m) * (1 - m) for m in masks) + image),
        ]
        if not _allclose(got, expected):
            raise _mismatch("inpainted image", "inpaint", where, expected, got, variants,
                            "s_hat = sum over l of f(s * m_l) * (1 - m_l)", lead=1, name="s_hat")


#: Checks by task id (the ids of the ``check`` cells' metadata).
TASKS = {
    "task-1": check_build_tr_new,
    "task-2": check_simple_score,
    "task-3": check_dirichlet_log_pdf,
    "task-4": check_tile_masks,
    "task-5": check_inpaint,
}
