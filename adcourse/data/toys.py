"""Toy vectors for chapter 2: normal samples ``x ~ phi0`` mixed with anomalies ``x ~ phi1``."""

from __future__ import annotations

import numpy as np

from adcourse.data._common import _check_int, _check_real, _rng

__all__ = ["make_toy_1d", "make_toy_2d", "make_shapes_2d", "SHAPES_2D"]


def _shuffle(rng, x, y):
    order = rng.permutation(len(y))
    return x[order], y[order]


def make_toy_1d(n_normal=500, n_anomalous=50, shift=3.0, random_state=0):
    """Scalar data: normal samples from phi0 mixed with anomalies from phi1.

    ``phi0 = N(0, 1)`` (normal data) and ``phi1 = N(shift, 1)`` (anomalies): the
    larger ``shift``, the easier it is to tell them apart with a threshold on ``x``.

    Parameters
    ----------
    n_normal : int, default=500
        Number of samples ``x ~ phi0``.
    n_anomalous : int, default=50
        Number of samples ``x ~ phi1`` (may be 0).
    shift : float, default=3.0
        Mean of ``phi1``.
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the draws and of the shuffling.

    Returns
    -------
    x : ndarray of shape (n_normal + n_anomalous,)
        The samples, in a shuffled order.
    y : ndarray of int of shape (n_normal + n_anomalous,)
        1 = anomaly (drawn from ``phi1``), 0 = normal.

    Examples
    --------
    >>> x, y = make_toy_1d(n_normal=100, n_anomalous=10, random_state=0)
    >>> x.shape, int(y.sum())
    ((110,), 10)
    """
    n_normal = _check_int("n_normal", n_normal, 1)
    n_anomalous = _check_int("n_anomalous", n_anomalous, 0)
    shift = _check_real("shift", shift, -np.inf, np.inf)
    rng = _rng(random_state)
    x = np.concatenate([rng.normal(0.0, 1.0, n_normal), rng.normal(shift, 1.0, n_anomalous)])
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_normal, n_anomalous])
    return _shuffle(rng, x, y)


#: Parameters of :func:`make_toy_2d`: phi0 = N(mean0, cov0), phi1 = N(mean1, cov1).
TOY_2D_PARAMS = {
    "mean0": np.array([0.0, 0.0]),
    "cov0": np.array([[1.0, 0.8], [0.8, 1.0]]),
    "mean1": np.array([1.5, -1.5]),
    "cov1": np.array([[1.0, 0.0], [0.0, 1.0]]),
}


def make_toy_2d(n_normal=500, n_anomalous=50, random_state=0):
    """2-D data: a correlated Gaussian phi0 and broader anomalies phi1 off its axis.

    * ``phi0 = N([0, 0], [[1, 0.8], [0.8, 1]])``: normal data stretched along the
      diagonal ``x1 = x2`` (variance 1.8 along it, 0.2 across it);
    * ``phi1 = N([1.5, -1.5], I)``: anomalies centred off that axis, in the
      direction where ``phi0`` is narrow, and broader than ``phi0`` across it.

    Many anomalies are as close to the origin as normal points, so the Euclidean
    distance from the mean detects them poorly, while the Mahalanobis distance
    (which uses the covariance of ``phi0``) does well. The parameters are in
    ``TOY_2D_PARAMS``.

    Parameters
    ----------
    n_normal : int, default=500
        Number of samples ``x ~ phi0``.
    n_anomalous : int, default=50
        Number of samples ``x ~ phi1`` (may be 0).
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the draws and of the shuffling.

    Returns
    -------
    X : ndarray of shape (n_normal + n_anomalous, 2)
        The samples, in a shuffled order.
    y : ndarray of int of shape (n_normal + n_anomalous,)
        1 = anomaly (drawn from ``phi1``), 0 = normal.

    Examples
    --------
    >>> X, y = make_toy_2d(random_state=0)
    >>> X.shape, int(y.sum())
    ((550, 2), 50)
    """
    n_normal = _check_int("n_normal", n_normal, 1)
    n_anomalous = _check_int("n_anomalous", n_anomalous, 0)
    rng = _rng(random_state)
    p = TOY_2D_PARAMS
    X = np.concatenate(
        [
            rng.multivariate_normal(p["mean0"], p["cov0"], n_normal),
            rng.multivariate_normal(p["mean1"], p["cov1"], n_anomalous).reshape(-1, 2),
        ]
    )
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_normal, n_anomalous])
    return _shuffle(rng, X, y)


SHAPES_2D = ("blobs", "banana", "ring", "mixture")


def make_shapes_2d(kind="blobs", n_normal=500, n_anomalous=50, random_state=0):
    """2-D normal data of various shapes, with anomalies spread uniformly around them.

    The chapter-2 test bed: decision boundaries of every detector drawn on the
    same data. ``phi0`` depends on ``kind``:

    * ``"blobs"``: three Gaussian clusters of different spread;
    * ``"banana"``: a curved, non-convex band (a bent parabola plus noise);
    * ``"ring"``: an annulus of radius 2 around an empty centre, where a detector
      that only looks at the distance from the mean fails;
    * ``"mixture"``: a dense and a sparse cluster, where a global density
      threshold misses points near the dense one (the case of LOF).

    ``phi1`` is uniform on the box ``[-5, 5]^2`` (anomalies that fall inside the
    normal region are indistinguishable, which caps the best AUROC below 1).

    Returns ``(X, y)`` shuffled, ``y = 1`` for anomalies.

    Examples
    --------
    >>> X, y = make_shapes_2d("ring", n_normal=100, n_anomalous=10)
    >>> X.shape, int(y.sum())
    ((110, 2), 10)
    """
    if kind not in SHAPES_2D:
        raise ValueError(f"kind must be one of {SHAPES_2D}, got {kind!r}")
    n_normal = _check_int("n_normal", n_normal, 1)
    n_anomalous = _check_int("n_anomalous", n_anomalous, 0)
    rng = _rng(random_state)
    n = n_normal
    if kind == "blobs":
        centres = np.array([[-2.5, -2.0], [2.0, 2.5], [2.5, -2.0]])
        spreads = np.array([0.4, 0.7, 0.3])
        which = rng.integers(0, 3, n)
        X0 = centres[which] + rng.normal(size=(n, 2)) * spreads[which, None]
    elif kind == "banana":
        t = rng.uniform(-2.2, 2.2, n)
        X0 = np.c_[t, 0.45 * t**2 - 1.5] + rng.normal(scale=0.25, size=(n, 2))
    elif kind == "ring":
        angle = rng.uniform(0, 2 * np.pi, n)
        radius = 2.0 + rng.normal(scale=0.2, size=n)
        X0 = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    else:  # mixture: dense + sparse cluster
        dense = rng.random(n) < 0.5
        X0 = np.where(
            dense[:, None],
            np.array([-2.0, 1.5]) + 0.25 * rng.normal(size=(n, 2)),
            np.array([1.5, -1.0]) + 1.2 * rng.normal(size=(n, 2)),
        )
    X1 = rng.uniform(-5, 5, size=(n_anomalous, 2))
    X = np.concatenate([X0, X1])
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_normal, n_anomalous])
    return _shuffle(rng, X, y)

