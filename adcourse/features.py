r"""Expert-driven local features and a detector that monitors them.

The simplest image detector of the course, used in chapter 1 as a first
example of score maps: around every pixel :math:`c`, in a window
:math:`w \times w`, compute

* the local mean :math:`m(c) = \frac{1}{w^2}\sum_{u \in W(c)} s(u)`,
* the local standard deviation :math:`\sigma(c) = \sqrt{\frac{1}{w^2}\sum_{u\in W(c)} s(u)^2 - m(c)^2}`,
* the local gradient energy :math:`g(c) = \frac{1}{w^2}\sum_{u\in W(c)} \|\nabla s(u)\|^2`
  (total-variation-like: large on edges, small on flat films),

fit a Gaussian (:class:`adcourse.density.GaussianDetector`) to the feature
vectors of normal pixels, and score every pixel with its Mahalanobis distance.
This is the lecture's "monitoring features" recipe with hand-made features; the
later chapters replace them by learned ones.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .base import BaseImageDetector
from .density import GaussianDetector
from .decision import smooth_maps

__all__ = ["local_statistics", "LocalFeatureDetector"]


def local_statistics(images, window=7):
    """Per-pixel local mean, standard deviation and gradient energy.

    Parameters
    ----------
    images : ndarray (n, H, W)
        Grayscale images in [0, 1].
    window : int
        Side of the square window (odd, >= 3).

    Returns
    -------
    ndarray (n, H, W, 3)
        Features ``[mean, std, gradient energy]`` of every pixel (reflected borders).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must be grayscale (n, H, W), got shape {images.shape}")
    if int(window) < 3 or int(window) % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3, got {window}")
    size = (1, int(window), int(window))
    mean = ndimage.uniform_filter(images, size, mode="reflect")
    sq = ndimage.uniform_filter(images**2, size, mode="reflect")
    std = np.sqrt(np.maximum(sq - mean**2, 0.0))
    gy, gx = np.gradient(images, axis=(1, 2))
    energy = ndimage.uniform_filter(gx**2 + gy**2, size, mode="reflect")
    return np.stack([mean, std, energy], axis=-1)


class LocalFeatureDetector(BaseImageDetector):
    """Gaussian model of local statistics of normal pixels; Mahalanobis score map.

    Parameters
    ----------
    window : int, default 7
        Window of :func:`local_statistics`.
    max_pixels : int, default 20000
        Normal pixels (randomly drawn) used to fit the Gaussian.
    sigma : float, default 2.0
        Gaussian smoothing of the score map (post-processing); 0 disables it.
    random_state : int, default 0
        Seed of the pixel subsampling.

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> train = make_nanofibers(n_images=4, anomaly_rate=0.0, random_state=1)
    >>> det = LocalFeatureDetector().fit(train.images)
    >>> det.anomaly_map(train.images[:1]).shape
    (1, 128, 128)
    """

    def __init__(self, window=7, max_pixels=20000, sigma=2.0, random_state=0):
        self.window = window
        self.max_pixels = max_pixels
        self.sigma = sigma
        self.random_state = random_state

    def _features(self, images):
        if images.ndim != 3:
            raise ValueError(f"LocalFeatureDetector needs grayscale images (n, H, W), got {images.shape}")
        return local_statistics(images, self.window)

    def _fit(self, images):
        feats = self._features(images).reshape(-1, 3)
        rng = np.random.default_rng(self.random_state)
        if feats.shape[0] > self.max_pixels:
            feats = feats[rng.choice(feats.shape[0], self.max_pixels, replace=False)]
        self.gaussian_ = GaussianDetector(reg=1e-8).fit(feats)

    def _map(self, images):
        feats = self._features(images)
        n, h, w, d = feats.shape
        maps = self.gaussian_.anomaly_score(feats.reshape(-1, d)).reshape(n, h, w)
        return smooth_maps(maps, self.sigma) if self.sigma > 0 else maps
