"""Shared pieces of the data loaders: the :class:`ImageSet` container and argument checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

__all__ = ["ImageSet"]


@dataclass(frozen=True, eq=False)
class ImageSet:
    """A set of grayscale images with their anomaly masks and labels.

    Parameters
    ----------
    images : array-like of shape (n, H, W)
        Test images ``s``, float values in [0, 1] (stored as float64).
    masks : array-like of shape (n, H, W)
        Anomaly masks ``Omega``: ``masks[i, r, c]`` is True when pixel ``c = (r, c)`` of
        image ``i`` falls in an anomalous region (stored as bool).
    labels : array-like of shape (n,), optional
        Image labels, 1 = the image contains a defect, 0 = normal. Defaults to
        ``masks.any(axis=(1, 2))``.

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> ds = make_nanofibers(n_images=4, size=64, random_state=0)
    >>> len(ds), ds.images.shape, ds.labels.tolist()
    (4, (4, 64, 64), [0, 1, 1, 0])
    >>> len(ds[1:3]), len(ds[0])
    (2, 1)
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray = field(default=None)

    def __post_init__(self):
        images = np.asarray(self.images, dtype=np.float64)
        if images.ndim != 3:
            raise ValueError(
                f"images must have shape (n, H, W), got an array of shape {images.shape}"
            )
        if images.size and (np.nanmin(images) < 0.0 or np.nanmax(images) > 1.0):
            raise ValueError(
                "images must take values in [0, 1], got values in "
                f"[{np.nanmin(images):.3g}, {np.nanmax(images):.3g}]"
            )
        masks = np.asarray(self.masks)
        if masks.shape != images.shape:
            raise ValueError(
                f"masks must have the shape of images {images.shape}, got {masks.shape}"
            )
        masks = masks.astype(bool)
        if self.labels is None:
            labels = masks.any(axis=(1, 2)).astype(np.int64)
        else:
            labels = np.asarray(self.labels)
            if labels.shape != (images.shape[0],):
                raise ValueError(
                    f"labels must have shape ({images.shape[0]},), got {labels.shape}"
                )
            if not np.isin(labels, (0, 1)).all():
                raise ValueError(
                    f"labels must be 0 or 1, got values {np.unique(labels).tolist()}"
                )
            labels = labels.astype(np.int64)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> "ImageSet":
        if isinstance(index, Integral):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"index {index} out of range for an ImageSet of {n}")
            index = [index]
        return ImageSet(self.images[index], self.masks[index], self.labels[index])

    def __repr__(self) -> str:
        n, h, w = self.images.shape
        return f"ImageSet(n={n}, size=({h}, {w}), anomalous={int(self.labels.sum())})"



def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low or (high is not None and value > high):
        expected = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {expected}, got {value!r}")
    return int(value)


def _check_real(name, value, low, high, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    bad_low = value <= low if low_open else value < low
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        hi_val = "inf" if high is None else high
        raise ValueError(f"{name} must be in {lo}{low}, {hi_val}{hi}, got {value!r}")
    return float(value)


def _rng(random_state):
    if random_state is None or isinstance(random_state, (Integral, np.random.Generator)):
        return np.random.default_rng(random_state)
    raise ValueError(
        "random_state must be an int, a numpy.random.Generator or None, "
        f"got {random_state!r}"
    )

