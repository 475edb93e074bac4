"""Threshold explorer: histograms, ROC curve and rates under one slider."""

from __future__ import annotations

import pathlib

import numpy as np
import traitlets

from adcourse import metrics
from adcourse.validation import check_scores, check_scores_labels
from adcourse.course.widgets._base import (
    PrecomputedWidget,
    check_span,
    decode_array,
    encode_array,
    start_threshold,
)

__all__ = ["ThresholdExplorer"]

# the score axis = [min score, max score] widened by this fraction of the span on each side
_MARGIN = 0.03
# the slider has _SLIDER_STEPS + 1 integer positions: equally spaced thresholds over the axis
_SLIDER_STEPS = 1000


class ThresholdExplorer(PrecomputedWidget):
    r"""Move a threshold over anomaly scores and watch TPR, FPR and the ROC point.

    Shows, for one threshold :math:`\gamma` set with a slider: the histograms of
    the scores of normal and anomalous samples (shared bins) with the threshold
    line; the ROC curve with the current operating point and its AUC; and a
    table with TPR, FPR, precision, F1 and the counts TP, FP, TN, FN.

    **Convention**: anomaly = positive (label 1) and a sample is *detected*
    when ``score >= threshold``, as everywhere in :mod:`adcourse.metrics`.

    Everything that needs the data is computed here, in Python, with
    :mod:`adcourse.metrics`: the histogram counts, the AUC and, for every
    distinct score :math:`s_i` (ascending), the exact counts
    :math:`TP_i = \#\{\text{anomalies with score} \ge s_i\}` and :math:`FP_i`.
    The browser finds the first :math:`s_i \ge \gamma` by binary search, so it
    shows the exact rates for any threshold without a kernel: the widget
    stays interactive in the static book. In Jupyter, ``threshold`` is synced
    both ways: moving the slider updates it in Python, and setting it in Python
    moves the slider.

    **The slider** has integer positions :math:`0, \dots, 1000`; position
    :math:`p` selects the precomputed threshold :math:`\gamma_p`
    (:attr:`slider_thresholds`, equally spaced over the score axis, so the
    thumb stays under the threshold line of the histogram). The ends are exact
    by construction: :math:`\gamma_0 \le \min_i s_i` (everything detected)
    and :math:`\gamma_{1000} > \max_i s_i` (nothing detected), whatever the
    float rounding. Moving the slider sets ``threshold`` to exactly
    :math:`\gamma_p`; a threshold set from Python is shown as it is (rates
    included) with the thumb at the first position :math:`\gamma_p \ge \gamma`.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Anomaly scores, higher = more anomalous; finite.
    labels : array-like of shape (n,)
        1 for anomalies, 0 for normal samples; both classes must be present.
    threshold : float or adcourse.decision.Threshold, optional
        Initial threshold. Default: set on normal data only, as a detector is
        operated (chapter 1), never at the best ROC point, which needs labelled
        anomalies: ``Threshold.from_fpr(normal_scores, fpr)``, the smallest
        threshold that detects at most a fraction ``fpr`` of the normal
        validation scores. Without ``normal_scores``, the same rule on the
        normal samples shown (``scores[labels == 0]``). The widget says under
        its title how it started.
    normal_scores : array-like of shape (m,), optional
        Scores of normal validation samples (not the ones shown), for the
        default threshold. The FPR shown is then the one the rule really gets
        on new data: close to ``fpr``, not equal to it.
    fpr : float, default 0.05
        Target false positive rate of the default threshold, in (0, 1).
    bins : int or sequence of float, default 40
        Histogram bins, as in :func:`numpy.histogram_bin_edges` (shared by both
        classes).
    title : str, optional
        Heading shown above the plots.
    score_name : str, default "anomaly score"
        Label of the score axis.

    Attributes
    ----------
    threshold : float
        The current threshold (synced with the slider).
    initial_threshold : adcourse.decision.Threshold
        The threshold the widget started at, with its rule.
    slider_thresholds : ndarray of shape (1001,)
        The threshold of each slider position, non-decreasing.
    rates : adcourse.metrics.Rates
        Every count and rate at the current threshold; ``tpr``, ``fpr``,
        ``precision`` and ``f1`` are shortcuts to its fields.
    auc : float
        Area under the ROC curve.

    Raises
    ------
    ValueError, TypeError
        When ``scores`` / ``labels`` are not 1-D of the same length, not
        finite, not binary, or miss one class, when ``normal_scores`` is not
        finite or ``fpr`` not in (0, 1) (the message names which).

    Notes
    -----
    The payload grows with the number of distinct scores (16 bytes each,
    base64-encoded): about 200 kB for 10 000 distinct scores, plus 11 kB for
    the slider thresholds. The ROC curve
    is drawn with at most about 2000 vertices; the rates are always exact.

    Examples
    --------
    >>> import numpy as np
    >>> from adcourse.course.widgets import ThresholdExplorer
    >>> rng = np.random.default_rng(0)
    >>> scores = np.r_[rng.normal(0, 1, 200), rng.normal(2, 1, 40)]
    >>> labels = np.r_[np.zeros(200), np.ones(40)]
    >>> normal_val = rng.normal(0, 1, 500)      # validation: normal samples only
    >>> w = ThresholdExplorer(scores, labels, normal_scores=normal_val, fpr=0.05,
    ...                       title="Gaussian toy detector")
    >>> w.initial_threshold.rule, w.threshold == w.initial_threshold.value
    ('from_fpr', True)
    >>> w.threshold = 1.5          # or move the slider
    >>> round(w.tpr, 3), round(w.fpr, 3)  # doctest: +SKIP
    (0.675, 0.07)
    >>> w                          # displays the widget in a notebook  # doctest: +SKIP
    """

    _esm_file = pathlib.Path(__file__).with_name("threshold.js")

    score_name = traitlets.Unicode("anomaly score").tag(sync=True)

    def __init__(
        self,
        scores,
        labels,
        threshold=None,
        normal_scores=None,
        fpr=0.05,
        bins=40,
        title=None,
        score_name="anomaly score",
        **kwargs,
    ):
        s, y = check_scores_labels(scores, labels)
        self._scores, self._labels = s, y
        if normal_scores is not None:
            normal_scores = check_scores(normal_scores, "normal_scores")
        start, note = start_threshold(threshold, normal_scores, fpr, s[y == 0], "normal samples shown")
        self.initial_threshold = start
        data = self._precompute(s, y, bins)
        super().__init__(
            _data=data,
            threshold=start.value,
            note=note,
            title="" if title is None else str(title),
            score_name=str(score_name),
            **kwargs,
        )

    @staticmethod
    def _precompute(s, y, bins):
        n_pos = int(y.sum())
        n_neg = int(y.size - n_pos)
        fpr, tpr, thr = metrics.roc_curve(s, y)
        # point 0 is (+inf: detect nothing); the rest are the distinct scores,
        # decreasing -> reverse to ascending for the browser's binary search
        uniq = thr[1:][::-1]
        tp = np.rint(tpr[1:][::-1] * n_pos).astype(np.int64)
        fp = np.rint(fpr[1:][::-1] * n_neg).astype(np.int64)

        try:
            edges = np.histogram_bin_edges(s, bins=bins)
        except (TypeError, ValueError) as exc:
            if not (isinstance(bins, (int, np.integer)) and bins > 0):
                raise ValueError(f"bins must be a positive int or increasing edges, got {bins!r}: {exc}") from exc
            # a narrow range of very large scores: as many bins as float64 tells apart
            edges = np.unique(np.linspace(s.min(), s.max(), int(bins) + 1))
        h_neg, _ = np.histogram(s[y == 0], bins=edges)
        h_pos, _ = np.histogram(s[y == 1], bins=edges)

        lo, hi = float(min(s.min(), edges[0])), float(max(s.max(), edges[-1]))
        span = check_span(lo, hi, "scores")
        span = span if span > 0 else max(abs(hi), 1.0)
        lo, hi = lo - _MARGIN * span, hi + _MARGIN * span
        slider = np.linspace(lo, hi, _SLIDER_STEPS + 1)
        # exact ends, whatever the rounding: position 0 detects every sample, the last none
        slider[0] = min(slider[0], s.min())
        slider[-1] = max(slider[-1], np.nextafter(s.max(), np.inf))
        slider = np.maximum.accumulate(slider)
        return {
            "version": 2,
            "scores": encode_array(uniq, "float64"),
            "tp": encode_array(tp, "int32"),
            "fp": encode_array(fp, "int32"),
            "n_pos": n_pos,
            "n_neg": n_neg,
            "auc": metrics.roc_auc(s, y),
            "hist": {
                "edges": encode_array(edges, "float64"),
                "normal": encode_array(h_neg, "int32"),
                "anomalous": encode_array(h_pos, "int32"),
            },
            # the score axis, and the threshold of each slider position
            "range": {"min": float(slider[0]), "max": float(slider[-1])},
            "slider": encode_array(slider, "float64"),
        }

    # ------------------------------------------------------------ read-only
    @property
    def rates(self):
        """:class:`adcourse.metrics.Rates` at the current threshold."""
        return metrics.rates(self._scores, self._labels, self.threshold)

    @property
    def tpr(self):
        """True positive rate (detected anomalies / anomalies)."""
        return self.rates.tpr

    @property
    def fpr(self):
        """False positive rate (detected normal samples / normal samples)."""
        return self.rates.fpr

    @property
    def precision(self):
        """Anomalies among the detections (1.0 when nothing is detected)."""
        return self.rates.precision

    @property
    def f1(self):
        """F1 score, ``2 TP / (#detections + #anomalies)``."""
        return self.rates.f1

    @property
    def auc(self):
        """Area under the ROC curve (as shown in the widget)."""
        return self._data["auc"]

    @property
    def slider_thresholds(self):
        """The threshold of each slider position (0 = everything detected, last = nothing)."""
        return decode_array(self._data["slider"]).copy()
