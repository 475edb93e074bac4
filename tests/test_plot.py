"""Smoke-and-content tests of adcourse.plot: the figures draw what they claim."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from adcourse import metrics, plot  # noqa: E402


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(100, int), np.ones(20, int)]
    return rng.normal(size=120) + 2 * y, y


def test_roc_draws_the_metrics_curve(toy):
    s, y = toy
    ax = plot.roc(s, y, label="toy", point=0.5)
    fpr, tpr, _ = metrics.roc_curve(s, y)
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), fpr)
    np.testing.assert_array_equal(line.get_ydata(), tpr)
    assert f"{metrics.roc_auc(s, y):.3f}" in ax.get_legend().get_texts()[0].get_text()
    r = metrics.rates(s, y, 0.5)
    assert (ax.lines[1].get_xdata()[0], ax.lines[1].get_ydata()[0]) == (r.fpr, r.tpr)
    plt.close("all")


def test_threshold_sweep_matches_rates(toy):
    s, y = toy
    ax = plot.threshold_sweep(s, y, measures=("tpr", "fpr", "precision", "f1"))
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["TPR", "FPR", "precision", "f1"]
    thr = ax.lines[0].get_xdata()
    for i in (0, len(thr) // 2, len(thr) - 1):
        r = metrics.rates(s, y, thr[i])
        assert ax.lines[0].get_ydata()[i] == pytest.approx(r.tpr)
        assert ax.lines[2].get_ydata()[i] == pytest.approx(r.precision)
        assert ax.lines[3].get_ydata()[i] == pytest.approx(r.f1)
    with pytest.raises(ValueError, match="measures"):
        plot.threshold_sweep(s, y, measures=("auc",))
    plt.close("all")


def test_histograms_and_images(toy):
    s, y = toy
    ax = plot.score_histograms(s, y, threshold=1.0)
    assert ax.lines[0].get_xdata()[0] == 1.0
    images = np.random.default_rng(1).random((3, 16, 16))
    masks = np.zeros((3, 16, 16), bool)
    masks[1, 4:8, 4:8] = True
    fig = plot.show_images(images, masks, titles=["a", "b", "c"], ncols=2)
    assert len(fig.axes) == 4 and fig.axes[1].get_title() == "b"
    plt.close("all")
