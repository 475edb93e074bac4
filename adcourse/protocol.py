r"""The protocol for few, large, stationary texture images (the real SEM micrographs).

The NanoTWICE set has 5 defect-free images, each a large field of the same
stationary texture (the nanofibre mat), and 40 images with defects. There are far
too few normal *images* to fit a model on, but plenty of normal *patches*: the
texture is the same everywhere, so a background model may be learned from any
part of any normal image. The course therefore measures every image method the
same way:

1. **fit** the detector on ``n_crops`` random ``crop_size x crop_size`` crops of the
   normal images (:func:`random_crops`);
2. **score whole images**, whatever their size (detectors whose model does not
   depend on the position accept any size); a detector that is per-location by
   design is scored tile by tile (:func:`adcourse.base.tiled_anomaly_map`, tiles of
   the crop size);
3. **measure** the pixel AUROC and the PRO (up to FPR 0.3) over all the pixels of
   all the test images together (:func:`adcourse.metrics.pixel_roc_auc`,
   :func:`adcourse.metrics.pro_auc`), plus the fit time and the milliseconds per
   test image.

:func:`evaluate_texture` does the three steps for one detector (fitted or not),
:func:`choose_setting` picks a hyper-parameter on a *validation* set of images
(never the test images), :func:`select_restart` keeps the best of a few restarts
(fits with different random states) on the same validation images, and
:func:`texture_table` lays several methods out as an :class:`adcourse.compare.Table`,
the format of the chapters' tables. The book and
``scripts/bench_real.py`` both use these functions. For NanoTWICE the split
(images to fit on, validation images, test images) is
:func:`adcourse.data.nanotwice_split`.

This module is a shared ingredient: it imports no wing, and works with any
detector of the course's protocol (``fit``, ``anomaly_map``) and any test set with
``images`` and ``masks`` arrays (an :class:`adcourse.data.ImageSet`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from adcourse import metrics
from adcourse.base import tiled_anomaly_map
from adcourse.compare import Table
from adcourse.validation import check_images

__all__ = [
    "random_crops",
    "TextureResult",
    "RestartSelection",
    "evaluate_texture",
    "choose_setting",
    "select_restart",
    "texture_table",
]


def _positive_int(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def random_crops(images, n_crops=200, crop_size=128, random_state=0):
    """Random square crops of a few large images: the training set of the protocol.

    Each crop picks an image uniformly at random, then a top-left corner uniformly
    among the positions where the whole crop fits.

    Parameters
    ----------
    images : array-like (n, H, W) or (n, C, H, W), floats in [0, 1]
        The normal images.
    n_crops : int, default=200
    crop_size : int, default=128
        Side of the crops (at most the smaller side of the images).
    random_state : int, numpy.random.Generator or None, default=0

    Returns
    -------
    ndarray (n_crops, crop_size, crop_size) or (n_crops, C, crop_size, crop_size)

    Examples
    --------
    >>> import numpy as np
    >>> random_crops(np.zeros((2, 40, 60)), n_crops=5, crop_size=16).shape
    (5, 16, 16)
    """
    images = check_images(images, "images")
    n_crops = _positive_int(n_crops, "n_crops")
    crop_size = _positive_int(crop_size, "crop_size")
    h, w = images.shape[-2:]
    if crop_size > min(h, w):
        raise ValueError(f"crop_size must be at most the image side {min(h, w)}, got {crop_size}")
    rng = np.random.default_rng(random_state)
    which = rng.integers(len(images), size=n_crops)
    rows = rng.integers(h - crop_size + 1, size=n_crops)
    cols = rng.integers(w - crop_size + 1, size=n_crops)
    return np.stack([images[k, ..., r:r + crop_size, c:c + crop_size]
                     for k, r, c in zip(which, rows, cols)])


@dataclass
class TextureResult:
    """What :func:`evaluate_texture` measured for one detector.

    ``pixel_auroc`` and ``pro`` are computed over all the pixels of all the test
    images together; ``fit_s`` is the fit time in seconds (None when the detector
    came fitted), ``ms_per_image`` the scoring time per test image; ``maps`` the
    anomaly maps (n, H, W) when asked for.
    """

    pixel_auroc: float
    pro: float
    fit_s: float | None
    ms_per_image: float
    maps: np.ndarray | None = field(default=None, repr=False)


def _check_test(test):
    if not (hasattr(test, "images") and hasattr(test, "masks")):
        raise TypeError(
            f"test must have images and masks (an adcourse.data.ImageSet), got {type(test).__name__}")
    return test


def evaluate_texture(detector, test, fit_images=None, n_crops=200, crop_size=128, tiled=False,
                     random_state=0, keep_maps=False, max_fpr=0.3, tune=None):
    """Fit on random crops of the normal images, score whole test images, measure.

    Parameters
    ----------
    detector : image detector
        Unfitted (then ``fit_images`` is required) or already fitted (then pass
        ``fit_images=None``: it is scored as it is).
    test : ImageSet
        Test images with their masks; every pixel of every image counts.
    fit_images : array-like (n, H, W) or (n, C, H, W), optional
        The normal images; the detector is fitted on :func:`random_crops` of them.
    n_crops, crop_size : int, default 200, 128
        The crops (same crops for every detector given the same ``random_state``).
    tiled : bool, default False
        False scores whole images; True scores them tile by tile with
        :func:`adcourse.base.tiled_anomaly_map` (tiles of the training size), for
        detectors that are per-location by design.
    random_state : int, default 0
        Seed of the crops.
    keep_maps : bool, default False
        Return the maps in the result.
    max_fpr : float, default 0.3
        Upper FPR limit of the PRO.
    tune : callable ``detector -> anything``, optional
        Called once the detector is fitted, before ``test`` is scored: sets what needs
        no refit from *validation* images, never from ``test`` (e.g.
        ``lambda det: det.choose_alpha(validation.images, validation.masks)`` for
        :class:`~adcourse.deep.FCGANDetector`). Its time counts as fit time.

    Returns
    -------
    TextureResult
    """
    test = _check_test(test)
    if tune is not None and not callable(tune):
        raise TypeError(f"tune must be callable as tune(detector), got {tune!r}")
    fit_s = None
    if fit_images is not None:
        crops = random_crops(fit_images, n_crops, crop_size, random_state)
        t0 = time.perf_counter()
        detector.fit(crops)
        fit_s = time.perf_counter() - t0
    if tune is not None:
        t0 = time.perf_counter()
        tune(detector)
        fit_s = (fit_s or 0.0) + time.perf_counter() - t0
    t0 = time.perf_counter()
    if tiled:
        maps = tiled_anomaly_map(detector, test.images)
    else:
        maps = detector.anomaly_map(test.images)
    ms = 1000.0 * (time.perf_counter() - t0) / len(test.images)
    pixel_auroc, pro = metrics.pixel_measures(maps, test.masks, max_fpr=max_fpr)
    return TextureResult(
        pixel_auroc=pixel_auroc,
        pro=pro,
        fit_s=fit_s,
        ms_per_image=ms,
        maps=maps if keep_maps else None,
    )


def choose_setting(make_detector, candidates, fit_images, validation, measure="pixel_auroc",
                   **protocol):
    """Choose a setting (hyper-parameter) on validation images, never on test images.

    Every candidate ``v`` gives a detector ``make_detector(v)``, fitted and measured
    with :func:`evaluate_texture` on the ``validation`` images; the best one by
    ``measure`` wins (the first on ties). Only then should the chosen detector be
    measured on the test images. For NanoTWICE, ``validation`` is
    ``adcourse.data.nanotwice_split(...).validation`` (10 anomalous images, none of
    them in the test part).

    Parameters
    ----------
    make_detector : callable ``value -> detector``
    candidates : sequence
        Values to try (patch sizes, numbers of components, ...).
    fit_images : array-like
        The normal images (the detector is fitted on crops of them).
    validation : ImageSet
        Images with masks reserved for choosing settings.
    measure : {"pixel_auroc", "pro"}, default "pixel_auroc"
    **protocol
        Further arguments of :func:`evaluate_texture` (``n_crops``, ``crop_size``,
        ``tiled``, ``random_state``).

    Returns
    -------
    best : object
        The winning candidate.
    scores : dict candidate -> TextureResult
    """
    if measure not in ("pixel_auroc", "pro"):
        raise ValueError(f"measure must be 'pixel_auroc' or 'pro', got {measure!r}")
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates is empty: give at least one setting to try")
    scores = {}
    for value in candidates:
        scores[value] = evaluate_texture(make_detector(value), validation, fit_images, **protocol)
    best = max(candidates, key=lambda v: getattr(scores[v], measure))
    return best, scores


@dataclass
class RestartSelection:
    """What :func:`select_restart` returns.

    ``detector`` is the winning restart, fitted; ``random_state`` its random state;
    ``scores`` maps each restart's random state to its validation
    :class:`TextureResult`; ``fit_s`` is the cost of the whole selection in seconds:
    every restart's fit *and* its scoring of the validation images.
    """

    detector: object
    random_state: object
    scores: dict
    fit_s: float


def select_restart(make_detector, random_states, fit_images, validation, measure="pixel_auroc",
                   **protocol):
    """Fit one detector per random state (restarts), keep the best on validation images.

    For a detector whose result depends much on its random initialisation (a GAN),
    trying a few initialisations and keeping the one that does best on the
    *validation* images is model selection, as :func:`choose_setting` is for a
    hyper-parameter: the test images are never looked at. Every restart is fitted on
    the same crops (``protocol``'s ``random_state`` draws them); only the detector's
    own random state differs. Score the winner on the test images with
    ``evaluate_texture(selection.detector, test)`` and report ``selection.fit_s``
    as its fit time: the cost of the model is the cost of all the restarts.

    Parameters
    ----------
    make_detector : callable ``random_state -> unfitted detector``
    random_states : sequence
        One restart per value (at least one; distinct values).
    fit_images : array-like
        The normal images (the detectors are fitted on crops of them).
    validation : ImageSet
        Images with masks reserved for choosing.
    measure : {"pixel_auroc", "pro"}, default "pixel_auroc"
    **protocol
        Further arguments of :func:`evaluate_texture` (``n_crops``, ``crop_size``,
        ``tiled``, ``random_state`` of the crops, ``tune``: applied to every restart
        after its fit, before it is measured on ``validation``).

    Returns
    -------
    RestartSelection
        The first restart wins ties.
    """
    if measure not in ("pixel_auroc", "pro"):
        raise ValueError(f"measure must be 'pixel_auroc' or 'pro', got {measure!r}")
    random_states = list(random_states)
    if not random_states:
        raise ValueError("random_states is empty: give at least one restart")
    if len(set(map(repr, random_states))) != len(random_states):
        raise ValueError(f"random_states must be distinct, got {random_states}")
    _check_test(validation)
    best, best_score, scores, total = None, None, {}, 0.0
    for state in random_states:
        detector = make_detector(state)
        t0 = time.perf_counter()
        result = evaluate_texture(detector, validation, fit_images, **protocol)
        total += time.perf_counter() - t0
        scores[state] = result
        score = getattr(result, measure)
        if best is None or score > best_score:
            best, best_score, best_state = detector, score, state
    return RestartSelection(detector=best, random_state=best_state, scores=scores, fit_s=total)


def texture_table(methods, fit_images, test, dataset="real SEM", tiled=(), fitted=None,
                  **protocol):
    """:func:`evaluate_texture` for several methods, as an :class:`adcourse.compare.Table`.

    Parameters
    ----------
    methods : dict name -> callable returning a fresh detector
    fit_images, test
        As in :func:`evaluate_texture`.
    dataset : str, default "real SEM"
        Column name of the table.
    tiled : collection of names, optional
        The methods to score tile by tile (per-location detectors).
    fitted : dict name -> (detector, fit seconds), optional
        Detectors fitted already (on the same crops): scored without refitting.
    **protocol
        ``n_crops``, ``crop_size``, ``random_state``, ``max_fpr``.

    Returns
    -------
    Table
        Measures ``pixel_auroc`` and ``pro``; each row also holds ``fit_s``,
        ``score_s`` (seconds for all test images) and ``ms_per_image``; a method that
        fails gets an error in its cell, the others still run.
    """
    tiled, fitted = set(tiled), dict(fitted or {})
    unknown = [k for k in list(tiled) + list(fitted) if k not in methods]
    if unknown:
        raise ValueError(f"tiled / fitted name methods that are not in methods: {unknown}")
    rows = []
    for name, make in methods.items():
        row = {"method": name, "dataset": dataset}
        try:
            if name in fitted:
                det, fit_s = fitted[name]
                result = evaluate_texture(det, test, None, tiled=name in tiled, **protocol)
                result.fit_s = float(fit_s)
            else:
                result = evaluate_texture(make(), test, fit_images, tiled=name in tiled, **protocol)
            row.update(pixel_auroc=result.pixel_auroc, pro=result.pro, fit_s=result.fit_s,
                       score_s=result.ms_per_image * len(test.images) / 1000.0,
                       ms_per_image=result.ms_per_image)
        except Exception as exc:  # one failure must not hide the other results
            row.update(error=f"{type(exc).__name__}: {exc}")
        rows.append(row)
    return Table(rows, ("pixel_auroc", "pro"))
