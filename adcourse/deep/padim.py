"""One Gaussian per feature-map location: the PaDiM background model.

A frozen CNN (any *extractor* with ``embed(images) -> (n, C, h, w)``, e.g.
:class:`adcourse.deep.backbones.FeatureExtractor`) turns each image into a grid of
``h x w`` embedding vectors ``x_ij`` in ``R^C`` (stacked multi-layer features).
On normal images, the vectors seen at one location ``(i, j)`` are modelled by a
multivariate Gaussian, one per location (Defard et al., 2021):

.. math::

    \\mu_{ij} = \\frac{1}{N} \\sum_{k=1}^{N} x^k_{ij}, \\qquad
    \\Sigma_{ij} = \\frac{1}{N-1} \\sum_{k=1}^{N}
        (x^k_{ij} - \\mu_{ij})(x^k_{ij} - \\mu_{ij})^\\top + \\varepsilon I .

The statistic is the Mahalanobis distance of a test embedding to the Gaussian
of its own location,

.. math::

    M(x_{ij}) = \\sqrt{(x_{ij} - \\mu_{ij})^\\top \\Sigma_{ij}^{-1} (x_{ij} - \\mu_{ij})}
              = \\lVert L_{ij}^{-1} (x_{ij} - \\mu_{ij}) \\rVert_2,
    \\qquad \\Sigma_{ij} = L_{ij} L_{ij}^\\top \\ \\text{(Cholesky)},

computed for all locations at once (batched matrix products on the stack of
inverse Cholesky factors, no Python loop over locations). The ``(n, h, w)``
distance map is upsampled bilinearly to the input size and smoothed with a
Gaussian (:func:`adcourse.decision.smooth_maps`); the image score is its maximum.

Memory
------
Training statistics are accumulated **online**, batch after batch: the state is
the running mean ``mean_`` (h*w, C) and the centred scatter matrix ``scatter_``
(h*w, C, C), in float64, whatever the number of training images. Batches are
merged with Chan et al.'s pairwise update (numerically sound, unlike raw sums
``sum x`` and ``sum x x^T``, which lose precision by cancellation when the mean
is large compared with the spread): for a running state ``(n_a, mu_a, M_a)``
and a batch ``(n_b, mu_b, M_b)`` (its own mean and centred scatter),

.. math::

    n = n_a + n_b, \\quad \\delta = \\mu_b - \\mu_a, \\quad
    \\mu = \\mu_a + \\delta \\frac{n_b}{n}, \\quad
    M = M_a + M_b + \\delta \\delta^\\top \\frac{n_a n_b}{n}.

Use :meth:`PerLocationGaussian.partial_fit` to stream a training set that does
not fit in memory. Peak memory per batch is ``batch_size * h * w * C`` floats
for the embeddings; the model itself holds ``h*w*C*C`` floats twice (scatter and
inverse Cholesky factor), which is PaDiM's known cost (reduce ``C`` with the
extractor's random channel selection).

References
----------
T. Defard, A. Setkaliev, A. Loesch, R. Audigier, "PaDiM: a Patch Distribution
Modeling Framework for Anomaly Detection and Localization", ICPR Workshops 2021.
T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise
algorithm for computing sample variances", 1979.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.exceptions import NotFittedError

from adcourse.base import BaseImageDetector
from adcourse.decision import upsample_maps
from adcourse.deep.latent import _build_extractor
from adcourse.validation import check_images

__all__ = ["PerLocationGaussian"]


class PerLocationGaussian(BaseImageDetector):
    """PaDiM: a multivariate Gaussian of CNN embeddings at every feature-map location.

    Parameters
    ----------
    extractor : object with ``embed(images) -> ndarray (n, C, h, w)`` or None, default None
        Frozen feature extractor, e.g. ``adcourse.deep.backbones.FeatureExtractor``.
        It must give the same ``(C, h, w)`` for every image of the same size.
        None: ``FeatureExtractor("course", layers=layers)`` is built at fit
        (the shipped course backbone, offline), in ``extractor_``.
    layers : sequence of str or None, default None
        Layers of the default extractor; None means ``("stem", "layer1",
        "layer2")``, the stack of chapter 5: 32 + 32 + 64 = 128 channels at
        stride 2 (a 64x64 image gives 32x32 locations). Only used when
        ``extractor`` is None. The model holds two ``h*w*C*C`` float64 stacks:
        with this stack, 256 MiB per 1 000 locations (128-px images: 1 GiB).
    eps : "auto" or float, default "auto"
        Regulariser added to the diagonal of every covariance; keeps the
        covariances invertible when ``C`` is large compared with the number of
        training images. A number (``>= 0``) is used as it is. ``"auto"`` sets
        it relative to the scale of the features: 1 % of the median, over
        locations and channels, of the per-channel variances,
        :math:`\\varepsilon = 0.01\\,\\mathrm{median}_{ij,c}\\,(\\Sigma_{ij})_{cc}`
        — PaDiM's ``0.01`` for features of unit variance, and it leaves the
        Mahalanobis distance unchanged if all features are multiplied by a
        constant. The value used is ``eps_``.
    sigma : float, default 4.0
        Standard deviation (input pixels) of the Gaussian smoothing of the
        upsampled distance map; 0 disables it.
    batch_size : int, default 8
        Images embedded at once, in training and in scoring (bounds memory).

    Attributes
    ----------
    extractor_ : object
        The extractor used (``extractor`` itself, or the default one).
    mean_ : ndarray (h*w, C)
        Mean embedding per location (row ``i * w + j`` is location ``(i, j)``).
    scatter_ : ndarray (h*w, C, C)
        Centred scatter matrix ``sum_k (x - mu)(x - mu)^T`` per location.
    n_train_ : int
        Number of training images accumulated so far.
    feature_shape_ : tuple (C, h, w)
        Shape of one image's embedding.
    eps_ : float
        The diagonal regulariser actually used (see ``eps``).
    chol_inv_ : ndarray (h*w, C, C)
        Inverse of the Cholesky factor ``L`` of each regularised covariance
        (lower triangular); ``cov_inv_ = chol_inv_^T chol_inv_``. Computed by
        ``fit``, and after ``partial_fit`` at first use.
    cov_, cov_inv_ : ndarray (h*w, C, C)
        Regularised covariances and their inverses (computed on access).
    image_shape_ : tuple
        Shape of one training image; test images must have the same size.

    Notes
    -----
    At least 2 training images are needed (unbiased covariance).
    The model is one Gaussian per position, so images of another height or
    width than the training images (another feature grid) are refused with a
    ``ValueError``. To inspect large images (a whole micrograph), fit on crops
    of size :math:`s` and score tiles of size :math:`s`:
    :func:`adcourse.base.tiled_anomaly_map`. (On a texture, whose statistics do
    not depend on the position, a location-free detector such as
    :class:`adcourse.deep.latent.LatentPatchDetector` scores any size directly.)

    Examples
    --------
    >>> from adcourse.deep.backbones import FeatureExtractor
    >>> from adcourse.data import make_nanofibers
    >>> train = make_nanofibers(n_images=4, size=48, anomaly_rate=0.0, random_state=0).images
    >>> extractor = FeatureExtractor(layers=("layer1", "layer2"), n_channels=16)
    >>> det = PerLocationGaussian(extractor, sigma=2.0).fit(train)
    >>> det.mean_.shape, det.anomaly_map(train[:1]).shape   # 12 x 12 locations, 16 channels
    ((144, 16), (1, 48, 48))
    >>> from adcourse.base import tiled_anomaly_map
    >>> big = make_nanofibers(n_images=1, size=128, anomaly_rate=0.0, random_state=1).images
    >>> tiled_anomaly_map(det, big[:, :100, :]).shape         # 48 x 48 tiles, overlaps averaged
    (1, 100, 128)
    """

    _DEFAULT_LAYERS = ("stem", "layer1", "layer2")

    def __init__(self, extractor=None, layers=None, eps="auto", sigma=4.0, batch_size=8):
        self.extractor = extractor
        self.layers = layers
        self.eps = eps
        self.sigma = sigma
        self.batch_size = batch_size

    # ------------------------------------------------------------------ training
    def _check_params(self):
        if not (isinstance(self.eps, str) and self.eps == "auto") and (
            isinstance(self.eps, (str, bool)) or not isinstance(self.eps, numbers.Real)
            or not self.eps >= 0
        ):
            raise ValueError(f"eps must be 'auto' or a number >= 0, got {self.eps!r}")
        if not isinstance(self.sigma, numbers.Real) or not self.sigma >= 0:
            raise ValueError(f"sigma must be a number >= 0, got {self.sigma!r}")
        if not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")

    def _reset(self):
        for name in ("mean_", "scatter_", "n_train_", "feature_shape_", "_chol_inv", "eps_"):
            self.__dict__.pop(name, None)

    def _build_extractor(self):
        return _build_extractor(self.extractor, self.layers, self._DEFAULT_LAYERS, "embed",
                                "embed(images) -> (n, C, h, w)")

    def _fit(self, images):
        self._check_params()
        self._reset()
        self.extractor_ = self._build_extractor()
        self._accumulate(images)
        self._finalise()

    def partial_fit(self, images, y=None):
        """Add normal ``images`` to the statistics.

        The first call starts the model (like :meth:`fit`); later calls merge
        new images into the running mean and scatter, so ``partial_fit(a)``
        then ``partial_fit(b)`` equals ``fit(concatenate([a, b]))`` to rounding.
        The Cholesky factors are refreshed lazily, at the first scoring (or
        access to ``chol_inv_``) after the last call, so streaming a training
        set chunk by chunk costs one factorisation, not one per chunk.
        ``y`` is ignored.
        """
        self._check_params()
        images = check_images(images, "images")
        if not hasattr(self, "image_shape_") or not hasattr(self, "n_train_"):
            self.image_shape_ = images.shape[1:]
            self._reset()
            self.extractor_ = self._build_extractor()
        else:
            self._check_same_shape(images)
        self._accumulate(images)
        self._set_eps()
        self._chol_inv = None  # stale: recomputed when needed
        return self

    def _embed(self, images):
        emb = np.asarray(self.extractor_.embed(images), dtype=np.float64)
        if emb.ndim != 4 or emb.shape[0] != len(images):
            raise ValueError(
                f"extractor.embed must return (n, C, h, w) with n={len(images)}, got {emb.shape}"
            )
        if hasattr(self, "feature_shape_") and emb.shape[1:] != self.feature_shape_:
            raise ValueError(
                f"extractor gave embeddings {emb.shape[1:]}, expected {self.feature_shape_} "
                "as in training"
            )
        if not np.all(np.isfinite(emb)):
            raise ValueError("extractor.embed returned non-finite values")
        n, c, h, w = emb.shape
        if not hasattr(self, "feature_shape_"):
            self.feature_shape_ = (c, h, w)
        return emb.reshape(n, c, h * w).transpose(0, 2, 1)  # (n, h*w, C)

    def _accumulate(self, images):
        """Merge ``images`` into (n_train_, mean_, scatter_), batch by batch.

        For a batch ``X_b`` of ``n_b`` embeddings at every location, with the
        running mean ``mu_a`` before and ``mu`` after the merge, Chan's update
        ``M += M_b + delta delta^T n_a n_b / n`` equals the single product
        ``M += (X_b - mu_a)^T (X_b - mu)`` (the cross terms vanish because the
        batch deviations from ``mu_b`` sum to zero). That product runs in place
        on the whole stack of locations (torch's batched ``baddbmm_``), so no
        ``(h*w, C, C)`` temporary is created per batch.
        """
        import torch

        for start in range(0, len(images), self.batch_size):
            x = torch.from_numpy(self._embed(images[start : start + self.batch_size]))  # (b, L, C)
            if not hasattr(self, "n_train_"):
                hw, c = x.shape[1], x.shape[2]
                self.n_train_ = 0
                self.mean_ = np.zeros((hw, c))
                self.scatter_ = np.zeros((hw, c, c))
            mean = torch.from_numpy(self.mean_)  # shares memory: updated in place
            nb = x.shape[0]
            n = self.n_train_ + nb
            before = (x - mean).permute(1, 2, 0)  # (L, C, b), centred on the old mean
            mean += (x.sum(dim=0) - nb * mean) / n
            after = (x - mean).permute(1, 0, 2)  # (L, b, C), centred on the new mean
            torch.from_numpy(self.scatter_).baddbmm_(before, after)
            self.n_train_ = n

    def _finalise(self):
        """Regularised covariances -> batched Cholesky factors and their inverses."""
        import torch

        self._set_eps()
        self._chol_inv = None
        if self.n_train_ < 2:
            return  # not usable yet: anomaly_map says so
        # regularised covariances, built in one buffer (the in-place update is symmetric only
        # up to rounding: average the scatter with its transpose); freed once factorised
        scatter = torch.from_numpy(self.scatter_)
        cov = scatter + scatter.transpose(1, 2)
        cov.mul_(0.5 / (self.n_train_ - 1))
        cov.diagonal(dim1=1, dim2=2).add_(self.eps_)
        chol, info = torch.linalg.cholesky_ex(cov)  # (L, C, C), batched over locations
        del cov
        if int(info.max()) > 0:
            raise ValueError(
                f"a per-location covariance is not positive definite with eps={self.eps_:.3g}; "
                "use a larger eps (e.g. 0.01) or more training images"
            )
        eye = torch.eye(chol.shape[-1], dtype=chol.dtype).expand_as(chol)
        # L^{-1} by batched triangular solves
        self._chol_inv = torch.linalg.solve_triangular(chol, eye, upper=False).numpy()

    def _set_eps(self):
        if self.n_train_ < 2:
            return
        if self.eps == "auto":
            variances = np.diagonal(self.scatter_, axis1=1, axis2=2) / (self.n_train_ - 1)
            self.eps_ = 0.01 * float(np.median(variances))
        else:
            self.eps_ = float(self.eps)

    @property
    def chol_inv_(self):
        """Inverse Cholesky factor of every regularised covariance, (h*w, C, C)."""
        if getattr(self, "n_train_", 0) < 2:
            raise NotFittedError(
                f"{type(self).__name__} needs at least 2 training images, "
                f"got {getattr(self, 'n_train_', 0)}; call fit or partial_fit"
            )
        if self.__dict__.get("_chol_inv") is None:
            self._finalise()
        return self._chol_inv

    # ------------------------------------------------------------- statistics
    @property
    def cov_(self):
        """Regularised covariance per location, (h*w, C, C): scatter/(n-1) + eps_ I."""
        scatter = self.scatter_
        # the in-place update is symmetric only up to rounding: average with the transpose
        cov = (scatter + scatter.transpose(0, 2, 1)) / (2 * (self.n_train_ - 1))
        idx = np.arange(cov.shape[-1])
        cov[:, idx, idx] += self.eps_
        return cov

    @property
    def cov_inv_(self):
        """Inverse regularised covariance per location, (h*w, C, C)."""
        li = self.chol_inv_
        return li.transpose(0, 2, 1) @ li

    # ---------------------------------------------------------------- scoring
    def _check_same_shape(self, images):
        if images.shape[1:] != tuple(self.image_shape_):
            size = "x".join(str(v) for v in self.image_shape_[-2:])
            raise ValueError(
                f"images must have the shape of the training images {tuple(self.image_shape_)}, got "
                f"{images.shape[1:]}: {type(self).__name__} has one Gaussian per feature location, so "
                f"it scores images of its training size only. To inspect larger images, fit on crops "
                f"of size s and score tiles of size s: adcourse.base.tiled_anomaly_map(detector, "
                f"images) cuts them into {size} tiles and stitches the maps (for smaller images, fit "
                "on crops of their size)"
            )

    def mahalanobis(self, images):
        """Mahalanobis distance map on the feature grid, shape (n, h, w)."""
        chol_inv = self.chol_inv_  # NotFittedError before 2 training images
        images = check_images(images, "images")
        self._check_same_shape(images)
        c, h, w = self.feature_shape_
        out = []
        for start in range(0, len(images), self.batch_size):
            x = self._embed(images[start : start + self.batch_size])  # (b, L, C)
            diff = (x - self.mean_).transpose(1, 2, 0)  # (L, C, b)
            z = chol_inv @ diff  # (L, C, b) = L^{-1}(x - mu), all locations at once
            d = np.sqrt(np.einsum("lcb,lcb->bl", z, z))  # (b, L)
            out.append(d.reshape(-1, h, w))
        return np.concatenate(out)

    def _map(self, images):
        return upsample_maps(self.mahalanobis(images), images.shape[-2:], self.sigma)
