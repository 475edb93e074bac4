"""Tests of adcourse.decision: thresholds control the FPR on fresh normal data."""

import numpy as np
import pytest
from scipy import stats

from adcourse import metrics
from adcourse.decision import Threshold, remove_small_regions, smooth_maps


def test_from_fpr_on_training_scores_exact():
    s = np.arange(100, dtype=float)  # 0..99
    t = Threshold.from_fpr(s, 0.05)
    assert t.value == 95.0  # 95..99 detected: exactly 5 %
    assert t.predict(s).mean() == 0.05
    # with ties the detected fraction never exceeds the target
    s = np.repeat(np.arange(10.0), 10)
    for fpr in (0.05, 0.1, 0.15, 0.5):
        assert Threshold.from_fpr(s, fpr).predict(s).mean() <= fpr
    # less than one sample allowed: nothing is detected
    t = Threshold.from_fpr(np.arange(10.0), 0.05)
    assert t.predict(np.arange(10.0)).sum() == 0


@pytest.mark.parametrize("target", [0.01, 0.05, 0.2])
def test_from_fpr_fresh_data_within_binomial_tolerance(target):
    rng = np.random.default_rng(0)
    n_val, n_test = 2000, 20000
    for _ in range(5):
        t = Threshold.from_fpr(rng.normal(size=n_val), target)
        fpr = t.predict(rng.normal(size=n_test)).mean()
        # the threshold's own sampling error plus the test sample's: 4 standard deviations
        tol = 4 * np.sqrt(target * (1 - target) * (1 / n_val + 1 / n_test))
        assert abs(fpr - target) <= tol, (fpr, target, tol)


def test_bootstrap_bound_holds_with_its_confidence():
    # True FPR of a threshold t on N(0,1) normal data is sf(t): check coverage directly.
    rng = np.random.default_rng(1)
    target, conf, reps = 0.05, 0.9, 60
    below_boot, below_plain = 0, 0
    for r in range(reps):
        val = rng.normal(size=400)
        below_boot += stats.norm.sf(Threshold.bootstrap(val, target, conf, 1000, r).value) <= target
        below_plain += stats.norm.sf(Threshold.from_fpr(val, target).value) <= target
    # binomial(60, 0.9): mean 54, sd 2.3 -> at least 47 with a wide margin
    assert below_boot >= 47, below_boot
    assert below_boot > below_plain  # the bound is more conservative than the plain quantile
    fresh = rng.normal(size=20000)
    t = Threshold.bootstrap(rng.normal(size=400), target, conf, 1000, 0)
    assert t.predict(fresh).mean() <= target + 4 * np.sqrt(target * (1 - target) / 20000)


def test_bootstrap_is_deterministic():
    s = np.random.default_rng(2).normal(size=300)
    assert Threshold.bootstrap(s, 0.05, random_state=3) == Threshold.bootstrap(s, 0.05, random_state=3)


def test_three_sigma():
    s = np.random.default_rng(3).normal(2.0, 0.5, size=5000)
    t = Threshold.three_sigma(s)
    assert t.value == pytest.approx(s.mean() + 3 * s.std(ddof=1))
    assert t.value == pytest.approx(3.5, abs=0.05)


def test_best_roc_and_best_f1():
    rng = np.random.default_rng(4)
    y = np.r_[np.zeros(300, int), np.ones(60, int)]
    s = rng.normal(size=360) + 2.5 * y
    t = Threshold.best_roc(s, y)
    assert t.value == metrics.best_threshold(s, y)
    f1 = Threshold.best_f1(s, y)
    best_brute = max(metrics.rates(s, y, v).f1 for v in np.unique(s))
    assert metrics.rates(s, y, f1.value).f1 == pytest.approx(best_brute)
    assert f1.info["f1"] == pytest.approx(best_brute)


def test_predict_shapes_and_errors():
    t = Threshold(0.5)
    maps = np.random.default_rng(5).random((2, 8, 8))
    assert t.predict(maps).shape == (2, 8, 8)
    assert float(t) == 0.5
    with pytest.raises(ValueError, match="NaN"):
        t.predict([0.1, np.nan])
    with pytest.raises(ValueError, match="fpr must be in"):
        Threshold.from_fpr([1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match="normal_scores is empty"):
        Threshold.from_fpr([], 0.1)
    with pytest.raises(ValueError, match="normal_scores contains non-finite"):
        Threshold.three_sigma([1.0, np.nan])
    with pytest.raises(ValueError, match="single class"):
        Threshold.best_roc([1.0, 2.0], [1, 1])


def test_post_processing():
    det = np.zeros((2, 10, 10), bool)
    det[0, 1:4, 1:4] = True  # 9 px kept
    det[0, 8, 8] = True  # 1 px removed
    det[1, 5, 5:7] = True  # 2 px removed
    out = remove_small_regions(det, min_size=3)
    assert out[0].sum() == 9 and out[1].sum() == 0
    assert remove_small_regions(det[0], 3).shape == (10, 10)
    with pytest.raises(TypeError, match="boolean"):
        remove_small_regions(det.astype(int), 3)
    # smoothing works per image: an impulse in image 0 does not leak into image 1
    maps = np.zeros((2, 9, 9))
    maps[0, 4, 4] = 1.0
    sm = smooth_maps(maps, sigma=1.0)
    assert sm[1].max() == 0.0 and sm[0].sum() == pytest.approx(1.0)


def test_upsample_maps_matches_torch_bilinear_and_smooths():
    torch = pytest.importorskip("torch")
    from adcourse.decision import smooth_maps, upsample_maps

    coarse = np.random.default_rng(0).random((3, 8, 8))
    up = upsample_maps(coarse, (32, 32))
    ref = torch.nn.functional.interpolate(torch.as_tensor(coarse)[:, None], size=(32, 32),
                                          mode="bilinear", align_corners=False)[:, 0].numpy()
    assert up.shape == (3, 32, 32)
    np.testing.assert_allclose(up, ref, atol=1e-12)
    np.testing.assert_allclose(upsample_maps(coarse, (32, 32), sigma=2.0), smooth_maps(ref, 2.0),
                               atol=1e-12)
    # images are not mixed: a constant map per image stays constant
    const = np.stack([np.full((4, 4), v) for v in (1.0, 5.0)])
    np.testing.assert_allclose(upsample_maps(const, (16, 16), sigma=1.0)[1], 5.0)
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        upsample_maps(coarse[0], (32, 32))
    with pytest.raises(ValueError, match="size"):
        upsample_maps(coarse, (0, 32))
