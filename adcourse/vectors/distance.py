r"""Distance-based detectors: normal data live in dense neighbourhoods.

The lecture's distance-based methods monitor, for a sample :math:`\mathbf{x}`,

* its distance to the :math:`k`-th nearest normal sample (:class:`KNNDetector`);
* that distance *relative to the neighbours'* own distances, i.e. a density
  relative to the local density around it (:class:`LOFDetector`, the local
  outlier factor);
* whether it belongs to no cluster, to the periphery of a cluster, or to a
  small cluster (:class:`ClusterDetector`, k-means).

All three use the Euclidean distance :math:`d(\mathbf{a}, \mathbf{b}) =
\lVert\mathbf{a}-\mathbf{b}\rVert_2`: the choice of the similarity measure is the
critical choice of these methods, so standardise features of different units
first.

Neighbour search is delegated to :class:`sklearn.neighbors.NearestNeighbors`
(a KD-tree in low dimension, exact brute force in high dimension, picked by
``algorithm="auto"`` exactly as in :class:`sklearn.neighbors.LocalOutlierFactor`,
so that ties between equidistant neighbours are broken the same way). Everything
after the search is plain numpy on ``(n, k)`` arrays of neighbour distances and
indices, with no Python loop over samples.

Scores of the *training* data need care: a training point is its own nearest
neighbour, at distance 0. The ``training_scores_`` attributes are therefore
computed *leave-one-out* (search :math:`k+1` neighbours, drop the point itself),
which is what a threshold set on training scores must see; ``anomaly_score(X)``
treats every row of ``X`` as new data and searches among all training points.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.neighbors import NearestNeighbors

from adcourse.base import BaseDetector
from adcourse.vectors.density import _kmeans_plusplus  # k-means++ seeding, shared with the GMM

__all__ = ["KNNDetector", "LOFDetector", "ClusterDetector"]


# --------------------------------------------------------------------------- #
# helpers shared by the neighbour-based detectors
# --------------------------------------------------------------------------- #
def _check_n_neighbors(n_neighbors, n_samples):
    """Validate ``n_neighbors`` (k) against the number of training samples n."""
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral):
        raise TypeError(f"n_neighbors must be an integer, got {type(n_neighbors).__name__}")
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    if n_neighbors >= n_samples:
        # leave-one-out on the training set needs k neighbours *besides* the point itself
        raise ValueError(
            f"n_neighbors={n_neighbors} needs at least n_neighbors + 1 = {n_neighbors + 1} "
            f"training samples, but X has {n_samples} samples (n < k + 1); "
            "lower n_neighbors or give more normal data"
        )
    return int(n_neighbors)


def _neighbours_leave_one_out(search, X, k):
    """k nearest neighbours of each training row of ``X`` among the *other* rows.

    Ask for k + 1 neighbours and drop the point itself. With exact duplicates,
    the point itself may not be among the k + 1 returned (its twins are at the
    same distance 0): then the last, farthest, of the k + 1 is dropped instead,
    as scikit-learn's ``kneighbors()`` does.

    Returns ``(distances, indices)``, both of shape (n, k), sorted by distance.
    """
    distances, indices = search.kneighbors(X, n_neighbors=k + 1)
    n = X.shape[0]
    is_self = indices == np.arange(n)[:, None]  # (n, k + 1), at most one True per row
    is_self[~is_self.any(axis=1), -1] = True  # self not found: drop the farthest
    keep = ~is_self
    return distances[keep].reshape(n, k), indices[keep].reshape(n, k)


# --------------------------------------------------------------------------- #
# k-nearest-neighbour distance
# --------------------------------------------------------------------------- #
class KNNDetector(BaseDetector):
    r"""Distance to the :math:`k`-th nearest normal training sample.

    Let :math:`TR = \{\mathbf{x}_1,\dots,\mathbf{x}_n\}` be the normal training
    set and :math:`d_{(1)}(\mathbf{x}) \le \dots \le d_{(k)}(\mathbf{x})` the
    distances from :math:`\mathbf{x}` to its :math:`k` nearest training samples.
    The anomaly score is

    .. math::

        s_{\text{kth}}(\mathbf{x}) = d_{(k)}(\mathbf{x})
        \qquad\text{or}\qquad
        s_{\text{mean}}(\mathbf{x}) = \frac1k\sum_{j=1}^{k} d_{(j)}(\mathbf{x}).

    Normal samples fall in dense neighbourhoods (small distances), anomalies
    are far from their closest neighbours. ``"kth"`` (Ramaswamy et al., 2000)
    is the classic score; ``"mean"`` (Angiulli & Pizzuti, 2002) averages over
    the k neighbours and is a little less sensitive to the exact choice of k.
    Both grow with the *global* scale of the data: a sample in a sparse normal
    cluster scores higher than one at the edge of a dense cluster, which is
    what :class:`LOFDetector` corrects.

    ``anomaly_score(X)`` treats ``X`` as new data. On the training data itself
    each point would find itself at distance 0, so the scores of the training
    samples are stored separately, computed leave-one-out (k + 1 neighbours,
    the point itself dropped), in ``training_scores_``: use those, not
    ``anomaly_score(X_train)``, to set a threshold on normal data, otherwise
    the threshold is biased low and the false-positive rate on new data is
    higher than planned.

    Parameters
    ----------
    n_neighbors : int, default 5
        :math:`k`; must be smaller than the number of training samples.
    method : {"kth", "mean"}, default "kth"
        Distance to the k-th neighbour, or mean distance to the k nearest.

    Attributes
    ----------
    training_scores_ : ndarray (n,)
        Leave-one-out scores of the training samples.
    n_features_in_ : int

    References
    ----------
    S. Ramaswamy, R. Rastogi, K. Shim, "Efficient algorithms for mining
    outliers from large data sets", SIGMOD 2000.
    F. Angiulli, C. Pizzuti, "Fast outlier detection in high dimensional
    spaces", PKDD 2002.

    Examples
    --------
    >>> X = [[0.0], [1.0], [2.0], [3.0]]
    >>> det = KNNDetector(n_neighbors=2).fit(X)
    >>> det.anomaly_score([[1.5], [10.0]])
    array([0.5, 8. ])
    >>> det.training_scores_  # leave-one-out: 0 -> {1, 2}, 1 -> {0, 2}, ...
    array([2., 1., 1., 2.])
    """

    _min_fit_samples = 2

    def __init__(self, n_neighbors=5, method="kth"):
        self.n_neighbors = n_neighbors
        self.method = method

    def _fit(self, X):
        if self.method not in ("kth", "mean"):
            raise ValueError(f"method must be 'kth' or 'mean', got {self.method!r}")
        k = _check_n_neighbors(self.n_neighbors, X.shape[0])
        # the background model is the training set itself, indexed for fast search
        self._search = NearestNeighbors(n_neighbors=k).fit(X)
        distances, _ = _neighbours_leave_one_out(self._search, X, k)
        self.training_scores_ = self._statistic(distances)

    def _statistic(self, distances):
        # distances: (n, k), sorted, column j = distance to the (j+1)-th neighbour
        if self.method == "kth":
            return distances[:, -1]
        return distances.mean(axis=1)

    def _score(self, X):
        distances, _ = self._search.kneighbors(X, n_neighbors=self.n_neighbors)
        return self._statistic(distances)


# --------------------------------------------------------------------------- #
# local outlier factor
# --------------------------------------------------------------------------- #
class LOFDetector(BaseDetector):
    r"""Local outlier factor (Breunig et al., 2000), novelty setting.

    The k-NN distance compares a sample with a *global* scale; LOF compares it
    with its neighbours' scale. On the normal training set :math:`TR`, with
    :math:`N_k(\mathbf{a})` the :math:`k` nearest training samples of
    :math:`\mathbf{a}` (the point itself excluded when :math:`\mathbf{a}\in TR`):

    1. the *k-distance* of a training sample :math:`\mathbf{b}`,
       :math:`\text{k-dist}(\mathbf{b})`, is its distance to its k-th neighbour;
    2. the *reachability distance* of :math:`\mathbf{a}` from :math:`\mathbf{b}`
       smooths the distances below the k-distance of :math:`\mathbf{b}`,

       .. math::

           \text{reach-dist}_k(\mathbf{a}, \mathbf{b})
           = \max\{\text{k-dist}(\mathbf{b}),\ d(\mathbf{a}, \mathbf{b})\};

    3. the *local reachability density* is the inverse mean reachability
       distance from the neighbours,

       .. math::

           \text{lrd}_k(\mathbf{a}) = \Big(\frac1k\sum_{\mathbf{b}\in N_k(\mathbf{a})}
           \text{reach-dist}_k(\mathbf{a}, \mathbf{b}) + 10^{-10}\Big)^{-1};

    4. the anomaly score is the *local outlier factor*, the mean ratio between
       the neighbours' density and the density at :math:`\mathbf{x}`,

       .. math::

           \text{LOF}_k(\mathbf{x}) = \frac1k\sum_{\mathbf{b}\in N_k(\mathbf{x})}
           \frac{\text{lrd}_k(\mathbf{b})}{\text{lrd}_k(\mathbf{x})}.

    :math:`\text{LOF}\approx 1` inside a cluster whatever its density,
    :math:`\text{LOF}\gg 1` for a sample much sparser than its neighbourhood.
    Steps 1-3 on the training set are the background model (``fit``); for a new
    sample, :math:`N_k(\mathbf{x})` is taken among the training samples and
    steps 2-4 are applied with the stored k-distances and densities.

    The :math:`10^{-10}` in step 3 keeps the density finite when more than k
    training samples are duplicates (all reachability distances 0); it is the
    constant scikit-learn uses, so the scores match scikit-learn's:
    ``anomaly_score(X) == -LocalOutlierFactor(n_neighbors=k, novelty=True)
    .fit(X_train).score_samples(X)`` (scikit-learn's sign is *higher = more
    normal*, ours is the opposite) and ``training_scores_ ==
    -negative_outlier_factor_``. Unlike scikit-learn, which silently lowers k
    to n - 1, ``n_neighbors >= n`` raises a ValueError.

    Parameters
    ----------
    n_neighbors : int, default 20
        :math:`k`; must be smaller than the number of training samples.

    Attributes
    ----------
    k_distance_ : ndarray (n,)
        :math:`\text{k-dist}` of each training sample (leave-one-out).
    lrd_ : ndarray (n,)
        Local reachability density of each training sample.
    training_scores_ : ndarray (n,)
        LOF of each training sample (leave-one-out), to set thresholds on.
    n_features_in_ : int

    References
    ----------
    M. M. Breunig, H.-P. Kriegel, R. T. Ng, J. Sander, "LOF: identifying
    density-based local outliers", SIGMOD 2000.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> det = LOFDetector().fit(X)
    >>> det.anomaly_score([[0.0, 0.0], [4.0, 4.0]]).round(1)
    array([1.1, 4.6])
    """

    _min_fit_samples = 2

    def __init__(self, n_neighbors=20):
        self.n_neighbors = n_neighbors

    def _fit(self, X):
        k = _check_n_neighbors(self.n_neighbors, X.shape[0])
        self._search = NearestNeighbors(n_neighbors=k).fit(X)
        # N_k(a) for every training sample a, itself excluded: (n, k) arrays
        distances, neighbours = _neighbours_leave_one_out(self._search, X, k)
        # 1. k-dist(b): distance of each training sample to its k-th neighbour
        self.k_distance_ = distances[:, -1]
        # 2.-3. reachability distances and local reachability densities of TR
        self.lrd_ = self._local_reachability_density(distances, neighbours)
        # 4. LOF of the training samples (leave-one-out)
        self.training_scores_ = self._local_outlier_factor(self.lrd_, neighbours)

    def _local_reachability_density(self, distances, neighbours):
        """lrd of samples whose k training neighbours are ``neighbours`` at ``distances``."""
        # reach-dist_k(a, b) = max(k-dist(b), d(a, b)), for all (a, b in N_k(a)) at once
        reach_dist = np.maximum(self.k_distance_[neighbours], distances)
        # 1e-10: finite density when > k duplicates make every reach-dist 0 (as scikit-learn)
        return 1.0 / (reach_dist.mean(axis=1) + 1e-10)

    def _local_outlier_factor(self, lrd, neighbours):
        """LOF = mean over b in N_k(x) of lrd(b) / lrd(x)."""
        return (self.lrd_[neighbours] / lrd[:, None]).mean(axis=1)

    def _score(self, X):
        # N_k(x) among the training samples (x is new: nothing to exclude)
        distances, neighbours = self._search.kneighbors(X, n_neighbors=self.n_neighbors)
        lrd = self._local_reachability_density(distances, neighbours)
        return self._local_outlier_factor(lrd, neighbours)


# --------------------------------------------------------------------------- #
# clustering: k-means
# --------------------------------------------------------------------------- #
def _squared_distances(X, centres):
    """||x_i - c_j||^2 for every row of X (n, d) and centre (K, d): an (n, K) array."""
    return ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)


def _kmeans(X, K, n_init, rng, max_iter=300):
    """Lloyd's k-means from ``n_init`` k-means++ seeds; the run of lowest inertia wins.

    Returns ``(centres (K, d), labels (n,))``.
    """
    # stop when centres move (in total squared distance) less than 1e-4 of the data variance,
    # scikit-learn's default tolerance
    tol = 1e-4 * X.var(axis=0).mean()
    best = None
    for _ in range(n_init):
        centres = _kmeans_plusplus(X, K, rng)
        for _ in range(max_iter):
            # assignment step: each point goes to its nearest centre; argmin_j ||x - c_j||^2
            # = argmin_j (||c_j||^2 - 2 x.c_j), one matrix product for all points
            labels = ((centres**2).sum(axis=1) - 2 * X @ centres.T).argmin(axis=1)
            # update step: each centre moves to the mean of its points (sums by a 0/1 matrix)
            membership = (labels[:, None] == np.arange(K)).astype(X.dtype)  # (n, K)
            sums = membership.T @ X
            counts = membership.sum(axis=0)
            # an emptied cluster keeps its old centre
            new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
            shift = ((new - centres) ** 2).sum()
            centres = new
            if shift <= tol:
                break
        d2 = _squared_distances(X, centres)
        labels = d2.argmin(axis=1)
        inertia = d2[np.arange(X.shape[0]), labels].sum()
        if best is None or inertia < best[0]:
            best = (inertia, centres, labels)
    return best[1], best[2]


class ClusterDetector(BaseDetector):
    r"""Distance to the nearest k-means centroid of the normal data.

    Fitting runs k-means on the normal training set (our own, in numpy:
    k-means++ seeding, then Lloyd iterations that alternate assigning each
    point to its nearest centre and moving each centre to the mean of its
    points; the best of 10 seeds, by inertia, is kept, as in scikit-learn's
    :class:`~sklearn.cluster.KMeans`; same clusterings, and no OpenMP threads
    to compete for on a busy machine, but about 3x slower than scikit-learn on
    10 000 samples), giving centroids :math:`\mathbf{c}_1,\dots,
    \mathbf{c}_K` and cluster sizes :math:`n_1,\dots,n_K`. The anomaly score is
    the distance to the closest centroid, each distance optionally measured in
    units of that cluster's spread:

    .. math::

        s(\mathbf{x}) = \min_{j \in \mathcal{K}}
        \frac{\lVert\mathbf{x}-\mathbf{c}_j\rVert}{\sigma_j},
        \qquad
        \sigma_j = \frac{1}{n_j}\sum_{i:\,\text{cluster}(i)=j}
        \lVert\mathbf{x}_i-\mathbf{c}_j\rVert \ \ (\texttt{normalize=True}),
        \quad \sigma_j = 1 \ \ (\texttt{normalize=False}).

    *Why normalise.* Clusters of normal data can have very different spreads.
    With raw distances a normal sample at the edge of a wide cluster scores as
    high as an anomaly just outside a tight cluster, so one threshold cannot
    serve both; dividing by :math:`\sigma_j` (the mean distance of the
    cluster's own training members to its centroid) makes "1" mean "as far as
    a typical member" in every cluster. With ``normalize=True`` the minimum is
    over normalised distances, so a point is explained by the cluster for which
    it is least unusual, not merely by the closest centroid.

    *Small clusters.* In the lecture's words, anomalies may "belong to small and
    sparse clusters": in the unsupervised setting a few similar anomalies in
    the training set form a cluster of their own. Clusters holding fewer than
    ``min_cluster_fraction`` of the training samples are therefore not part of
    the normal model: :math:`\mathcal{K}` keeps only the others, so points near
    a dropped centroid are scored by their distance to the *remaining* ones and
    get high scores.

    Parameters
    ----------
    n_clusters : int, default 5
        :math:`K`, the number of k-means clusters.
    min_cluster_fraction : float in [0, 1), default 0.0
        Clusters with :math:`n_j <` ``min_cluster_fraction`` :math:`\cdot\, n`
        are dropped from the model (0: keep every cluster).
    normalize : bool, default False
        Divide each distance by the cluster's mean training distance
        :math:`\sigma_j`. Worth it when ``n_clusters`` matches the natural
        clusters of the data and they differ in spread; when k-means cuts a
        few natural clusters into many pieces, the pieces' sizes already
        follow the local spread and raw distances do as well.
    random_state : int or None, default None
        Seed of the k-means initialisations.

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, d)
        All k-means centroids, including dropped ones.
    cluster_sizes_ : ndarray (n_clusters,)
        Number of training samples assigned to each centroid.
    cluster_scales_ : ndarray (n_clusters,)
        :math:`\sigma_j`: mean distance of each cluster's members to its centroid.
    kept_ : ndarray (n_clusters,) of bool
        Which clusters make up the normal model (size rule above).
    n_features_in_ : int

    References
    ----------
    V. Chandola, A. Banerjee, V. Kumar, "Anomaly detection: a survey", ACM
    Computing Surveys 41(3), 2009, section 6 (clustering-based techniques).

    Examples
    --------
    >>> X = [[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]]
    >>> det = ClusterDetector(n_clusters=2, random_state=0).fit(X)
    >>> det.anomaly_score([[0.0, 0.5], [5.0, 0.5]])
    array([0., 5.])
    """

    def __init__(self, n_clusters=5, min_cluster_fraction=0.0, normalize=False, random_state=None):
        self.n_clusters = n_clusters
        self.min_cluster_fraction = min_cluster_fraction
        self.normalize = normalize
        self.random_state = random_state

    def _fit(self, X):
        n = X.shape[0]
        K = self.n_clusters
        if isinstance(K, bool) or not isinstance(K, numbers.Integral) or K < 1:
            raise ValueError(f"n_clusters must be an integer >= 1, got {K!r}")
        if K > n:
            raise ValueError(
                f"n_clusters={K} needs at least {K} training samples, but X has {n} samples"
            )
        fraction = self.min_cluster_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 <= fraction < 1:
            raise ValueError(f"min_cluster_fraction must be a number in [0, 1), got {fraction!r}")
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise ValueError(f"normalize must be True or False, got {self.normalize!r}")

        # background model: K centroids of the normal data
        rng = np.random.default_rng(self.random_state)
        self.cluster_centers_, labels = _kmeans(X, K, n_init=10, rng=rng)
        self.cluster_sizes_ = np.bincount(labels, minlength=K)

        # sigma_j: mean distance of the members of cluster j to c_j
        own_distance = np.linalg.norm(X - self.cluster_centers_[labels], axis=1)
        sums = np.bincount(labels, weights=own_distance, minlength=K)
        self.cluster_scales_ = sums / np.maximum(self.cluster_sizes_, 1)

        # small clusters are not normal: keep those with n_j >= fraction * n
        self.kept_ = self.cluster_sizes_ >= fraction * n
        if not self.kept_.any():  # cannot happen when fraction <= 1 / K
            raise ValueError(
                f"min_cluster_fraction={fraction} drops every cluster (sizes "
                f"{self.cluster_sizes_.tolist()} of {n} samples); lower it or use fewer clusters"
            )

    def _score(self, X):
        centres = self.cluster_centers_[self.kept_]
        # ||x - c_j|| for every sample and kept centroid, (n, K_kept), without a loop
        distances = np.sqrt(_squared_distances(X, centres))
        if self.normalize:
            # a cluster whose members coincide (e.g. a single point) has sigma_j = 0:
            # the tiny floor keeps scores finite; such a cluster explains exact copies only
            distances = distances / (self.cluster_scales_[self.kept_] + 1e-12)
        return distances.min(axis=1)
