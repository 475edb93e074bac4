"""Score-map explorer: one threshold over a pixel anomaly map, live on the image."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import traitlets

from adcourse import metrics
from adcourse.validation import _as_float_array, _check_finite
from adcourse.course.widgets._base import (
    PrecomputedWidget,
    check_span,
    decode_array,
    encode_array,
    start_threshold,
)

__all__ = ["ScoreMapExplorer"]

# the score map travels as uint8 codes of this many equally spaced levels
_N_LEVELS = 256
# largest side sent to the browser by default (a 256 x 256 image + map is ~180 kB)
_MAX_SIZE = 256
# hard limit of ``max_size`` (beyond it the page gets heavy: ~2.8 MB at 1024 x 1024)
_MAX_SIZE_LIMIT = 1024


def _check_image_2d(value, name):
    arr = _as_float_array(value, name)
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 3:
            hint = "; pass one grayscale image (H, W), e.g. images[i] of a batch (n, H, W)"
        raise ValueError(f"{name} must be 2-D (H, W), got shape {arr.shape}{hint}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: got shape {arr.shape}")
    _check_finite(arr, name)
    return arr


def _check_inputs(image, score_map, mask):
    img = _check_image_2d(image, "image")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"image must be floats in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
            "divide 8-bit images by 255"
        )
    smap = _check_image_2d(score_map, "score_map")
    if smap.shape != img.shape:
        raise ValueError(
            f"score_map must have the shape of image {img.shape}, got {smap.shape}; "
            "anomaly_map returns maps at input resolution"
        )
    if mask is None:
        return img, smap, None
    if isinstance(mask, (str, bytes)):
        raise TypeError(f"mask must be a binary array (H, W), got {type(mask).__name__}")
    g = np.asarray(mask)
    if g.dtype == object or not (np.issubdtype(g.dtype, np.number) or g.dtype == bool):
        raise TypeError(f"mask must be 0/1 numbers or booleans, got dtype {g.dtype}")
    if g.shape != img.shape:
        raise ValueError(f"mask must have the shape of image {img.shape}, got {g.shape}")
    values = np.unique(g)
    if not np.all(np.isin(values, [0, 1])):
        raise ValueError(
            "mask must be binary (0 = normal pixel, 1 = anomalous pixel), "
            f"got values {values[:10].tolist()}"
        )
    return img, smap, g.astype(bool)


def _block_reduce(arr, factor, func):
    """Reduce ``arr`` (H, W) over ``factor`` x ``factor`` blocks (edges padded by replication)."""
    h, w = arr.shape
    ph, pw = -h % factor, -w % factor
    padded = np.pad(arr, ((0, ph), (0, pw)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return func(blocks, axis=(1, 3))


def _colormap_lut(cmap):
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
        rgba = np.asarray(cm(np.linspace(0.0, 1.0, _N_LEVELS)))
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(
            f"cmap must be a matplotlib colormap or its name (e.g. 'inferno'), got {cmap!r}"
        ) from exc
    return np.rint(rgba[:, :3] * 255).astype(np.uint8)


def _quantize(smap, lut):
    """Quantise ``smap`` to at most 256 equally spaced levels; return (levels, codes, lut).

    Levels that coincide in float64 (a narrow range of large numbers, e.g. 1e17
    + small integers) are merged, so ``levels`` is strictly increasing and
    ``levels[codes]`` is the quantised map; ``lut`` keeps one colour per level.
    """
    lo, hi = float(smap.min()), float(smap.max())
    check_span(lo, hi, "score_map")
    if hi == lo:
        return np.array([lo]), np.zeros(smap.shape, dtype=np.uint8), lut[:1]
    step = (hi - lo) / (_N_LEVELS - 1)
    raw_codes = np.clip(np.rint((smap - lo) / step), 0, _N_LEVELS - 1).astype(np.intp)
    levels, first, merged = np.unique(lo + np.arange(_N_LEVELS) * step, return_index=True, return_inverse=True)
    return levels, merged[raw_codes].astype(np.uint8), lut[first]


def _slider_thresholds(levels):
    r"""Threshold of each slider position :math:`k = 0, \dots, L` for ``L`` levels.

    Position :math:`k` lies half-way between levels :math:`k-1` and :math:`k`
    (below the lowest level for :math:`k = 0`, above the highest for
    :math:`k = L`), so it detects exactly the pixels of code :math:`\ge k`.
    Where float rounding puts a half-way point on level :math:`k-1`, the
    position takes level :math:`k` itself; the top one is above the last level
    by at least one float. Hence :math:`\ell_{k-1} < t_k \le \ell_k`, exactly.
    """
    step = levels[1] - levels[0] if levels.size > 1 else 1.0
    half = np.minimum(levels[:-1] + np.diff(levels) / 2, levels[1:])
    inner = np.where(half > levels[:-1], half, levels[1:])
    bottom = min(levels[0] - step / 2, levels[0])
    top = max(levels[-1] + step / 2, np.nextafter(levels[-1], np.inf))
    return np.r_[bottom, inner, top]


class ScoreMapExplorer(PrecomputedWidget):
    r"""Move a threshold over a pixel anomaly map and watch the detected region.

    Shows, for one threshold :math:`\gamma` set with a slider: the image in
    grey levels with the detected pixels (score :math:`\ge \gamma`) painted
    over it; next to it the score map as a heat map with the outline of the
    detected region; below, the histogram of the pixel scores (its axis is the
    colour bar of the heat map) with the threshold line, and the live numbers.
    With a ground-truth ``mask`` the overlay tells true positives (detected
    anomalous pixels, green), false positives (detected normal pixels, red) and
    false negatives (missed anomalous pixels, blue) apart, the mask outline is
    drawn on both panels, and the pixel TPR and FPR are shown; without a mask,
    the detected fraction of the pixels. Hovering a pixel shows its score.

    **Convention**: anomalous pixel = positive (mask 1) and a pixel is
    *detected* when ``score >= threshold``, as in :mod:`adcourse.metrics`.

    **What the browser gets** (so it stays interactive in the static book,
    with no kernel): the image as 8-bit grey levels, and the score map
    quantised to 256 equally spaced levels
    :math:`\ell_k = \min + k\,(\max - \min)/255` (each pixel gets its nearest
    level), sent as one byte per pixel, plus, for every level :math:`k`, the
    exact number of pixels, and of anomalous pixels, with level
    :math:`\ge \ell_k` (cumulative counts). The browser finds the first level
    :math:`\ge \gamma` by binary search; its rates are therefore *exact* for
    the quantised map: equal to
    ``adcourse.metrics.rates(quantized_map.ravel(), mask.ravel(), threshold)``.
    The Python attributes :attr:`tpr`, :attr:`fpr`, :attr:`detected_fraction`
    and :attr:`rates` use the same quantised map, so Python and the page always
    agree. Quantisation moves a pixel's score by at most half a level
    (:math:`(\max-\min)/510`); for the rates of the original map use
    ``metrics.rates(score_map.ravel(), mask.ravel(), t)``.

    **The slider** has one integer position per level plus one: position
    :math:`k` selects the threshold half-way between :math:`\ell_{k-1}` and
    :math:`\ell_k` (:attr:`slider_thresholds`), which detects exactly the
    pixels of level :math:`\ge \ell_k`; position 0 detects every pixel and
    the last one none, exactly, whatever the float rounding. Moving the slider
    sets ``threshold`` to that value. (Levels that coincide in float64, as
    for a narrow range of very large scores, are merged: there are then fewer
    than 256.)

    **Large images**: a side longer than ``max_size`` (256 by default) is
    reduced by the smallest integer factor :math:`f` that fits, over
    :math:`f \times f` blocks: the image by its mean, the score map by its
    **max** and the mask by its max (a block is anomalous if any of its
    pixels is), so that small defects stay visible. The widget says so on the
    page, and :attr:`downsample_factor` is :math:`f`; everything (the rates
    included) then refers to the reduced grid.

    Parameters
    ----------
    image : array-like of shape (H, W)
        The grayscale image, floats in [0, 1].
    score_map : array-like of shape (H, W)
        Its pixel anomaly scores (higher = more anomalous), finite; e.g. one
        map of a detector's ``anomaly_map``.
    mask : array-like of shape (H, W), optional
        Ground truth: 1 (or True) on anomalous pixels, 0 elsewhere. An
        all-zero mask (a normal image) is allowed: TPR is then undefined (NaN)
        and every detection is a false positive.
    threshold : float or adcourse.decision.Threshold, optional
        Initial threshold. Default: set on normal data only, the usual way of
        operating a detector: ``Threshold.from_fpr(normal_scores, fpr)``, the
        smallest threshold that detects at most a fraction ``fpr`` of the
        pixels of normal validation maps. Without ``normal_scores``, the same
        rule on the normal pixels of this (quantised) map (``mask == 0``), or on
        all its pixels without a mask. The widget says under its title how it
        started.
    normal_scores : array-like, optional
        Pixel scores of normal validation images (e.g. their maps, any shape),
        for the default threshold.
    fpr : float, default 0.01
        Target pixel false positive rate of the default threshold, in (0, 1).
    title : str, optional
        Heading shown above the panels.
    cmap : str or matplotlib colormap, default "inferno"
        Colormap of the heat map (sent as a 256-colour table).
    max_size : int, default 256
        Longest side sent to the browser (at most 1024); see above.

    Attributes
    ----------
    threshold : float
        The current threshold (synced with the slider, both ways in Jupyter).
    initial_threshold : adcourse.decision.Threshold
        The threshold the widget started at, with its rule.
    tpr, fpr : float
        Pixel true / false positive rate at the current threshold (NaN without
        a mask, and TPR NaN for an all-zero mask).
    detected_fraction : float
        Fraction of all pixels with score ``>= threshold``.
    rates : adcourse.metrics.Rates or None
        Every count and rate at the current threshold, when the mask has both
        normal and anomalous pixels; ``None`` otherwise.
    quantized_map : ndarray of shape (H', W')
        The score map exactly as the browser has it.
    downsample_factor : int
        1, or the block size used to fit ``max_size``.

    Raises
    ------
    ValueError, TypeError
        When ``image`` is not 2-D, not in [0, 1] or not finite, when
        ``score_map`` is not finite or not of the image's shape, when ``mask``
        is not binary or not of the image's shape, or for a bad ``cmap`` /
        ``max_size`` / ``normal_scores`` / ``fpr`` (the message names which).

    Notes
    -----
    Payload: about 2.7 bytes per pixel sent (one byte for the image, one for
    the map, base64-encoded), ~180 kB at 256 x 256, plus ~5 kB of counts.

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> from adcourse.images.features import LocalFeatureDetector
    >>> from adcourse.course.widgets import ScoreMapExplorer
    >>> train = make_nanofibers(20, 128, anomaly_rate=0.0, random_state=0)
    >>> test = make_nanofibers(4, 128, anomaly_rate=1.0, random_state=1)
    >>> maps = LocalFeatureDetector(window=11).fit(train.images).anomaly_map(test.images)
    >>> w = ScoreMapExplorer(test.images[0], maps[0], test.masks[0])  # doctest: +SKIP
    >>> w.threshold = 2.0            # or move the slider  # doctest: +SKIP
    >>> w.tpr, w.fpr                 # doctest: +SKIP
    >>> w                            # displays the widget in a notebook  # doctest: +SKIP
    """

    _esm_file = pathlib.Path(__file__).with_name("scoremap.js")


    def __init__(
        self,
        image,
        score_map,
        mask=None,
        threshold=None,
        normal_scores=None,
        fpr=0.01,
        title=None,
        cmap="inferno",
        max_size=_MAX_SIZE,
        **kwargs,
    ):
        img, smap, gt = _check_inputs(image, score_map, mask)
        if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
            raise TypeError(f"max_size must be an int, got {type(max_size).__name__}")
        if not 8 <= max_size <= _MAX_SIZE_LIMIT:
            raise ValueError(f"max_size must be in [8, {_MAX_SIZE_LIMIT}], got {max_size}")
        lut = _colormap_lut(cmap)

        original_shape = img.shape
        factor = max(1, math.ceil(max(img.shape) / int(max_size)))
        if factor > 1:
            img = _block_reduce(img, factor, np.mean)
            smap = _block_reduce(smap, factor, np.max)
            if gt is not None:
                gt = _block_reduce(gt, factor, np.max)
        self._downsample = factor
        self._original_shape = original_shape

        levels, codes, lut = _quantize(smap, lut)
        self._levels, self._codes, self._mask = levels, codes, gt
        self._quantized = levels[codes]

        data = self._precompute(img, codes, levels, gt, lut)
        data["original_shape"] = [int(n) for n in original_shape]
        data["downsample"] = factor
        if gt is None or gt.all():
            pool, name = self._quantized.ravel(), "pixels of this image"
        else:
            pool, name = self._quantized[~gt], "normal pixels of this image"
        start, note = start_threshold(threshold, normal_scores, fpr, pool, name)
        self.initial_threshold = start
        super().__init__(
            _data=data,
            threshold=start.value,
            note=note,
            title="" if title is None else str(title),
            **kwargs,
        )

    @staticmethod
    def _precompute(img, codes, levels, gt, lut):
        h, w = codes.shape
        n_levels = levels.size
        # ge[k] = number of pixels with level >= levels[k]; ge[n_levels] = 0
        per_level = np.bincount(codes.ravel(), minlength=n_levels)
        ge_all = np.r_[np.cumsum(per_level[::-1])[::-1], 0]
        slider = _slider_thresholds(levels)
        data = {
            "version": 2,
            "height": int(h),
            "width": int(w),
            "image": encode_array(np.rint(img * 255), "uint8"),
            "codes": encode_array(codes, "uint8"),
            "levels": encode_array(levels, "float64"),
            "ge_all": encode_array(ge_all, "int32"),
            "lut": encode_array(lut, "uint8"),
            "n_pixels": int(h * w),
            # the score axis, and the threshold of each slider position 0..n_levels
            "range": {"min": float(slider[0]), "max": float(slider[-1])},
            "slider": encode_array(slider, "float64"),
        }
        if gt is not None:
            per_level_pos = np.bincount(codes[gt], minlength=n_levels)
            ge_pos = np.r_[np.cumsum(per_level_pos[::-1])[::-1], 0]
            data["mask"] = encode_array(gt, "uint8")
            data["ge_anomalous"] = encode_array(ge_pos, "int32")
            data["n_anomalous"] = int(gt.sum())
        return data

    # ------------------------------------------------------------ read-only
    def _counts(self):
        """(detected pixels, detected anomalous pixels) at the current threshold."""
        detected = self._quantized >= self.threshold
        tp = int(np.sum(detected & self._mask)) if self._mask is not None else 0
        return int(detected.sum()), tp

    @property
    def detected_fraction(self):
        """Fraction of the pixels with score ``>= threshold``."""
        return self._counts()[0] / self._codes.size

    @property
    def tpr(self):
        """Pixel TPR: detected anomalous pixels / anomalous pixels (NaN if none)."""
        if self._mask is None:
            return float("nan")
        n_pos = int(self._mask.sum())
        return self._counts()[1] / n_pos if n_pos else float("nan")

    @property
    def fpr(self):
        """Pixel FPR: detected normal pixels / normal pixels (NaN without mask)."""
        if self._mask is None:
            return float("nan")
        n_neg = int(self._mask.size - self._mask.sum())
        det, tp = self._counts()
        return (det - tp) / n_neg if n_neg else float("nan")

    @property
    def rates(self):
        """:class:`adcourse.metrics.Rates` of the pixels at the current threshold.

        ``None`` without a mask, or when the mask has a single class.
        """
        if self._mask is None or self._mask.all() or not self._mask.any():
            return None
        return metrics.rates(self._quantized.ravel(), self._mask.ravel(), self.threshold)

    @property
    def quantized_map(self):
        """The score map as the browser has it (levels of the quantisation)."""
        return self._quantized.copy()

    @property
    def levels(self):
        """The score levels of the quantised map, strictly ascending (at most 256)."""
        return self._levels.copy()

    @property
    def downsample_factor(self):
        """Block size of the reduction to ``max_size`` (1: full resolution)."""
        return self._downsample

    @property
    def slider_thresholds(self):
        r"""The threshold of each slider position: ``len(levels) + 1`` values, increasing.

        Position :math:`k` detects exactly the pixels of level :math:`\ge \ell_k`:
        0 detects every pixel, the last one none.
        """
        return decode_array(self._data["slider"]).copy()
