r"""Performance measures of anomaly detectors (lecture: "Performance measures").

Conventions used everywhere in the course
-----------------------------------------
* **Anomaly = positive.** Label 1 marks an anomaly, label 0 a normal sample.
* **Higher score = more anomalous**, and a sample is **detected** when
  ``score >= threshold`` (greater *or equal*). Every function here, the
  decision rules in :mod:`adcourse.decision` and the widgets use this rule.

With :math:`\gamma` the threshold and :math:`\mathbb{1}[\cdot]` the indicator,

.. math::

    TPR = \frac{\#\{\text{anomalies detected}\}}{\#\{\text{anomalies}\}},\qquad
    FPR = \frac{\#\{\text{normal samples detected}\}}{\#\{\text{normal samples}\}}.

Sweeping :math:`\gamma` over all distinct scores traces the ROC curve; its area
(AUC) summarises the detector over every threshold. The functions agree with
:mod:`sklearn.metrics` wherever both exist (tested to 1e-12); note the argument
order: scikit-learn takes ``(y_true, y_score)``, this module ``(scores, labels)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from adcourse.validation import check_maps_masks, check_scores_labels

__all__ = [
    "Rates",
    "rates",
    "roc_curve",
    "roc_auc",
    "best_threshold",
    "pr_curve",
    "average_precision",
    "pixel_roc_auc",
    "pro_curve",
    "pro_auc",
    "pixel_measures",
]


@dataclass(frozen=True)
class Rates:
    """Counts and rates of one operating point (one threshold).

    ``tp`` anomalies detected, ``fp`` normal samples detected, ``tn`` normal
    samples not detected, ``fn`` anomalies missed.
    """

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    tpr: float
    fpr: float
    fnr: float
    tnr: float
    precision: float
    recall: float
    accuracy: float
    f1: float

    def as_dict(self):
        """The fields as a plain ``dict``."""
        return asdict(self)


def _rates_from_counts(threshold, tp, fp, n_pos, n_neg):
    tp, fp = int(tp), int(fp)
    fn, tn = n_pos - tp, n_neg - fp
    detections = tp + fp
    tpr = tp / n_pos
    fpr = fp / n_neg
    # With no detection there is no false alarm: precision is 1 by convention.
    precision = tp / detections if detections > 0 else 1.0
    f1 = 2 * tp / (detections + n_pos)
    return Rates(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        tpr=tpr,
        fpr=fpr,
        fnr=1.0 - tpr,
        tnr=1.0 - fpr,
        precision=precision,
        recall=tpr,
        accuracy=(tp + tn) / (n_pos + n_neg),
        f1=f1,
    )


def rates(scores, labels, threshold):
    r"""TPR, FPR and the derived measures at one threshold.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Anomaly scores, higher = more anomalous.
    labels : array-like of shape (n,)
        1 for anomalies, 0 for normal samples; both classes must be present.
    threshold : float
        A sample is detected when ``score >= threshold``.

    Returns
    -------
    Rates
        ``tpr = tp/(tp+fn)``, ``fpr = fp/(fp+tn)``, ``fnr = 1 - tpr``,
        ``tnr = 1 - fpr``, ``precision = tp/(tp+fp)`` (1.0 when nothing is
        detected), ``recall = tpr``, ``accuracy = (tp+tn)/n`` and
        ``f1 = 2 tp / (#detections + #anomalies)``.

    Examples
    --------
    >>> r = rates([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], threshold=0.35)
    >>> r.tpr, r.fpr, r.precision
    (1.0, 0.5, 0.6666666666666666)
    """
    s, y = check_scores_labels(scores, labels)
    threshold = float(threshold)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    detected = s >= threshold
    return _rates_from_counts(
        threshold, np.sum(detected & (y == 1)), np.sum(detected & (y == 0)),
        int(y.sum()), int((1 - y).sum()),
    )


def _cumulative_counts(scores, labels):
    """Counts of detections at every distinct threshold, in decreasing order.

    Returns ``thresholds`` (distinct scores, decreasing), ``tps`` and ``fps``:
    the number of anomalies / normal samples with ``score >= thresholds[i]``.
    Tied scores are one threshold, so ties move the curve diagonally.
    """
    order, s = _descending(scores)
    y = labels.astype(np.int8)[order]  # a 1-byte gather: the labels of the sorted scores
    last = _last_of_ties(s)
    tps = np.cumsum(y, dtype=np.int64)[last]
    fps = (last + 1) - tps
    return s[last], tps, fps


def _descending(scores):
    """``order, sorted_scores``: the indices that sort ``scores`` in decreasing order.

    The order among tied scores is arbitrary (the fast unstable sort): every count that
    the curves use is taken at the end of a run of ties, where it does not depend on it.
    """
    order = np.argsort(scores)[::-1]
    return order, np.sort(scores)[::-1]  # the sorted values without a gather


def _last_of_ties(s):
    """Index of the last element of each run of equal values of the sorted ``s``."""
    return np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]


def roc_curve(scores, labels):
    r"""ROC curve over every distinct threshold.

    Returns
    -------
    fpr, tpr : ndarray
        False and true positive rates, non-decreasing, starting at (0, 0)
        and ending at (1, 1).
    thresholds : ndarray
        Decreasing; ``thresholds[0] = +inf`` (nothing detected), then every
        distinct score. Point ``i`` is the detector ``score >= thresholds[i]``.

    Identical to ``sklearn.metrics.roc_curve(labels, scores,
    drop_intermediate=False)``.
    """
    s, y = check_scores_labels(scores, labels)
    thr, tps, fps = _cumulative_counts(s, y)
    tps, fps = np.r_[0, tps], np.r_[0, fps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thr]


def roc_auc(scores, labels):
    r"""Area under the ROC curve (trapezoidal rule).

    AUC equals the probability that a random anomaly scores higher than a
    random normal sample (ties count 1/2): 1 is ideal, 0.5 is chance.
    """
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(np.trapezoid(tpr, fpr))


def best_threshold(scores, labels):
    r"""Threshold of the ROC point closest to the ideal corner (FPR, TPR) = (0, 1).

    Minimises :math:`FPR(\gamma)^2 + (1 - TPR(\gamma))^2` over the distinct
    scores; on ties the larger threshold (fewer detections) wins. This uses
    the labels of the test data: it is how the lecture compares methods at
    their best, not a way to set a threshold in production (use
    :meth:`adcourse.decision.Threshold.from_fpr` on normal data for that).
    """
    fpr, tpr, thr = roc_curve(scores, labels)
    dist = fpr[1:] ** 2 + (1.0 - tpr[1:]) ** 2
    return float(thr[1:][np.argmin(dist)])


def pr_curve(scores, labels):
    r"""Precision-recall curve over every distinct threshold.

    Returns ``precision, recall, thresholds`` in scikit-learn's layout:
    thresholds increasing, and a final point (precision 1, recall 0) with no
    threshold. Identical to ``sklearn.metrics.precision_recall_curve(labels,
    scores, drop_intermediate=False)``.
    """
    s, y = check_scores_labels(scores, labels)
    thr, tps, fps = _cumulative_counts(s, y)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return (
        np.r_[precision[::-1], 1.0],
        np.r_[recall[::-1], 0.0],
        thr[::-1],
    )


def average_precision(scores, labels):
    r"""Average precision :math:`AP = \sum_n (R_n - R_{n-1}) P_n`.

    The step-wise (not interpolated) area under the precision-recall curve,
    as ``sklearn.metrics.average_precision_score``. Unlike the ROC, it depends
    on how rare anomalies are: a random detector scores the anomaly fraction.
    """
    precision, recall, _ = pr_curve(scores, labels)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def pixel_roc_auc(maps, masks):
    """ROC AUC over all pixels of all images: every pixel is one sample.

    Parameters
    ----------
    maps : array-like (n, H, W) or (H, W)
        Pixel anomaly scores.
    masks : array-like, same shape
        Ground-truth anomaly masks :math:`\\Omega` (1 = anomalous pixel).
    """
    m, g = check_maps_masks(maps, masks)
    if not g.any() or g.all():
        raise ValueError("masks must contain both anomalous and normal pixels")
    return roc_auc(m.ravel(), g.ravel().astype(np.int64))


def pro_curve(maps, masks):
    r"""Per-region overlap (PRO) curve, exactly, at every distinct threshold.

    Every connected component :math:`C_k` (8-connectivity) of the ground-truth
    masks is one region, whatever image it is in. At threshold :math:`\gamma`

    .. math::

        PRO(\gamma) = \frac{1}{K}\sum_{k=1}^{K}
        \frac{|\{c \in C_k : \text{map}(c) \ge \gamma\}|}{|C_k|},\qquad
        FPR(\gamma) = \frac{|\{c \notin \Omega : \text{map}(c) \ge \gamma\}|}
        {|\{c \notin \Omega\}|},

    so a large defect cannot hide a missed small one. Returns ``fpr, pro,
    thresholds`` with ``thresholds[0] = +inf`` (the point (0, 0)).
    """
    fpr, _, pro, thr = _pixel_curves(*_check_regions(maps, masks))
    return fpr, pro, thr


def pro_auc(maps, masks, max_fpr=0.3):
    r"""Normalised area under the PRO curve up to ``max_fpr`` (MVTec AD's metric).

    .. math:: \frac{1}{\text{max\_fpr}}\int_0^{\text{max\_fpr}} PRO\,dFPR

    integrated with the trapezoidal rule on the exact curve of
    :func:`pro_curve`, interpolated linearly at ``max_fpr``. 1 is ideal; a
    map of random scores gives about ``max_fpr / 2``.
    """
    _check_max_fpr(max_fpr)
    fpr, pro, _ = pro_curve(maps, masks)
    return _pro_area(fpr, pro, max_fpr)


def pixel_measures(maps, masks, max_fpr=0.3):
    r"""``(pixel AUROC, PRO)`` of the same maps, from one sort of their pixels.

    Equal to ``(pixel_roc_auc(maps, masks), pro_auc(maps, masks, max_fpr))``; both
    curves share the FPR axis, so one pass over the sorted pixels gives both (on the
    real SEM test set, 5.5 million pixels, that halves the time of the two measures).
    """
    _check_max_fpr(max_fpr)
    fpr, tpr, pro, _ = _pixel_curves(*_check_regions(maps, masks))
    return float(np.trapezoid(tpr, fpr)), _pro_area(fpr, pro, max_fpr)


def _check_max_fpr(max_fpr):
    if not (0.0 < float(max_fpr) <= 1.0):
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr}")


def _check_regions(maps, masks):
    """Validated maps and the mask's regions: 0 for a normal pixel, k = 1..K for the
    pixels of the k-th connected component (8-connectivity, numbered across images)."""
    m, g = check_maps_masks(maps, masks)
    if not g.any():
        raise ValueError("masks contain no anomalous pixel: PRO needs at least one region")
    if g.all():
        raise ValueError("masks contain no normal pixel: PRO needs normal pixels for its FPR")
    structure = np.ones((3, 3), dtype=bool)
    regions = np.zeros(g.shape, dtype=np.int32)
    n_regions = 0
    for i in range(g.shape[0]):
        lab, k = ndimage.label(g[i], structure=structure)
        regions[i] = np.where(lab > 0, lab + n_regions, 0)
        n_regions += k
    return m, regions


def _pixel_curves(m, regions):
    """``fpr, tpr, pro, thresholds`` over every distinct threshold, from one sort.

    The ROC curve (``tpr`` against ``fpr``, every anomalous pixel counting once) and the
    PRO curve (``pro`` against the same ``fpr``) start at (0, 0) with threshold +inf.
    """
    n_regions = int(regions.max())
    sizes = np.bincount(regions.ravel(), minlength=n_regions + 1)
    # each anomalous pixel of region k adds 1/(|C_k| K) to PRO; each normal pixel 1/N_bg to FPR
    weight = np.r_[0.0, 1.0 / (sizes[1:] * float(n_regions))]
    order, s = _descending(m.ravel())
    r = regions.ravel()[order]  # the region (0: normal) of each sorted pixel
    last = _last_of_ties(s)
    fps = np.cumsum(r == 0, dtype=np.int64)[last]
    tps = (last + 1) - fps
    pro = np.cumsum(weight[r])[last]
    pro[-1] = 1.0  # pin the end point against rounding in the cumulative sum
    return (np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]], np.r_[0.0, pro],
            np.r_[np.inf, s[last]])


def _pro_area(fpr, pro, max_fpr):
    """Normalised trapezoidal area under the PRO curve up to ``max_fpr``."""
    # keep the part of the curve up to max_fpr; vertical jumps are kept whole
    inside = fpr <= max_fpr
    x, y = fpr[inside], pro[inside]
    if x[-1] < max_fpr:
        j = np.searchsorted(fpr, max_fpr, side="right")  # first point beyond the limit
        x0, x1, y0, y1 = fpr[j - 1], fpr[j], pro[j - 1], pro[j]
        y_end = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
        x, y = np.r_[x, max_fpr], np.r_[y, y_end]
    return float(np.trapezoid(y, x) / max_fpr)
