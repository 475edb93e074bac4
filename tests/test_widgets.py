"""ThresholdExplorer driven from Python (no browser).

The browser part of the widget only looks up data that Python precomputed;
``js_operating_point`` below re-implements that lookup (threshold.js:
``operatingPoint``) on the decoded payload, so these tests check the very
numbers the static book shows.
"""

import json

import numpy as np
import pytest

from adcourse import metrics
from adcourse.decision import Threshold
from adcourse.course.widgets import ThresholdExplorer, decode_array, encode_array
from browser_utils import edge_cases


@pytest.fixture
def toy():
    rng = np.random.default_rng(42)
    # rounded scores: plenty of ties, the hard case for ">=" lookups
    scores = np.round(np.r_[rng.normal(0, 1, 300), rng.normal(1.8, 1, 60)], 2)
    labels = np.r_[np.zeros(300, dtype=int), np.ones(60, dtype=int)]
    return scores, labels


def js_operating_point(data, t):
    """Python twin of operatingPoint() in threshold.js."""
    u = decode_array(data["scores"])
    tp_at, fp_at = decode_array(data["tp"]), decode_array(data["fp"])
    n_pos, n_neg = data["n_pos"], data["n_neg"]
    i = int(np.searchsorted(u, t, side="left"))  # lowerBound: first u[i] >= t
    tp = int(tp_at[i]) if i < u.size else 0
    fp = int(fp_at[i]) if i < u.size else 0
    det = tp + fp
    return {
        "tp": tp, "fp": fp, "fn": n_pos - tp, "tn": n_neg - fp,
        "tpr": tp / n_pos, "fpr": fp / n_neg,
        "precision": tp / det if det > 0 else 1.0,
        "f1": 2 * tp / (det + n_pos),
    }


def test_default_threshold_controls_fpr_on_the_normal_samples_not_best_roc(toy):
    """Chapter 1: operate at an FPR set on normal data, never at the label-based best ROC point."""
    scores, labels = toy
    w = ThresholdExplorer(scores, labels)
    expected = Threshold.from_fpr(scores[labels == 0], 0.05)
    assert w.initial_threshold == expected and w.threshold == expected.value
    assert w.fpr <= 0.05 and w.threshold != metrics.best_threshold(scores, labels)
    # the smallest such threshold: one step lower detects more than 5 % of the normal samples
    below = np.max(scores[scores < w.threshold])
    assert metrics.rates(scores, labels, below).fpr > 0.05
    n = int(np.sum(scores[labels == 0] >= w.threshold))
    assert w.note == (f"Starts at γ = {w.threshold:.4g}, set on normal data only: it detects {n} "
                      "of the 300 normal samples shown (target FPR ≤ 5 %).")
    assert w.get_state()["note"] == w.note


def test_default_threshold_from_normal_validation_scores(toy):
    scores, labels = toy
    normal_val = np.random.default_rng(3).normal(0, 1, 400)
    w = ThresholdExplorer(scores, labels, normal_scores=normal_val, fpr=0.1)
    assert w.threshold == Threshold.from_fpr(normal_val, 0.1).value
    assert np.mean(normal_val >= w.threshold) <= 0.1
    assert w.initial_threshold.rule == "from_fpr" and w.initial_threshold.info["n"] == 400
    assert "of the 400 normal validation scores (target FPR ≤ 10 %)" in w.note
    # the FPR on the (other) normal samples shown is close to the target, not forced to it
    assert abs(w.fpr - 0.1) < 0.06


def test_threshold_may_be_a_threshold_object(toy):
    scores, labels = toy
    rule = Threshold.best_roc(scores, labels)
    w = ThresholdExplorer(scores, labels, threshold=rule)
    assert w.threshold == rule.value and w.initial_threshold is rule and w.note == ""
    w = ThresholdExplorer(scores, labels, threshold=0.25)
    assert w.initial_threshold == Threshold(0.25) and w.note == ""


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"fpr": 0.0}, ValueError, "fpr must be in"),
    ({"fpr": 1.5}, ValueError, "fpr must be in"),
    ({"fpr": "5 %"}, TypeError, "fpr must be a number"),
    ({"normal_scores": [0.1, np.nan]}, ValueError, "normal_scores contains non-finite"),
    ({"normal_scores": [[0.1, 0.2]]}, ValueError, "normal_scores must be 1-D"),
    ({"normal_scores": []}, ValueError, "normal_scores is empty"),
])
def test_bad_start_arguments(toy, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ThresholdExplorer(*toy, **kwargs)


def test_explicit_threshold_title_and_names(toy):
    w = ThresholdExplorer(*toy, threshold=0.5, bins=20, title="T", score_name="s")
    assert w.threshold == 0.5
    assert (w.title, w.score_name) == ("T", "s")
    assert decode_array(w._data["hist"]["edges"]).size == 21


@pytest.mark.parametrize("t", [-10.0, -0.5, 0.0, 0.37, 1.0, 1.8, 2.5, 10.0])
def test_setting_threshold_updates_rates(toy, t):
    scores, labels = toy
    w = ThresholdExplorer(scores, labels)
    w.threshold = t
    r = metrics.rates(scores, labels, t)
    assert w.rates == r
    assert (w.tpr, w.fpr, w.precision, w.f1) == (r.tpr, r.fpr, r.precision, r.f1)
    # and with a direct count (detected = score >= t)
    det = scores >= t
    tp, fp = int(np.sum(det & (labels == 1))), int(np.sum(det & (labels == 0)))
    assert w.tpr == tp / 60 and w.fpr == fp / 300
    assert w.precision == (tp / (tp + fp) if tp + fp else 1.0)
    assert w.f1 == pytest.approx(2 * tp / (2 * tp + fp + (60 - tp)))


def test_threshold_is_a_synced_trait(toy):
    w = ThresholdExplorer(*toy)
    assert w.trait_metadata("threshold", "sync") is True
    seen = []
    w.observe(lambda change: seen.append(change["new"]), names="threshold")
    w.threshold = 1.25  # what the front end does when the slider moves
    assert seen == [1.25] and w.get_state()["threshold"] == 1.25


def test_nan_threshold_rejected(toy):
    w = ThresholdExplorer(*toy)
    with pytest.raises(ValueError, match="NaN"):
        w.threshold = float("nan")


def test_js_lookup_reproduces_exact_rates(toy):
    scores, labels = toy
    w = ThresholdExplorer(scores, labels)
    data = w._data
    positions = w.slider_thresholds
    rng = np.random.default_rng(0)
    # random thresholds, every slider position, and exact distinct scores (ties)
    ts = np.r_[rng.uniform(positions[0], positions[-1], 50), positions, rng.choice(scores, 20)]
    for t in ts:
        r = metrics.rates(scores, labels, t)
        op = js_operating_point(data, float(t))
        assert op == {k: getattr(r, k) for k in op}, t


def test_slider_reaches_detect_all_and_nothing(toy):
    scores, labels = toy
    w = ThresholdExplorer(scores, labels)
    positions = w.slider_thresholds
    assert positions.size == 1001 and np.all(np.diff(positions) > 0)
    lo, hi = positions[0], positions[-1]
    assert lo < scores.min() and hi > scores.max()
    assert (w._data["range"]["min"], w._data["range"]["max"]) == (lo, hi)  # the histogram's axis
    # equally spaced: the thumb stays under the threshold line of the histogram
    np.testing.assert_allclose(np.diff(positions), (hi - lo) / 1000, rtol=1e-9)
    assert js_operating_point(w._data, lo)["tpr"] == 1.0
    assert js_operating_point(w._data, lo)["fpr"] == 1.0
    assert js_operating_point(w._data, hi)["tp"] == 0
    assert js_operating_point(w._data, hi)["precision"] == 1.0


@pytest.mark.parametrize("name", list(edge_cases()[1]))
def test_slider_ends_are_exact_on_unlucky_data(name):
    """Tenths, 1e-17, 1e17 (neighbouring doubles), ties, two levels, a constant."""
    labels, score_sets, *_ = edge_cases()
    scores = score_sets[name]
    w = ThresholdExplorer(scores, labels)
    positions = w.slider_thresholds
    assert np.all(np.isfinite(positions)) and np.all(np.diff(positions) >= 0)
    assert positions[0] <= scores.min() and positions[-1] > scores.max()
    first, last = js_operating_point(w._data, positions[0]), js_operating_point(w._data, positions[-1])
    assert (first["tp"], first["fp"]) == (20, 40) and (last["tp"], last["fp"]) == (0, 0)
    for t in np.r_[positions[::50], positions[-3:], np.unique(scores)]:
        r = metrics.rates(scores, labels, t)
        op = js_operating_point(w._data, float(t))
        assert op == {k: getattr(r, k) for k in op}, t
    # the histogram and the axis exist (a narrow range of huge numbers gets fewer bins)
    edges = decode_array(w._data["hist"]["edges"])
    assert np.all(np.diff(edges) > 0)
    assert decode_array(w._data["hist"]["normal"]).sum() == 40


def test_huge_scores_rejected():
    with pytest.raises(ValueError, match="scores must be at most 1e"):
        ThresholdExplorer([0.0, 1e305, 2.0], [0, 1, 1])


def test_payload_matches_metrics(toy):
    scores, labels = toy
    data = ThresholdExplorer(scores, labels)._data
    u = decode_array(data["scores"])
    np.testing.assert_array_equal(u, np.unique(scores))
    assert data["auc"] == metrics.roc_auc(scores, labels)
    hist_n = decode_array(data["hist"]["normal"])
    hist_a = decode_array(data["hist"]["anomalous"])
    assert hist_n.sum() == 300 and hist_a.sum() == 60
    assert (data["n_pos"], data["n_neg"]) == (60, 300)


def test_large_input_stays_exact_and_compact():
    rng = np.random.default_rng(1)
    scores = np.r_[rng.normal(0, 1, 9000), rng.normal(1, 1, 1000)]
    labels = np.r_[np.zeros(9000, dtype=int), np.ones(1000, dtype=int)]
    w = ThresholdExplorer(scores, labels)
    size = len(json.dumps(w.get_state()))
    assert size < 260_000, size  # ~16 bytes per distinct score, base64
    for t in rng.choice(scores, 10):
        r = metrics.rates(scores, labels, t)
        assert js_operating_point(w._data, float(t))["tp"] == r.tp


def test_state_serialises_to_json(toy):
    w = ThresholdExplorer(*toy, title="toy")
    state = w.get_state()
    text = json.dumps(state)
    back = json.loads(text)
    assert back["threshold"] == w.threshold
    assert "export default" in back["_esm"] and "decodeArray" in back["_esm"]
    assert back["_model_module"] == "anywidget"


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([0.1, 0.2, 0.3], [0, 1], "length|same|shape"),
        ([[0.1, 0.2], [0.3, 0.4]], [0, 1], "1-D"),
        ([0.1, np.nan, 0.3], [0, 1, 1], "non-finite"),
        ([0.1, np.inf, 0.3], [0, 1, 1], "non-finite"),
        ([0.1, 0.2, 0.3], [0, 2, 1], "0/1|binary|0 and 1"),
        ([0.1, 0.2, 0.3], [0, 0, 0], "class"),
    ],
)
def test_bad_input_raises_value_error(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        ThresholdExplorer(scores, labels)


def test_bad_bins():
    with pytest.raises(ValueError, match="bins"):
        ThresholdExplorer([0.1, 0.2, 0.3], [0, 1, 1], bins=0)


def test_constant_scores():
    w = ThresholdExplorer([0.5, 0.5, 0.5], [0, 1, 1])
    lo, hi = w.slider_thresholds[[0, -1]]
    assert lo < 0.5 < hi
    assert js_operating_point(w._data, 0.5)["tpr"] == 1.0


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "uint32", "uint8"])
def test_encode_decode_roundtrip(dtype):
    a = np.arange(12).reshape(3, 4) * (1.5 if dtype.startswith("float") else 1)
    packed = encode_array(a, dtype)
    json.dumps(packed)
    np.testing.assert_array_equal(decode_array(packed), a)
    with pytest.raises(ValueError):
        encode_array(a, "complex128")


def test_encode_rejects_lossy_integers():
    with pytest.raises(ValueError, match="exactly"):
        encode_array([0.5, 1.0], "int32")
