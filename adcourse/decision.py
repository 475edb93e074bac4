r"""Decision rules: turning anomaly scores into detections.

The third ingredient of every method in the course (after the background
model and the statistic). A :class:`Threshold` holds a value :math:`\gamma` and
detects a sample when its score is **greater than or equal to** :math:`\gamma`
(the convention of :mod:`adcourse.metrics`). Thresholds are objects of their
own, never baked into a detector, so the same detector can be operated at
different false-positive rates.

Rules that only use **normal validation scores** (:meth:`Threshold.from_fpr`,
:meth:`Threshold.three_sigma`, :meth:`Threshold.bootstrap`) are the ones you can
use in production: they control the false-positive rate without ever seeing
an anomaly. Rules that use labelled anomalies (:meth:`Threshold.best_roc`,
:meth:`Threshold.best_f1`) show what a method could do at its best; they must
not be tuned on the test set you report.

Score maps get post-processing before (``smooth_maps``) and after
(``remove_small_regions``) the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from adcourse import metrics
from adcourse.validation import check_fraction, check_scores, check_scores_labels

__all__ = ["Threshold", "smooth_maps", "upsample_maps", "remove_small_regions"]


def _fpr_quantile(sorted_rows, fpr):
    """Smallest threshold detecting at most ``fpr`` of each (sorted) row.

    For a row :math:`s_{(1)} \\le \\dots \\le s_{(n)}` and
    :math:`m = \\lfloor n\\,\\text{fpr} \\rfloor`, the threshold is the smallest
    value strictly above :math:`s_{(n-m)}`: at most ``m`` scores are ``>=`` it,
    even with ties. When no value is above, it is the next float above the
    maximum (nothing detected). Works on a 2-D array, row by row.
    """
    n = sorted_rows.shape[1]
    m = min(int(np.floor(n * fpr + 1e-9)), n - 1)
    pivot = sorted_rows[:, n - m - 1]
    above = sorted_rows > pivot[:, None]
    has_above = above.any(axis=1)
    first = np.argmax(above, axis=1)
    value = sorted_rows[np.arange(len(first)), first]
    return np.where(has_above, value, np.nextafter(pivot, np.inf))


@dataclass(frozen=True)
class Threshold:
    """A decision rule ``detected = score >= value``.

    Build one with the class methods; ``rule`` and ``info`` record how.

    Examples
    --------
    >>> import numpy as np
    >>> normal_val = np.random.default_rng(0).normal(size=1000)
    >>> t = Threshold.from_fpr(normal_val, fpr=0.05)
    >>> t.predict([0.0, 3.0])
    array([False,  True])
    """

    value: float
    rule: str = "manual"
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        v = float(self.value)
        if np.isnan(v):
            raise ValueError("threshold value is NaN")
        object.__setattr__(self, "value", v)

    def predict(self, scores):
        """Boolean detections ``scores >= value``, same shape as ``scores`` (vectors or maps)."""
        s = np.asarray(scores, dtype=np.float64)
        if np.isnan(s).any():
            raise ValueError("scores contains NaN: cannot decide on a missing score")
        return s >= self.value

    def __float__(self):
        return self.value

    def __repr__(self):
        extra = ", ".join(f"{k}={v!r}" for k, v in self.info.items())
        return f"Threshold({self.value:.6g}, rule={self.rule!r}{', ' + extra if extra else ''})"

    # --- rules on normal validation data only -------------------------------------------

    @classmethod
    def from_fpr(cls, normal_scores, fpr):
        r"""Empirical quantile of normal validation scores.

        The smallest threshold such that at most a fraction ``fpr`` of the
        ``n`` normal scores is detected: :math:`\gamma = \hat q_{1-\text{fpr}}`.
        On fresh normal data the expected FPR is then at most about ``fpr``
        (at most :math:`\lfloor n\,\text{fpr}\rfloor/(n+1)` for continuous scores).
        """
        s = check_scores(normal_scores, "normal_scores")
        fpr = check_fraction(fpr, "fpr")
        value = _fpr_quantile(np.sort(s)[None, :], fpr)[0]
        return cls(value, "from_fpr", {"fpr": fpr, "n": s.size})

    @classmethod
    def three_sigma(cls, normal_scores, k=3.0):
        r"""Mean plus ``k`` standard deviations of normal scores, :math:`\mu + k\sigma`.

        For Gaussian scores and ``k = 3`` the FPR is about 0.13 %; for skewed
        scores (distances, negative log-likelihoods) it can be far larger,
        which is why :meth:`from_fpr` is usually preferable.
        """
        s = check_scores(normal_scores, "normal_scores")
        if s.size < 2:
            raise ValueError("normal_scores needs at least 2 values to estimate a standard deviation")
        mu, sigma = float(s.mean()), float(s.std(ddof=1))
        return cls(mu + k * sigma, "three_sigma", {"k": k, "mean": mu, "std": sigma})

    @classmethod
    def bootstrap(cls, normal_scores, fpr, confidence=0.95, n_bootstrap=2000, random_state=0):
        r"""Upper confidence bound of the :math:`(1-\text{fpr})` quantile.

        Resample the normal scores with replacement ``n_bootstrap`` times,
        compute the :meth:`from_fpr` threshold of each resample and return the
        ``confidence`` quantile of those thresholds. The threshold is then at
        or above the true quantile with probability about ``confidence``, so
        the FPR stays below ``fpr`` with that confidence (at the price of a
        slightly lower TPR).
        """
        s = check_scores(normal_scores, "normal_scores")
        fpr = check_fraction(fpr, "fpr")
        confidence = check_fraction(confidence, "confidence")
        if int(n_bootstrap) < 1:
            raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
        rng = np.random.default_rng(random_state)
        idx = rng.integers(0, s.size, size=(int(n_bootstrap), s.size))
        values = _fpr_quantile(np.sort(s[idx], axis=1), fpr)
        value = float(np.quantile(values, confidence, method="higher"))
        return cls(value, "bootstrap", {"fpr": fpr, "confidence": confidence, "n": s.size})

    # --- rules that look at labelled anomalies --------------------------------------------

    @classmethod
    def best_roc(cls, scores, labels):
        """The ROC point closest to (FPR, TPR) = (0, 1); see :func:`adcourse.metrics.best_threshold`."""
        return cls(metrics.best_threshold(scores, labels), "best_roc")

    @classmethod
    def best_f1(cls, scores, labels):
        r"""The distinct score that maximises :math:`F_1 = 2TP/(2TP+FP+FN)`; ties → larger threshold."""
        s, y = check_scores_labels(scores, labels)
        precision, recall, thr = metrics.pr_curve(s, y)
        p, r = precision[:-1], recall[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        best = np.flatnonzero(f1 == f1.max())[-1]  # thresholds increase: last = largest
        return cls(thr[best], "best_f1", {"f1": float(f1[best])})


# --- post-processing of score maps ----------------------------------------------------------


def smooth_maps(maps, sigma=2.0):
    """Gaussian smoothing of each score map (n, H, W) separately (not across images).

    Anomalies cover regions, noise is pixel-wise: smoothing before the
    threshold trades a little localisation for far fewer isolated false
    positives.
    """
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim == 2:
        return ndimage.gaussian_filter(m, sigma)
    if m.ndim != 3:
        raise ValueError(f"maps must be (n, H, W) or (H, W), got shape {m.shape}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    return ndimage.gaussian_filter(m, sigma=(0, sigma, sigma))


def upsample_maps(maps, size, sigma=0.0):
    """Bring coarse score maps (n, h, w) to the input resolution, then smooth them.

    CNN detectors score a grid of feature locations (stride 4, 8, ... pixels);
    the grid is upsampled bilinearly to ``size = (H, W)`` (half-pixel aligned,
    like torch's ``align_corners=False``; the image axis is untouched) and, if
    ``sigma > 0``, smoothed with :func:`smooth_maps`. Returns (n, H, W) floats.
    """
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3:
        raise ValueError(f"maps must be (n, h, w), got shape {m.shape}")
    size = tuple(int(v) for v in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H, W) with positive entries, got {size}")
    up = resize(m, (m.shape[0],) + size, order=1, mode="edge", anti_aliasing=False,
                preserve_range=True)
    return smooth_maps(up, sigma) if sigma > 0 else up


def remove_small_regions(detections, min_size):
    """Drop connected detected regions (8-connectivity) smaller than ``min_size`` pixels.

    Parameters
    ----------
    detections : bool array (n, H, W) or (H, W)
        Binary detection maps, e.g. ``threshold.predict(maps)``.
    min_size : int
        Regions with fewer pixels are removed.
    """
    d = np.asarray(detections)
    if d.dtype != bool:
        raise TypeError(f"detections must be a boolean array, got dtype {d.dtype}")
    if int(min_size) < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    squeeze = d.ndim == 2
    if squeeze:
        d = d[None]
    if d.ndim != 3:
        raise ValueError(f"detections must be (n, H, W) or (H, W), got shape {d.shape}")
    out = np.zeros_like(d)
    structure = np.ones((3, 3), dtype=bool)
    for i in range(d.shape[0]):
        lab, k = ndimage.label(d[i], structure=structure)
        if k:
            sizes = np.bincount(lab.ravel())
            keep = sizes >= int(min_size)
            keep[0] = False
            out[i] = keep[lab]
    return out[0] if squeeze else out
