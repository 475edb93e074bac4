"""Plotting helpers shared by the book, the exercises and users (matplotlib).

Each function draws on an ``ax`` you pass (or a new figure) and returns it, so
figures can be composed freely. Colours are consistent across the course:
normal = blue, anomalous = orange, the threshold = black.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from adcourse import metrics

NORMAL_COLOR = "#1f77b4"
ANOMALY_COLOR = "#ff7f0e"
MASK_COLOR = "#e41a1c"

__all__ = ["show_images", "score_histograms", "roc", "threshold_sweep", "NORMAL_COLOR", "ANOMALY_COLOR"]


def _ax(ax, figsize=(5, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def show_images(images, masks=None, titles=None, ncols=4, size=2.6, cmap="gray", maps=None,
                map_alpha=0.45):
    """Show images in a grid, with the outline of their anomaly masks Ω in red.

    Parameters
    ----------
    images : array (n, H, W)
    masks : array (n, H, W), optional
        Ground-truth masks: their contours are drawn over the image.
    titles : list of str, optional
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap=cmap, vmin=0, vmax=1)
        if maps is not None:
            ax.imshow(maps[i], cmap="inferno", alpha=map_alpha)
        if masks is not None and np.any(masks[i]):
            ax.contour(np.asarray(masks[i], float), levels=[0.5], colors=MASK_COLOR, linewidths=1.0)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
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
    ax.legend(fontsize=8)
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
    ax.legend(loc="lower right", fontsize=8)
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
    ax.legend(fontsize=8)
    return ax
