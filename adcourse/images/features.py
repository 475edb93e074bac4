r"""Expert-driven local features and a detector that monitors them.

The simplest image detector of the course, used in chapter 1 as a first
example of score maps: around every pixel :math:`c`, in a window
:math:`w \times w`, compute

* the local mean :math:`m(c) = \frac{1}{w^2}\sum_{u \in W(c)} s(u)`,
* the local standard deviation :math:`\sigma(c) = \sqrt{\frac{1}{w^2}\sum_{u\in W(c)} s(u)^2 - m(c)^2}`,
* the local gradient energy :math:`g(c) = \frac{1}{w^2}\sum_{u\in W(c)} \|\nabla s(u)\|^2`
  (total-variation-like: large on edges, small on flat films),

fit a Gaussian (:class:`adcourse.vectors.density.GaussianDetector`) to the feature
vectors of normal pixels, and score every pixel with its Mahalanobis distance.
This is the lecture's "monitoring features" recipe with hand-made features; the
later chapters replace them by learned ones.

Chapter 4 states the same recipe patch by patch, as in the lecture's
"expert-driven features": for each patch :math:`\mathbf{s}_c` of the grid of
:func:`adcourse.images.patches.extract_patches`, :func:`patch_features` gives its
average, variance and total variation (energy of gradients), and optionally its
*granulometry* (:func:`granulometry`: how much of its brightness survives
morphological openings by disks of growing radius, i.e. the sizes of its bright
structures), and :class:`ExpertFeatureDetector` monitors them with any density
model of chapter 2, turning patch scores into a map with
:func:`adcourse.images.patches.patch_scores_to_map`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from adcourse.base import BaseImageDetector
from adcourse.vectors.density import GaussianDetector
from adcourse.decision import smooth_maps
from adcourse.images.patches import (
    _check_max_samples,
    _pair,
    _sample_grid,
    patch_grid_shape,
    patch_scores_to_map,
)

__all__ = ["local_statistics", "LocalFeatureDetector", "granulometry", "patch_features",
           "ExpertFeatureDetector"]


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


#: added to variance and total variation before their logarithm
_LOG_EPS = 1e-6


def granulometry(images, radii=(1, 2, 3, 4, 5, 6)):
    r"""Grey-level openings of images by disks of growing radius (a granulometry).

    The opening :math:`\gamma_r(s) = (s \ominus B_r) \oplus B_r` by the disk
    :math:`B_r` of radius :math:`r` (an erosion, then a dilation, with the same
    flat disk) removes every bright structure into which the disk does not fit and
    keeps the others unchanged: with :math:`r` growing, the thin fibres vanish first,
    the wider structures (a bead, a clump of material) survive longer. The mean of
    :math:`\gamma_r(s)` over a patch, for several :math:`r`, is the patch's
    *granulometry*, Matheron's classical description of the sizes of the grains of
    a texture (G. Matheron, *Random Sets and Integral Geometry*, 1975; J. Serra,
    *Image Analysis and Mathematical Morphology*, 1982).

    Parameters
    ----------
    images : ndarray (n, H, W)
        Grayscale images.
    radii : sequence of int >= 1, default (1, ..., 6)
        Radii of the disks, in pixels.

    Returns
    -------
    ndarray (n, H, W, len(radii))
        :math:`\gamma_r(s)` for each radius (borders: the image is reflected).
    """
    from skimage.morphology import disk

    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must be grayscale (n, H, W), got shape {images.shape}")
    radii = tuple(radii)
    if not radii or any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1
                        for r in radii):
        raise ValueError(f"radii must be a non-empty sequence of integers >= 1, got {radii!r}")
    out = np.empty(images.shape + (len(radii),))
    for k, r in enumerate(radii):
        footprint = disk(int(r))
        for i, image in enumerate(images):
            out[i, ..., k] = ndimage.grey_opening(image, footprint=footprint, mode="reflect")
    return out


def patch_features(images, size=15, stride=1, radii=()):
    r"""Expert-driven features of every patch: average, variance, total variation.

    For the patch :math:`\mathbf{s}_c = \{s(c+u), u \in \mathcal{U}\}` (the
    grid of :func:`adcourse.images.patches.extract_patches`, :math:`|\mathcal{U}| = h^2`):

    * average :math:`\frac{1}{h^2}\sum_u s(c+u)`;
    * variance :math:`\frac{1}{h^2}\sum_u s(c+u)^2 - \text{average}^2`;
    * total variation, as the energy of gradients,
      :math:`\frac{1}{h^2}\sum_u \|\nabla s(c+u)\|^2` (the gradient by central
      differences on the whole image, so the pixels of a patch border use
      their outside neighbours too);
    * with ``radii``, the granulometry: for each radius :math:`r`, the average of
      the opening :math:`\gamma_r(s)` (:func:`granulometry`, computed on the whole
      image) over the patch, :math:`\frac{1}{h^2}\sum_u \gamma_r(s)(c+u)`.

    The computation is that of :func:`local_statistics` (box filters over the
    whole image, then one value per patch), not a second copy of it.

    Parameters
    ----------
    images : ndarray (n, H, W)
        Grayscale images.
    size : int, default 15
        Patch side, odd and >= 3 (the patch is centred on a pixel).
    stride : int or (t_y, t_x), default 1
    radii : sequence of int, default ()
        Radii of the granulometry; empty for the three features only.

    Returns
    -------
    ndarray (n, n_H, n_W, 3 + len(radii))
        ``[average, variance, total variation, granulometry...]`` of each patch, on
        the patch grid.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must be grayscale (n, H, W), got shape {images.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3, got {size!r}")
    sy, sx = _pair(stride, "stride")
    n_h, n_w = patch_grid_shape(images.shape, size, (sy, sx))
    half = (size - 1) // 2
    # every window centred at (i*sy + half, j*sx + half) lies inside the image, so the
    # reflected borders of local_statistics never enter these values
    grid = (slice(None), slice(half, half + sy * (n_h - 1) + 1, sy),
            slice(half, half + sx * (n_w - 1) + 1, sx))
    stats = local_statistics(images, size)[grid]
    stats[..., 1] **= 2  # standard deviation -> variance
    if len(radii):
        openings = ndimage.uniform_filter(granulometry(images, radii), (1, size, size, 1),
                                          mode="reflect")
        stats = np.concatenate([stats, openings[grid]], axis=-1)
    return stats


class ExpertFeatureDetector(BaseImageDetector):
    r"""Monitoring expert-driven patch features with a density model.

    The lecture's feature-based monitoring with hand-crafted features:

    * **training** -- compute :func:`patch_features` (average, variance, total
      variation) of the patches of normal images and fit a density model
      :math:`\hat\phi_0` on them (at most ``max_train_patches``, drawn at random);
    * **testing** -- score the features of every patch with the density model
      (low likelihood = high score) and turn the patch scores into a pixel map
      with :func:`adcourse.images.patches.patch_scores_to_map`.

    The three features are cheap and interpretable: a flat film has a low
    variance and almost no gradient energy, a bright clump a high average.
    They see only what the expert put in them, unlike the data-driven
    features (PCA coefficients, sparse codes) of the same chapter.

    Variance and total variation are positive and right-skewed, a poor fit for
    a Gaussian :math:`\hat\phi_0`: a flat patch (variance 0) is then only about
    two standard deviations from the mean. With ``log_features=True`` the
    monitored vector is :math:`(\text{average}, \log(\text{variance} + \epsilon),
    \log(\text{TV} + \epsilon))`, :math:`\epsilon = 10^{-6}`, which is close to
    Gaussian and sends flat patches far into the tail (on nanofibre films the
    pixel AUROC goes from about 0.7-0.8 to 0.9-0.95).

    The three features do not see the *size* of what is bright: on the real SEM
    images a clump of material is bright and wide, the fibres bright and thin. With
    ``radii``, the patch's granulometry is monitored too (:func:`granulometry`: the
    mean of the openings by disks of radius :math:`r`, which the fibres do not
    survive and a clump does); its normal distribution has several modes (patches
    of gaps, of single fibres, of crossings), which a Gaussian mixture
    (``density=GMMDetector(3)``) models better than one Gaussian.

    Parameters
    ----------
    patch_size : int, default 15
        Odd patch side.
    stride : int, default 1
    density : BaseDetector or None, default None
        Any vector detector of chapter 2 (cloned); None means
        ``GaussianDetector()``.
    mode : {"average", "centre"}, default "average"
        How patch scores become pixel scores
        (:func:`adcourse.images.patches.patch_scores_to_map`).
    log_features : bool, default True
        Monitor the logarithms of variance and total variation (see above).
    radii : sequence of int, default ()
        Radii of the granulometry features (e.g. ``(1, 2, 3, 4, 5, 6)``); empty
        for the three features of the lecture.
    standardize : bool, default False
        Standardise every feature with the mean and standard deviation of the
        training patches before the density model (useful when the features have
        different units, as with ``radii``).
    sigma : float, default 0.0
        Gaussian smoothing of the map (:func:`adcourse.decision.smooth_maps`); 0
        disables it.
    max_train_patches : int or None, default 20000
    random_state : int, default 0

    Attributes
    ----------
    density_ : BaseDetector
        The fitted density model on the features.
    feature_mean_, feature_std_ : ndarray (d,)
        Standardisation of the features (zeros and ones with ``standardize=False``).

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> train = make_nanofibers(n_images=2, size=48, anomaly_rate=0.0, random_state=0)
    >>> det = ExpertFeatureDetector(patch_size=7).fit(train.images)
    >>> det.anomaly_map(train.images).shape
    (2, 48, 48)
    """

    def __init__(
        self,
        patch_size=15,
        stride=1,
        density=None,
        mode="average",
        log_features=True,
        radii=(),
        standardize=False,
        sigma=0.0,
        max_train_patches=20000,
        random_state=0,
    ):
        self.patch_size = patch_size
        self.stride = stride
        self.density = density
        self.mode = mode
        self.log_features = log_features
        self.radii = radii
        self.standardize = standardize
        self.sigma = sigma
        self.max_train_patches = max_train_patches
        self.random_state = random_state

    def _features(self, images, stride):
        if images.ndim != 3:
            raise ValueError(f"ExpertFeatureDetector needs grayscale images (n, H, W), got {images.shape}")
        feats = patch_features(images, self.patch_size, stride, self.radii)
        if self.log_features:
            feats[..., 1:3] = np.log(np.maximum(feats[..., 1:3], 0.0) + _LOG_EPS)
        return feats

    def _fit(self, images):
        if self.mode not in ("average", "centre"):
            raise ValueError(f"mode must be 'average' or 'centre', got {self.mode!r}")
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, (int, float)) or self.sigma < 0:
            raise ValueError(f"sigma must be a number >= 0, got {self.sigma!r}")
        max_patches = _check_max_samples(self.max_train_patches, "max_train_patches")
        _pair(self.stride, "stride")
        density = GaussianDetector() if self.density is None else self.density
        feats = self._features(images, 1)
        idx = _sample_grid(feats.shape[:3], max_patches, np.random.default_rng(self.random_state))
        sample = feats[idx]
        d = sample.shape[1]
        self.feature_mean_, self.feature_std_ = np.zeros(d), np.ones(d)
        if self.standardize:
            self.feature_mean_ = sample.mean(axis=0)
            self.feature_std_ = np.maximum(sample.std(axis=0), 1e-12)
        self.density_ = clone(density).fit((sample - self.feature_mean_) / self.feature_std_)

    def patch_scores(self, images):
        """Density scores of the features of every patch, ``(n, n_H, n_W)``."""
        check_is_fitted(self, "density_")
        feats = self._features(np.asarray(images, dtype=np.float64), self.stride)
        n, n_h, n_w, d = feats.shape
        z = (feats.reshape(-1, d) - self.feature_mean_) / self.feature_std_
        return self.density_.anomaly_score(z).reshape(n, n_h, n_w)

    def _map(self, images):
        maps = patch_scores_to_map(
            self.patch_scores(images), images.shape, self.patch_size, self.stride, self.mode
        )
        return smooth_maps(maps, self.sigma) if self.sigma > 0 else maps
