"""The detector protocol every method of the course follows.

A detector is the first two ingredients of the lecture's recipe:

1. a **background model** learned from normal data only (:meth:`fit`);
2. a **statistic**, the anomaly score, that measures how far a sample departs
   from the model (:meth:`anomaly_score`, and for images :meth:`anomaly_map`).

The third ingredient, the decision rule, lives in :mod:`adcourse.decision`.

Conventions (shared with PyOD; the opposite of scikit-learn's ``score_samples``,
which is *higher = more normal*):

* ``anomaly_score`` is **higher for more anomalous** samples;
* hyper-parameters are set in ``__init__`` and only stored there, learned state
  ends with ``_`` (so :func:`sklearn.base.clone` and ``get_params`` work);
* numpy in, numpy out.

Subclasses implement ``_fit`` and ``_score`` (vectors) or ``_fit`` and
``_map`` (images); validation happens here, once.

Image detectors whose model does not depend on the position (patch models,
latent-space kNN, student–teacher) score images of any size, e.g. whole
micrographs after training on crops. A detector with one model per position
(PaDiM's per-location Gaussian) scores only images of its training size;
:func:`tiled_anomaly_map` scores larger images with it tile by tile.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from adcourse.validation import check_images, check_vectors

__all__ = ["BaseDetector", "BaseImageDetector", "tiled_anomaly_map"]


class BaseDetector(BaseEstimator, ABC):
    """Base class of detectors on vectors ``X`` of shape (n_samples, n_features)."""

    #: smallest number of training samples the model can be fitted on
    _min_fit_samples = 1

    def fit(self, X, y=None):
        """Learn the background model from normal samples ``X`` (n, d).

        ``y`` is ignored (present for scikit-learn compatibility): the model
        sees normal data only.
        """
        X = check_vectors(X, "X", min_samples=self._min_fit_samples)
        self.n_features_in_ = X.shape[1]
        self._fit(X)
        return self

    def anomaly_score(self, X):
        """Anomaly score of each row of ``X``: shape (n,), higher = more anomalous."""
        check_is_fitted(self, "n_features_in_")
        X = check_vectors(X, "X", n_features=self.n_features_in_)
        return np.asarray(self._score(X), dtype=np.float64)

    def fit_score(self, X):
        """``fit(X)`` then ``anomaly_score(X)`` (scores of the training data)."""
        return self.fit(X).anomaly_score(X)

    @abstractmethod
    def _fit(self, X):
        """Fit the model on validated (n, d) data; set attributes ending in ``_``."""

    @abstractmethod
    def _score(self, X):
        """Scores of validated (n, d) data."""


class BaseImageDetector(BaseEstimator, ABC):
    """Base class of detectors on images (n, H, W) or (n, C, H, W) in [0, 1].

    ``anomaly_map`` returns one score per pixel at input resolution; the image
    score is by default the maximum of the map (one very anomalous region is
    enough to call the image anomalous), as in anomalib.
    """

    def fit(self, images, y=None):
        """Learn the background model from normal images."""
        images = check_images(images, "images")
        self.image_shape_ = images.shape[1:]
        self._fit(images)
        return self

    def anomaly_map(self, images):
        """Pixel anomaly scores, shape (n, H, W), higher = more anomalous."""
        check_is_fitted(self, "image_shape_")
        images = check_images(images, "images")
        if images.ndim != len(self.image_shape_) + 1 or (
            images.ndim == 4 and images.shape[1] != self.image_shape_[0]
        ):
            raise ValueError(
                f"images must be shaped like the training images (n, {self.image_shape_}) "
                f"up to height and width, got {images.shape}"
            )
        maps = np.asarray(self._map(images), dtype=np.float64)
        expected = (images.shape[0],) + images.shape[-2:]
        if maps.shape != expected:  # a bug in a subclass, not a user error
            raise RuntimeError(f"{type(self).__name__}._map returned {maps.shape}, expected {expected}")
        return maps

    def anomaly_score(self, images):
        """Image anomaly score: the maximum of each anomaly map, shape (n,)."""
        return self.anomaly_map(images).reshape(len(images), -1).max(axis=1)

    @abstractmethod
    def _fit(self, images):
        """Fit on validated normal images."""

    @abstractmethod
    def _map(self, images):
        """Anomaly maps (n, H, W) of validated images."""


def _tile_starts(size, tile, step):
    """First row (or column) of each tile along one axis: every ``step``, the last flush with the end."""
    starts = list(range(0, size - tile + 1, step))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def tiled_anomaly_map(detector, images, tile_shape=None, stride=None):
    r"""Anomaly maps of large images from a detector fitted on tiles (crops) of a fixed size.

    A detector with one model per position (e.g. PaDiM's
    :class:`adcourse.deep.padim.PerLocationGaussian`) scores only images of its
    training size :math:`s`. To inspect larger images, fit it on crops of size
    :math:`s` and score the image tile by tile: tiles of ``tile_shape`` start
    every ``stride`` pixels, the last row and column of tiles is flush with the
    bottom and right borders (so every pixel is covered), each tile gets the
    detector's map, and where tiles overlap their maps are averaged,

    .. math:: a(p) = \frac{1}{|T_p|}\sum_{t \in T_p} a_t(p),

    with :math:`T_p` the tiles that contain pixel :math:`p`. The image score is
    then the maximum of the stitched map, as for any image detector.

    Parameters
    ----------
    detector : fitted image detector
        Anything with ``anomaly_map(tiles) -> (n, h, w)``.
    images : array (n, H, W) or (n, C, H, W) in [0, 1]
        At least as large as a tile.
    tile_shape : (h, w) or None
        Tile size; None means the detector's training size (``image_shape_[-2:]``).
    stride : int, (int, int) or None
        Step between tiles; None means ``tile_shape`` (tiles side by side, no
        overlap except the last ones). A smaller step (e.g. half a tile)
        averages several maps per pixel, which hides the seams between tiles.

    Returns
    -------
    ndarray (n, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from adcourse.images import LocalFeatureDetector
    >>> rng = np.random.default_rng(0)
    >>> det = LocalFeatureDetector().fit(rng.uniform(size=(4, 32, 32)))
    >>> tiled_anomaly_map(det, rng.uniform(size=(1, 80, 50))).shape   # tiles of 32 x 32
    (1, 80, 50)
    """
    images = check_images(images, "images")
    H, W = images.shape[-2:]
    if tile_shape is None:
        if not hasattr(detector, "image_shape_"):
            raise NotFittedError(f"{type(detector).__name__} is not fitted: fit it on tiles (crops) first")
        tile_shape = detector.image_shape_[-2:]
    th, tw = (int(v) for v in tile_shape)
    sy, sx = (th, tw) if stride is None else np.broadcast_to(np.asarray(stride, dtype=int), (2,))
    if min(th, tw, sy, sx) < 1:
        raise ValueError(f"tile_shape and stride must be positive, got {tile_shape} and {stride}")
    if th > H or tw > W:
        raise ValueError(
            f"images ({H}x{W}) must be at least as large as a tile ({th}x{tw}); "
            "score smaller images by fitting on crops of their size"
        )
    total = np.zeros((len(images), H, W))
    count = np.zeros((H, W))
    for r in _tile_starts(H, th, int(sy)):
        for c in _tile_starts(W, tw, int(sx)):
            total[:, r : r + th, c : c + tw] += detector.anomaly_map(images[..., r : r + th, c : c + tw])
            count[r : r + th, c : c + tw] += 1
    return total / count
