"""Tests of the distance-based detectors (adcourse.vectors.distance): kNN, LOF, k-means clusters."""

import doctest

import numpy as np
import pytest
from sklearn.neighbors import LocalOutlierFactor

import adcourse.vectors.distance
from adcourse import data, metrics
from adcourse.vectors.distance import ClusterDetector, KNNDetector, LOFDetector


def _brute_force_sorted_distances(A, B):
    """Every distance ||a - b|| by broadcasting, each row sorted: the slowest, surest way."""
    return np.sort(np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(axis=2)), axis=1)


def test_docstring_examples():
    result = doctest.testmod(adcourse.vectors.distance, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- #
# KNNDetector
# --------------------------------------------------------------------------- #
def test_knn_hand_computed_1d():
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    # x = 4: distances to 0, 1, 3, 7 are 4, 3, 1, 3 -> sorted 1, 3, 3, 4
    np.testing.assert_allclose(KNNDetector(2, "kth").fit(X).anomaly_score([[4.0]]), [3.0])
    np.testing.assert_allclose(KNNDetector(2, "mean").fit(X).anomaly_score([[4.0]]), [2.0])
    np.testing.assert_allclose(KNNDetector(3, "mean").fit(X).anomaly_score([[4.0]]), [7 / 3])
    # leave-one-out, k = 2: 0 -> {1, 3}: (1, 3); 1 -> {0, 3}: (1, 2); 3 -> {1, 0}: (2, 3);
    # 7 -> {3, 1}: (4, 6)
    det = KNNDetector(2, "kth").fit(X)
    np.testing.assert_allclose(det.training_scores_, [3.0, 2.0, 3.0, 6.0])
    det = KNNDetector(2, "mean").fit(X)
    np.testing.assert_allclose(det.training_scores_, [2.0, 1.5, 2.5, 5.0])
    # scored as new data, a training point finds itself at distance 0
    np.testing.assert_allclose(KNNDetector(1).fit(X).anomaly_score(X), 0.0)


@pytest.mark.parametrize("d", [3, 20])  # KD-tree (low d) and brute-force search (d > 15)
@pytest.mark.parametrize("method", ["kth", "mean"])
def test_knn_equals_numpy_brute_force(d, method):
    rng = np.random.default_rng(d)
    X_train, X_test = rng.normal(size=(150, d)), rng.normal(size=(40, d))
    k = 7
    det = KNNDetector(k, method).fit(X_train)
    new = _brute_force_sorted_distances(X_test, X_train)[:, :k]
    # leave-one-out: exclude each training point from its own neighbours
    D = np.sqrt(((X_train[:, None, :] - X_train[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(D, np.inf)
    loo = np.sort(D, axis=1)[:, :k]
    reduce = (lambda r: r[:, -1]) if method == "kth" else (lambda r: r.mean(axis=1))
    np.testing.assert_allclose(det.anomaly_score(X_test), reduce(new), rtol=0, atol=1e-12)
    np.testing.assert_allclose(det.training_scores_, reduce(loo), rtol=0, atol=1e-12)


def test_knn_mean_versus_kth():
    X, _ = data.make_shapes_2d("banana", 200, 0, random_state=0)
    X_test, _ = data.make_shapes_2d("banana", 50, 50, random_state=1)
    kth = KNNDetector(10, "kth").fit(X).anomaly_score(X_test)
    mean = KNNDetector(10, "mean").fit(X).anomaly_score(X_test)
    assert np.all(mean <= kth + 1e-15) and np.any(mean < kth)
    # with k = 1 the two are the same statistic
    np.testing.assert_array_equal(
        KNNDetector(1, "kth").fit(X).anomaly_score(X_test),
        KNNDetector(1, "mean").fit(X).anomaly_score(X_test),
    )


def test_knn_training_scores_with_duplicates():
    # a point repeated three times: its nearest *other* neighbour is a twin at distance 0
    X = np.array([[0.0, 0.0]] * 3 + [[1.0, 0.0], [3.0, 0.0]])
    det = KNNDetector(2).fit(X)
    np.testing.assert_allclose(det.training_scores_, [0.0, 0.0, 0.0, 1.0, 3.0])


def test_knn_training_scores_are_unbiased_for_thresholds():
    # on fresh normal data the leave-one-out scores have the same law as new scores;
    # anomaly_score(X_train) is biased low (each point finds itself at distance 0)
    rng = np.random.default_rng(0)
    X_train, X_new = rng.normal(size=(400, 2)), rng.normal(size=(4000, 2))
    det = KNNDetector(5).fit(X_train)
    threshold = np.quantile(det.training_scores_, 0.9)
    fpr_new = np.mean(det.anomaly_score(X_new) > threshold)
    assert abs(fpr_new - 0.1) < 0.04
    biased = np.quantile(det.anomaly_score(X_train), 0.9)
    assert biased < threshold


def test_knn_bad_hyper_parameters():
    X = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(ValueError, match=r"n_neighbors=5.*5 samples"):
        KNNDetector(n_neighbors=5).fit(X)
    with pytest.raises(ValueError, match=r"n_neighbors=9.*5 samples"):
        KNNDetector(n_neighbors=9).fit(X)
    KNNDetector(n_neighbors=4).fit(X)  # k = n - 1 is the largest that works
    with pytest.raises(ValueError, match="n_neighbors must be >= 1"):
        KNNDetector(n_neighbors=0).fit(X)
    with pytest.raises(TypeError, match="n_neighbors must be an integer"):
        KNNDetector(n_neighbors=2.5).fit(X)
    with pytest.raises(ValueError, match="method must be 'kth' or 'mean'"):
        KNNDetector(method="median").fit(X)
    with pytest.raises(ValueError, match="features"):
        KNNDetector(2).fit(X).anomaly_score(np.zeros((3, 3)))


# --------------------------------------------------------------------------- #
# LOFDetector
# --------------------------------------------------------------------------- #
def _parity_sets():
    X, y = data.make_shapes_2d("mixture", 300, 30, random_state=0)
    X_test, _ = data.make_shapes_2d("mixture", 100, 30, random_state=1)
    cancer = data.load_breast_cancer_oneclass(random_state=0)
    digits = data.load_digits_oneclass(normal_digit=3, random_state=0)
    return {
        "mixture": (X[y == 0], X_test),
        "mixture-contaminated": (X, X_test),  # unsupervised setting: anomalies in training
        "breast-cancer": (cancer[0], cancer[1]),
        "digits": (digits.X_train, digits.X_test),
    }


@pytest.fixture(scope="module")
def parity_sets():
    return _parity_sets()


@pytest.mark.parametrize("name", list(_parity_sets()))
@pytest.mark.parametrize("k", [1, 5, 20])
def test_lof_equals_scikit_learn(parity_sets, name, k):
    X_train, X_test = parity_sets[name]
    ours = LOFDetector(n_neighbors=k).fit(X_train)
    ref = LocalOutlierFactor(n_neighbors=k, novelty=True).fit(X_train)
    # scikit-learn: higher = more normal; ours: higher = more anomalous
    np.testing.assert_allclose(ours.anomaly_score(X_test), -ref.score_samples(X_test), rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.training_scores_, -ref.negative_outlier_factor_, rtol=0, atol=1e-8)


def test_lof_equals_scikit_learn_with_duplicates():
    # more than k copies of one point: every reach-dist is 0, the 1e-10 keeps lrd finite
    rng = np.random.default_rng(0)
    X = np.r_[np.tile([[0.5, 0.5]], (8, 1)), rng.normal(size=(60, 2)), [[0.5, 0.5]] * 3]
    X_test = np.r_[[[0.5, 0.5], [0.5, 0.6]], rng.normal(size=(20, 2))]
    ours = LOFDetector(n_neighbors=5).fit(X)
    ref = LocalOutlierFactor(n_neighbors=5, novelty=True).fit(X)
    assert np.all(np.isfinite(ours.anomaly_score(X_test)))
    np.testing.assert_allclose(ours.anomaly_score(X_test), -ref.score_samples(X_test), rtol=1e-8)
    np.testing.assert_allclose(ours.training_scores_, -ref.negative_outlier_factor_, rtol=1e-8)


def test_lof_hand_computed_line():
    # four points on a line and one far away, k = 2
    X = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    det = LOFDetector(n_neighbors=2).fit(X)
    # N_2 (self excluded): 0 -> {1, 2}, 1 -> {0, 2}, 2 -> {1, 3}, 3 -> {2, 1}, 10 -> {3, 2}
    # k-distances: 2, 1, 1, 2, 8
    np.testing.assert_allclose(det.k_distance_, [2.0, 1.0, 1.0, 2.0, 8.0])
    # reach-dist = max(k-dist(b), d(a, b)); e.g. a = 0: max(1, 1) = 1, max(1, 2) = 2 -> mean 1.5.
    # Every one of 0..3 has mean reach-dist 1.5, so lrd = 2/3; for 10: max(2, 7) = 7,
    # max(1, 8) = 8 -> mean 7.5, lrd = 2/15
    np.testing.assert_allclose(det.lrd_, [2 / 3] * 4 + [2 / 15], rtol=1e-8)
    # LOF(0..3) = (2/3) / (2/3) = 1; LOF(10) = (2/3) / (2/15) = 5
    np.testing.assert_allclose(det.training_scores_, [1, 1, 1, 1, 5], rtol=1e-8)
    # new x = 1.5: N = {1, 2} at 0.5; reach-dist max(1, 0.5) = 1 twice -> lrd 1,
    # LOF = (2/3) / 1. New x = 20: N = {10, 3} at 10, 17: reach max(8, 10) = 10,
    # max(2, 17) = 17 -> lrd = 1 / 13.5, LOF = mean(2/15, 2/3) * 13.5 = 5.4
    np.testing.assert_allclose(det.anomaly_score([[1.5], [20.0]]), [2 / 3, 5.4], rtol=1e-8)


def test_lof_is_about_one_inside_a_uniform_cluster():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(2000, 2))
    det = LOFDetector(n_neighbors=20).fit(X)
    inner = np.all((X > 0.2) & (X < 0.8), axis=1)
    assert abs(np.median(det.training_scores_[inner]) - 1.0) < 0.05
    assert np.quantile(det.training_scores_[inner], 0.99) < 1.3
    X_new = rng.uniform(0.2, 0.8, size=(500, 2))
    assert abs(np.median(det.anomaly_score(X_new)) - 1.0) < 0.05
    # ... and an isolated point is far above 1
    assert det.anomaly_score([[3.0, 3.0]])[0] > 10


def test_lof_local_beats_knn_global_on_two_densities():
    # LOF's point: next to a dense cluster, a point at a "normal" global distance is anomalous
    rng = np.random.default_rng(0)
    dense = 0.05 * rng.normal(size=(200, 2))
    sparse = np.array([5.0, 0.0]) + 1.0 * rng.normal(size=(200, 2))
    X_train = np.r_[dense, sparse]
    normal_test = np.r_[0.05 * rng.normal(size=(50, 2)), [5.0, 0] + rng.normal(size=(50, 2))]
    angle = rng.uniform(0, 2 * np.pi, 30)
    anomalies = 0.5 * np.c_[np.cos(angle), np.sin(angle)]  # 10 sigma from the dense centre
    X_test, y_test = np.r_[normal_test, anomalies], np.r_[np.zeros(100, int), np.ones(30, int)]
    auc_lof = metrics.roc_auc(LOFDetector(10).fit(X_train).anomaly_score(X_test), y_test)
    auc_knn = metrics.roc_auc(KNNDetector(10).fit(X_train).anomaly_score(X_test), y_test)
    assert auc_lof > 0.95 and auc_lof > auc_knn + 0.1


def test_lof_bad_hyper_parameters():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"n_neighbors=20.*10 samples"):
        LOFDetector().fit(X)  # scikit-learn would silently use k = 9; we say so
    with pytest.raises(ValueError, match="n_neighbors must be >= 1"):
        LOFDetector(n_neighbors=-1).fit(X)


# --------------------------------------------------------------------------- #
# ClusterDetector
# --------------------------------------------------------------------------- #
def test_cluster_raw_distance_and_attributes():
    X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0], [10.0, 1.0]])
    det = ClusterDetector(n_clusters=2, random_state=0).fit(X)
    order = np.argsort(det.cluster_centers_[:, 0])
    np.testing.assert_allclose(det.cluster_centers_[order], [[0.0, 1.0], [10.0, 1.0]])
    np.testing.assert_array_equal(det.cluster_sizes_[order], [2, 3])
    np.testing.assert_allclose(det.cluster_scales_[order], [1.0, 2 / 3])
    assert det.kept_.all()
    np.testing.assert_allclose(det.anomaly_score([[0.0, 1.0], [3.0, 5.0]]), [0.0, 5.0])
    det = ClusterDetector(n_clusters=2, normalize=True, random_state=0).fit(X)
    # (3, 5) is 5 from the left centre (scale 1) and sqrt(65) from the right one (scale 2/3)
    np.testing.assert_allclose(det.anomaly_score([[3.0, 5.0]]), [5.0])
    np.testing.assert_allclose(det.anomaly_score([[10.0, 3.0]]), [2.0 / (2 / 3)])


def test_cluster_normalised_beats_raw_on_different_spreads():
    # a tight and a wide normal cluster; anomalies just outside the tight one
    rng = np.random.default_rng(0)

    def normal(n):
        return np.r_[0.1 * rng.normal(size=(n, 2)), [6.0, 0.0] + 1.5 * rng.normal(size=(n, 2))]

    X_train = normal(200)
    angle = rng.uniform(0, 2 * np.pi, 40)
    anomalies = 0.9 * np.c_[np.cos(angle), np.sin(angle)]
    X_test = np.r_[normal(100), anomalies]
    y_test = np.r_[np.zeros(200, int), np.ones(40, int)]
    raw = ClusterDetector(2, random_state=0).fit(X_train).anomaly_score(X_test)
    norm = ClusterDetector(2, normalize=True, random_state=0).fit(X_train).anomaly_score(X_test)
    auc_raw, auc_norm = metrics.roc_auc(raw, y_test), metrics.roc_auc(norm, y_test)
    assert auc_norm > 0.98 and auc_norm > auc_raw + 0.2


def test_cluster_normalised_beats_raw_on_mixture():
    # make_shapes_2d "mixture": a dense and a sparse cluster, two k-means clusters. The gain
    # is about +0.01 AUROC (0.008..0.016 over 8 training seeds): a large test set keeps the
    # comparison out of the noise
    X_test, y_test = data.make_shapes_2d("mixture", 3000, 3000, random_state=100)
    for seed in range(3):
        X, _ = data.make_shapes_2d("mixture", 400, 0, random_state=seed)
        raw = ClusterDetector(2, random_state=0).fit(X).anomaly_score(X_test)
        norm = ClusterDetector(2, normalize=True, random_state=0).fit(X).anomaly_score(X_test)
        assert metrics.roc_auc(norm, y_test) > metrics.roc_auc(raw, y_test) + 0.005


def test_cluster_small_clusters_are_anomalous():
    # unsupervised setting: 3 similar anomalies in the training set form their own cluster
    rng = np.random.default_rng(0)
    planted = np.array([8.0, 8.0]) + 0.05 * rng.normal(size=(3, 2))
    X_train = np.r_[rng.normal(size=(300, 2)), planted]
    near_planted = np.array([[8.0, 8.0], [8.05, 7.95]])
    typical = rng.normal(size=(100, 2))

    keep_all = ClusterDetector(5, random_state=0).fit(X_train)
    assert keep_all.kept_.all() and 3 in keep_all.cluster_sizes_
    assert keep_all.anomaly_score(near_planted).max() < 0.2  # the tiny cluster "explains" them

    for normalize in (False, True):
        det = ClusterDetector(5, min_cluster_fraction=0.02, normalize=normalize, random_state=0)
        det.fit(X_train)
        assert det.kept_.sum() == 4 and det.cluster_sizes_[~det.kept_].tolist() == [3]
        small = det.cluster_centers_[~det.kept_][0]
        np.testing.assert_allclose(small, planted.mean(axis=0))
        # scored against the remaining clusters: far above every typical normal sample
        assert det.anomaly_score(near_planted).min() > 3 * det.anomaly_score(typical).max()
        # the planted training points themselves are the top training scores
        top3 = np.argsort(det.anomaly_score(X_train))[-3:]
        assert set(top3) == {300, 301, 302}


def test_cluster_seeded_and_bad_hyper_parameters():
    X, _ = data.make_shapes_2d("blobs", 200, 0, random_state=0)
    a = ClusterDetector(random_state=3).fit(X).anomaly_score(X)
    b = ClusterDetector(random_state=3).fit(X).anomaly_score(X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"n_clusters=5.*3 samples"):
        ClusterDetector().fit(X[:3])
    with pytest.raises(ValueError, match="n_clusters must be an integer >= 1"):
        ClusterDetector(n_clusters=0).fit(X)
    with pytest.raises(ValueError, match=r"min_cluster_fraction must be a number in \[0, 1\)"):
        ClusterDetector(min_cluster_fraction=1.5).fit(X)
    with pytest.raises(ValueError, match="drops every cluster"):
        ClusterDetector(n_clusters=3, min_cluster_fraction=0.9, random_state=0).fit(X)
    with pytest.raises(ValueError, match="normalize must be True or False"):
        ClusterDetector(normalize="yes").fit(X)


def test_cluster_kmeans_matches_scikit_learn():
    # our Lloyd + k-means++ reaches the same clustering as scikit-learn's KMeans
    from sklearn.cluster import KMeans

    X, _ = data.make_shapes_2d("blobs", 300, 0, random_state=0)
    ours = ClusterDetector(n_clusters=3, random_state=0).fit(X)
    ref = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)
    order_ours = np.lexsort(ours.cluster_centers_.T)
    order_ref = np.lexsort(ref.cluster_centers_.T)
    np.testing.assert_allclose(
        ours.cluster_centers_[order_ours], ref.cluster_centers_[order_ref], atol=1e-6
    )
    np.testing.assert_array_equal(
        ours.cluster_sizes_[order_ours], np.bincount(ref.labels_, minlength=3)[order_ref]
    )
