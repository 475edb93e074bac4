"""Tests of adcourse.metrics: hand-computed cases, parity with sklearn.metrics, bad input."""

import numpy as np
import pytest
from sklearn import metrics as skm

from adcourse import metrics


def _random_case(seed, n=300, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]
    s = rng.normal(size=n) + 1.2 * y
    if ties:
        s = np.round(s, 1)  # many tied scores, some shared across classes
    return s, y


# --- hand-computed -------------------------------------------------------------------------


def test_rates_hand_computed():
    scores = [0.1, 0.4, 0.35, 0.8, 0.35, 0.9]
    labels = [0, 0, 1, 1, 0, 0]
    r = metrics.rates(scores, labels, 0.35)
    # detected (>= 0.35): 0.4(n) 0.35(a) 0.8(a) 0.35(n) 0.9(n) -> tp=2 fp=3 tn=1 fn=0
    assert (r.tp, r.fp, r.tn, r.fn) == (2, 3, 1, 0)
    assert r.tpr == 1.0 and r.fnr == 0.0
    assert r.fpr == 0.75 and r.tnr == 0.25
    assert r.precision == pytest.approx(2 / 5)
    assert r.recall == r.tpr
    assert r.accuracy == pytest.approx(3 / 6)
    assert r.f1 == pytest.approx(2 * 2 / (5 + 2))
    assert r.as_dict()["fp"] == 3


def test_rates_ge_convention_and_no_detection():
    r = metrics.rates([1.0, 2.0], [0, 1], threshold=2.0)
    assert r.tpr == 1.0 and r.fpr == 0.0  # score == threshold is detected
    r = metrics.rates([1.0, 2.0], [0, 1], threshold=5.0)
    assert r.tp == 0 and r.fp == 0 and r.precision == 1.0 and r.f1 == 0.0


def test_roc_hand_computed():
    fpr, tpr, thr = metrics.roc_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 0.5, 1])
    assert metrics.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    # a tie between a normal and an anomaly moves the curve diagonally: AUC counts it 1/2
    assert metrics.roc_auc([0.5, 0.5], [0, 1]) == 0.5


def test_best_threshold_hand_computed():
    # distances to (0,1): thr 0.8 -> (0,.5): .25 ; 0.35 -> (.5,1): .25 ; tie -> larger threshold
    assert metrics.best_threshold([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.8
    assert metrics.best_threshold([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1]) == 0.7


# --- parity with scikit-learn ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_roc_equals_sklearn(seed, ties):
    s, y = _random_case(seed, ties=ties)
    fpr, tpr, thr = metrics.roc_curve(s, y)
    fpr_s, tpr_s, thr_s = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, fpr_s, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tpr, tpr_s, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thr, thr_s)
    assert abs(metrics.roc_auc(s, y) - skm.roc_auc_score(y, s)) < 1e-12


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_pr_and_ap_equal_sklearn(seed, ties):
    s, y = _random_case(seed, ties=ties)
    p, r, t = metrics.pr_curve(s, y)
    p_s, r_s, t_s = skm.precision_recall_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(p, p_s, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r, r_s, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(t, t_s)
    assert abs(metrics.average_precision(s, y) - skm.average_precision_score(y, s)) < 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_rates_equal_sklearn_confusion_matrix(seed):
    s, y = _random_case(seed, ties=True)
    for t in np.quantile(s, [0.1, 0.5, 0.9]):
        r = metrics.rates(s, y, t)
        tn, fp, fn, tp = skm.confusion_matrix(y, (s >= t).astype(int)).ravel()
        assert (r.tp, r.fp, r.tn, r.fn) == (tp, fp, tn, fn)
        assert abs(r.f1 - skm.f1_score(y, s >= t)) < 1e-12
        assert abs(r.precision - skm.precision_score(y, s >= t)) < 1e-12
        assert abs(r.accuracy - skm.accuracy_score(y, s >= t)) < 1e-12


def test_pixel_roc_auc_is_roc_over_pixels():
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 4:8, 4:8] = True
    masks[2, 10:14, 2:5] = True
    maps = rng.random(masks.shape) + masks
    assert metrics.pixel_roc_auc(maps, masks) == pytest.approx(
        skm.roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12
    )


# --- PRO -------------------------------------------------------------------------------------


def test_pro_perfect_map_is_one():
    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:5, 2:5] = True
    masks[1, 10:18, 3:6] = True
    assert metrics.pro_auc(masks.astype(float), masks) == pytest.approx(1.0)


def test_pro_constructed_case_known_answer():
    # Two regions in one 10x10 image: A (4 px) and B (16 px); 80 normal pixels.
    masks = np.zeros((10, 10), bool)
    masks[0:2, 0:2] = True  # A
    masks[5:9, 5:9] = True  # B
    maps = np.zeros((10, 10))
    maps[0:2, 0:2] = 3.0  # A fully found at the top threshold
    maps[5:7, 5:9] = 2.0  # half of B at the next threshold
    maps[9, :] = 2.0  # ... together with 10 - 0 = 10 normal pixels (row 9 has no B pixel)
    # curve: (0,0) -> t=3: (0, 0.5) -> t=2: (10/80, (1 + 0.5)/2 = 0.75) -> t=0: (1, 1)
    fpr, pro, thr = metrics.pro_curve(maps, masks)
    np.testing.assert_allclose(fpr, [0, 0, 10 / 80, 1])
    np.testing.assert_allclose(pro, [0, 0.5, 0.75, 1])
    # area up to 0.3: trapezoid 0..0.125 between 0.5 and 0.75, then 0.125..0.3 on the line
    # towards (1, 1): pro(0.3) = 0.75 + 0.25 * (0.3 - 0.125) / 0.875 = 0.8
    area = 0.125 * (0.5 + 0.75) / 2 + 0.175 * (0.75 + 0.8) / 2
    assert metrics.pro_auc(maps, masks, max_fpr=0.3) == pytest.approx(area / 0.3, abs=1e-12)


def test_pro_weights_regions_equally_unlike_pixel_auc():
    # Finding the big region only: pixel TPR is high, PRO only 1/2.
    masks = np.zeros((40, 40), bool)
    masks[0:30, 0:30] = True
    masks[35:37, 35:37] = True
    maps = np.zeros((40, 40))
    maps[0:30, 0:30] = 1.0
    fpr, pro, _ = metrics.pro_curve(maps, masks)
    assert pro[1] == pytest.approx(0.5)
    assert metrics.pro_auc(maps, masks) < 0.6


def test_pro_random_map_near_half_max_fpr():
    rng = np.random.default_rng(1)
    masks = np.zeros((4, 64, 64), bool)
    masks[:, 10:30, 10:30] = True
    val = metrics.pro_auc(rng.random(masks.shape), masks, max_fpr=0.3)
    assert val == pytest.approx(0.15, abs=0.03)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([0.1, 0.2, 0.3], [0, 1], "same length"),
        ([0.1, np.nan, 0.3], [0, 1, 1], "NaN"),
        ([0.1, np.inf, 0.3], [0, 1, 1], "non-finite"),
        ([0.1, 0.2, 0.3], [0, 1, 2], "binary"),
        ([0.1, 0.2, 0.3], [1, 1, 1], "single class"),
        ([0.1, 0.2, 0.3], [0, 0, 0], "single class"),
        ([], [], "empty"),
        ([[0.1, 0.2]], [0, 1], "1-D"),
    ],
)
def test_bad_input_raises(scores, labels, match):
    for fn in (metrics.roc_curve, metrics.roc_auc, metrics.average_precision):
        with pytest.raises(ValueError, match=match):
            fn(scores, labels)


def test_bad_types_raise():
    with pytest.raises(TypeError, match="scores"):
        metrics.roc_auc(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="masks must have the shape"):
        metrics.pixel_roc_auc(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="no anomalous pixel"):
        metrics.pro_auc(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="max_fpr"):
        metrics.pro_auc(np.zeros((4, 4)), np.eye(4), max_fpr=0)


def _pro_by_definition(maps, masks, threshold):
    """PRO and FPR at one threshold, straight from the definition (one region at a time)."""
    from scipy import ndimage

    overlaps = []
    for m, g in zip(maps, masks):
        lab, k = ndimage.label(g, structure=np.ones((3, 3), bool))
        overlaps += [np.mean(m[lab == i] >= threshold) for i in range(1, k + 1)]
    return np.mean(maps[~masks] >= threshold), np.mean(overlaps)


def test_pro_curve_matches_the_definition_at_every_threshold_with_ties():
    # scores rounded to one decimal: many ties, inside regions, across regions and with normal
    # pixels; the curve must not depend on how a sort orders tied pixels
    rng = np.random.default_rng(3)
    masks = np.zeros((3, 20, 20), bool)
    masks[0, 2:6, 2:9] = True
    masks[0, 12:14, 15:16] = True  # a small region next to a large one
    masks[2, 5:15, 5:7] = True
    maps = np.round(rng.random(masks.shape) + 0.4 * masks, 1)
    fpr, pro, thr = metrics.pro_curve(maps, masks)
    assert thr[0] == np.inf and (fpr[0], pro[0]) == (0.0, 0.0)
    np.testing.assert_array_equal(thr[1:], np.unique(maps)[::-1])
    for f, p, t in zip(fpr[1:], pro[1:], thr[1:]):
        f_def, p_def = _pro_by_definition(maps, masks, t)
        assert f == pytest.approx(f_def, abs=1e-12) and p == pytest.approx(p_def, abs=1e-12)


@pytest.mark.parametrize("max_fpr", [0.05, 0.3, 1.0])
def test_pixel_measures_equal_the_two_measures_computed_apart(max_fpr):
    rng = np.random.default_rng(4)
    masks = np.zeros((4, 24, 24), bool)
    masks[0, 3:9, 3:9] = True
    masks[1, 10:12, 0:20] = True
    masks[3, 20:24, 20:24] = True
    for maps in (rng.random(masks.shape) + 0.5 * masks, np.round(rng.random(masks.shape) + 0.3 * masks, 1)):
        auroc, pro = metrics.pixel_measures(maps, masks, max_fpr=max_fpr)
        assert auroc == metrics.pixel_roc_auc(maps, masks)
        assert auroc == pytest.approx(skm.roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)
        assert pro == pytest.approx(metrics.pro_auc(maps, masks, max_fpr=max_fpr), abs=1e-15)


def test_pixel_measures_bad_input():
    with pytest.raises(ValueError, match="no anomalous pixel"):
        metrics.pixel_measures(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="no normal pixel"):
        metrics.pixel_measures(np.zeros((4, 4)), np.ones((4, 4)))
    with pytest.raises(ValueError, match="max_fpr"):
        metrics.pixel_measures(np.zeros((4, 4)), np.eye(4), max_fpr=1.5)
    with pytest.raises(ValueError, match="NaN"):
        metrics.pixel_measures(np.full((4, 4), np.nan), np.eye(4))
    with pytest.raises(ValueError, match="masks must have the shape"):
        metrics.pixel_measures(np.zeros((4, 4)), np.eye(5))
