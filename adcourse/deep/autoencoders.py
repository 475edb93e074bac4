r"""Autoencoders: the building blocks, and anomaly detection by reconstruction or by feature monitoring.

An autoencoder is an encoder :math:`\mathcal E` that maps a signal
:math:`\mathbf s` to a code :math:`\boldsymbol\alpha = \mathcal E(\mathbf s)` of
lower dimension, and a decoder :math:`\mathcal D` that maps the code back,
:math:`\hat{\mathbf s} = \mathcal D(\mathcal E(\mathbf s))`. Trained on normal
data only, it learns to reproduce what normal data look like; the lecture uses
it in two ways.

**Building blocks.** The networks of chapters 6–8 are assembled from a few
modules, written once here:

* :func:`conv_block` — 3×3 convolution, batch normalisation, LeakyReLU; the
  stride sets the down-sampling; ``bias=False`` and ``affine=False`` give the
  bias-free, non-affine layers Deep SVDD needs (a network with biases can map
  every input to its centre: the hypersphere collapse);
* :class:`ConvEncoder` — a stack of conv blocks (channels ``widths``, strides
  ``strides``), then the bottleneck: a 1×1 convolution to ``latent_channels``
  (fully convolutional: any input size, the code is a small map) or, with
  ``latent_dim``, a linear layer to a vector (fixed input size);
* :func:`up_block` and :class:`ConvDecoder` — the mirror image: each stage
  up-samples with a transposed convolution and crops to the size of the
  matching encoder stage; optional **skip connections** concatenate the
  encoder's feature map of the same resolution (a U-Net, as used for
  inpainting in chapter 7);
* :class:`ConvAutoencoder` — encoder + decoder, ``skips=True`` for a U-Net;
* :func:`mlp` and :class:`MLPAutoencoder` — the same for vectors.

**Detectors.** Both of the lecture's uses of a trained autoencoder:

* :class:`AutoencoderDetector` — *reconstruction-error monitoring*: the anomaly
  map is the training loss pixel by pixel, :math:`\ell^2` plus
  :math:`\lambda(1 - \mathrm{SSIM})` (or MS-SSIM, GMS, MSGMS; see
  :mod:`adcourse.deep.losses`), the image score its maximum;
* :class:`AutoencoderGMMDetector` — *feature monitoring*: chapter 2's Gaussian
  mixture fitted, on a validation set disjoint from the training set, to the
  codes :math:`\mathcal E(\mathbf s)`; the score is
  :math:`-\log\sum_i \pi_i\varphi_{\mu_i,\Sigma_i}(\mathcal E(\mathbf s))`.

:class:`adcourse.deep.dagmm.DAGMM` learns the autoencoder and the mixture
jointly. All three take images (n, H, W) / (n, C, H, W) or vectors (n, d)
and train through :func:`adcourse.deep.training.fit_model`; thresholds come
from normal validation data through :mod:`adcourse.decision`.

Cropping to the encoder's own sizes is what makes the networks work on any
image size, odd ones included: a stride-2 3×3 convolution with padding 1 gives
:math:`\lceil H/2 \rceil` rows, the transposed convolution twice that, and the
crop goes back to exactly :math:`H`.

Examples
--------
>>> import torch
>>> from adcourse.deep.training import seeded
>>> with seeded(0):
...     ae = ConvAutoencoder(widths=(8, 16), latent_channels=4)
>>> x = torch.rand(2, 1, 30, 27)
>>> ae(x).shape, ae.encode(x).shape          # any size in, the same size out
(torch.Size([2, 1, 30, 27]), torch.Size([2, 4, 8, 7]))
>>> with seeded(0):
...     unet = ConvAutoencoder(widths=(8, 16, 32), strides=(1, 2, 2), skips=True)
>>> unet(x).shape
torch.Size([2, 1, 30, 27])
>>> with seeded(0):                         # a 2-D code for 28 x 28 images, no biases
...     enc = ConvEncoder(widths=(8, 16), latent_dim=2, image_size=(28, 28), bias=False, affine=False)
>>> enc(torch.rand(5, 1, 28, 28)).shape, any(n.endswith("bias") for n, _ in enc.named_parameters())
(torch.Size([5, 2]), False)
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from adcourse.decision import smooth_maps
from adcourse.deep.losses import LOSSES, reconstruction_loss
from adcourse.deep.training import fit_model, predict, resolve_device, seeded
from adcourse.protocol import random_crops
from adcourse.validation import check_images, check_vectors
from adcourse.vectors.density import GMMDetector

__all__ = [
    "conv_block",
    "up_block",
    "ConvEncoder",
    "ConvDecoder",
    "ConvAutoencoder",
    "mlp",
    "MLPAutoencoder",
    "AutoencoderDetector",
    "AutoencoderGMMDetector",
    "reconstruction_features",
]

_OUTPUTS = ("sigmoid", "none")


# --------------------------------------------------------------------------- #
# checks
# --------------------------------------------------------------------------- #
def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _int_tuple(values, name, length=None):
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = (values,) * (length or 1)
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{name} must be an integer or a sequence of integers, got {values!r}") from None
    if not values:
        raise ValueError(f"{name} must not be empty")
    values = tuple(_positive_int(v, f"{name}[{k}]") for k, v in enumerate(values))
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must have {length} entries (one per stage), got {len(values)}: {values}")
    return values


def _image_size(image_size):
    if image_size is None:
        raise ValueError("latent_dim needs image_size=(H, W): a linear bottleneck has a fixed input size")
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    return _int_tuple(image_size, "image_size", length=2)


def _check_output(output):
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
    return output


# --------------------------------------------------------------------------- #
# blocks
# --------------------------------------------------------------------------- #
def conv_block(c_in, c_out, *, stride=1, bias=True, batch_norm=True, affine=True, negative_slope=0.1):
    """3×3 convolution (padding 1) → batch normalisation → LeakyReLU, as an ``nn.Sequential``.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    stride : int, default 1
        2 halves the resolution (:math:`\\lceil H/2 \\rceil` rows).
    bias : bool, default True
        Bias of the convolution (``False`` for Deep SVDD).
    batch_norm : bool, default True
        Insert a ``BatchNorm2d`` (in training mode it normalises with the batch
        statistics, so train with batches of more than one image).
    affine : bool, default True
        Learnable scale and shift of the batch norm (``False``: a pure
        standardisation, as Deep SVDD needs).
    negative_slope : float, default 0.1
        Slope of the LeakyReLU for negative inputs.
    """
    layers = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out, affine=affine))
    layers.append(nn.LeakyReLU(negative_slope))
    return nn.Sequential(*layers)


def mlp(sizes, *, bias=True, batch_norm=False, affine=True, activation="tanh", last_activation=False,
        dropout=0.0):
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` as an ``nn.Sequential``.

    Each hidden layer is Linear → [BatchNorm1d] → activation → [Dropout];
    the last layer is linear unless ``last_activation``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first (at least two).
    bias, batch_norm, affine
        As in :func:`conv_block`.
    activation : {"tanh", "leaky_relu", "relu"}, default "tanh"
        Non-linearity (DAGMM's networks use tanh).
    last_activation : bool, default False
        Apply the non-linearity (and batch norm) after the last layer too.
    dropout : float in [0, 1), default 0
        Dropout probability after each hidden activation.
    """
    sizes = _int_tuple(sizes, "sizes")
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least an input and an output width, got {sizes}")
    acts = {"tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.1), "relu": nn.ReLU}
    if activation not in acts:
        raise ValueError(f"activation must be one of {tuple(acts)}, got {activation!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if k < len(sizes) - 2 or last_activation:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b, affine=affine))
            layers.append(acts[activation]())
            if dropout and k < len(sizes) - 2:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- #
# convolutional encoder / decoder
# --------------------------------------------------------------------------- #
class ConvEncoder(nn.Module):
    r"""Convolutional encoder :math:`\mathcal E`: conv blocks, then a bottleneck.

    Stage :math:`k` is ``conv_block(widths[k-1], widths[k], stride=strides[k])``
    (``widths[-1]`` read as ``in_channels`` for the first stage), so an
    :math:`H \times W` image leaves the last stage as a
    :math:`\lceil H/r \rceil \times \lceil W/r \rceil` map with
    :math:`r = \prod_k` ``strides[k]``. The bottleneck is a 1×1 convolution
    to ``latent_channels`` (a linear code map, fully convolutional), or with
    ``latent_dim`` a flatten + linear layer to a vector (``image_size`` fixed).
    The code has no activation.

    Parameters
    ----------
    in_channels : int, default 1
    widths : sequence of int, default (32, 64, 128)
        Channels of the stages.
    strides : int or sequence of int, default 2
        Stride of each stage (one int: the same for all).
    latent_channels : int or None, default 16
        Channels of the code map; ``None``: no bottleneck layer (the code is
        the last stage's output). Ignored with ``latent_dim``.
    latent_dim : int or None, default None
        Dimension of a vector code (then ``image_size`` is required).
    image_size : int or (H, W), optional
        Input size, needed by ``latent_dim``.
    bias, batch_norm, affine, negative_slope
        As in :func:`conv_block` (``bias`` also for the bottleneck).

    Attributes
    ----------
    stages : nn.ModuleList
        The conv blocks.
    head : nn.Module
        The bottleneck.
    code_shape : tuple or None
        Shape of one code with ``latent_dim`` (``(latent_dim,)``), else ``None``.
    """

    def __init__(self, in_channels=1, widths=(32, 64, 128), strides=2, latent_channels=16, latent_dim=None,
                 image_size=None, bias=True, batch_norm=True, affine=True, negative_slope=0.1):
        super().__init__()
        in_channels = _positive_int(in_channels, "in_channels")
        self.widths = _int_tuple(widths, "widths")
        self.strides = _int_tuple(strides, "strides", length=len(self.widths))
        chans = (in_channels,) + self.widths
        self.stages = nn.ModuleList(
            conv_block(a, b, stride=s, bias=bias, batch_norm=batch_norm, affine=affine,
                       negative_slope=negative_slope)
            for a, b, s in zip(chans[:-1], chans[1:], self.strides)
        )
        self.latent_dim = None if latent_dim is None else _positive_int(latent_dim, "latent_dim")
        if self.latent_dim is not None:
            self.image_size = _image_size(image_size)
            h, w = self.stage_sizes(*self.image_size)[-1]
            self.grid = (h, w)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(self.widths[-1] * h * w, self.latent_dim, bias=bias))
            self.code_shape = (self.latent_dim,)
        else:
            self.image_size, self.grid, self.code_shape = None, None, None
            if latent_channels is None:
                self.head = nn.Identity()
            else:
                latent_channels = _positive_int(latent_channels, "latent_channels")
                self.head = nn.Conv2d(self.widths[-1], latent_channels, 1, bias=bias)
        self.latent_channels = latent_channels

    def stage_sizes(self, height, width):
        """Sizes ``[(H_0, W_0), (H_1, W_1), ..., (H_K, W_K)]``: the input, then each stage's output."""
        sizes = [(int(height), int(width))]
        for s in self.strides:
            h, w = sizes[-1]
            sizes.append((math.ceil(h / s), math.ceil(w / s)))
        return sizes

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise ValueError(f"x must be a (n, C, H, W) tensor, got {shape}")
        if self.image_size is not None and tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"this encoder has a linear bottleneck for {self.image_size} images, got {tuple(x.shape[-2:])}"
            )

    def features(self, x):
        """The outputs of every stage, ``[f_1, ..., f_K]`` (finest first)."""
        self._check_input(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, x):
        """The code :math:`\\mathcal E(\\mathbf s)`: (n, latent_channels, h, w) or (n, latent_dim)."""
        return self.head(self.features(x)[-1])


def up_block(c_in, c_out, *, stride=2, bias=True, batch_norm=True, affine=True, negative_slope=0.1):
    """Up-sampling by ``stride``: transposed convolution → batch normalisation → LeakyReLU.

    A transposed convolution with kernel ``2 * stride``, stride ``stride`` and
    padding ``stride // 2`` gives :math:`\\text{stride} \\times h` rows out of
    :math:`h` (one more for odd strides); :class:`ConvDecoder` crops the result to
    the encoder's size. ``stride=1`` gives a plain 3×3 convolution
    (:func:`conv_block`). Options as in :func:`conv_block`.
    """
    if stride == 1:
        return conv_block(c_in, c_out, bias=bias, batch_norm=batch_norm, affine=affine,
                          negative_slope=negative_slope)
    layers = [nn.ConvTranspose2d(c_in, c_out, 2 * stride, stride=stride, padding=stride // 2, bias=bias)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out, affine=affine))
    layers.append(nn.LeakyReLU(negative_slope))
    return nn.Sequential(*layers)


def _crop(h, size):
    """The top-left ``size`` = (h, w) of a (n, C, h', w') map (h' >= h, w' >= w)."""
    return h[..., : size[0], : size[1]]


class ConvDecoder(nn.Module):
    r"""Convolutional decoder :math:`\mathcal D`, the mirror of a :class:`ConvEncoder`.

    The code first goes through a 1×1 conv block to ``widths[-1]`` channels (or,
    for a vector code, a linear layer + LeakyReLU reshaped to ``widths[-1]`` ×
    ``grid``). Decoder stage :math:`k = K-1, \dots, 1` undoes encoder stage
    :math:`k`: an :func:`up_block` with its stride to ``widths[k-1]``
    channels, cropped to the size of that stage's input, then (``skips``) the
    encoder's features of that resolution are concatenated and merged by a
    3×3 conv block. A last transposed convolution (stride ``strides[0]``, a 3×3
    convolution for stride 1) gives ``out_channels`` at the image size,
    followed by the output non-linearity (sigmoid: images in [0, 1]).

    Parameters
    ----------
    out_channels : int, default 1
    widths : sequence of int, default (32, 64, 128)
        The encoder's widths, finest first (the decoder runs them backwards).
    strides : int or sequence of int, default 2
        The encoder's strides.
    latent_channels : int or None, default 16
        Channels of a code map (``None``: the code has ``widths[-1]`` channels
        and enters the stages directly).
    latent_dim : int or None, default None
        Dimension of a vector code (then ``grid`` is required).
    grid : (h, w), optional
        Size of the encoder's last map, for a vector code.
    skips : bool, default False
        Expect the encoder's features and concatenate them (U-Net).
    bias, batch_norm, affine, negative_slope
        As in :func:`conv_block`.
    output : {"sigmoid", "none"}, default "sigmoid"
        Non-linearity of the output.
    """

    def __init__(self, out_channels=1, widths=(32, 64, 128), strides=2, latent_channels=16, latent_dim=None,
                 grid=None, skips=False, bias=True, batch_norm=True, affine=True, negative_slope=0.1,
                 output="sigmoid"):
        super().__init__()
        out_channels = _positive_int(out_channels, "out_channels")
        self.widths = _int_tuple(widths, "widths")
        self.strides = _int_tuple(strides, "strides", length=len(self.widths))
        self.skips = bool(skips)
        self.output = _check_output(output)
        block = dict(bias=bias, batch_norm=batch_norm, affine=affine, negative_slope=negative_slope)
        top = self.widths[-1]
        self.latent_dim = None if latent_dim is None else _positive_int(latent_dim, "latent_dim")
        if self.latent_dim is not None:
            if grid is None:
                raise ValueError("latent_dim needs grid=(h, w), the size of the encoder's last map")
            self.grid = _int_tuple(grid, "grid", length=2)
            self.head = nn.Sequential(
                nn.Linear(self.latent_dim, top * self.grid[0] * self.grid[1], bias=bias),
                nn.LeakyReLU(negative_slope),
                nn.Unflatten(1, (top,) + self.grid),
            )
        elif latent_channels is None:
            self.grid, self.head = None, nn.Identity()
        else:
            self.grid = None
            c = _positive_int(latent_channels, "latent_channels")
            self.head = nn.Sequential(
                nn.Conv2d(c, top, 1, bias=bias),
                *([nn.BatchNorm2d(top, affine=affine)] if batch_norm else []),
                nn.LeakyReLU(negative_slope),
            )
        K = len(self.widths)
        self.ups = nn.ModuleList(
            up_block(self.widths[k], self.widths[k - 1], stride=self.strides[k], **block) for k in range(K - 1, 0, -1)
        )
        self.merges = nn.ModuleList(
            conv_block(2 * self.widths[k - 1], self.widths[k - 1], **block) for k in range(K - 1, 0, -1)
        ) if self.skips else None
        s0 = self.strides[0]
        self.out = (nn.Conv2d(self.widths[0], out_channels, 3, padding=1, bias=bias) if s0 == 1 else
                    nn.ConvTranspose2d(self.widths[0], out_channels, 2 * s0, stride=s0, padding=s0 // 2, bias=bias))

    def forward(self, z, sizes, skips=None):
        """Decode ``z`` into images of size ``sizes[0]``.

        Parameters
        ----------
        z : tensor
            The code.
        sizes : list of (h, w)
            ``[(H_0, W_0), ..., (H_{K-1}, W_{K-1})]``, the inputs' sizes of the
            encoder stages (:meth:`ConvEncoder.stage_sizes` without its last entry).
        skips : list of tensors, optional
            The encoder's features ``[f_1, ..., f_{K-1}]`` (required with ``skips=True``).
        """
        K = len(self.widths)
        if len(sizes) < K:
            raise ValueError(f"sizes must hold {K} sizes (one per stage), got {len(sizes)}")
        if self.skips and (skips is None or len(skips) < K - 1):
            raise ValueError(f"a decoder with skips needs the encoder's {K - 1} feature maps, got "
                             f"{None if skips is None else len(skips)}")
        h = self.head(z)
        for j, k in enumerate(range(K - 1, 0, -1)):
            h = _crop(self.ups[j](h), sizes[k])
            if self.skips:
                h = self.merges[j](torch.cat([h, skips[k - 1]], dim=1))
        h = _crop(self.out(h), sizes[0])
        return torch.sigmoid(h) if self.output == "sigmoid" else h


class ConvAutoencoder(nn.Module):
    r"""A convolutional autoencoder :math:`\mathcal D(\mathcal E(\cdot))` (or a U-Net with ``skips=True``).

    ``ConvEncoder`` and ``ConvDecoder`` with shared settings; see them for the
    parameters. With ``latent_dim`` the code is a vector (for feature monitoring
    and DAGMM) and ``image_size`` is required; otherwise the network is fully
    convolutional and reconstructs images of any size. With ``skips=True`` the
    decoder also sees the encoder's intermediate maps: reconstructions are much
    sharper, but an identity shortcut is then available, so such a network is
    meant for inpainting (chapter 7), where the input is masked.

    Parameters
    ----------
    in_channels : int, default 1
        Channels of the images (the output has as many).
    widths, strides, latent_channels, latent_dim, image_size
        The encoder's architecture (:class:`ConvEncoder`).
    skips : bool, default False
        U-Net skip connections.
    bias, batch_norm, affine, negative_slope
        Layer options (:func:`conv_block`).
    output : {"sigmoid", "none"}, default "sigmoid"
        Output non-linearity.

    Attributes
    ----------
    encoder : ConvEncoder
    decoder : ConvDecoder
    """

    def __init__(self, in_channels=1, widths=(32, 64, 128), strides=2, latent_channels=16, latent_dim=None,
                 image_size=None, skips=False, bias=True, batch_norm=True, affine=True, negative_slope=0.1,
                 output="sigmoid"):
        super().__init__()
        layer = dict(bias=bias, batch_norm=batch_norm, affine=affine, negative_slope=negative_slope)
        self.encoder = ConvEncoder(in_channels, widths, strides, latent_channels, latent_dim, image_size, **layer)
        self.decoder = ConvDecoder(
            in_channels, widths, self.encoder.strides, latent_channels, latent_dim, self.encoder.grid, skips=skips,
            output=output, **layer,
        )
        self.skips = bool(skips)

    def encode(self, x):
        """The code :math:`\\mathcal E(\\mathbf s)`."""
        return self.encoder(x)

    def code_and_reconstruction(self, x):
        """``(E(s), D(E(s)))`` in one pass."""
        feats = self.encoder.features(x)
        z = self.encoder.head(feats[-1])
        sizes = self.encoder.stage_sizes(*x.shape[-2:])[:-1]
        return z, self.decoder(z, sizes, feats[:-1] if self.skips else None)

    def forward(self, x):
        """The reconstruction :math:`\\hat{\\mathbf s} = \\mathcal D(\\mathcal E(\\mathbf s))`, shaped like ``x``."""
        return self.code_and_reconstruction(x)[1]


class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder for vectors: ``n_features -> hidden -> latent_dim -> reversed(hidden) -> n_features``.

    Parameters
    ----------
    n_features : int
        Input dimension :math:`d`.
    hidden : sequence of int, default (64, 32)
        Widths of the encoder's hidden layers (the decoder mirrors them).
    latent_dim : int, default 2
        Dimension of the code.
    activation : {"tanh", "leaky_relu", "relu"}, default "tanh"
    bias, batch_norm, affine
        As in :func:`mlp`.
    output : {"sigmoid", "none"}, default "none"
        Output non-linearity (``"sigmoid"`` for data in [0, 1]).

    >>> import torch
    >>> ae = MLPAutoencoder(10, hidden=(8,), latent_dim=2)
    >>> x = torch.rand(4, 10)
    >>> ae.encode(x).shape, ae(x).shape
    (torch.Size([4, 2]), torch.Size([4, 10]))
    """

    def __init__(self, n_features, hidden=(64, 32), latent_dim=2, activation="tanh", bias=True, batch_norm=False,
                 affine=True, output="none"):
        super().__init__()
        n_features = _positive_int(n_features, "n_features")
        latent_dim = _positive_int(latent_dim, "latent_dim")
        hidden = tuple(hidden)
        self.output = _check_output(output)
        opts = dict(bias=bias, batch_norm=batch_norm, affine=affine, activation=activation)
        self.encoder = mlp((n_features, *hidden, latent_dim), **opts)
        self.decoder = mlp((latent_dim, *hidden[::-1], n_features), **opts)

    def encode(self, x):
        """The code :math:`\\mathcal E(\\mathbf s)`, (n, latent_dim)."""
        return self.encoder(x)

    def code_and_reconstruction(self, x):
        """``(E(s), D(E(s)))`` in one pass."""
        z = self.encoder(x)
        h = self.decoder(z)
        return z, torch.sigmoid(h) if self.output == "sigmoid" else h

    def forward(self, x):
        return self.code_and_reconstruction(x)[1]


# =========================================================================== #
# detectors
# =========================================================================== #
def _check_int_param(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_real_param(value, name, low=0.0, positive=False, high=None):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < low or (positive and value == low) or (high is not None and value >= high):
        bound = f"> {low}" if positive else f">= {low}"
        bound += f" and < {high}" if high is not None else ""
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _check_input(X, name="X"):
    """Images (n, H, W) / (n, C, H, W) in [0, 1], or vectors (n, d): (validated float64 array, kind)."""
    arr = np.asarray(X) if not isinstance(X, (str, bytes)) and X is not None else X
    if isinstance(arr, np.ndarray) and arr.ndim == 2:
        return check_vectors(arr, name), "vectors"
    if isinstance(arr, np.ndarray) and arr.ndim in (3, 4):
        return check_images(arr, name), "images"
    if isinstance(arr, np.ndarray) and arr.dtype != object and arr.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must be vectors (n, d) or images (n, H, W) / (n, C, H, W), got shape {arr.shape}"
        )
    return check_vectors(X, name), "vectors"  # raises the right TypeError / ValueError


class _ImagesOrVectors(BaseEstimator):
    """Fit/score plumbing shared by the autoencoder detectors: images or vectors, validated once.

    Subclasses implement ``_fit(X)`` (X: float32 network input, (n, C, H, W) or
    (n, d)) and ``_score(X)``.
    """

    #: smallest number of training samples
    _min_fit_samples = 2

    def fit(self, X, y=None):
        """Learn the model from normal images (n, H, W) / (n, C, H, W) or vectors (n, d); ``y`` is ignored."""
        X, kind = _check_input(X, "X")
        if len(X) < self._min_fit_samples:
            raise ValueError(f"X has {len(X)} samples, need at least {self._min_fit_samples}")
        self._check_params()
        for name in ("image_shape_", "n_features_in_"):
            self.__dict__.pop(name, None)
        self.input_kind_ = kind
        if kind == "images":
            self.image_shape_ = X.shape[1:]
        else:
            self.n_features_in_ = X.shape[1]
        self._fit(self._network_input(X))
        return self

    def _check_training_params(self):
        """The hyper-parameters every detector here has: n_epochs, batch_size, lr, random_state, device."""
        for name in ("n_epochs", "batch_size"):
            _check_int_param(getattr(self, name), name)
        _check_real_param(self.lr, "lr", positive=True)
        _check_int_param(self.random_state, "random_state", low=0)
        resolve_device(self.device)

    def _network_input(self, X):
        """float32 (n, C, H, W) for images, (n, d) for vectors."""
        if X.ndim == 3:
            X = X[:, None]
        return np.ascontiguousarray(X, dtype=np.float32)

    def _validated(self, X, maps=False):
        check_is_fitted(self, "input_kind_")
        X, kind = _check_input(X, "X")
        if kind != self.input_kind_:
            raise ValueError(f"the detector was fitted on {self.input_kind_}, got {kind} of shape {X.shape}")
        if kind == "vectors" and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but the detector was fitted on {self.n_features_in_} features"
            )
        if kind == "images":
            same = X.ndim == len(self.image_shape_) + 1 and (X.ndim == 3 or X.shape[1] == self.image_shape_[0])
            if not same or (self._fixed_size and X.shape[1:] != tuple(self.image_shape_)):
                what = "" if not self._fixed_size else " (this model needs the training size)"
                raise ValueError(
                    f"X must be shaped like the training images {tuple(self.image_shape_)}{what}, got {X.shape[1:]}"
                )
        return X

    #: True when test images must have the training size (a vector code)
    _fixed_size = True

    def anomaly_score(self, X):
        """Anomaly score of each sample, shape (n,), higher = more anomalous."""
        X = self._validated(X)
        return np.asarray(self._score(self._network_input(X)), dtype=np.float64)


# --------------------------------------------------------------------------- #
# reconstruction-error monitoring
# --------------------------------------------------------------------------- #
class AutoencoderDetector(_ImagesOrVectors):
    r"""Reconstruction-error monitoring with an autoencoder trained on normal data.

    The lecture's recipe ("AE notation"): train :math:`\mathcal D(\mathcal E(\cdot))`
    on a training set :math:`S` of normal images only, minimising

    .. math::

        \mathcal L(\mathbf s, \hat{\mathbf s}) = \ell^2(\mathbf s - \hat{\mathbf s})
            + \lambda\,\bigl(1 - \mathrm{sim}(\mathbf s, \hat{\mathbf s})\bigr),
        \qquad \hat{\mathbf s} = \mathcal D(\mathcal E(\mathbf s)),

    with sim = SSIM, MS-SSIM, GMS or MSGMS (:mod:`adcourse.deep.losses`), or
    :math:`\ell^2` alone. The anomaly score is **the training loss, pixel by
    pixel**: the anomaly map at pixel :math:`c` is

    .. math:: \mathrm{err}(\mathbf s)(c) = (\mathbf s(c) - \hat{\mathbf s}(c))^2
              + \lambda\,\bigl(1 - \mathrm{sim}(c)\bigr),

    (averaged over the channels, optionally smoothed), and the image score is
    its maximum (or its mean, the lecture's :math:`\lVert \mathbf s - \hat{\mathbf s}\rVert_2^2/d`
    for ``loss="l2"``). The threshold :math:`\gamma` is then learned on the
    scores of a normal validation set :math:`V`, :math:`V \cap S = \emptyset`
    (:meth:`adcourse.decision.Threshold.from_fpr`): it is not part of the detector.

    Images: a fully convolutional :class:`ConvAutoencoder` trained on random
    crops of the training images and applied to whole images of any size
    (the code is a map with ``latent`` channels at 1/``prod(strides)`` of the
    resolution: its size sets how much the network can copy). Vectors (n, d):
    an :class:`MLPAutoencoder` on the features standardised with the training
    mean and standard deviation, loss and score the mean squared error.

    Parameters
    ----------
    loss : {"auto", "l2", "ssim", "ms_ssim", "gms", "msgms", "cw_ssim"}, default "auto"
        The structural term; ``"auto"`` is ``"ssim"`` for images and ``"l2"``
        for vectors (the only loss for vectors).
    weight : float, default 1.0
        :math:`\lambda`.
    widths : sequence of int or None, default None
        Channels of the conv stages (images; None: (16, 32, 64)) or widths of
        the hidden layers (vectors; None: (64, 32)).
    strides : int or sequence of int, default 2
        Strides of the conv stages (images).
    latent : int or None, default None
        Channels of the code map (images; None: 8) or code dimension (vectors; None: 8).
    crop_size : int or None, default 32
        Side of the random training crops (images); None: whole images.
    n_crops : int, default 1024
        Number of training crops, drawn once with ``random_state``.
    n_epochs : int, default 20
    batch_size : int, default 64
    lr : float, default 2e-3
        Adam's learning rate.
    sigma : float, default 0.0
        Gaussian smoothing of the anomaly map (pixels; 0 = none).
    image_score : {"max", "mean"}, default "max"
        Reduction of the map to the image score.
    random_state : int, default 0
        Seed of the crops, the initialisation and the batch order.
    device : "auto", "cpu", "cuda", ...
    progress : bool, default True
        Progress bar while training.

    Attributes
    ----------
    model_ : ConvAutoencoder or MLPAutoencoder
        The trained network (eval mode).
    history_ : adcourse.deep.training.History
        Learning curve.
    loss_ : str
        The loss used (``loss`` with "auto" resolved).
    input_kind_ : {"images", "vectors"}
    image_shape_ / n_features_in_
        Shape of one training image / number of features.
    mean_, scale_ : ndarrays (d,)
        Standardisation of vectors.

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> train = make_nanofibers(n_images=4, size=32, anomaly_rate=0.0, random_state=0).images
    >>> det = AutoencoderDetector(n_crops=64, n_epochs=1, progress=False, device="cpu").fit(train)
    >>> det.anomaly_map(train[:2]).shape, det.reconstruct(train[:2]).shape
    ((2, 32, 32), (2, 32, 32))
    """

    _fixed_size = False

    def __init__(self, loss="auto", weight=1.0, widths=None, strides=2, latent=None, crop_size=32, n_crops=1024,
                 n_epochs=20, batch_size=64, lr=2e-3, sigma=0.0, image_score="max", random_state=0,
                 device="auto", progress=True):
        self.loss = loss
        self.weight = weight
        self.widths = widths
        self.strides = strides
        self.latent = latent
        self.crop_size = crop_size
        self.n_crops = n_crops
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.sigma = sigma
        self.image_score = image_score
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self):
        if self.loss != "auto" and self.loss not in LOSSES:
            raise ValueError(f"loss must be 'auto' or one of {LOSSES}, got {self.loss!r}")
        _check_real_param(self.weight, "weight")
        self._check_training_params()
        _check_int_param(self.n_crops, "n_crops")
        if self.crop_size is not None:
            _check_int_param(self.crop_size, "crop_size", low=2)
        _check_real_param(self.sigma, "sigma")
        if self.image_score not in ("max", "mean"):
            raise ValueError(f"image_score must be 'max' or 'mean', got {self.image_score!r}")

    # ------------------------------------------------------------------ fit
    def _fit(self, X):
        seed = int(self.random_state)
        if self.input_kind_ == "vectors":
            if self.loss not in ("auto", "l2"):
                raise ValueError(f"loss={self.loss!r} needs images; vectors are reconstructed with loss='l2'")
            self.loss_ = "l2"
            self.mean_ = X.mean(axis=0)
            self.scale_ = np.maximum(X.std(axis=0), 1e-6 * max(float(X.std()), 1e-12))
            data = (X - self.mean_) / self.scale_
            with seeded(seed):
                self.model_ = MLPAutoencoder(X.shape[1], hidden=self.widths or (64, 32), latent_dim=self.latent or 8)
        else:
            self.loss_ = "ssim" if self.loss == "auto" else self.loss
            size = None if self.crop_size is None else min(self.crop_size, *X.shape[-2:])
            data = X if size is None else random_crops(X, self.n_crops, size, random_state=seed)
            with seeded(seed):
                self.model_ = ConvAutoencoder(X.shape[1], widths=self.widths or (16, 32, 64), strides=self.strides,
                                              latent_channels=self.latent or 8)
        self.history_ = fit_model(
            self.model_, self._loss_fn, np.ascontiguousarray(data, dtype=np.float32), n_epochs=self.n_epochs,
            batch_size=self.batch_size, lr=self.lr, drop_last=len(data) > self.batch_size, random_state=seed,
            device=self.device, progress=self.progress, desc=f"autoencoder ({self.loss_})",
        )

    def _loss_fn(self, model, x):
        if x.ndim == 2:  # vectors
            return F.mse_loss(model(x), x)
        return reconstruction_loss(x, model(x), self.loss_, self.weight, full=False).value

    # -------------------------------------------------------------- scoring
    def _batches(self, X, batch_size=32):
        dev = next(self.model_.parameters()).device
        self.model_.eval()
        with torch.no_grad():
            for s in range(0, len(X), batch_size):
                x = torch.as_tensor(X[s : s + batch_size], device=dev)
                yield x, self.model_(x)

    def reconstruct(self, X):
        r""":math:`\hat{\mathbf s} = \mathcal D(\mathcal E(\mathbf s))`, shaped like ``X`` (float64)."""
        X = self._validated(X)
        net = self._network_input(X if self.input_kind_ == "images" else (X - self.mean_) / self.scale_)
        out = np.concatenate([xh.cpu().numpy() for _, xh in self._batches(net)]).astype(np.float64)
        if self.input_kind_ == "vectors":
            return out * self.scale_ + self.mean_
        return out[:, 0] if X.ndim == 3 else out

    def anomaly_map(self, images):
        """The per-pixel training loss (n, H, W), smoothed with ``sigma``: higher = more anomalous."""
        X = self._validated(images)
        if self.input_kind_ != "images":
            raise ValueError("anomaly_map needs a detector fitted on images; this one was fitted on vectors")
        maps = np.concatenate([
            reconstruction_loss(x, xh, self.loss_, self.weight).map.cpu().numpy()
            for x, xh in self._batches(self._network_input(X))
        ]).astype(np.float64)
        return smooth_maps(maps, self.sigma) if self.sigma > 0 else maps

    def _score(self, X):
        if self.input_kind_ == "vectors":
            net = ((X - self.mean_) / self.scale_).astype(np.float32)
            return np.concatenate([((xh - x) ** 2).mean(1).cpu().numpy() for x, xh in self._batches(net)])
        maps = np.concatenate([
            reconstruction_loss(x, xh, self.loss_, self.weight).map.cpu().numpy()
            for x, xh in self._batches(X)
        ]).astype(np.float64)
        if self.sigma > 0:
            maps = smooth_maps(maps, self.sigma)
        flat = maps.reshape(len(maps), -1)
        return flat.max(axis=1) if self.image_score == "max" else flat.mean(axis=1)


# --------------------------------------------------------------------------- #
# feature monitoring: a GMM on the codes
# --------------------------------------------------------------------------- #
def _l2_loss(model, x):
    return F.mse_loss(model(x), x)


def reconstruction_features(x, x_hat):
    r"""Relative Euclidean error and cosine similarity of each sample (DAGMM's), shape (n, 2).

    :math:`\lVert \mathbf s - \hat{\mathbf s}\rVert / \lVert \mathbf s\rVert` and
    :math:`\mathbf s^\top\hat{\mathbf s} / (\lVert \mathbf s\rVert\lVert\hat{\mathbf s}\rVert)`,
    over all the values of a sample (norms floored at 1e-8); torch tensors in and out.
    """
    s, r = x.flatten(1), x_hat.flatten(1)
    ns, nr = s.norm(dim=1).clamp_min(1e-8), r.norm(dim=1).clamp_min(1e-8)
    return torch.stack([(s - r).norm(dim=1) / ns, (s * r).sum(1) / (ns * nr)], dim=1)


class AutoencoderGMMDetector(_ImagesOrVectors):
    r"""Feature monitoring: a Gaussian mixture on the autoencoder's codes (two steps).

    The lecture's "detection by feature monitoring (AE notation)":

    1. split the normal data into a training set :math:`S` and a validation
       set :math:`V`, :math:`V \cap S = \emptyset`;
    2. train the autoencoder :math:`\mathcal D(\mathcal E(\cdot))` on :math:`S`
       (squared error), with a vector code :math:`\boldsymbol\alpha = \mathcal E(\mathbf s) \in \mathbb R^m`;
    3. fit a Gaussian mixture with chapter 2's EM
       (:class:`adcourse.vectors.density.GMMDetector`) to
       :math:`\{\mathcal E(\mathbf s),\ \mathbf s \in V\}`,
       :math:`\hat\phi_0(\boldsymbol\alpha) = \sum_i \pi_i\,\varphi_{\mu_i,\Sigma_i}(\boldsymbol\alpha)`;
    4. score a test sample by the negative log-likelihood of its code,

    .. math:: \mathrm{score}(\mathbf s) = -\log \sum_i \pi_i\, \varphi_{\mu_i,\Sigma_i}(\mathcal E(\mathbf s)) ,

    and detect when it exceeds a threshold set on normal data (equivalently
    :math:`\hat\phi_0(\mathcal E(\mathbf s)) < \gamma`). The autoencoder never
    sees the mixture: the code is learned for reconstruction only — the
    limitation ("AE and GMM not jointly learned") that :class:`adcourse.deep.dagmm.DAGMM` removes.
    With ``features="code+errors"`` the mixture is fitted on DAGMM's
    representation instead, the code plus the relative reconstruction error
    and the cosine similarity (:func:`reconstruction_features`): the two-step
    version of DAGMM, which separates what joint training brings from what the
    extra features bring.

    Images (n, H, W) / (n, C, H, W) of one fixed size go through a
    :class:`ConvAutoencoder` with a linear bottleneck; vectors (standardised
    with the statistics of :math:`S`) through an :class:`MLPAutoencoder`. For
    maps, apply it to patches with :class:`adcourse.images.patches.PatchDetector`.

    Parameters
    ----------
    latent_dim : int, default 2
        :math:`m`, the dimension of the code.
    n_components : int, default 2
        Components of the mixture.
    features : {"code", "code+errors"}, default "code"
        What the mixture models: :math:`\mathcal E(\mathbf s)`, or
        :math:`[\mathcal E(\mathbf s), \text{rel. error}, \text{cosine}]`.
    widths : sequence of int or None, default None
        Conv channels (images; None: (16, 32)) or hidden widths (vectors; None: (64, 32)).
    validation_fraction : float in (0, 1), default 0.3
        Fraction of the data kept for :math:`V`.
    covariance_reg : float, default 1e-6
        Diagonal added to each covariance (:class:`GMMDetector`), relative to
        the codes standardised on :math:`V` — the codes are standardised
        before the mixture is fitted, so the scale of the code does not matter.
    n_epochs, batch_size, lr
        Training of the autoencoder (Adam).
    random_state : int, default 0
        Seed of the split, the network, the batch order and the EM initialisation.
    device, progress
        As in :class:`AutoencoderDetector`.

    Attributes
    ----------
    model_ : ConvAutoencoder or MLPAutoencoder
    history_ : History
    gmm_ : GMMDetector
        The mixture fitted on the standardised codes of :math:`V`.
    code_mean_, code_scale_ : ndarrays (m,) or (m + 2,)
        Standardisation of the monitored features (statistics of :math:`V`).
    train_index_, val_index_ : ndarrays of int
        Indices of :math:`S` and :math:`V` in the data given to ``fit``.

    Examples
    --------
    >>> from adcourse.data import load_digits_oneclass
    >>> d = load_digits_oneclass(normal_digit=0, random_state=0)
    >>> det = AutoencoderGMMDetector(n_epochs=5, progress=False, device="cpu").fit(d.X_train)
    >>> det.encode(d.X_test[:3]).shape, det.anomaly_score(d.X_test[:3]).shape
    ((3, 2), (3,))
    """

    def __init__(self, latent_dim=2, n_components=2, features="code", widths=None, validation_fraction=0.3,
                 covariance_reg=1e-6, n_epochs=100, batch_size=32, lr=2e-3, random_state=0, device="auto",
                 progress=True):
        self.latent_dim = latent_dim
        self.n_components = n_components
        self.features = features
        self.widths = widths
        self.validation_fraction = validation_fraction
        self.covariance_reg = covariance_reg
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self):
        self._check_training_params()
        for name in ("latent_dim", "n_components"):
            _check_int_param(getattr(self, name), name)
        if self.features not in ("code", "code+errors"):
            raise ValueError(f"features must be 'code' or 'code+errors', got {self.features!r}")
        _check_real_param(self.validation_fraction, "validation_fraction", positive=True, high=1.0)
        _check_real_param(self.covariance_reg, "covariance_reg")

    def _fit(self, X):
        seed = int(self.random_state)
        n = len(X)
        n_val = min(max(int(round(self.validation_fraction * n)), self.n_components + 1), n - 1)
        if n_val < self.n_components + 1 or n - n_val < 1:
            raise ValueError(
                f"X has {n} samples: too few to train on S and fit {self.n_components} components on V "
                f"(need at least {self.n_components + 2})"
            )
        order = np.random.default_rng(seed).permutation(n)
        self.val_index_, self.train_index_ = np.sort(order[:n_val]), np.sort(order[n_val:])
        S = X[self.train_index_]
        if self.input_kind_ == "vectors":
            self.mean_ = S.mean(axis=0)
            self.scale_ = np.maximum(S.std(axis=0), 1e-6 * max(float(S.std()), 1e-12))
            with seeded(seed):
                self.model_ = MLPAutoencoder(X.shape[1], hidden=self.widths or (64, 32), latent_dim=self.latent_dim)
        else:
            with seeded(seed):
                self.model_ = ConvAutoencoder(X.shape[1], widths=self.widths or (16, 32), latent_dim=self.latent_dim,
                                              image_size=X.shape[-2:])
        self.history_ = fit_model(
            self.model_, _l2_loss, self._prepared(S), n_epochs=self.n_epochs, batch_size=self.batch_size,
            lr=self.lr, drop_last=len(S) > self.batch_size, random_state=seed, device=self.device,
            progress=self.progress, desc="autoencoder (S)",
        )
        codes = self._monitored(self._prepared(X[self.val_index_]))
        self.code_mean_ = codes.mean(axis=0)
        self.code_scale_ = np.maximum(codes.std(axis=0), 1e-12)
        self.gmm_ = GMMDetector(n_components=self.n_components, covariance_reg=self.covariance_reg,
                                random_state=seed).fit((codes - self.code_mean_) / self.code_scale_)

    def _prepared(self, X):
        if self.input_kind_ == "vectors":
            X = (X - self.mean_) / self.scale_
        return np.ascontiguousarray(X, dtype=np.float32)

    def _monitored(self, data, batch_size=256):
        """The features the mixture models (codes, and reconstruction features), float64 (n, m[+2])."""
        dev = next(self.model_.parameters()).device
        self.model_.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(data), batch_size):
                x = torch.as_tensor(data[s : s + batch_size], device=dev)
                code, x_hat = self.model_.code_and_reconstruction(x)
                if self.features == "code+errors":
                    code = torch.cat([code, reconstruction_features(x, x_hat)], dim=1)
                out.append(code.cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def encode(self, X):
        r"""The codes :math:`\mathcal E(\mathbf s)`, shape (n, latent_dim)."""
        data = self._prepared(self._network_input(self._validated(X)))
        return predict(self.model_.encoder, data, batch_size=256).astype(np.float64)

    def monitored_features(self, X):
        """The standardised vectors the mixture scores: (n, latent_dim), or (n, latent_dim + 2)."""
        X = self._validated(X)
        return (self._monitored(self._prepared(self._network_input(X))) - self.code_mean_) / self.code_scale_

    def _score(self, X):
        return self.gmm_.anomaly_score((self._monitored(self._prepared(X)) - self.code_mean_) / self.code_scale_)
