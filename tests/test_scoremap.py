"""ScoreMapExplorer driven from Python (no browser).

The browser part of the widget only looks up data that Python precomputed;
``js_lookup`` below re-implements that lookup (scoremap.js:
``smOperatingPoint`` and the per-pixel test ``codes[p] >= k`` of ``paint``)
on the decoded payload, so these tests check the very numbers and pixels the
static book shows. The browser itself is tested in test_browser.py.
"""

import json

import numpy as np
import pytest

from adcourse import metrics
from adcourse.decision import Threshold
from adcourse.course.widgets import ScoreMapExplorer, ThresholdExplorer, decode_array
from browser_utils import edge_cases


@pytest.fixture
def toy():
    """A 40 x 50 image, a noisy map with a bright blob, and the blob's mask."""
    rng = np.random.default_rng(7)
    h, w = 40, 50
    yy, xx = np.mgrid[0:h, 0:w]
    blob = ((yy - 12) ** 2 + (xx - 30) ** 2) < 36
    image = np.clip(0.5 + 0.2 * rng.standard_normal((h, w)), 0, 1)
    score_map = rng.normal(0, 1, (h, w)) + 2.5 * blob
    mask = blob.copy()
    mask[12, 36:38] = True  # a few anomalous pixels outside the blob
    return image, score_map, mask


def js_lookup(data, t):
    """Python twin of smOperatingPoint() + the detection mask painted by scoremap.js."""
    levels = decode_array(data["levels"])
    ge_all = decode_array(data["ge_all"])
    k = int(np.searchsorted(levels, t, side="left"))  # lowerBound: first level >= t
    codes = decode_array(data["codes"])
    op = {"k": k, "detected": int(ge_all[k]), "fraction": ge_all[k] / data["n_pixels"],
          "pixels": codes >= k}
    if "mask" in data:
        ge_pos = decode_array(data["ge_anomalous"])
        n_pos = data["n_anomalous"]
        n_neg = data["n_pixels"] - n_pos
        op["tp"] = int(ge_pos[k])
        op["fp"] = op["detected"] - op["tp"]
        op["fn"], op["tn"] = n_pos - op["tp"], n_neg - op["fp"]
        op["tpr"] = op["tp"] / n_pos if n_pos else float("nan")
        op["fpr"] = op["fp"] / n_neg if n_neg else float("nan")
    return op


def _thresholds(w, score_map, n=40, seed=0):
    """Random values, every slider position, exact levels (ties) and the extremes."""
    rng = np.random.default_rng(seed)
    positions = w.slider_thresholds
    return np.r_[rng.uniform(positions[0] - 1, positions[-1] + 1, n), positions,
                 w.levels, rng.choice(w.quantized_map.ravel(), 20),
                 score_map.min(), score_map.max(), -1e9, 1e9]


def test_js_lookup_equals_metrics_rates_on_quantized_map(toy):
    image, score_map, mask = toy
    w = ScoreMapExplorer(image, score_map, mask)
    q = w.quantized_map
    for t in _thresholds(w, score_map):
        t = float(t)
        r = metrics.rates(q.ravel(), mask.ravel(), t)
        op = js_lookup(w._data, t)
        assert {k: op[k] for k in ("tp", "fp", "tn", "fn", "tpr", "fpr")} == {
            k: getattr(r, k) for k in ("tp", "fp", "tn", "fn", "tpr", "fpr")}, t
        # the painted pixels are exactly the detections, and the counts are theirs
        np.testing.assert_array_equal(op["pixels"].reshape(q.shape), q >= t)
        assert op["detected"] == int((q >= t).sum())
        # Python-side attributes say the same
        w.threshold = t
        assert (w.tpr, w.fpr) == (r.tpr, r.fpr)
        assert w.detected_fraction == op["fraction"] == (q >= t).mean()
        assert w.rates == r


def test_quantization_is_faithful(toy):
    image, score_map, mask = toy
    w = ScoreMapExplorer(image, score_map, mask)
    levels = w.levels
    assert levels.size == 256 and np.all(np.diff(levels) > 0)
    assert levels[0] == score_map.min() and levels[-1] == pytest.approx(score_map.max(), abs=1e-12)
    step = levels[1] - levels[0]
    assert np.abs(w.quantized_map - score_map).max() <= step / 2 + 1e-12
    codes = decode_array(w._data["codes"])
    np.testing.assert_array_equal(levels[codes], w.quantized_map)
    np.testing.assert_array_equal(decode_array(w._data["levels"]), levels)
    img = decode_array(w._data["image"])
    assert img.dtype == np.uint8 and np.abs(img / 255 - image).max() <= 0.5 / 255 + 1e-12
    np.testing.assert_array_equal(decode_array(w._data["mask"]), mask)
    # ranking barely changes: pixel AUROC of the quantised map ~ the original's
    assert metrics.pixel_roc_auc(w.quantized_map, mask) == pytest.approx(
        metrics.pixel_roc_auc(score_map, mask), abs=0.01)


def test_default_threshold_controls_the_pixel_fpr(toy):
    image, score_map, mask = toy
    w = ScoreMapExplorer(image, score_map, mask)
    q = w.quantized_map
    assert w.initial_threshold == Threshold.from_fpr(q[~mask], 0.01)
    assert w.threshold == w.initial_threshold.value and w.threshold in w.levels
    assert 0.005 <= w.fpr <= 0.01
    assert "normal pixels of this image (target FPR ≤ 1 %)" in w.note
    # without a mask: of all pixels
    w = ScoreMapExplorer(image, score_map)
    assert w.threshold == Threshold.from_fpr(q.ravel(), 0.01).value
    assert 0.005 <= w.detected_fraction <= 0.01 and "pixels of this image" in w.note


def test_default_threshold_from_normal_validation_maps(toy):
    image, score_map, mask = toy
    val_maps = np.random.default_rng(11).normal(0, 1, (3, *score_map.shape))  # normal images
    w = ScoreMapExplorer(image, score_map, mask, normal_scores=val_maps, fpr=0.02)
    assert w.threshold == Threshold.from_fpr(val_maps.ravel(), 0.02).value
    assert "normal validation scores (target FPR ≤ 2 %)" in w.note
    assert 0.0 < w.fpr < 0.06  # the test image's normal pixels: near the target
    w = ScoreMapExplorer(image, score_map, mask, threshold=Threshold(1.5))
    assert (w.threshold, w.note) == (1.5, "")
    with pytest.raises(ValueError, match="normal_scores"):
        ScoreMapExplorer(image, score_map, normal_scores=[np.inf])
    with pytest.raises(ValueError, match="fpr must be in"):
        ScoreMapExplorer(image, score_map, fpr=2)


def test_explicit_threshold_and_title(toy):
    w = ScoreMapExplorer(*toy, threshold=1.5, title="T")
    assert (w.threshold, w.title) == (1.5, "T")


def test_threshold_is_a_synced_trait(toy):
    w = ScoreMapExplorer(*toy)
    assert w.trait_metadata("threshold", "sync") is True
    seen = []
    w.observe(lambda change: seen.append(change["new"]), names="threshold")
    w.threshold = 0.75  # what the front end does when the slider moves
    assert seen == [0.75] and w.get_state()["threshold"] == 0.75
    with pytest.raises(ValueError, match="NaN"):
        w.threshold = float("nan")


def test_slider_reaches_detect_all_and_nothing_and_every_level(toy):
    image, score_map, mask = toy
    w = ScoreMapExplorer(image, score_map, mask)
    positions = w.slider_thresholds
    lo, hi = positions[0], positions[-1]
    assert (w._data["range"]["min"], w._data["range"]["max"]) == (lo, hi)  # the histogram's axis
    assert js_lookup(w._data, lo)["detected"] == mask.size
    assert (js_lookup(w._data, lo)["tpr"], js_lookup(w._data, lo)["fpr"]) == (1.0, 1.0)
    assert js_lookup(w._data, hi)["detected"] == 0
    # positions lie half-way between levels, equally spaced: one position per level change
    assert positions.size == 257
    step = w.levels[1] - w.levels[0]
    np.testing.assert_allclose(positions, w.levels[0] - step / 2 + step * np.arange(257), rtol=0, atol=1e-12)
    ks = [js_lookup(w._data, float(t))["k"] for t in positions]
    assert ks == list(range(257))


@pytest.mark.parametrize("name", list(edge_cases()[4]))
def test_slider_positions_exact_on_unlucky_maps(name):
    """Position k detects exactly the pixels of level >= levels[k]; 0 all, the last none."""
    _, _, image, mask, map_sets = edge_cases()
    score_map = map_sets[name]
    w = ScoreMapExplorer(image, score_map, mask)
    levels, positions, q = w.levels, w.slider_thresholds, w.quantized_map
    assert np.all(np.diff(levels) > 0) and levels.size <= 256
    assert positions.size == levels.size + 1 and np.all(np.diff(positions) > 0)
    assert np.all(levels[:-1] < positions[1:-1]) and np.all(positions[1:-1] <= levels[1:])
    assert positions[0] <= levels[0] and positions[-1] > levels[-1]
    np.testing.assert_array_equal(levels[decode_array(w._data["codes"])], q)
    assert decode_array(w._data["lut"]).reshape(-1, 3).shape[0] == levels.size
    for k, t in enumerate(positions):
        op = js_lookup(w._data, float(t))
        r = metrics.rates(q.ravel(), mask.ravel(), t)
        assert op["k"] == k and op["detected"] == r.tp + r.fp == int((q >= t).sum()), (k, t)
        expected = q >= levels[k] if k < levels.size else np.zeros(q.shape, bool)
        np.testing.assert_array_equal(op["pixels"].reshape(q.shape), expected)
    assert js_lookup(w._data, positions[0])["detected"] == q.size
    assert js_lookup(w._data, positions[-1])["detected"] == 0


def test_huge_map_levels_merge():
    """1e17 + multiples of 16: neighbouring doubles, fewer than 256 distinct levels."""
    _, _, image, mask, map_sets = edge_cases()
    w = ScoreMapExplorer(image, map_sets["huge"], mask)
    assert w.levels.size < 256
    np.testing.assert_array_equal(np.unique(w.quantized_map), np.unique(map_sets["huge"]))
    with pytest.raises(ValueError, match="score_map must be at most 1e"):
        ScoreMapExplorer(image, np.where(mask, -1e301, 0.0))


def test_without_mask(toy):
    image, score_map, _ = toy
    w = ScoreMapExplorer(image, score_map)
    assert "mask" not in w._data and "ge_anomalous" not in w._data
    assert np.isnan(w.tpr) and np.isnan(w.fpr) and w.rates is None
    w.threshold = 1.0
    assert w.detected_fraction == (w.quantized_map >= 1.0).mean()


def test_all_normal_mask(toy):
    """A normal image: every detection is a false positive, TPR is undefined."""
    image, score_map, _ = toy
    w = ScoreMapExplorer(image, score_map, np.zeros(score_map.shape, dtype=int))
    w.threshold = 1.0
    assert np.isnan(w.tpr) and w.rates is None
    assert w.fpr == w.detected_fraction == (w.quantized_map >= 1.0).mean()
    op = js_lookup(w._data, 1.0)
    assert np.isnan(op["tpr"]) and op["fpr"] == w.fpr


def test_constant_map(toy):
    image, _, mask = toy
    w = ScoreMapExplorer(image, np.full(image.shape, 0.3), mask)
    lo, hi = w.slider_thresholds
    assert lo < 0.3 < hi
    # at most 1 % of the (equal) pixels may be detected: none
    assert w.threshold > 0.3 and w.detected_fraction == 0.0
    assert js_lookup(w._data, w.threshold)["k"] == 1  # the top slider position
    assert js_lookup(w._data, hi)["detected"] == 0 and js_lookup(w._data, lo)["tpr"] == 1.0


def test_downsampling_large_images():
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 1, (300, 270))
    score_map = rng.normal(0, 1, (300, 270))
    score_map[101, 33] = 50.0  # one hot pixel must survive the reduction
    mask = np.zeros((300, 270), dtype=bool)
    mask[101, 33] = True
    w = ScoreMapExplorer(image, score_map, mask)
    assert w.downsample_factor == 2
    d = w._data
    assert (d["height"], d["width"], d["original_shape"], d["downsample"]) == (150, 135, [300, 270], 2)
    assert w.quantized_map.shape == (150, 135)
    assert w.quantized_map[50, 16] == w.levels[-1]  # block max of the map
    assert decode_array(d["mask"]).sum() == 1 and decode_array(d["mask"])[50, 16] == 1
    img = decode_array(d["image"]).astype(float) / 255
    assert img[0, 0] == pytest.approx(image[:2, :2].mean(), abs=0.5 / 255 + 1e-12)
    # rates refer to the reduced grid, still exact there
    w.threshold = 40.0
    assert (w.tpr, w.fpr) == (1.0, 0.0)
    # odd sizes: padded by replication, then reduced
    w = ScoreMapExplorer(image[:259, :259], score_map[:259, :259], max_size=100)
    assert w.downsample_factor == 3 and w.quantized_map.shape == (87, 87)
    assert ScoreMapExplorer(image, score_map, max_size=300).downsample_factor == 1


def test_payload_is_small():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (256, 256))
    score_map = rng.normal(0, 1, (256, 256))
    mask = score_map > 2
    size = len(json.dumps(ScoreMapExplorer(image, score_map, mask).get_state()))
    assert size < 310_000, size  # 3 bytes/pixel in base64 (image, map, mask) + ESM
    w = ScoreMapExplorer(image, score_map)
    assert len(json.dumps(w._data)) < 185_000


def test_colormap_table():
    import matplotlib

    image = np.zeros((4, 4))
    w = ScoreMapExplorer(image, np.arange(16.0).reshape(4, 4), cmap="viridis")
    lut = decode_array(w._data["lut"]).reshape(256, 3)
    expected = np.rint(matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255)
    np.testing.assert_array_equal(lut, expected)
    ScoreMapExplorer(image, image, cmap=matplotlib.colormaps["magma"])  # a Colormap object
    with pytest.raises(ValueError, match="cmap"):
        ScoreMapExplorer(image, image, cmap="no-such-map")


def test_state_serialises_to_json_with_shared_helpers_once(toy):
    w = ScoreMapExplorer(*toy, title="toy")
    back = json.loads(json.dumps(w.get_state()))
    assert back["threshold"] == w.threshold and back["_model_module"] == "anywidget"
    esm = back["_esm"]
    assert "export default" in esm and esm.count("function decodeArray(") == 1
    assert "smOperatingPoint" in esm and "adc-sm" in back["_css"]
    # both widgets share one _shared.js and one stylesheet
    assert esm.split("// ---- ")[0] == ThresholdExplorer._esm.split("// ---- ")[0]
    assert back["_css"] == ThresholdExplorer._css


def test_nanofibre_maps():
    """The intended use: a detector's anomaly map on a synthetic SEM image."""
    from adcourse.data import make_nanofibers
    from adcourse.images.features import LocalFeatureDetector

    train = make_nanofibers(8, 64, anomaly_rate=0.0, random_state=0)
    test = make_nanofibers(1, 64, anomaly_rate=1.0, random_state=1)
    maps = LocalFeatureDetector(window=7).fit(train.images).anomaly_map(test.images)
    w = ScoreMapExplorer(test.images[0], maps[0], test.masks[0])
    r = metrics.rates(w.quantized_map.ravel(), test.masks[0].ravel(), w.threshold)
    assert (w.tpr, w.fpr) == (r.tpr, r.fpr) and 0.005 <= w.fpr <= 0.01


@pytest.mark.parametrize(
    "image, score_map, mask, exc, match",
    [
        (np.zeros((3, 8, 8)), np.zeros((8, 8)), None, ValueError, r"image must be 2-D.*\(3, 8, 8\).*images\[i\]"),
        (np.zeros(8), np.zeros(8), None, ValueError, "image must be 2-D"),
        (np.zeros((0, 4)), np.zeros((0, 4)), None, ValueError, "image is empty"),
        (np.full((4, 4), 2.0), np.zeros((4, 4)), None, ValueError, r"image must be floats in \[0, 1\]"),
        (np.full((4, 4), np.nan), np.zeros((4, 4)), None, ValueError, "image contains non-finite"),
        (np.zeros((4, 4)), np.zeros((4, 5)), None, ValueError, r"score_map must have the shape of image \(4, 4\), got \(4, 5\)"),
        (np.zeros((4, 4)), np.full((4, 4), np.inf), None, ValueError, "score_map contains non-finite"),
        (np.zeros((4, 4)), np.zeros((4, 4, 1)), None, ValueError, "score_map must be 2-D"),
        (np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 3)), ValueError, r"mask must have the shape of image \(4, 4\), got \(4, 3\)"),
        (np.zeros((4, 4)), np.zeros((4, 4)), np.full((4, 4), 2), ValueError, "mask must be binary"),
        (np.zeros((4, 4)), np.zeros((4, 4)), np.full((4, 4), "a"), TypeError, "mask must be 0/1"),
        ("image", np.zeros((4, 4)), None, TypeError, "image must be array-like"),
        (np.zeros((4, 4)), [["a"] * 4] * 4, None, TypeError, "score_map must contain numbers"),
    ],
)
def test_bad_input(image, score_map, mask, exc, match):
    with pytest.raises(exc, match=match):
        ScoreMapExplorer(image, score_map, mask)


@pytest.mark.parametrize("max_size, exc", [(4, ValueError), (5000, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_max_size(max_size, exc):
    with pytest.raises(exc, match="max_size"):
        ScoreMapExplorer(np.zeros((4, 4)), np.zeros((4, 4)), max_size=max_size)
