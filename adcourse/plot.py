"""Plotting helpers shared by the book, the exercises and users (matplotlib).

Each function draws on an ``ax`` you pass (or a new figure) and returns it, so
figures can be composed freely. Colours are consistent across the course:
normal = blue, anomalous = orange, the threshold = black, and the anomaly mask
Ω is always outlined in :data:`OMEGA_COLOR` (cyan: visible on grey images and
on the ``inferno`` score maps alike).

The book's figure rules (``book/CONVENTIONS.md``) live here as code:

* :func:`book_style` sets the fonts and resolution of every chapter figure and
  stamps each PNG with the smallest font it contains, so that the book's tests
  can check on the built pages that every figure's text is at least 9 CSS
  pixels at the width it is displayed;
* :func:`subplots` makes figures no wider than :data:`MAX_WIDTH` inches, the
  width at which the book shows a figure at its natural size;
* :func:`outline`, :func:`colorbar`: Ω in one colour, colour bars with a label.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text

from adcourse import metrics

NORMAL_COLOR = "#1f77b4"
ANOMALY_COLOR = "#ff7f0e"
#: the colour of the anomaly mask Ω in every figure of the course
OMEGA_COLOR = "#00e5ff"
MASK_COLOR = OMEGA_COLOR  # former name, kept for user code

#: resolution of the book's figures (pixels per inch of the PNG)
DPI = 100
#: widest figure (inches) that the book shows at its natural size: the text column of a
#: page is 688 CSS px wide at a 1280 px window, and a figure is drawn at DPI pixels/inch
MAX_WIDTH = 6.8
#: smallest font (points) a book figure may use: 8 pt at 100 dpi is 11 px at natural size,
#: still >= 9 px when the page shows the figure at 0.82 of its size (the narrow-screen floor)
MIN_FONT_PT = 8.0
#: PNG text chunk that records the smallest font of a figure, in pixels at natural size
FONT_KEY = "adcourse-min-font-px"

BOOK_RC = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 11,
}

__all__ = ["show_images", "score_histograms", "roc", "threshold_sweep", "book_style", "subplots",
           "outline", "colorbar", "min_font_px", "NORMAL_COLOR", "ANOMALY_COLOR", "OMEGA_COLOR",
           "MAX_WIDTH", "MIN_FONT_PT", "DPI"]


def _ax(ax, figsize=(5, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def min_font_px(fig):
    """Smallest font of the visible, non-empty texts of ``fig``, in pixels at natural size.

    A text of ``s`` points in a figure saved at ``dpi`` is ``s * dpi / 72`` pixels high in
    the PNG. Returns ``inf`` for a figure without text. The figure is laid out first
    (``draw_without_rendering``): tick labels only get their text when it is drawn.
    """
    fig.draw_without_rendering()
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and t.get_figure() is not None]
    return min(sizes, default=float("inf")) * fig.dpi / 72.0


def _png_with_font_stamp(fig):
    """PNG bytes of ``fig`` (tight bounding box) with its smallest font in a text chunk."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=fig.dpi,
                metadata={FONT_KEY: f"{min_font_px(fig):.3f}"})
    return buf.getvalue()


def read_font_stamp(png):
    """The smallest font (pixels at natural size) recorded by :func:`book_style` in PNG
    bytes, or ``None`` when the PNG carries no stamp."""
    from PIL import Image

    value = Image.open(io.BytesIO(png)).text.get(FONT_KEY)
    return None if value is None else float(value)


def book_style():
    """Use the book's figure style in this kernel: fonts, resolution, the PNG font stamp.

    Call it once, in the hidden set-up cell of a chapter (after ``import
    matplotlib.pyplot``). It sets :data:`BOOK_RC` and, inside IPython, makes the
    notebook display every figure as a PNG at :data:`DPI` whose text chunk
    :data:`FONT_KEY` holds :func:`min_font_px`; the book's tests read it back on the
    built pages and fail when a figure's text is shown below 9 CSS px.

    Returns
    -------
    dict
        The rcParams that were set.
    """
    plt.rcParams.update(BOOK_RC)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the course
        return dict(BOOK_RC)
    shell = get_ipython()
    if shell is not None:
        # pyplot loads its (inline) backend lazily, with the first figure, and the inline
        # backend then registers its own PNG formatter: load it now, register ours after
        plt.close(plt.figure())
        formatter = shell.display_formatter.formatters["image/png"]
        formatter.for_type(Figure, _png_with_font_stamp)
    return dict(BOOK_RC)


def subplots(nrows=1, ncols=1, panel_aspect=1.0, width=MAX_WIDTH, extra_height=0.5, **kwargs):
    """``plt.subplots`` sized for the book: at most :data:`MAX_WIDTH` inches wide.

    Parameters
    ----------
    nrows, ncols : int
    panel_aspect : float
        Height / width of one panel.
    width : float
        Figure width in inches, capped at :data:`MAX_WIDTH` (a wider figure is shrunk by the
        page, and its text with it).
    extra_height : float
        Inches added for titles and axis labels.
    **kwargs
        Passed to :func:`matplotlib.pyplot.subplots` (``squeeze``, ``gridspec_kw``, ...).

    Returns
    -------
    (Figure, Axes or array of Axes)
    """
    width = min(float(width), MAX_WIDTH)
    height = width / ncols * panel_aspect * nrows + extra_height
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def outline(ax, mask, linewidth=1.2, **kwargs):
    """Outline the anomaly mask Ω on ``ax`` in :data:`OMEGA_COLOR` (nothing if it is empty)."""
    mask = np.asarray(mask, dtype=float)
    if mask.any():
        ax.contour(mask, levels=[0.5], colors=OMEGA_COLOR, linewidths=linewidth, **kwargs)
    return ax


def colorbar(mappable, ax, label, **kwargs):
    """A colour bar for ``mappable`` next to ``ax`` (one Axes or several), always with a ``label``."""
    if not label:
        raise ValueError("a colour bar needs a label (what its colours measure)")
    fig = np.ravel(ax)[0].figure
    cbar = fig.colorbar(mappable, ax=ax, **kwargs)
    cbar.set_label(label)
    return cbar


def show_images(images, masks=None, titles=None, ncols=4, size=None, cmap="gray", maps=None,
                map_alpha=0.45):
    """Show images in a grid, with the outline of their anomaly masks Ω in :data:`OMEGA_COLOR`.

    Parameters
    ----------
    images : array (n, H, W)
    masks : array (n, H, W), optional
        Ground-truth masks: their contours are drawn over the image.
    titles : list of str, optional
    size : float, optional
        Inches per panel; default: the grid fills :data:`MAX_WIDTH`.
    maps : array (n, H, W), optional
        Score maps overlaid as a semi-transparent heat map.

    Returns
    -------
    matplotlib.figure.Figure
    """
    images = np.asarray(images)
    n = len(images)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    size = MAX_WIDTH / ncols if size is None else size
    extra = 0.3 if titles is not None else 0.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + extra) * nrows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap=cmap, vmin=0, vmax=1)
        if maps is not None:
            ax.imshow(maps[i], cmap="inferno", alpha=map_alpha)
        if masks is not None:
            outline(ax, masks[i])
        if titles is not None:
            ax.set_title(titles[i])
    fig.tight_layout()
    return fig


def score_histograms(scores, labels, threshold=None, ax=None, bins=40, density=True,
                     xlabel="anomaly score"):
    """Histograms of normal and anomalous scores, with the threshold as a vertical line."""
    ax = _ax(ax)
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    edges = np.histogram_bin_edges(scores, bins=bins)
    ax.hist(scores[labels == 0], bins=edges, alpha=0.6, color=NORMAL_COLOR, density=density,
            label=f"normal (n={np.sum(labels == 0)})")
    ax.hist(scores[labels == 1], bins=edges, alpha=0.6, color=ANOMALY_COLOR, density=density,
            label=f"anomalous (n={np.sum(labels == 1)})")
    if threshold is not None:
        ax.axvline(float(threshold), color="k", lw=1.5, label=f"threshold γ = {float(threshold):.3g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    ax.legend()
    return ax


def roc(scores, labels, ax=None, label=None, point=None, **kwargs):
    """ROC curve (FPR on x, TPR on y) with its AUC in the legend.

    ``point`` (a threshold) marks that operating point on the curve.
    """
    ax = _ax(ax, figsize=(4, 4))
    fpr, tpr, _ = metrics.roc_curve(scores, labels)
    auc = metrics.roc_auc(scores, labels)
    name = f"{label + ': ' if label else ''}AUC = {auc:.3f}"
    (line,) = ax.plot(fpr, tpr, label=name, **kwargs)
    if point is not None:
        r = metrics.rates(scores, labels, float(point))
        ax.plot(r.fpr, r.tpr, "o", color=line.get_color(), ms=7, mec="k")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("FPR")
    ax.set_ylabel("TPR")
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
    return ax


def threshold_sweep(scores, labels, ax=None, measures=("tpr", "fpr")):
    """Measures as functions of the threshold γ: the TPR/FPR trade-off.

    ``measures`` among ``"tpr", "fpr", "precision", "f1"``; computed at every
    distinct score from the ROC curve (detected = score >= γ).
    """
    ax = _ax(ax, figsize=(5, 3.5))
    labels = np.asarray(labels)
    fpr, tpr, thr = metrics.roc_curve(scores, labels)
    n_pos, n_neg = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    tp, fp = tpr[1:] * n_pos, fpr[1:] * n_neg
    values = {
        "tpr": tpr[1:],
        "fpr": fpr[1:],
        "precision": tp / (tp + fp),
        "f1": 2 * tp / (tp + fp + n_pos),
    }
    for m in measures:
        if m not in values:
            raise ValueError(f"measures must be among {sorted(values)}, got {m!r}")
        ax.plot(thr[1:], values[m], label=m.upper() if len(m) == 3 else m, drawstyle="steps-pre")
    ax.set_xlabel("threshold γ (detected: score ≥ γ)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    return ax
