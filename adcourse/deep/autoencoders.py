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
* :class:`ConvDecoder` — the mirror image: each stage resizes its input to the
  size of the matching encoder stage (nearest neighbour) and applies a conv
  block; optional **skip connections** concatenate the encoder's feature map of
  the same resolution (a U-Net, as used for inpainting in chapter 7);
* :class:`ConvAutoencoder` — encoder + decoder, ``skips=True`` for a U-Net;
* :func:`mlp` and :class:`MLPAutoencoder` — the same for vectors.

Resizing to the encoder's own sizes (rather than doubling) is what makes the
networks work on any image size, odd ones included: a stride-2 3×3 convolution
with padding 1 gives :math:`\lceil H/2 \rceil` rows, and the decoder goes back
to exactly :math:`H`.

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

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "conv_block",
    "ConvEncoder",
    "ConvDecoder",
    "ConvAutoencoder",
    "mlp",
    "MLPAutoencoder",
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


class ConvDecoder(nn.Module):
    r"""Convolutional decoder :math:`\mathcal D`, the mirror of a :class:`ConvEncoder`.

    The code first goes through a 1×1 conv block to ``widths[-1]`` channels (or,
    for a vector code, a linear layer + LeakyReLU reshaped to ``widths[-1]`` ×
    ``grid``). Decoder stage :math:`k = K-1, \dots, 0` resizes its input to
    the size of encoder stage :math:`k`'s input (nearest neighbour), optionally
    concatenates the encoder features of that resolution (``skips``), and
    applies ``conv_block(·, widths[k-1])``; a last 3×3 convolution gives
    ``out_channels`` and the output non-linearity (sigmoid: images in [0, 1]).

    Parameters
    ----------
    out_channels : int, default 1
    widths : sequence of int, default (32, 64, 128)
        The encoder's widths, finest first (the decoder runs them backwards).
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

    def __init__(self, out_channels=1, widths=(32, 64, 128), latent_channels=16, latent_dim=None, grid=None,
                 skips=False, bias=True, batch_norm=True, affine=True, negative_slope=0.1, output="sigmoid"):
        super().__init__()
        out_channels = _positive_int(out_channels, "out_channels")
        self.widths = _int_tuple(widths, "widths")
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
        self.stages = nn.ModuleList()
        for k in range(K - 1, -1, -1):
            c_in = self.widths[k] + (self.widths[k - 1] if self.skips and k >= 1 else 0)
            self.stages.append(conv_block(c_in, self.widths[max(k - 1, 0)], **block))
        self.out = nn.Conv2d(self.widths[0], out_channels, 3, padding=1, bias=bias)

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
        for stage, k in zip(self.stages, range(K - 1, -1, -1)):
            if tuple(h.shape[-2:]) != tuple(sizes[k]):
                h = F.interpolate(h, size=tuple(sizes[k]), mode="nearest")
            if self.skips and k >= 1:
                h = torch.cat([h, skips[k - 1]], dim=1)
            h = stage(h)
        h = self.out(h)
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
            in_channels, widths, latent_channels, latent_dim, self.encoder.grid, skips=skips, output=output,
            **layer,
        )
        self.skips = bool(skips)

    def encode(self, x):
        """The code :math:`\\mathcal E(\\mathbf s)`."""
        return self.encoder(x)

    def forward(self, x):
        """The reconstruction :math:`\\hat{\\mathbf s} = \\mathcal D(\\mathcal E(\\mathbf s))`, shaped like ``x``."""
        feats = self.encoder.features(x)
        z = self.encoder.head(feats[-1])
        sizes = self.encoder.stage_sizes(*x.shape[-2:])[:-1]
        return self.decoder(z, sizes, feats[:-1] if self.skips else None)


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

    def forward(self, x):
        h = self.decoder(self.encoder(x))
        return torch.sigmoid(h) if self.output == "sigmoid" else h
