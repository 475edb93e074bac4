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
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from adcourse.validation import check_images, check_vectors

__all__ = ["BaseDetector", "BaseImageDetector"]


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
