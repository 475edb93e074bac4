r"""Anomaly detection by image inpainting (chapter 7): RIAD, Zavrtanik et al. 2021.

*Inpainting* is reconstructing the missing parts of an image from the parts that
are left. An encoder–decoder :math:`f` trained to inpaint **normal** images
learns what normal content continues a normal context; asked to fill in a hole
over an anomaly, it paints what *should* be there, and the difference between
the image and its inpainting shows the anomaly. The labels of this task come for
free (we hide the pixels ourselves): inpainting is self-supervision.

**Masks.** The image is cut into a grid of :math:`k \times k` tiles; the tiles are
assigned at random, in equal numbers, to :math:`n` disjoint sets
:math:`S_1, \dots, S_n` that cover the image (:func:`tile_masks`). Mask
:math:`M_i` is 0 on the tiles of :math:`S_i` (hidden) and 1 elsewhere (visible),
so that :math:`\sum_i (1 - M_i) = 1` at every pixel.

**Reconstruction.** The network sees :math:`\mathbf s \odot M_i` and its output is
kept where the input was hidden; every pixel is hidden in exactly one of the
:math:`n` inputs, so

.. math:: \hat{\mathbf s} = \sum_{i=1}^{n} f(\mathbf s \odot M_i) \odot (1 - M_i)

is an image inpainted everywhere (:func:`inpaint`).

**Skip connections are allowed.** A plain autoencoder with skips from the encoder
to the decoder (a U-Net) learns the identity: it reconstructs anomalies as well
as normal content, which is why chapter 6's autoencoders have a bottleneck and no
skip. Here no pixel of :math:`\hat{\mathbf s}` was visible to the network that
produced it, so the identity is not a solution, and the skips can bring the
sharp details of the visible context to the decoder
(:class:`adcourse.deep.autoencoders.ConvAutoencoder` with ``skips=True``).

**Training** (normal images only, through :func:`adcourse.deep.training.fit_model`):
every batch draws a tile size :math:`k` from :math:`K = \{2, 4, 8, 16\}` and new
masks for every image, and minimises chapter 6's structural loss

.. math:: \mathcal L(\mathbf s, \hat{\mathbf s}) = \ell^2(\mathbf s - \hat{\mathbf s})
          + \lambda_S\,\big(1 - \mathrm{SSIM}(\mathbf s, \hat{\mathbf s})\big)
          + \lambda_G\,\big(1 - \mathrm{MSGMS}(\mathbf s, \hat{\mathbf s})\big)

(:func:`adcourse.deep.losses.ssim`, :func:`adcourse.deep.losses.msgms`).

**Anomaly map.** For every tile size :math:`k \in K` and several random mask sets,
the image is inpainted and compared with itself by the multi-scale
gradient-magnitude similarity; the map is one minus the mean similarity map,

.. math:: G(\mathbf s) = \frac{1}{|K|\,R} \sum_{k \in K} \sum_{r=1}^{R}
          \Big(1 - \mathrm{MSGMS}\big(\mathbf s, \hat{\mathbf s}_{k, r}\big)\Big),

smoothed by a Gaussian (:func:`adcourse.decision.smooth_maps`); the image score is
its maximum. Several tile sizes catch anomalies of several sizes: a defect larger
than the tiles is inpainted from itself, one smaller than the tiles vanishes.

Departures from the paper: it trains 300 epochs of a larger U-Net at 256×256 px;
here a small network trains for a few hundred steps. Its public re-implementation
normalises the anomaly scores with the minimum and maximum over the *test set*:
we never use statistics of test data, so the scores here are the raw ones.

References
----------
V. Zavrtanik, M. Kristan, D. Skočaj, "Reconstruction by inpainting for visual
anomaly detection", Pattern Recognition 112, 107706, 2021.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted

from adcourse.base import BaseImageDetector
from adcourse.decision import smooth_maps
from adcourse.deep.autoencoders import ConvAutoencoder
from adcourse.deep.losses import msgms, ssim
from adcourse.deep.training import fit_model, resolve_device, seeded
from adcourse.protocol import random_crops
from adcourse.validation import check_images

__all__ = ["tile_masks", "inpaint", "inpainting_loss", "InpaintingDetector"]


# --------------------------------------------------------------------------- #
# masks
# --------------------------------------------------------------------------- #
def _check_tiling(hw, tile_size, n_masks):
    for value, name in ((tile_size, "tile_size"), (n_masks, "n_masks")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    h, w = hw
    n_tiles = math.ceil(h / tile_size) * math.ceil(w / tile_size)
    if n_masks < 2 or n_tiles < n_masks:
        raise ValueError(
            f"{h}x{w} images in {tile_size}x{tile_size} tiles give {n_tiles} tile(s), which cannot be shared "
            f"among n_masks={n_masks} masks (need n_masks >= 2 and at least one tile per mask): use smaller "
            "tiles or fewer masks"
        )


def _hidden_tiles(n_images, hw, tile_size, n_masks, device="cpu", generator=None):
    r"""Boolean tensor (n_images, n_masks, H, W): ``[j, i]`` is the set :math:`S_i` (hidden pixels) of image j.

    The tiles of each image are put in a random order (a fresh permutation per image)
    and the order is cut into ``n_masks`` runs of (almost) equal length, so every
    tile belongs to exactly one set. Tiles at the right and bottom borders are cut
    to the image.
    """
    h, w = hw
    gh, gw = math.ceil(h / tile_size), math.ceil(w / tile_size)
    n_tiles = gh * gw
    rank = torch.rand(n_images, n_tiles, generator=generator, device=device).argsort(dim=1).argsort(dim=1)
    group = (rank * n_masks) // n_tiles                                    # (n_images, n_tiles) in 0..n-1
    hidden = group[:, None, :] == torch.arange(n_masks, device=device)[None, :, None]
    hidden = hidden.reshape(n_images, n_masks, gh, gw)
    hidden = hidden.repeat_interleave(tile_size, dim=2).repeat_interleave(tile_size, dim=3)
    return hidden[..., :h, :w]


def tile_masks(shape, tile_size, n_masks=3, random_state=0):
    r"""Random masks :math:`M_1, \dots, M_n` over a grid of :math:`k \times k` tiles.

    Parameters
    ----------
    shape : (H, W)
        Image size.
    tile_size : int
        :math:`k`, the side of the tiles (the last row and column of tiles are cut
        to the image).
    n_masks : int, default 3
        :math:`n \ge 2` (RIAD uses 3); there must be at least :math:`n` tiles.
    random_state : int, default 0
        Seed of the assignment of tiles to masks.

    Returns
    -------
    ndarray (n, H, W) of float
        ``M[i]`` is 0 on the tiles hidden in input :math:`i` (the set :math:`S_i`)
        and 1 elsewhere; every tile is hidden in exactly one mask,
        :math:`\sum_i (1 - M_i) = 1`, and the :math:`n` sets have (almost) the
        same number of tiles.

    Examples
    --------
    >>> M = tile_masks((4, 6), tile_size=2, n_masks=3, random_state=0)
    >>> M.shape, bool(np.all((1 - M).sum(axis=0) == 1))                # a partition
    ((3, 4, 6), True)
    >>> (1 - M).sum(axis=(1, 2)).tolist()                               # 2 tiles of 4 pixels each
    [8.0, 8.0, 8.0]
    """
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (H, W), got {shape!r}") from None
    _check_tiling((h, w), tile_size, n_masks)
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(f"random_state must be an integer, got {random_state!r}")
    gen = torch.Generator().manual_seed(int(random_state))
    hidden = _hidden_tiles(1, (h, w), tile_size, n_masks, generator=gen)[0]
    return 1.0 - hidden.numpy().astype(np.float64)


# --------------------------------------------------------------------------- #
# reconstruction and loss
# --------------------------------------------------------------------------- #
def inpaint(model, x, masks):
    r"""The inpainted image :math:`\hat{\mathbf s} = \sum_i f(\mathbf s \odot M_i) \odot (1 - M_i)`.

    Parameters
    ----------
    model : torch.nn.Module
        :math:`f`, images (m, C, H, W) -> images of the same shape.
    x : tensor (B, C, H, W)
        The images :math:`\mathbf s`.
    masks : tensor (B, n, H, W)
        Masks :math:`M_i` of each image (1 visible, 0 hidden), hidden sets disjoint
        and covering the image (e.g. ``1 - _hidden_tiles(...)``).

    Returns
    -------
    tensor (B, C, H, W)
        The :math:`n` masked versions of each image go through the network as one
        batch of :math:`Bn` images.
    """
    B, n = masks.shape[:2]
    m = masks[:, :, None].to(x.dtype)                                      # (B, n, 1, H, W)
    out = model((x[:, None] * m).flatten(0, 1)).reshape(B, n, *x.shape[1:])
    return (out * (1.0 - m)).sum(dim=1)


def inpainting_loss(x, x_hat, lambda_ssim=1.0, lambda_gms=1.0):
    r"""RIAD's loss :math:`\ell^2 + \lambda_S(1 - \mathrm{SSIM}) + \lambda_G(1 - \mathrm{MSGMS})`, a scalar tensor.

    :math:`\ell^2` is the mean squared error over pixels, SSIM and MSGMS are
    chapter 6's (:mod:`adcourse.deep.losses`), averaged over the batch.
    """
    return (F.mse_loss(x_hat, x) + lambda_ssim * (1.0 - ssim(x, x_hat).value)
            + lambda_gms * (1.0 - msgms(x, x_hat, full=False).value))


# --------------------------------------------------------------------------- #
# the detector
# --------------------------------------------------------------------------- #
def _check_number(value, name, positive=False):
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and np.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def _check_count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


_SCORES = ("msgms", "ssim", "loss")


class InpaintingDetector(BaseImageDetector):
    r"""RIAD: a U-Net trained to inpaint normal images; the anomaly map is where it fails.

    ``fit`` trains a :class:`adcourse.deep.autoencoders.ConvAutoencoder` with skip
    connections (a U-Net) to inpaint random crops of the normal images: at every step a tile size is drawn from ``tile_sizes``, each
    image of the batch gets ``n_masks`` fresh random masks (:func:`tile_masks`),
    and the inpainted images (:func:`inpaint`) are compared with the originals by
    :func:`inpainting_loss`. ``anomaly_map`` averages
    :math:`1 - \mathrm{MSGMS}(\mathbf s, \hat{\mathbf s}_{k,r})` over the tile sizes
    :math:`k` and ``n_mask_sets`` random mask sets :math:`r`, then smooths it;
    the image score is its maximum (see the module docstring for the math).

    The network is fully convolutional and the map has no per-location
    statistics: test images may have any size (the same channels), as long as
    every tile size leaves at least ``n_masks`` tiles.

    Parameters
    ----------
    tile_sizes : sequence of int, default (2, 4, 8, 16)
        :math:`K`, the tile sides in pixels (training and test).
    n_masks : int, default 3
        :math:`n`, masks per image: each input hides a fraction :math:`1/n` of it.
    n_mask_sets : int, default 2
        :math:`R`, random mask sets per tile size at test time (the map averages
        over them: less dependence on where the tiles happened to fall).
    lambda_ssim, lambda_gms : float, default 1.0
        :math:`\lambda_S` and :math:`\lambda_G` of the loss (RIAD: 1 and 1).
    score : {"msgms", "ssim", "loss"}, default "msgms"
        The per-pixel comparison of an image and its inpainting: RIAD's
        :math:`1 - \mathrm{MSGMS}` (gradients only: blind to a change of brightness
        that keeps the edges), :math:`1 - \mathrm{SSIM}` (local brightness, contrast and
        structure), or the training loss pixel by pixel, :math:`(\mathbf s -
        \hat{\mathbf s})^2 + \lambda_S(1 - \mathrm{SSIM}) + \lambda_G(1 - \mathrm{MSGMS})`
        (the lecture: "reconstruction quality measured by the loss functions used for
        training"). Choose it on validation images, never on the test images.
    widths : sequence of int, default (16, 32, 64)
        Channels of the U-Net's stages.
    strides : int or sequence of int, default 2
        Strides of the stages (:class:`adcourse.deep.autoencoders.ConvEncoder`): with 2
        everywhere the skips carry the encoder's maps at 1/2, 1/4, ... of the
        resolution; a first stride of 1 adds a full-resolution skip (sharper, about 3
        times slower on a CPU).
    crop_size : int or None, default 64
        The network is trained on random ``crop_size`` × ``crop_size`` crops of the
        training images (:func:`adcourse.protocol.random_crops`), drawn once; None:
        the whole images. The crops must hold at least ``n_masks`` tiles of the largest
        size, and should hold many more (the context the network learns from).
    n_crops : int, default 512
        Number of training crops.
    n_epochs : int, default 10
        Passes over the training crops (or images).
    batch_size : int, default 16
        Crops per step (each gives ``n_masks`` inputs to the network).
    lr : float, default 1e-3
        Adam learning rate.
    schedule : {"constant", "cosine"}, default "constant"
        Learning-rate schedule of :func:`adcourse.deep.training.fit_model` ("cosine": a
        linear warm-up over the first tenth of the steps, then a half cosine to 0).
    sigma : float, default 2.0
        Standard deviation (pixels) of the Gaussian smoothing of the map; 0: none.
    random_state : int, default 0
        Seed of the initialisation, the batches and the masks (training and test:
        the same images get the same map).
    device : "auto", "cpu", "cuda", ...
    progress : bool, default True
        Progress bar during training.

    Attributes
    ----------
    model_ : ConvAutoencoder
        The trained U-Net :math:`f` (eval mode).
    history_ : adcourse.deep.training.History
    image_shape_ : tuple
        Shape of one training image.

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> train = make_nanofibers(n_images=4, size=32, anomaly_rate=0.0, random_state=0).images
    >>> det = InpaintingDetector(n_crops=32, crop_size=32, n_epochs=1, progress=False, device="cpu").fit(train)
    >>> det.anomaly_map(train[:2]).shape, det.anomaly_score(train[:2]).shape
    ((2, 32, 32), (2,))
    >>> det.inpainted(train[:1], tile_size=8).shape      # one inpainting of each image
    (1, 32, 32)
    """

    def __init__(self, tile_sizes=(2, 4, 8, 16), n_masks=3, n_mask_sets=2, lambda_ssim=1.0, lambda_gms=1.0,
                 score="msgms", widths=(16, 32, 64), strides=2, crop_size=64, n_crops=512, n_epochs=10, batch_size=16, lr=1e-3,
                 schedule="constant", sigma=2.0, random_state=0, device="auto", progress=True):
        self.tile_sizes = tile_sizes
        self.n_masks = n_masks
        self.n_mask_sets = n_mask_sets
        self.lambda_ssim = lambda_ssim
        self.lambda_gms = lambda_gms
        self.score = score
        self.widths = widths
        self.strides = strides
        self.crop_size = crop_size
        self.n_crops = n_crops
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.schedule = schedule
        self.sigma = sigma
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _tile_sizes(self):
        try:
            ks = tuple(self.tile_sizes)
        except TypeError:
            raise ValueError(f"tile_sizes must be a sequence of integers, got {self.tile_sizes!r}") from None
        if not ks:
            raise ValueError("tile_sizes must hold at least one tile size")
        for k in ks:
            _check_count(k, "every tile size")
        return tuple(int(k) for k in ks)

    def _check_params(self):
        self._tile_sizes()
        _check_count(self.n_masks, "n_masks", minimum=2)
        for name in ("n_mask_sets", "n_epochs", "batch_size", "n_crops"):
            _check_count(getattr(self, name), name)
        if self.crop_size is not None:
            _check_count(self.crop_size, "crop_size", minimum=2)
        _check_number(self.lambda_ssim, "lambda_ssim")
        _check_number(self.lambda_gms, "lambda_gms")
        if self.score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {self.score!r}")
        _check_number(self.lr, "lr", positive=True)
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        _check_number(self.sigma, "sigma")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, numbers.Integral):
            raise TypeError(f"random_state must be an integer, got {self.random_state!r}")
        resolve_device(self.device)

    def _check_size(self, hw):
        for k in self._tile_sizes():
            _check_tiling(hw, k, self.n_masks)

    @staticmethod
    def _as_tensor(images):
        x = torch.as_tensor(np.ascontiguousarray(images, dtype=np.float32))
        return x[:, None] if x.ndim == 3 else x

    # ------------------------------------------------------------------ fit
    def _fit(self, images):
        self._check_params()
        if len(images) < 2:
            raise ValueError(f"InpaintingDetector needs at least 2 normal training images (batch normalisation), "
                             f"got {len(images)}")
        seed = int(self.random_state)
        if self.crop_size is not None:
            images = random_crops(images, self.n_crops, min(self.crop_size, *images.shape[-2:]), random_state=seed)
        hw = images.shape[-2:]
        self._check_size(hw)
        x = self._as_tensor(images)
        ks, n = self._tile_sizes(), int(self.n_masks)
        with seeded(seed):
            self.model_ = ConvAutoencoder(in_channels=x.shape[1], widths=tuple(self.widths), strides=self.strides,
                                          skips=True)
        lam_s, lam_g = float(self.lambda_ssim), float(self.lambda_gms)

        def loss(model, xb):
            k = ks[int(torch.randint(len(ks), (1,)))]                # one tile size per batch
            masks = 1.0 - _hidden_tiles(len(xb), hw, k, n, device=xb.device).float()
            return inpainting_loss(xb, inpaint(model, xb, masks), lam_s, lam_g)

        self.history_ = fit_model(
            self.model_, loss, x, n_epochs=self.n_epochs, batch_size=self.batch_size, lr=self.lr,
            schedule=self.schedule, drop_last=len(x) > self.batch_size, random_state=seed, device=self.device,
            progress=self.progress, desc="inpainting U-Net")

    # ---------------------------------------------------------------- scoring
    def _inpaint_all(self, images, tile_size, generator):
        """Inpaintings (n, C, H, W) of validated images with one random mask set per image."""
        dev = next(self.model_.parameters()).device
        x = self._as_tensor(images)
        out = []
        with torch.no_grad():
            for s in range(0, len(x), self.batch_size):
                xb = x[s:s + self.batch_size].to(dev)
                hidden = _hidden_tiles(len(xb), xb.shape[-2:], tile_size, int(self.n_masks), generator=generator)
                out.append(inpaint(self.model_, xb, (1.0 - hidden.float()).to(dev)).cpu())
        return torch.cat(out), x

    def _generator(self):
        return torch.Generator().manual_seed(int(self.random_state))

    def inpainted(self, images, tile_size=8):
        r"""One inpainting :math:`\hat{\mathbf s}` of each image with ``tile_size`` tiles, shaped like ``images``."""
        images = self._validated(images)
        _check_tiling(images.shape[-2:], tile_size, self.n_masks)
        x_hat, _ = self._inpaint_all(images, tile_size, self._generator())
        x_hat = x_hat.numpy().astype(np.float64)
        return x_hat[:, 0] if images.ndim == 3 else x_hat

    def _pixel_score(self, x, x_hat):
        """Per-pixel dissimilarity (n, H, W) of images and inpaintings, averaged over the channels."""
        if self.score == "msgms":
            return 1.0 - msgms(x, x_hat).map.mean(dim=1)
        if self.score == "ssim":
            return 1.0 - ssim(x, x_hat).map.mean(dim=1)
        return (((x - x_hat) ** 2).mean(dim=1) + self.lambda_ssim * (1.0 - ssim(x, x_hat).map.mean(dim=1))
                + self.lambda_gms * (1.0 - msgms(x, x_hat).map.mean(dim=1)))

    def tile_maps(self, images):
        r"""The unsmoothed maps of each tile size (``score``: e.g. :math:`1 - \mathrm{MSGMS}`), (len(tile_sizes), n, H, W).

        Each is averaged over ``n_mask_sets`` random mask sets and over the channels;
        :meth:`anomaly_map` is their mean, smoothed.
        """
        images = self._validated(images)
        gen = self._generator()
        maps = []
        for k in self._tile_sizes():
            total = 0.0
            for _ in range(int(self.n_mask_sets)):
                x_hat, x = self._inpaint_all(images, k, gen)
                total = total + self._pixel_score(x, x_hat)
            maps.append((total / int(self.n_mask_sets)).numpy().astype(np.float64))
        return np.stack(maps)

    def _validated(self, images):
        check_is_fitted(self, "model_")
        images = check_images(images, "images")
        if images.ndim != len(self.image_shape_) + 1 or (images.ndim == 4 and images.shape[1] != self.image_shape_[0]):
            raise ValueError(f"images must have the channels of the training images {tuple(self.image_shape_)}, "
                             f"got {images.shape[1:]}")
        self._check_size(images.shape[-2:])
        return images

    def _map(self, images):
        m = self.tile_maps(images).mean(axis=0)
        return smooth_maps(m, self.sigma) if self.sigma > 0 else m
