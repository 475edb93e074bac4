r"""Isolation-based detectors: anomalies are *few and different*, so they are easy to isolate.

The lecture's last unsupervised family. Cut the space at random, again and
again: a point far from the others (:math:`\mathbf{x}_0`) ends up alone after a
few cuts, a genuine point (:math:`\mathbf{x}_i`) in a dense region needs many.
The number of cuts, the *path length* :math:`h(\mathbf{x})` in a random binary
tree, is the statistic; averaged over a forest of trees it becomes the anomaly
score :math:`\mathcal{A}(\mathbf{x}) = 2^{-E[h(\mathbf{x})]/c(\psi)}`.

* :func:`c_factor` -- :math:`c(n)`, the average path length of an unsuccessful
  search in a binary search tree of :math:`n` keys (the normaliser of the score
  and the correction for leaves that were not split further);
* :class:`IsolationForestDetector` -- the isolation forest (Liu, Ting & Zhou,
  2008), with axis-parallel cuts, or with random hyperplane cuts: the extended
  isolation forest (Hariri, Carrasco Kind & Brunner, 2019).

The trees are stored as flat numpy arrays (one entry per node) and the samples
go down a tree all together, one depth level at a time: there is no Python loop
over samples, only over trees and depth levels.
"""

from __future__ import annotations

from numbers import Integral
from typing import NamedTuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

from adcourse.base import BaseDetector
from adcourse.validation import check_vectors

__all__ = ["c_factor", "IsolationForestArrays", "IsolationForestDetector"]


def c_factor(n):
    r"""Average path length :math:`c(n)` of an unsuccessful search in a BST of ``n`` keys.

    .. math::

        c(n) = 2H(n-1) - \frac{2(n-1)}{n}, \qquad H(i) \approx \ln i + \gamma,

    with :math:`\gamma = 0.5772156649\ldots` (Euler's constant), and
    :math:`c(2) = 1`, :math:`c(1) = c(0) = 0`. An isolation tree has the
    structure of a binary search tree, so :math:`c(n)` is the expected depth at
    which one of :math:`n` points is isolated: it normalises the path length
    (with :math:`n = \psi`) and estimates the depth still missing below a leaf
    that holds :math:`n` training points when the height limit stopped the growth.

    Parameters
    ----------
    n : int or array-like of ints
        Number(s) of points (node sizes); vectorised.

    Returns
    -------
    float or ndarray
        :math:`c(n)`, of the shape of ``n`` (a Python float for a scalar).

    Examples
    --------
    >>> c_factor([0, 1, 2, 3])
    array([0.        , 0.        , 1.        , 1.20739236])
    >>> round(c_factor(256), 4)
    10.2448
    """
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros(n.shape)
    out[n == 2] = 1.0
    big = n > 2
    m = n[big]
    out[big] = 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m
    return float(out) if out.ndim == 0 else out


class IsolationForestArrays(NamedTuple):
    r"""The trees of a forest as flat arrays, one entry per node.

    Nodes are numbered breadth-first over the whole forest: the roots of the
    ``n_trees`` trees are nodes ``0 .. n_trees-1``, then come all the nodes of
    depth 1, and so on. A leaf points to itself (``left[i] = right[i] = i``), so
    a sample that reached a leaf stays there while the others keep going down:
    traversal needs no mask of "finished" samples.

    Attributes
    ----------
    feature : ndarray of int (n_nodes,)
        Split feature :math:`q` of each internal node (axis-parallel cuts; 0 at leaves).
    normal : ndarray (n_nodes, d) or None
        Normal vector :math:`\mathbf{n}` of the cutting hyperplane (extended cuts; 0 at leaves).
    threshold : ndarray (n_nodes,)
        A sample goes left when :math:`x_q` (or :math:`\mathbf{x}^\top\mathbf{n}`) is ``<= threshold``.
    left, right : ndarray of int (n_nodes,)
        Children of each node (the node itself at leaves).
    size : ndarray of int (n_nodes,)
        Number of training points (of the tree's sub-sample) that reached the node.
    depth : ndarray of int (n_nodes,)
        Depth of the node in its tree (root = 0).
    path_length : ndarray (n_nodes,)
        ``depth + c_factor(size)``: the path length :math:`h` of a sample that ends in this node.
    """

    feature: np.ndarray
    normal: np.ndarray | None
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    size: np.ndarray
    depth: np.ndarray
    path_length: np.ndarray


def _grow_forest(X, subsamples, height_limit, extended, rng):
    """Grow one isolation tree per row of ``subsamples`` (n_trees, psi), breadth-first.

    The trees are independent, so they grow together: at each step, every node
    of the current depth level, in every tree, is split at once. ``order`` lists
    rows of ``X`` grouped by node and ``counts`` says how many rows each node of
    the level holds, so the points of a node are one contiguous block of ``order``.
    """
    n_trees, psi = subsamples.shape
    d = X.shape[1]
    levels = []  # one dict of per-node arrays per depth level
    order = subsamples.ravel()  # level 0: the root of tree t holds the sub-sample t
    counts = np.full(n_trees, psi)
    first_id = 0  # breadth-first numbering: this level's nodes are first_id, first_id + 1, ...
    depth = 0
    while counts.size:
        n_level = counts.size
        ids = first_id + np.arange(n_level)
        level = {
            "feature": np.zeros(n_level, dtype=np.intp),
            "normal": np.zeros((n_level, d)) if extended else None,
            "threshold": np.zeros(n_level),
            "left": ids.copy(),  # leaves point to themselves
            "right": ids.copy(),
            "size": counts,
            "depth": np.full(n_level, depth),
        }
        levels.append(level)

        # 1. nodes that may be split: below the height limit, with at least 2 points
        candidate = (counts >= 2) & (depth < height_limit)
        if not candidate.any():
            break
        order, cand_counts = order[np.repeat(candidate, counts)], counts[candidate]
        X_node = X[order]
        # 2. bounding box of each node's points (min and max over each contiguous block)
        starts = np.cumsum(cand_counts) - cand_counts
        low = np.minimum.reduceat(X_node, starts, axis=0)
        high = np.maximum.reduceat(X_node, starts, axis=0)
        varying = high > low  # (n_candidates, d): the features that are not constant in the node
        # 3. a node whose points are all identical cannot be split: it stays a leaf
        split = varying.any(axis=1)
        keep = np.repeat(split, cand_counts)
        order, X_node = order[keep], X_node[keep]
        low, high, varying = low[split], high[split], varying[split]
        n_split = int(split.sum())
        if n_split == 0:
            break
        node_of_point = np.repeat(np.arange(n_split), cand_counts[split])  # 0 .. n_split-1

        # 4. draw the cut of each node and send each of its points left or right
        if not extended:
            # a random feature q among those that vary in the node ...
            rank = np.floor(rng.random(n_split) * varying.sum(axis=1))
            feature = np.argmax(np.cumsum(varying, axis=1) > rank[:, None], axis=1)
            # ... and a split value p uniform in [min, max) of x_q over the node's points
            lo = low[np.arange(n_split), feature]
            hi = high[np.arange(n_split), feature]
            threshold = lo + rng.random(n_split) * (hi - lo)
            threshold = np.where(threshold >= hi, lo, threshold)  # rounding: both sides non-empty
            value = X_node[np.arange(order.size), feature[node_of_point]]
        else:
            # a random hyperplane: normal n ~ N(0, I_d) through a point p uniform in the box;
            # x goes left when (x - p) . n <= 0, i.e. when x . n <= p . n
            normal = rng.standard_normal((n_split, d))
            point = low + rng.random((n_split, d)) * (high - low)
            threshold = np.einsum("kj,kj->k", point, normal)
            value = np.einsum("ij,ij->i", X_node, normal[node_of_point])
        go_right = value > threshold[node_of_point]

        # 5. children, numbered after this level: the i-th split node has children
        #    2i (left) and 2i + 1 (right); a stable sort groups the points by child
        child = 2 * node_of_point + go_right
        order = order[np.argsort(child, kind="stable")]
        next_id = first_id + n_level
        split_pos = np.flatnonzero(candidate)[split]  # where the split nodes are in the level
        level["left"][split_pos] = next_id + 2 * np.arange(n_split)
        level["right"][split_pos] = next_id + 2 * np.arange(n_split) + 1
        level["threshold"][split_pos] = threshold
        if extended:
            level["normal"][split_pos] = normal
        else:
            level["feature"][split_pos] = feature
        counts = np.bincount(child, minlength=2 * n_split)  # a hyperplane may leave a side empty
        first_id = next_id
        depth += 1

    def stack(key):
        return np.concatenate([level[key] for level in levels])

    size, node_depth = stack("size"), stack("depth")
    return IsolationForestArrays(
        feature=stack("feature"),
        normal=stack("normal") if extended else None,
        threshold=stack("threshold"),
        left=stack("left"),
        right=stack("right"),
        size=size,
        depth=node_depth,
        path_length=node_depth + c_factor(size),
    )


def _tree_path_length(forest, root, X):
    """Path length h(x) of every row of ``X`` in the tree whose root is node ``root``.

    All the samples go down together, one depth level per step.
    """
    node = np.full(X.shape[0], root)  # everybody starts at the root
    rows = np.arange(X.shape[0])
    for _ in range(int(forest.depth[-1])):  # the deepest node is the last one (breadth-first)
        if forest.normal is None:
            value = X[rows, forest.feature[node]]  # x_q
        else:
            value = np.einsum("ij,ij->i", X, forest.normal[node])  # x . n
        # leaves point to themselves: samples already in a leaf stay put
        node = np.where(value <= forest.threshold[node], forest.left[node], forest.right[node])
    # depth of the leaf reached + c(size of the leaf), the correction for unsplit leaves
    return forest.path_length[node]


def _check_int_param(name, value, low):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return int(value)


class IsolationForestDetector(BaseDetector):
    r"""Isolation forest (Liu et al., 2008) and its extended variant (Hariri et al., 2019).

    **Background model.** ``n_estimators`` isolation trees. Each tree is grown
    on a sub-sample of :math:`\psi = \min(\text{max\_samples}, n)` training
    points drawn without replacement. At each node, a random cut splits the
    node's points in two:

    * axis-parallel (``extended=False``): a random feature :math:`q` (among the
      features that are not constant in the node) and a split value :math:`p`
      drawn uniformly between the minimum and the maximum of :math:`x_q` in the
      node; :math:`\mathbf{x}` goes left when :math:`x_q \le p`;
    * extended (``extended=True``): a random hyperplane with normal vector
      :math:`\mathbf{n} \sim \mathcal{N}(0, I_d)` through a point
      :math:`\mathbf{p}` drawn uniformly in the bounding box of the node's
      points; :math:`\mathbf{x}` goes left when
      :math:`(\mathbf{x}-\mathbf{p})^\top\mathbf{n} \le 0`.

    A node becomes a leaf when it holds at most one point, when all its points
    are identical, or at the height limit :math:`\lceil\log_2\psi\rceil` (the
    average depth of a tree of :math:`\psi` points: deeper levels would only
    separate normal points from each other).

    **Statistic.** The path length of :math:`\mathbf{x}` in a tree is the depth
    of the leaf it falls in plus the expected depth still missing in that leaf,

    .. math:: h(\mathbf{x}) = \text{depth(leaf)} + c(\text{size(leaf)}),

    with :math:`c` = :func:`c_factor`. Anomalies are isolated after few cuts:
    short :math:`h`. Averaged over the trees and normalised by :math:`c(\psi)`,

    .. math:: \mathcal{A}(\mathbf{x}) = 2^{-E[h(\mathbf{x})]/c(\psi)} \in (0, 1],

    close to 1 for anomalies, at most about 0.5 for normal points (0.5 means
    :math:`E[h] = c(\psi)`, the average depth). :meth:`anomaly_score` returns
    :math:`\mathcal{A}`: higher = more anomalous. (scikit-learn's
    :class:`~sklearn.ensemble.IsolationForest` returns
    :math:`-\mathcal{A}` from ``score_samples``: higher = more normal.)

    The axis-parallel cuts leave artefacts in the score map: around a single
    round blob, the regions along the coordinate axes through the blob look
    more normal than the diagonals (a "cross"), because a cut on :math:`x_1`
    cannot separate points that differ in :math:`x_2` only. Random hyperplanes
    remove that bias.

    Parameters
    ----------
    n_estimators : int, default 100
        Number of trees (>= 1).
    max_samples : int, default 256
        Sub-sample size :math:`\psi` of each tree (>= 2). When the training set
        has fewer points, :math:`\psi = n` (all of them, in a random order),
        without a warning.
    extended : bool, default False
        Random hyperplane cuts (extended isolation forest) instead of
        axis-parallel ones.
    random_state : int or None, default None
        Seed of the sub-samples and of the cuts: same seed, same forest.

    Attributes
    ----------
    max_samples_ : int
        The sub-sample size :math:`\psi` actually used.
    height_limit_ : int
        :math:`\lceil\log_2\psi\rceil`.
    n_trees_ : int
        Number of trees (``n_estimators``); the root of tree ``t`` is node ``t``.
    forest_ : IsolationForestArrays
        All the trees as flat per-node arrays.
    n_features_in_ : int

    References
    ----------
    F. T. Liu, K. M. Ting, Z.-H. Zhou, "Isolation Forest", ICDM 2008.
    S. Hariri, M. Carrasco Kind, R. J. Brunner, "Extended Isolation Forest",
    IEEE TKDE 33(4), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> det = IsolationForestDetector(random_state=0).fit(X)
    >>> s = det.anomaly_score([[0.0, 0.0], [4.0, 4.0]])
    >>> bool(s[0] < 0.5 < s[1])
    True
    >>> det.path_lengths([[0.0, 0.0]]).shape
    (1, 100)
    """

    _min_fit_samples = 2

    def __init__(self, n_estimators=100, max_samples=256, extended=False, random_state=None):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.extended = extended
        self.random_state = random_state

    def _fit(self, X):
        n_estimators = _check_int_param("n_estimators", self.n_estimators, 1)
        max_samples = _check_int_param("max_samples", self.max_samples, 2)
        if not isinstance(self.extended, (bool, np.bool_)):
            raise ValueError(f"extended must be True or False, got {self.extended!r}")
        rng = np.random.default_rng(self.random_state)
        n = X.shape[0]
        psi = min(max_samples, n)
        self.max_samples_ = psi
        self.height_limit_ = int(np.ceil(np.log2(psi)))
        # one sub-sample of psi points, drawn without replacement, per tree
        subsamples = np.stack([rng.choice(n, size=psi, replace=False) for _ in range(n_estimators)])
        self.forest_ = _grow_forest(X, subsamples, self.height_limit_, bool(self.extended), rng)
        self.n_trees_ = n_estimators

    def path_lengths(self, X):
        """Path length :math:`h(\\mathbf{x})` of each row of ``X`` in each tree, shape (n, n_estimators)."""
        check_is_fitted(self, "forest_")
        X = check_vectors(X, "X", n_features=self.n_features_in_)
        # the root of tree t is node t
        return np.stack([_tree_path_length(self.forest_, t, X) for t in range(self.n_trees_)], axis=1)

    def _score(self, X):
        # E[h(x)]: mean path length over the trees (accumulated, no (n, n_trees) array)
        total = np.zeros(X.shape[0])
        for root in range(self.n_trees_):
            total += _tree_path_length(self.forest_, root, X)
        mean_path = total / self.n_trees_
        return 2.0 ** (-mean_path / c_factor(self.max_samples_))
