r"""Image similarity measures as differentiable torch losses: SSIM, MS-SSIM, GMS, MSGMS, CW-SSIM.

An autoencoder trained with the squared error alone learns to reproduce the
local mean of an image well and its edges and textures badly: a blurred
reconstruction is cheap under :math:`\ell^2`. The lecture's remedy (part 3,
"Autoencoders (revisited)") is to train — and to score — with **structural**
similarity measures, alone or added to the squared error,

.. math::

    \mathcal L(\mathbf s, \hat{\mathbf s}) = \ell^2(\mathbf s - \hat{\mathbf s})
        + \lambda\,\bigl(1 - \mathrm{SSIM}(\mathbf s, \hat{\mathbf s})\bigr),

and to prefer **multi-scale** versions of them. Every function here takes two
batches of images ``x`` (the input :math:`\mathbf s`) and ``y`` (its
reconstruction :math:`\hat{\mathbf s}`), shaped (n, C, H, W) or (n, H, W), and
returns a :class:`Similarity`: a **per-pixel map** at input resolution (what an
anomaly map is made of: one minus it is the per-pixel loss) and a scalar
**value** (what the training loss is made of). All are 1 for identical images.

SSIM (Wang et al., 2004)
    Local means :math:`\mu`, variances :math:`\sigma^2` and covariance
    :math:`\sigma_{xy}` are weighted averages over a Gaussian window
    (:math:`\sigma = 1.5`, 11 taps, normalised to sum 1) around every pixel
    :math:`c`, and

    .. math::

        \mathrm{SSIM}(c) = \underbrace{\frac{2\mu_x\mu_y + C_1}{\mu_x^2 + \mu_y^2 + C_1}}_{\text{luminance}}
            \cdot \underbrace{\frac{2\sigma_{xy} + C_2}{\sigma_x^2 + \sigma_y^2 + C_2}}_{\text{contrast-structure } cs(c)},
        \qquad C_1 = (k_1 L)^2,\ C_2 = (k_2 L)^2,

    with :math:`k_1 = 0.01`, :math:`k_2 = 0.03` and the data range :math:`L`
    (1 for images in [0, 1]). The value is the mean of the map.
MS-SSIM (Wang, Simoncelli & Bovik, 2003)
    The images are halved :math:`M - 1` times (2×2 average pooling); with
    :math:`\overline{cs}_j` the mean contrast-structure term at scale
    :math:`j` and :math:`\overline{\mathrm{SSIM}}_M` the mean SSIM at the
    coarsest scale,

    .. math::

        \mathrm{MS\text{-}SSIM} = \overline{\mathrm{SSIM}}_M^{\,\beta_M}
            \prod_{j=1}^{M-1} \overline{cs}_j^{\,\beta_j},

    with the paper's weights :math:`\beta = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)`
    for :math:`M = 5`. Five scales need images of about 100 pixels or more; on
    smaller images (28–64 px) fewer scales fit and the first :math:`M` weights
    are used, rescaled to sum 1 (the value stays comparable with SSIM's). The
    per-pixel map is the same product taken pixel by pixel, each scale's map
    upsampled bilinearly to the input size: a map for localisation, whose mean
    is close to, but not equal to, the MS-SSIM value (a mean of products is not
    a product of means).
GMS (Xue et al., 2014)
    Gradient magnitudes :math:`g = \sqrt{(h_x * x)^2 + (h_y * x)^2}` with the
    3×3 Prewitt filters :math:`h_x = \frac13 [1, 0, -1]^\top \otimes [1, 1, 1]`
    and :math:`h_y = h_x^\top`, and

    .. math:: \mathrm{GMS}(c) = \frac{2 g_x(c) g_y(c) + c_0}{g_x(c)^2 + g_y(c)^2 + c_0},

    with :math:`c_0 = 0.0026\,L^2` (the paper's 170 for 8-bit images). It
    compares edges only, not intensities.
MSGMS (Zavrtanik et al., 2021, "RIAD")
    The mean of the GMS maps at :math:`M` scales (the image and its 2×, 4×, 8×
    average-pooled versions), each upsampled bilinearly to the input size; its
    value is the mean over the scales of each scale's mean GMS (RIAD's loss is
    one minus it).
CW-SSIM (Sampat et al., 2009)
    SSIM's contrast-structure comparison applied to the complex coefficients of
    a steerable pyramid (:func:`steerable_pyramid_masks`, undecimated, by FFT):
    per band, :math:`(2|\overline{c_x c_y^*}| + K) / (\overline{|c_x|^2} +
    \overline{|c_y|^2} + K)` over a 7×7 neighbourhood, averaged over the bands.
    A small translation is a phase shift of the coefficients, which the modulus
    ignores (the lecture's best loss on the SEM images). Checked on known cases
    (tight frame, perfect reconstruction, brightness offset, contrast
    :math:`2a/(1+a^2)`, a one-pixel shift) and against a direct numpy computation.

Conventions and checks. Local statistics are computed on the images padded
by **reflection** (torch's ``"reflect"``, scipy's ``"mirror"``), so the maps
have the input size. This is what torchmetrics does: our SSIM and MS-SSIM equal
``torchmetrics.functional.structural_similarity_index_measure`` and
``multiscale_structural_similarity_index_measure`` (with ``data_range`` set) to
float precision, and our SSIM map equals scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, full=True)`` away from the 5-pixel border (where
scikit-image pads differently); tests check both, and GMS against a direct
numpy computation. Negative local variances from round-off are clipped to 0,
and for MS-SSIM negative terms are clipped to 0 before the fractional powers
(torchmetrics' ``normalize="relu"``), with gradients that stay finite.

References
----------
Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment:
from error visibility to structural similarity", IEEE TIP 2004.
Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for
image quality assessment", Asilomar 2003.
W. Xue, L. Zhang, X. Mou, A. C. Bovik, "Gradient magnitude similarity deviation",
IEEE TIP 2014.
M. P. Sampat, Z. Wang, S. Gupta, A. C. Bovik, M. K. Markey, "Complex wavelet
structural similarity: a new image similarity index", IEEE TIP 2009.
J. Portilla, E. P. Simoncelli, "A parametric texture model based on joint
statistics of complex wavelet coefficients", IJCV 2000.
V. Zavrtanik, M. Kristan, D. Skočaj, "Reconstruction by inpainting for visual
anomaly detection", Pattern Recognition 2021.
P. Bergmann, S. Löwe, M. Fauser, D. Sattlegger, C. Steger, "Improving unsupervised
defect segmentation by applying structural similarity to autoencoders", VISAPP 2019.

Examples
--------
>>> import torch
>>> x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
>>> s = ssim(x, x)
>>> s.map.shape, round(s.value.item(), 6)
(torch.Size([2, 1, 32, 32]), 1.0)
>>> round(ms_ssim(x, 0.8 * x).value.item(), 3) < 1, n_scales_that_fit(32, 32)
(True, 3)
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "Similarity",
    "MS_SSIM_BETAS",
    "gaussian_window",
    "ssim",
    "ms_ssim",
    "gms",
    "msgms",
    "cw_ssim",
    "steerable_pyramid_masks",
    "n_scales_that_fit",
    "reconstruction_loss",
    "LOSSES",
]

#: MS-SSIM weights of Wang et al. (2003) for 5 scales, finest first
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: the losses :func:`reconstruction_loss` knows
LOSSES = ("l2", "ssim", "ms_ssim", "gms", "msgms", "cw_ssim")


class Similarity(NamedTuple):
    """A similarity of two batches of images.

    Attributes
    ----------
    map : torch.Tensor, shaped like the inputs ((n, C, H, W) or (n, H, W))
        Per-pixel similarity (1 = identical neighbourhoods).
    value : torch.Tensor, scalar
        The index averaged over the batch: the mean of ``map`` for SSIM and
        GMS; for the multi-scale measures a combination of per-scale means
        (product for MS-SSIM, average for MSGMS), close to the mean of ``map``.
    """

    map: torch.Tensor
    value: torch.Tensor


# --------------------------------------------------------------------------- #
# checks and small tools
# --------------------------------------------------------------------------- #
def _as_pair(x, y):
    """Validate two image batches; return them as float (n, C, H, W) tensors and the input ndim."""
    tensors = []
    for name, a in (("x", x), ("y", y)):
        if not isinstance(a, torch.Tensor):
            arr = np.asarray(a)
            if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
                raise TypeError(f"{name} must be a tensor or array of numbers, got {type(a).__name__}")
            a = torch.as_tensor(arr)
        if not a.is_floating_point():
            a = a.float()
        if a.ndim not in (3, 4):
            raise ValueError(f"{name} must be (n, C, H, W) or (n, H, W) images, got shape {tuple(a.shape)}")
        if a.numel() == 0:
            raise ValueError(f"{name} is empty: got shape {tuple(a.shape)}")
        tensors.append(a)
    x, y = tensors
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dtype != y.dtype:
        y = y.to(x.dtype)
    ndim = x.ndim
    if ndim == 3:
        x, y = x[:, None], y[:, None]
    return x, y, ndim


def _restore(m, ndim):
    return m[:, 0] if ndim == 3 else m


def _upsample(m, size):
    """Bilinear up-sampling of a (n, C, h, w) map to ``size`` (half-pixel aligned); a no-op at that size."""
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    return F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False)


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _safe_sqrt(a):
    """:math:`\\sqrt{a}` for :math:`a \\ge 0` with a zero (not infinite) gradient at 0."""
    positive = a > 0
    return torch.where(positive, a.clamp_min(torch.finfo(a.dtype).tiny).sqrt(), torch.zeros_like(a))


def _safe_pow(a, beta):
    """:math:`\\max(a, 0)^\\beta` with finite gradients (0 where :math:`a \\le 0`)."""
    positive = a > 0
    return torch.where(positive, a.clamp_min(torch.finfo(a.dtype).tiny) ** beta, torch.zeros_like(a))


def gaussian_window(window_size=11, sigma=1.5, dtype=torch.float32, device=None):
    """The 1-D Gaussian window of SSIM, ``window_size`` taps summing to 1 (centred, odd size)."""
    if isinstance(window_size, bool) or not isinstance(window_size, numbers.Integral) or window_size < 1 \
            or window_size % 2 == 0:
        raise ValueError(f"window_size must be an odd integer >= 1, got {window_size!r}")
    sigma = _check_positive(sigma, "sigma")
    r = (window_size - 1) / 2
    t = torch.arange(-r, r + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def _filter_matrix(n, window):
    """The (n, n) matrix of a 1-D filter with reflection padding: ``(M @ v)[i] = sum_t w[t] v[refl(i + t - r)]``.

    Reflection (torch's ``"reflect"``): index :math:`-k` reads :math:`k`,
    index :math:`n - 1 + k` reads :math:`n - 1 - k` (needs :math:`r < n`).
    """
    r = (window.numel() - 1) // 2
    idx = np.arange(n)[:, None] + np.arange(-r, r + 1)[None, :]
    idx = np.abs(idx)
    idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
    rows = torch.as_tensor(np.repeat(np.arange(n), 2 * r + 1), device=window.device)
    m = torch.zeros(n, n, dtype=window.dtype, device=window.device)
    return m.index_put_((rows, torch.as_tensor(idx.ravel(), device=window.device)), window.repeat(n),
                        accumulate=True)


def _blur(x, window):
    r"""Separable Gaussian filter of (n, C, H, W) images with reflection padding: same size.

    Computed as :math:`A_H x A_W^\top` with the banded filter matrices of
    :func:`_filter_matrix` (the padding folded in): matrix products are far
    faster on a CPU than an 11-tap depthwise convolution.
    """
    return _filter_matrix(x.shape[-2], window) @ x @ _filter_matrix(x.shape[-1], window).T


def n_scales_that_fit(height, width, max_scales=5, window_size=11):
    """How many dyadic scales of MS-SSIM fit an image of ``height`` × ``width`` pixels (at most ``max_scales``).

    Scale :math:`j` has :math:`\\lfloor H / 2^{j-1} \\rfloor` rows. Every scale
    must be larger than half the window (reflection padding of
    ``window_size // 2`` pixels), and every scale but the coarsest, whose
    contrast-structure term is averaged away from the border, larger than the
    window. With the 11-tap window: 5 scales from 96 px, 4 from 48 px, 3 from
    24 px (so 3 on 28–32 px images), 2 from 12 px, 1 (plain SSIM) below.

    >>> [n_scales_that_fit(s, s) for s in (8, 11, 12, 24, 32, 48, 64, 96, 256)]
    [1, 1, 2, 3, 3, 4, 4, 5, 5]
    """
    pad = (window_size - 1) // 2
    m = 1
    while m < max_scales:
        h, w = height >> m, width >> m  # the size of scale m + 1
        h_prev, w_prev = height >> (m - 1), width >> (m - 1)
        if min(h, w) <= pad or min(h_prev, w_prev) <= 2 * pad:
            break
        m += 1
    return m


# --------------------------------------------------------------------------- #
# SSIM and MS-SSIM
# --------------------------------------------------------------------------- #
def _ssim_maps(x, y, window, data_range, k1, k2):
    """SSIM map and contrast-structure map of (n, C, H, W) batches (same size as the inputs)."""
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    n = x.shape[0]
    stats = _blur(torch.cat([x, y, x * x, y * y, x * y]), window).split(n)
    mu_x, mu_y, xx, yy, xy = stats
    var_x = (xx - mu_x**2).clamp_min(0)
    var_y = (yy - mu_y**2).clamp_min(0)
    cov = xy - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return luminance * cs, cs


def _check_ssim_args(x, window_size, sigma, data_range, k1, k2):
    data_range = _check_positive(data_range, "data_range")
    k1, k2 = _check_positive(k1, "k1"), _check_positive(k2, "k2")
    window = gaussian_window(window_size, sigma, dtype=x.dtype, device=x.device)
    pad = (window_size - 1) // 2
    if min(x.shape[-2:]) <= pad:
        raise ValueError(
            f"the images must be larger than half the window ({pad} pixels) in both directions, "
            f"got {tuple(x.shape[-2:])}; use a smaller window_size"
        )
    return window, data_range, k1, k2


def ssim(x, y, *, data_range=1.0, window_size=11, sigma=1.5, k1=0.01, k2=0.03):
    r"""Structural similarity of two image batches: per-pixel map and mean (differentiable).

    Parameters
    ----------
    x, y : tensors (n, C, H, W) or (n, H, W)
        The two batches (e.g. images and their reconstructions), same shape;
        H and W larger than ``window_size // 2``.
    data_range : float, default 1.0
        :math:`L`, the range of the pixel values (1 for images in [0, 1]; set it
        explicitly, never from the data).
    window_size : int, default 11
        Taps of the Gaussian window (odd).
    sigma : float, default 1.5
        Standard deviation of the window, in pixels.
    k1, k2 : float, default 0.01 and 0.03
        Stabilising constants, :math:`C_i = (k_i L)^2`.

    Returns
    -------
    Similarity
        ``map`` shaped like ``x`` (values in [-1, 1], 1 = identical), and
        ``value`` its mean over the batch (torchmetrics' SSIM).
    """
    x, y, ndim = _as_pair(x, y)
    window, data_range, k1, k2 = _check_ssim_args(x, window_size, sigma, data_range, k1, k2)
    s, _ = _ssim_maps(x, y, window, data_range, k1, k2)
    return Similarity(_restore(s, ndim), s.mean())


def ms_ssim(x, y, *, data_range=1.0, n_scales=None, betas=MS_SSIM_BETAS, window_size=11, sigma=1.5,
            k1=0.01, k2=0.03, full=True):
    r"""Multi-scale SSIM of two image batches: per-pixel map and MS-SSIM value (differentiable).

    Parameters
    ----------
    x, y : tensors (n, C, H, W) or (n, H, W)
        The two batches, same shape.
    data_range : float, default 1.0
        :math:`L` (see :func:`ssim`).
    n_scales : int or None, default None
        :math:`M`, the number of scales (1 = SSIM). ``None``: as many as fit
        (:func:`n_scales_that_fit`), at most ``len(betas)``; an explicit value
        that does not fit raises a ValueError.
    betas : sequence of float, default :data:`MS_SSIM_BETAS`
        Weights :math:`\beta_j`, finest scale first; the first :math:`M` are
        used, divided by their sum.
    window_size, sigma, k1, k2
        As in :func:`ssim`.
    full : bool, default True
        Compute the per-pixel map; ``False`` returns ``map=None`` and saves
        the up-sampling (a training loss needs the value only).

    Returns
    -------
    Similarity
        ``value``: :math:`\overline{\mathrm{SSIM}}_M^{\beta_M}\prod_{j<M}\overline{cs}_j^{\beta_j}`,
        with each image's means (the contrast-structure means taken over
        the pixels at least ``window_size // 2`` from the border, the
        coarsest SSIM over the whole map, as torchmetrics does), averaged over
        the batch; ``map``: the same product pixel by pixel, every scale's
        map upsampled bilinearly to (H, W).
    """
    x, y, ndim = _as_pair(x, y)
    window, data_range, k1, k2 = _check_ssim_args(x, window_size, sigma, data_range, k1, k2)
    betas = [float(b) for b in betas]
    if not betas or any(not np.isfinite(b) or b < 0 for b in betas) or sum(betas) <= 0:
        raise ValueError(f"betas must be non-negative numbers with a positive sum, got {betas!r}")
    H, W = x.shape[-2:]
    fit = n_scales_that_fit(H, W, max_scales=len(betas), window_size=window_size)
    if n_scales is None:
        n_scales = fit
    elif isinstance(n_scales, bool) or not isinstance(n_scales, numbers.Integral) or n_scales < 1:
        raise ValueError(f"n_scales must be None or an integer >= 1, got {n_scales!r}")
    elif n_scales > fit:
        raise ValueError(
            f"n_scales={n_scales} scales do not fit {H}x{W} images with a {window_size}-tap window "
            f"(at most {fit}); use n_scales=None or larger images"
        )
    weights = torch.tensor(betas[:n_scales], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    pad = (window_size - 1) // 2
    value = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    pixel_map = torch.ones_like(x) if full else None
    for j in range(n_scales):
        s, cs = _ssim_maps(x, y, window, data_range, k1, k2)
        last = j == n_scales - 1
        term_map = s if last else cs
        # the per-image means: contrast-structure away from the border, the coarsest SSIM everywhere
        inner = term_map if last else term_map[..., pad:-pad, pad:-pad]
        value = value * _safe_pow(inner.flatten(1).mean(1), weights[j])
        if full:
            pixel_map = pixel_map * _safe_pow(_upsample(term_map, (H, W)), weights[j])
        if not last:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return Similarity(_restore(pixel_map, ndim) if full else None, value.mean())


# --------------------------------------------------------------------------- #
# GMS and MSGMS
# --------------------------------------------------------------------------- #
def _prewitt(x):
    r"""Gradient magnitude of (n, C, H, W) images with the 3x3 Prewitt filters (reflection padding).

    :math:`h_x = \frac13 [1, 1, 1]^\top [1, 0, -1]` is separable: a 3-tap mean
    down the columns and a difference along the rows, applied as banded
    matrices (:func:`_filter_matrix`); :math:`h_y = h_x^\top`.
    """
    H, W = x.shape[-2:]
    mean = torch.full((3,), 1 / 3, dtype=x.dtype, device=x.device)
    diff = torch.tensor([1.0, 0.0, -1.0], dtype=x.dtype, device=x.device)
    gx = _filter_matrix(H, mean) @ x @ _filter_matrix(W, diff).T
    gy = _filter_matrix(H, diff) @ x @ _filter_matrix(W, mean).T
    return _safe_sqrt(gx**2 + gy**2)


def _gms_map(x, y, c0):
    gx, gy = _prewitt(x), _prewitt(y)
    return (2 * gx * gy + c0) / (gx**2 + gy**2 + c0)


def gms(x, y, *, data_range=1.0, c=0.0026):
    r"""Gradient-magnitude similarity of two image batches: per-pixel map and mean (differentiable).

    Parameters
    ----------
    x, y : tensors (n, C, H, W) or (n, H, W)
        The two batches, same shape, at least 2×2 pixels.
    data_range : float, default 1.0
        :math:`L`; the constant is :math:`c_0 = c\,L^2`.
    c : float, default 0.0026
        Stabilising constant for images in [0, 1] (170 / 255²).

    Returns
    -------
    Similarity
        ``map`` in (0, 1] shaped like ``x``; ``value`` its mean.
    """
    x, y, ndim = _as_pair(x, y)
    c0 = _check_positive(c, "c") * _check_positive(data_range, "data_range") ** 2
    if min(x.shape[-2:]) < 2:
        raise ValueError(f"the images must be at least 2x2 pixels, got {tuple(x.shape[-2:])}")
    m = _gms_map(x, y, c0)
    return Similarity(_restore(m, ndim), m.mean())


def msgms(x, y, *, data_range=1.0, n_scales=None, c=0.0026, full=True):
    r"""Multi-scale gradient-magnitude similarity (RIAD's MSGMS): per-pixel map and mean (differentiable).

    Parameters
    ----------
    x, y : tensors (n, C, H, W) or (n, H, W)
        The two batches, same shape.
    data_range, c
        As in :func:`gms`.
    n_scales : int or None, default None
        :math:`M`, the number of scales (1 = GMS). ``None``: 4 (RIAD's
        choice), or fewer if the coarsest scale would be under 2 pixels.
    full : bool, default True
        Compute the per-pixel map (``False``: ``map=None``, value only).

    Returns
    -------
    Similarity
        ``map``: :math:`\frac1M\sum_{j=1}^M \mathrm{up}(\mathrm{GMS}_j)`, the GMS
        maps of the image and its 2×, 4×, … average-pooled versions upsampled
        bilinearly to (H, W) (RIAD's anomaly map, before smoothing);
        ``value``: :math:`\frac1M\sum_j \overline{\mathrm{GMS}_j}`, the mean
        over the scales of each scale's mean (RIAD's loss is one minus it),
        close to the mean of ``map``.
    """
    x, y, ndim = _as_pair(x, y)
    c0 = _check_positive(c, "c") * _check_positive(data_range, "data_range") ** 2
    H, W = x.shape[-2:]
    fit = 1
    while fit < 4 and min(H, W) >> fit >= 2:
        fit += 1
    if min(H, W) < 2:
        raise ValueError(f"the images must be at least 2x2 pixels, got {(H, W)}")
    if n_scales is None:
        n_scales = fit
    elif isinstance(n_scales, bool) or not isinstance(n_scales, numbers.Integral) or n_scales < 1:
        raise ValueError(f"n_scales must be None or an integer >= 1, got {n_scales!r}")
    elif min(H, W) >> (n_scales - 1) < 2:
        raise ValueError(
            f"n_scales={n_scales} scales do not fit {H}x{W} images (the coarsest would be under 2 pixels)"
        )
    total = torch.zeros_like(x) if full else None
    value = 0.0
    for j in range(n_scales):
        m = _gms_map(x, y, c0)
        value = value + m.mean() / n_scales
        if full:
            total = total + _upsample(m, (H, W)) / n_scales
        if j < n_scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return Similarity(_restore(total, ndim) if full else None, value)


# --------------------------------------------------------------------------- #
# the autoencoders' loss
# --------------------------------------------------------------------------- #
# --------------------------------------------------------------------------- #
# CW-SSIM: SSIM of complex steerable-pyramid coefficients
# --------------------------------------------------------------------------- #
def _log_lowpass(r, cutoff):
    """Radial low-pass of the pyramid: 1 below ``cutoff / 2``, 0 above ``cutoff``, a log-raised cosine between."""
    t = torch.log2(r.clamp_min(1e-12) / cutoff).clamp(-1, 0)  # -1 at cutoff / 2, 0 at cutoff
    return torch.cos(0.5 * np.pi * (t + 1))


def steerable_pyramid_masks(height, width, n_scales=2, n_orientations=4, dtype=torch.float32, device=None):
    r"""Frequency responses of an undecimated complex steerable pyramid (Portilla & Simoncelli).

    On the FFT grid of an ``height`` × ``width`` image, with polar frequency
    coordinates :math:`(\rho, \theta)` (:math:`\rho` in radians per pixel), the
    log-raised-cosine low-pass :math:`L_j(\rho)` of cut-off :math:`\pi / 2^j`
    (1 below :math:`\pi / 2^{j+1}`, 0 above :math:`\pi / 2^j`) gives

    * the high-pass residual :math:`H_0 = \sqrt{1 - L_0^2}`,
    * the band of scale :math:`j = 1..J` and orientation :math:`\theta_k = \pi k / K`,
      :math:`B_{jk}(\rho, \theta) = L_{j-1}(\rho)\sqrt{1 - L_j(\rho)^2}\; 2\alpha_K
      \cos^{K-1}(\theta - \theta_k)\,[\,|\theta - \theta_k| < \pi/2\,]`, one-sided,
      so that its coefficients are complex (analytic) and their real parts are
      those of the real steerable pyramid,
      :math:`\alpha_K = 2^{K-1}(K-1)! / \sqrt{K\,(2K-2)!}`,
    * the low-pass residual :math:`L_J`.

    They tile the spectrum: :math:`H_0^2 + \sum_{jk} \tfrac{1}{4}(|B_{jk}(\omega)|^2 +
    |B_{jk}(-\omega)|^2) + L_J^2 = 1`, so the image is the sum of the high-pass, the real
    parts of the bands and the low-pass (each filtered once more by its own response):
    a tight frame, tested exactly.

    Returns
    -------
    highpass : tensor (H, W)
    bands : tensor (J * K, H, W)
        Scale-major (all orientations of scale 1 first).
    lowpass : tensor (H, W)
    """
    fy = torch.fft.fftfreq(height, dtype=torch.float64, device=device) * 2 * np.pi
    fx = torch.fft.fftfreq(width, dtype=torch.float64, device=device) * 2 * np.pi
    wy, wx = torch.meshgrid(fy, fx, indexing="ij")
    rho, theta = torch.sqrt(wx**2 + wy**2), torch.atan2(wy, wx)
    low = [_log_lowpass(rho, np.pi / 2**j) for j in range(n_scales + 1)]
    k = n_orientations
    alpha = 2 ** (k - 1) * math.factorial(k - 1) / math.sqrt(k * math.factorial(2 * k - 2))
    bands = []
    for j in range(1, n_scales + 1):
        radial = low[j - 1] * torch.sqrt((1 - low[j] ** 2).clamp_min(0))
        for o in range(k):
            d = torch.remainder(theta - np.pi * o / k + np.pi, 2 * np.pi) - np.pi  # angle to theta_k in [-pi, pi)
            angular = 2 * alpha * torch.cos(d).clamp_min(0) ** (k - 1) * (d.abs() < np.pi / 2)
            bands.append(radial * angular)
    highpass = torch.sqrt((1 - low[0] ** 2).clamp_min(0))
    cast = dict(dtype=dtype, device=device)
    return highpass.to(**cast), torch.stack(bands).to(**cast), low[n_scales].to(**cast)


def cw_ssim(x, y, *, data_range=1.0, n_scales=None, n_orientations=4, window_size=7, k=0.03, padding=8,
            full=True):
    r"""Complex-wavelet SSIM (Sampat et al. 2009) of two image batches: per-pixel map and mean.

    Both images go through the complex steerable pyramid of
    :func:`steerable_pyramid_masks` (undecimated, computed with the FFT after
    ``padding`` pixels of reflection padding, so every band is at the input
    resolution). For the coefficients :math:`c_x, c_y` of one band, averaged over
    the ``window_size`` × ``window_size`` neighbourhood of each pixel,

    .. math::

        \tilde S(c) = \frac{2\,\bigl|\overline{c_x c_y^*}\bigr| + K}
                           {\overline{|c_x|^2} + \overline{|c_y|^2} + K},

    and the map is the mean of :math:`\tilde S` over the :math:`J \times K_o` bands
    (the residual high- and low-pass are left out, as in the paper). A common
    phase shift of the coefficients, which is what a small translation does, leaves
    :math:`|\overline{c_x c_y^*}|` unchanged: CW-SSIM tolerates small shifts that SSIM
    punishes. A brightness offset does not reach the bands (map = 1); a contrast
    change :math:`y = a x` gives :math:`2a / (1 + a^2)` exactly when :math:`K = 0`.

    Parameters
    ----------
    x, y : tensors (n, C, H, W) or (n, H, W)
    data_range : float, default 1.0
        :math:`L`, the range of the pixel values (it scales :math:`K`).
    n_scales : int, optional
        :math:`J`; default: 2 below 64 px, 3 below 128 px, 4 from 128 px (the smaller side).
    n_orientations : int, default 4
    window_size : int, default 7
        The paper's 7 × 7 neighbourhood (a box average, reflection padding).
    k : float, default 0.03
        :math:`K = (k L)^2`, a small constant that keeps the ratio defined where both
        images are flat (there the map is 1), as SSIM's :math:`C_2`; 0 is the paper's
        index without it.
    padding : int, default 8
        Reflection padding before the FFT (the pyramid is circular), cropped after.
    full : bool, default True
        Compute the map (``False``: ``map=None``).

    Returns
    -------
    Similarity
        ``map`` shaped like ``x`` (1 = identical), ``value`` its mean.
    """
    x, y, ndim = _as_pair(x, y)
    h, w = x.shape[-2:]
    if n_scales is None:
        n_scales = 2 if min(h, w) < 64 else 3 if min(h, w) < 128 else 4
    for name, v, lo in (("n_scales", n_scales, 1), ("n_orientations", n_orientations, 1),
                        ("window_size", window_size, 1), ("padding", padding, 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if window_size % 2 == 0:
        raise ValueError(f"window_size must be odd, got {window_size}")
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not (np.isfinite(k) and k >= 0):
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    big_k = (float(k) * _check_positive(data_range, "data_range")) ** 2
    pad = min(int(padding), h - 1, w - 1)
    if window_size // 2 >= min(h, w):
        raise ValueError(f"the images must be larger than half the window, got {(h, w)}")
    n = x.shape[0]
    both = torch.cat([x, y])
    if pad:
        both = F.pad(both, (pad, pad, pad, pad), mode="reflect")
    _, bands, _ = steerable_pyramid_masks(*both.shape[-2:], n_scales, n_orientations, dtype=x.dtype,
                                          device=x.device)
    coeffs = torch.fft.ifft2(torch.fft.fft2(both)[:, :, None] * bands)  # (2n, C, bands, H', W') complex
    if pad:
        coeffs = coeffs[..., pad : pad + h, pad : pad + w]
    cx, cy = coeffs[:n], coeffs[n:]
    corr = cx * cy.conj()
    energy = cx.real**2 + cx.imag**2 + cy.real**2 + cy.imag**2
    box = torch.full((window_size,), 1.0 / window_size, dtype=x.dtype, device=x.device)
    stats = _blur(torch.stack([corr.real, corr.imag, energy]), box)  # local means over the window
    s = (2 * _safe_sqrt(stats[0] ** 2 + stats[1] ** 2) + big_k) / (stats[2] + big_k)
    s = s.mean(2)  # over the bands
    return Similarity(_restore(s, ndim) if full else None, s.mean())


_SIMILARITIES = {"ssim": ssim, "ms_ssim": ms_ssim, "gms": gms, "msgms": msgms, "cw_ssim": cw_ssim}


def reconstruction_loss(x, x_hat, loss="ssim", weight=1.0, data_range=1.0, full=True):
    r"""The autoencoders' loss :math:`\ell^2 + \lambda(1 - \mathrm{sim})`: per-pixel map and value.

    Parameters
    ----------
    x, x_hat : tensors (n, C, H, W) or (n, H, W)
        Images :math:`\mathbf s` and reconstructions :math:`\hat{\mathbf s}`.
    loss : {"l2", "ssim", "ms_ssim", "gms", "msgms", "cw_ssim"}, default "ssim"
        The structural term; ``"l2"`` is the squared error alone.
    weight : float, default 1.0
        :math:`\lambda`, the weight of the structural term (ignored for ``"l2"``).
    data_range : float, default 1.0
        :math:`L` of the similarity measure.
    full : bool, default True
        Compute the map (``False``: ``map=None``, for training).

    Returns
    -------
    Similarity
        ``map`` (n, H, W): the per-pixel loss
        :math:`(\mathbf s_c - \hat{\mathbf s}_c)^2 + \lambda(1 - \mathrm{sim}(c))`,
        averaged over the channels — the anomaly map of
        :class:`adcourse.deep.autoencoders.AutoencoderDetector`; ``value``:
        the training loss, :math:`\overline{(\mathbf s - \hat{\mathbf s})^2}
        + \lambda(1 - \mathrm{sim~value})`.

    >>> import torch
    >>> x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> out = reconstruction_loss(x, x, "msgms")
    >>> out.map.shape, float(out.value)
    (torch.Size([1, 16, 16]), 0.0)
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
    x, x_hat, _ = _as_pair(x, x_hat)
    diff = x - x_hat
    sq = diff * diff
    pixel, value = (sq.mean(1) if full else None), sq.mean()
    if loss != "l2":
        measure = _SIMILARITIES[loss]
        sim = measure(x, x_hat, data_range=data_range, **({} if measure in (ssim, gms) else {"full": full}))
        value = value + weight * (1 - sim.value)
        if full:
            pixel = pixel + weight * (1 - sim.map.mean(1))
    return Similarity(pixel, value)
