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


def test_subplots_never_wider_than_the_book_column():
    fig, axes = plot.subplots(2, 5, width=12)
    assert fig.get_figwidth() == plot.MAX_WIDTH and axes.shape == (2, 5)
    fig2, _ = plot.subplots(1, 2, width=4, panel_aspect=0.5, extra_height=0)
    assert fig2.get_size_inches() == pytest.approx((4, 1))
    plt.close("all")


def test_min_font_px_sees_the_smallest_visible_text():
    fig, ax = plt.subplots(dpi=100)
    ax.set_title("title", fontsize=12)
    ax.tick_params(labelsize=9)
    assert plot.min_font_px(fig) == pytest.approx(9 * 100 / 72)
    ax.text(0.5, 0.5, "tiny", fontsize=6)
    assert plot.min_font_px(fig) == pytest.approx(6 * 100 / 72)
    ax.texts[0].set_visible(False)
    assert plot.min_font_px(fig) == pytest.approx(9 * 100 / 72)
    plt.close("all")


def test_book_style_stamps_every_png_with_its_smallest_font():
    from io import BytesIO

    from IPython.core.interactiveshell import InteractiveShell
    from PIL import Image

    shell = InteractiveShell.instance()
    try:
        rc = plot.book_style()
        assert plt.rcParams["figure.dpi"] == plot.DPI and rc["xtick.labelsize"] >= plot.MIN_FONT_PT
        fig, ax = plot.subplots(1, 1, width=3)
        ax.plot([0, 1], [1, 0])
        ax.set_xlabel("x", fontsize=8)
        png = shell.display_formatter.formatters["image/png"](fig)
        assert plot.read_font_stamp(png) == pytest.approx(8 * plot.DPI / 72, abs=1e-3)
        assert Image.open(BytesIO(png)).size[0] <= 3 * plot.DPI  # tight box, no wider than asked
    finally:
        InteractiveShell.clear_instance()
        plt.rcdefaults()
        plt.close("all")


def test_outline_draws_omega_in_one_colour_and_colorbar_needs_a_label():
    import matplotlib.colors as mcolors

    fig, ax = plt.subplots()
    mask = np.zeros((16, 16), bool)
    mask[4:9, 4:9] = True
    plot.outline(ax, mask)
    contour = ax.collections[-1]
    assert mcolors.to_hex(contour.get_edgecolor()[0]) == plot.OMEGA_COLOR
    n = len(ax.collections)
    plot.outline(ax, np.zeros((16, 16), bool))  # empty mask: nothing drawn
    assert len(ax.collections) == n
    im = ax.imshow(np.random.default_rng(0).random((16, 16)))
    with pytest.raises(ValueError, match="label"):
        plot.colorbar(im, ax, label="")
    assert plot.colorbar(im, ax, label="score").ax.get_ylabel() == "score"
    plt.close("all")
