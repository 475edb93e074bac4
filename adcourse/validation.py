"""Input validation shared by every module of :mod:`adcourse`.

Every public function checks its inputs here, at the boundary, and raises a
:class:`ValueError` (wrong values or shapes) or :class:`TypeError` (wrong types)
whose message names the argument, what was expected and what was received.
Nothing else in the package re-implements these checks.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "check_scores",
    "check_labels",
    "check_scores_labels",
    "check_vectors",
    "check_images",
    "check_maps_masks",
    "check_fraction",
]


def _as_float_array(x, name):
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be array-like of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic containers
        raise TypeError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must contain numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_finite(arr, name):
    if not np.all(np.isfinite(arr)):
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"{name} contains non-finite values ({n_nan} NaN, {n_inf} inf); "
            "clean them or find where they came from"
        )


def check_scores(scores, name="scores"):
    """Return ``scores`` as a finite 1-D float array, or raise naming ``name``."""
    arr = _as_float_array(scores, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one score")
    _check_finite(arr, name)
    return arr


def check_labels(labels, name="labels", require_both=True):
    """Return binary labels as an int array of 0 (normal) and 1 (anomaly).

    Booleans and numbers equal to 0/1 are accepted; anything else raises.
    With ``require_both`` the labels must contain both classes, since TPR
    needs anomalies and FPR needs normal samples.
    """
    if isinstance(labels, (str, bytes)) or labels is None:
        raise TypeError(f"{name} must be array-like of 0/1, got {type(labels).__name__}")
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be 0/1 numbers or booleans, got dtype {arr.dtype}")
    values = np.unique(arr)
    if not np.all(np.isin(values, [0, 1])):
        raise ValueError(
            f"{name} must be binary (0 = normal, 1 = anomaly), got values {values[:10].tolist()}"
        )
    out = arr.astype(np.int64)
    if require_both and len(values) < 2:
        present = "anomalies" if values[0] == 1 else "normal samples"
        raise ValueError(
            f"{name} contain a single class (only {present}); "
            "this measure needs both normal (0) and anomalous (1) samples"
        )
    return out


def check_scores_labels(scores, labels, require_both=True):
    """Validate a pair (scores, labels) of the same length."""
    s = check_scores(scores)
    y = check_labels(labels, require_both=require_both)
    if s.shape[0] != y.shape[0]:
        raise ValueError(
            f"scores and labels must have the same length, got {s.shape[0]} scores "
            f"and {y.shape[0]} labels"
        )
    return s, y


def check_vectors(X, name="X", n_features=None, min_samples=1):
    """Return ``X`` as a finite (n, d) float array.

    A 1-D input is rejected (ambiguous: one sample or one feature?) with a hint
    on how to reshape it.
    """
    arr = _as_float_array(X, name)
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got a 1-D array of shape {arr.shape}; "
            "use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample"
        )
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} samples, need at least {min_samples}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 features")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but the detector was fitted on "
            f"{n_features} features"
        )
    _check_finite(arr, name)
    return arr


def check_images(images, name="images", min_size=1, shape=None):
    """Return images as a finite float array (n, H, W) or (n, C, H, W) in [0, 1].

    ``shape``: the shape of one image the caller requires (a detector's training images), or None.
    """
    arr = _as_float_array(images, name)
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be (n, H, W) grayscale or (n, C, H, W), got shape {arr.shape}; "
            "for a single image use images[None]"
        )
    if shape is not None and arr.shape[1:] != tuple(shape):
        raise ValueError(f"{name} must have the shape of the training images {tuple(shape)}, got {arr.shape[1:]}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: got 0 images")
    if min(arr.shape[-2:]) < min_size:
        raise ValueError(f"{name} must be at least {min_size}x{min_size} pixels, got {arr.shape[-2:]}")
    _check_finite(arr, name)
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must be floats in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
            "divide 8-bit images by 255"
        )
    return arr


def check_maps_masks(maps, masks):
    """Validate score maps (n, H, W) and binary masks of the same shape."""
    m = _as_float_array(maps, "maps")
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"maps must be (n, H, W) or (H, W), got shape {m.shape}")
    if m.size == 0:
        raise ValueError("maps is empty")
    _check_finite(m, "maps")
    g = np.asarray(masks)
    if g.ndim == 2:
        g = g[None]
    if g.shape != m.shape:
        raise ValueError(f"masks must have the shape of maps {m.shape}, got {g.shape}")
    if g.dtype == object or not (np.issubdtype(g.dtype, np.number) or g.dtype == bool):
        raise TypeError(f"masks must be 0/1 numbers or booleans, got dtype {g.dtype}")
    if not np.all(np.isin(np.unique(g), [0, 1])):
        raise ValueError("masks must be binary (0 = normal pixel, 1 = anomalous pixel)")
    return m, g.astype(bool)


def check_fraction(value, name, low=0.0, high=1.0, inclusive=(False, False)):
    """Check that ``value`` is a real number in (low, high) (bounds per ``inclusive``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    lo_ok = value >= low if inclusive[0] else value > low
    hi_ok = value <= high if inclusive[1] else value < high
    if not (np.isfinite(value) and lo_ok and hi_ok):
        lb = "[" if inclusive[0] else "("
        rb = "]" if inclusive[1] else ")"
        raise ValueError(f"{name} must be in {lb}{low}, {high}{rb}, got {value}")
    return value
