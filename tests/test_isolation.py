"""Tests of the isolation forest (axis-parallel and extended) against the formulas and scikit-learn."""

import warnings

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from adcourse import data, metrics
from adcourse.vectors.isolation import IsolationForestDetector, c_factor

SEEDS = (0, 1)  # mean over 2 seeds: |ours - sklearn| <= 0.011 in a 10-seed study


# --------------------------------------------------------------------------- #
# c(n)
# --------------------------------------------------------------------------- #
def test_c_factor_hand_values():
    assert c_factor(0) == 0.0 and c_factor(1) == 0.0 and c_factor(2) == 1.0
    # c(n) = 2 (ln(n-1) + Euler) - 2 (n-1)/n
    assert c_factor(3) == pytest.approx(2 * (np.log(2) + 0.5772156649) - 4 / 3, abs=1e-9)
    assert c_factor(256) == pytest.approx(10.2447709201, abs=1e-9)
    assert isinstance(c_factor(256), float)
    np.testing.assert_array_equal(c_factor(np.array([[1, 2], [2, 1]])), [[0, 1], [1, 0]])


def test_c_factor_matches_sklearn():
    n = np.r_[np.arange(0, 2000), [4096, 10**5, 10**9]]
    np.testing.assert_allclose(c_factor(n), _average_path_length(n), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- #
# hand examples
# --------------------------------------------------------------------------- #
def test_far_point_is_isolated_sooner():
    X = np.r_[np.linspace(0.0, 1.0, 30), 10.0].reshape(-1, 1)  # one point far from 30 close ones
    det = IsolationForestDetector(random_state=0).fit(X)
    h = det.path_lengths(X)
    assert h.shape == (31, 100)
    mean_h = h.mean(axis=1)
    assert mean_h[-1] < mean_h[:-1].min()
    s = det.anomaly_score(X)
    assert np.all((s > 0) & (s <= 1))
    assert s[-1] > s[:-1].max() and s[-1] > 0.6
    # the score is 2^(-E[h]/c(psi)) of those path lengths, psi = n = 31
    np.testing.assert_allclose(s, 2.0 ** (-mean_h / c_factor(31)), rtol=1e-12)


def test_two_points():
    # psi = 2, height limit 1: the root cut separates the two points into two leaves of
    # depth 1 = c(2), so h = c(psi) and the score is 1/2 (axis-parallel cuts never miss)
    X = [[0.0, 0.0], [1.0, 2.0]]
    det = IsolationForestDetector(n_estimators=5, random_state=0).fit(X)
    np.testing.assert_allclose(det.path_lengths(X), 1.0)
    np.testing.assert_allclose(det.anomaly_score(X), 0.5)
    # a hyperplane through a random point of the box may leave both points on one side:
    # then they share a leaf of depth 1 and size 2, h = 1 + c(2) = 2
    ext = IsolationForestDetector(n_estimators=50, extended=True, random_state=0).fit(X)
    h = ext.path_lengths(X)
    assert set(np.unique(h)) <= {1.0, 2.0} and (h == 2.0).any() and (h == 1.0).any()


@pytest.mark.parametrize("extended", [False, True])
def test_identical_points(extended):
    det = IsolationForestDetector(n_estimators=5, extended=extended, random_state=0)
    # identical points cannot be split: the root is a leaf, h = 0 + c(psi), score 1/2 everywhere
    det.fit(np.ones((20, 2)))
    assert det.forest_.size.size == 5  # five roots, nothing else
    np.testing.assert_allclose(det.anomaly_score([[1.0, 1.0], [50.0, -3.0]]), 0.5)


@pytest.mark.parametrize("extended", [False, True])
def test_tree_structure(extended):
    X, _ = data.make_shapes_2d("banana", 300, 0, random_state=0)
    det = IsolationForestDetector(n_estimators=20, extended=extended, random_state=0).fit(X)
    f = det.forest_
    assert det.max_samples_ == 256 and det.height_limit_ == 8
    np.testing.assert_array_equal(f.size[:20], 256)  # the roots hold the sub-samples
    internal = f.left != np.arange(f.size.size)
    # children split their parent's points, one level deeper, without losing any
    np.testing.assert_array_equal(f.size[f.left[internal]] + f.size[f.right[internal]], f.size[internal])
    np.testing.assert_array_equal(f.depth[f.left[internal]], f.depth[internal] + 1)
    assert f.depth.max() <= det.height_limit_
    # a leaf: at most one point, or the height limit (distinct points in this data)
    leaves = ~internal
    assert np.all((f.size[leaves] <= 1) | (f.depth[leaves] == det.height_limit_))
    if not extended:  # axis-parallel cuts never leave a side empty
        assert f.size.min() >= 1
    # each training point of a tree's sub-sample ends in a leaf with at least one point
    h = det.path_lengths(X)
    assert np.all(h > 0) and np.all(h <= det.height_limit_ + c_factor(256))


def test_max_samples_larger_than_n_uses_n():
    X = np.random.default_rng(0).normal(size=(50, 3))
    det = IsolationForestDetector(max_samples=1000, random_state=0).fit(X)
    assert det.max_samples_ == 50 and det.height_limit_ == 6
    np.testing.assert_array_equal(det.forest_.size[:100], 50)


# --------------------------------------------------------------------------- #
# parity with scikit-learn, and the extended variant, on the same data sets
# --------------------------------------------------------------------------- #
def _datasets(seed):
    out = {}
    for kind in ("blobs", "banana", "mixture"):
        X_train, _ = data.make_shapes_2d(kind, 400, 0, random_state=seed)
        X_test, y_test = data.make_shapes_2d(kind, 300, 50, random_state=seed + 100)
        out[kind] = (X_train, X_test, y_test)
    X_train, _ = data.make_toy_2d(400, 0, random_state=seed)
    out["toy_2d"] = (X_train,) + data.make_toy_2d(300, 50, random_state=seed + 100)
    out["breast_cancer"] = data.load_breast_cancer_oneclass(random_state=seed)
    split = data.load_digits_oneclass(normal_digit=0, random_state=seed)
    out["digits_0"] = (split.X_train, split.X_test, split.y_test)
    return out


@pytest.fixture(scope="module")
def aurocs():
    """Mean AUROC over the SEEDS of (ours, ours extended, scikit-learn) per data set."""
    table = {}
    for seed in SEEDS:
        for name, (X_train, X_test, y_test) in _datasets(seed).items():
            ours = IsolationForestDetector(random_state=seed).fit(X_train).anomaly_score(X_test)
            ext = IsolationForestDetector(extended=True, random_state=seed).fit(X_train)
            with warnings.catch_warnings():  # "max_samples > n": both then use psi = n
                warnings.simplefilter("ignore", UserWarning)
                sk = IsolationForest(n_estimators=100, max_samples=256, random_state=seed).fit(X_train)
            # scikit-learn's score_samples is higher = more normal: flip the sign
            row = [metrics.roc_auc(s, y_test) for s in (ours, ext.anomaly_score(X_test), -sk.score_samples(X_test))]
            table.setdefault(name, []).append(row)
    return {name: np.mean(rows, axis=0) for name, rows in table.items()}


def test_auroc_parity_with_sklearn(aurocs):
    assert len(aurocs) >= 5
    for name, (ours, _, sk) in aurocs.items():
        assert abs(ours - sk) <= 0.02, f"{name}: ours {ours:.4f} vs scikit-learn {sk:.4f}"
        assert ours > 0.85, name


def test_extended_auroc_comparable(aurocs):
    for name, (ours, ext, _) in aurocs.items():
        assert ext >= ours - 0.03, f"{name}: extended {ext:.4f} vs axis-parallel {ours:.4f}"


def test_extended_removes_the_cross_artefact():
    """Around one round blob, axis-parallel cuts make the axes look more normal than the diagonals."""
    X = np.random.default_rng(0).normal(size=(1000, 2))
    X -= X.mean(axis=0)
    X = X @ np.linalg.inv(np.linalg.cholesky(np.cov(X.T))).T  # exactly zero mean, identity covariance
    angle = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    circle = 3.5 * np.c_[np.cos(angle), np.sin(angle)]
    near_axes = np.abs(np.sin(2 * angle)) < 0.3  # around 0, 90, 180, 270 degrees
    near_diagonals = np.abs(np.cos(2 * angle)) < 0.3
    stats = {}
    for extended in (False, True):
        det = IsolationForestDetector(n_estimators=300, extended=extended, random_state=0).fit(X)
        s = det.anomaly_score(circle)
        stats[extended] = (s.std(), s[near_diagonals].mean() - s[near_axes].mean())
    (std_axis, cross_axis), (std_ext, cross_ext) = stats[False], stats[True]
    assert cross_axis > 0.03  # the artefact is there with axis-parallel cuts ...
    assert abs(cross_ext) < 0.5 * cross_axis  # ... and mostly gone with hyperplanes
    assert std_ext < 0.6 * std_axis  # the score along the circle is more even


# --------------------------------------------------------------------------- #
# seeds, hyper-parameters
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("extended", [False, True])
def test_seeds(extended):
    X, _ = data.make_shapes_2d("mixture", 200, 0, random_state=0)
    X_test, _ = data.make_shapes_2d("mixture", 50, 20, random_state=1)

    def scores(seed):
        return IsolationForestDetector(extended=extended, random_state=seed).fit(X).anomaly_score(X_test)

    np.testing.assert_array_equal(scores(3), scores(3))
    assert not np.array_equal(scores(3), scores(4))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_estimators": 0}, "n_estimators"),
        ({"n_estimators": 2.5}, "n_estimators"),
        ({"max_samples": 1}, "max_samples"),
        ({"max_samples": 0.5}, "max_samples"),
        ({"extended": "yes"}, "extended"),
    ],
)
def test_bad_hyper_parameters(params, match):
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match=match):
        IsolationForestDetector(**params).fit(X)


def test_path_lengths_checks_input():
    det = IsolationForestDetector(n_estimators=3, random_state=0).fit(np.random.default_rng(0).normal(size=(30, 2)))
    with pytest.raises(ValueError, match="features"):
        det.path_lengths(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        IsolationForestDetector().fit([[1.0, 2.0]])
