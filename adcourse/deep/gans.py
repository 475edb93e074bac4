r"""Generative adversarial networks for anomaly detection (chapter 9).

A **generative model** of normal images learns to produce new images that look
like the training set :math:`S` of normal images. A GAN does it without an
explicit density: a **generator** :math:`\mathcal G` maps a seed
:math:`\mathbf z \sim \phi_z = N(\mathbf 0, I)` to an image :math:`\mathcal G(\mathbf z)`, and a
**discriminator** :math:`\mathcal D` tells real images from generated ones. The two
play the game

.. math::

    \min_{\mathcal G}\max_{\mathcal D}\; V(\mathcal D, \mathcal G) =
    \mathbb E_{\mathbf s\sim\phi_s}\big[\log \mathcal D(\mathbf s)\big]
    + \mathbb E_{\mathbf z\sim\phi_z}\big[\log\big(1-\mathcal D(\mathcal G(\mathbf z))\big)\big],

trained by alternating steps (:func:`adcourse.deep.training.fit_adversarial`); the
generator minimises the *non-saturating* form :math:`-\log\mathcal D(\mathcal G(\mathbf z))`,
which has the same fixed point and stronger gradients early on
(:func:`discriminator_loss`, :func:`generator_loss`). The **least-squares** variant
(Mao et al., 2017) replaces the log-losses by squared distances to the labels 1
(real) and 0 (generated), which trains more stably.

Trained on normal images only, :math:`\mathcal G` maps :math:`\phi_z` onto the
manifold of normal images; an image it cannot produce is anomalous. The hard
part is to *invert* it: to find the seed of a test image :math:`\mathbf s`.

* **AnoGAN** (Schlegl et al., 2017; :class:`AnoGAN`) solves one optimisation
  problem per test image,

  .. math::

      \hat{\mathbf z} = \arg\min_{\mathbf z}\ \lVert\mathcal G(\mathbf z)-\mathbf s\rVert
      + \lambda\log\big(1-\mathcal D(\mathcal G(\mathbf z))\big),
      \qquad \mathrm{score}(\mathbf s) = \text{the same functional at } \hat{\mathbf z}

  (:func:`anogan_functional`), by a few hundred gradient steps on
  :math:`\mathbf z`: slow.
* **BiGAN / EGBAD** (Donahue et al., 2017; Zenati et al., 2018;
  :class:`BiGANDetector`) trains an **encoder** :math:`\mathcal E` in the game:
  :math:`\mathcal D(\mathbf s, \mathbf z)` sees pairs, real ones
  :math:`(\mathbf s, \mathcal E(\mathbf s))` and generated ones
  :math:`(\mathcal G(\mathbf z), \mathbf z)`,

  .. math::

      \min_{\mathcal G,\mathcal E}\max_{\mathcal D} V =
      \mathbb E_{\mathbf s}\big[\log\mathcal D(\mathbf s,\mathcal E(\mathbf s))\big]
      + \mathbb E_{\mathbf z}\big[\log\big(1-\mathcal D(\mathcal G(\mathbf z),\mathbf z)\big)\big],

  and :math:`\mathcal E` learns to invert :math:`\mathcal G`. Scores: the latent
  likelihood :math:`\phi_z(\mathcal E(\mathbf s))`, the discriminator's posterior
  :math:`\mathcal D(\mathbf s, \mathcal E(\mathbf s))`, and

  .. math::

      A(\mathbf s) = \alpha\,\big\lVert f(\mathbf s,\mathcal E(\mathbf s))
      - f(\mathcal G(\mathcal E(\mathbf s)),\mathcal E(\mathbf s))\big\rVert_2
      + (1-\alpha)\,\lVert\mathcal G(\mathcal E(\mathbf s))-\mathbf s\rVert_2

  with :math:`f` an intermediate layer of :math:`\mathcal D` (:func:`bigan_score`);
  and "AnoGAN improved": AnoGAN's functional at :math:`\hat{\mathbf z} = \mathcal E(\mathbf s)`,
  one forward pass instead of an optimisation.
* The **fully convolutional GAN with encoder** (:class:`FCGANDetector`) makes every
  network convolutional, so that :math:`\mathbf z = \mathcal E(\mathbf s)` is a map
  (one code per image region) and :math:`\mathcal D(\mathbf s, \mathbf z)` a map of
  patch verdicts; it is trained with least-squares losses plus a reconstruction
  penalty, and scores every pixel by
  :math:`\alpha(\mathcal D(\mathbf s,\mathcal E(\mathbf s))-1)^2
  + (1-\alpha)\lVert\mathcal G(\mathcal E(\mathbf s))-\mathbf s\rVert_2`
  (:func:`combined_map`). With a random spatial :math:`\mathbf z` it also generates
  new textures of any size.

Pitfalls of reference implementations that this module does not repeat: the
networks are in **eval mode** whenever they score (batch norm with its running
statistics, so a test image's score does not depend on the other test images),
the number of epochs is fixed in advance (never the best epoch on test data), and
every scale used to combine two terms is measured on the *training* images.

The networks are assembled from chapter 6's blocks
(:class:`~adcourse.deep.autoencoders.ConvEncoder`,
:class:`~adcourse.deep.autoencoders.ConvDecoder`): 3×3 convolutions of stride 2
with batch norm and leaky ReLU, the generator being a decoder that starts from a
vector (DCGAN-like) or from a map (fully convolutional).

References
----------
I. Goodfellow et al., "Generative adversarial nets", NeurIPS 2014.
A. Radford, L. Metz, S. Chintala, "Unsupervised representation learning with deep
convolutional generative adversarial networks" (DCGAN), ICLR 2016.
X. Mao et al., "Least squares generative adversarial networks", ICCV 2017.
T. Schlegl et al., "Unsupervised anomaly detection with generative adversarial networks
to guide marker discovery" (AnoGAN), IPMI 2017.
J. Donahue, P. Krähenbühl, T. Darrell, "Adversarial feature learning" (BiGAN), ICLR 2017.
H. Zenati et al., "Efficient GAN-based anomaly detection" (EGBAD), ICLR workshop 2018.
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

from adcourse import metrics
from adcourse.base import BaseImageDetector
from adcourse.decision import smooth_maps, upsample_maps
from adcourse.deep.autoencoders import ConvDecoder, ConvEncoder
from adcourse.deep.training import _check_int, _check_real, fit_adversarial, resolve_device, seeded
from adcourse.protocol import random_crops
from adcourse.validation import check_fraction, check_images

__all__ = [
    "Generator",
    "Discriminator",
    "JointDiscriminator",
    "PatchDiscriminator",
    "discriminator_loss",
    "generator_loss",
    "anogan_functional",
    "bigan_score",
    "combined_map",
    "nearest_training_samples",
    "GAN",
    "AnoGAN",
    "BiGANDetector",
    "FCGANDetector",
    "LOSSES",
]

#: the two adversarial losses
LOSSES = ("bce", "least-squares")


# --------------------------------------------------------------------------- #
# sizes and checks
# --------------------------------------------------------------------------- #
def _stage_sizes(height, width, n_stages):
    """``[(H, W), (ceil(H/2), ceil(W/2)), ...]``: the sizes through ``n_stages`` stride-2 stages."""
    sizes = [(int(height), int(width))]
    for _ in range(n_stages):
        h, w = sizes[-1]
        sizes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return sizes


def _check_widths(widths):
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(f"widths must be a sequence of channel counts, got {widths!r}") from None
    if not widths:
        raise ValueError("widths must hold at least one channel count")
    return tuple(_check_int(w, f"widths[{k}]") for k, w in enumerate(widths))


def _check_seed(random_state):
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be an integer, got {random_state!r}")
    return int(random_state)


def _as_nchw(images):
    """Validated images as a float32 (n, C, H, W) array."""
    x = images[:, None] if images.ndim == 3 else images
    return np.ascontiguousarray(x, dtype=np.float32)


def _back(x, like_ndim):
    """(n, C, H, W) array -> (n, H, W) when the input was grayscale (n, H, W)."""
    return x[:, 0] if like_ndim == 3 else x


# --------------------------------------------------------------------------- #
# the networks
# --------------------------------------------------------------------------- #
class Generator(nn.Module):
    r"""The generator :math:`\mathcal G`: a seed :math:`\mathbf z` to an image in [0, 1].

    Chapter 6's :class:`~adcourse.deep.autoencoders.ConvDecoder`, fed with a seed
    instead of a code. Two forms:

    * ``image_size=(H, W)``: :math:`\mathbf z \in \mathbb R^d` is a vector (DCGAN-like):
      a linear layer to ``widths[-1]`` maps of size :math:`\lceil H/2^K\rceil\times\lceil W/2^K\rceil`,
      then :math:`K` = ``len(widths)`` up-sampling stages;
    * ``image_size=None``: fully convolutional, :math:`\mathbf z` is a map (n, d, h, w)
      and the image is :math:`2^K h \times 2^K w` (or the ``size`` asked for, e.g. the
      size of the image that was encoded).

    Parameters
    ----------
    latent_dim : int, default 16
        :math:`d`: dimension of the vector seed, or channels of the seed map.
    out_channels : int, default 1
    widths : sequence of int, default (16, 32)
        Channels of the stages, finest first (as for the encoder it mirrors).
    image_size : (H, W) or None, default None
    """

    def __init__(self, latent_dim=16, out_channels=1, widths=(16, 32), image_size=None):
        super().__init__()
        self.latent_dim = _check_int(latent_dim, "latent_dim")
        self.widths = _check_widths(widths)
        self.image_size = None if image_size is None else tuple(int(v) for v in image_size)
        if self.image_size is not None:
            grid = _stage_sizes(*self.image_size, len(self.widths))[-1]
            self.decoder = ConvDecoder(out_channels=out_channels, widths=self.widths, latent_dim=self.latent_dim,
                                       grid=grid)
        else:
            self.decoder = ConvDecoder(out_channels=out_channels, widths=self.widths,
                                       latent_channels=self.latent_dim)

    def forward(self, z, size=None):
        """:math:`\\mathcal G(\\mathbf z)`, (n, C, H, W); ``size`` = (H, W) for a seed map (default :math:`2^K` h × :math:`2^K` w)."""
        K = len(self.widths)
        if self.image_size is not None:
            size = self.image_size
        elif size is None:
            size = (z.shape[-2] * 2 ** K, z.shape[-1] * 2 ** K)
        return self.decoder(z, _stage_sizes(*size, K)[:-1])


class Discriminator(nn.Module):
    r"""The discriminator :math:`\mathcal D(\mathbf s)` of a GAN: an image to a logit.

    Chapter 6's :class:`~adcourse.deep.autoencoders.ConvEncoder` (no bottleneck),
    flattened, then a linear layer to one logit :math:`\ell`;
    :math:`\mathcal D(\mathbf s) = \sigma(\ell)` is the probability that
    :math:`\mathbf s` is real. :meth:`features` is the flattened last map, the
    intermediate layer :math:`f` used for feature matching.

    Parameters
    ----------
    in_channels : int, default 1
    widths : sequence of int, default (16, 32)
    image_size : (H, W), default (16, 16)
    """

    def __init__(self, in_channels=1, widths=(16, 32), image_size=(16, 16)):
        super().__init__()
        self.widths = _check_widths(widths)
        self.body = ConvEncoder(in_channels, self.widths, 2, latent_channels=None)
        h, w = _stage_sizes(*image_size, len(self.widths))[-1]
        self.out = nn.Linear(self.widths[-1] * h * w, 1)

    def features(self, x):
        """:math:`f(\\mathbf s)`: the last convolutional map, flattened, (n, F)."""
        return self.body(x).flatten(1)

    def forward(self, x):
        """The logit :math:`\\ell(\\mathbf s)`, shape (n,)."""
        return self.out(self.features(x)).squeeze(1)


class JointDiscriminator(nn.Module):
    r"""The BiGAN discriminator :math:`\mathcal D(\mathbf s, \mathbf z)`: a pair (image, seed) to a logit.

    As in BiGAN / EGBAD: an image branch (a :class:`~adcourse.deep.autoencoders.ConvEncoder`,
    flattened), a seed branch (a linear layer), concatenated and mixed by a
    hidden layer, whose output is the intermediate layer :math:`f(\mathbf s, \mathbf z)`
    of the score :math:`A(\mathbf s)`, then a linear layer to the logit.

    Parameters
    ----------
    in_channels : int, default 1
    widths : sequence of int, default (16, 32)
    image_size : (H, W), default (16, 16)
    latent_dim : int, default 16
    hidden : int, default 128
        Width of the seed branch and of :math:`f`.
    dropout : float, default 0.2
        Dropout on :math:`f` during training (as in EGBAD), which keeps
        :math:`\mathcal D` from winning the game too early.
    """

    def __init__(self, in_channels=1, widths=(16, 32), image_size=(16, 16), latent_dim=16, hidden=128,
                 dropout=0.2):
        super().__init__()
        self.widths = _check_widths(widths)
        self.image = ConvEncoder(in_channels, self.widths, 2, latent_channels=None)
        h, w = _stage_sizes(*image_size, len(self.widths))[-1]
        self.latent = nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.1))
        self.joint = nn.Sequential(nn.Linear(self.widths[-1] * h * w + hidden, hidden), nn.LeakyReLU(0.1))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def features(self, x, z):
        """:math:`f(\\mathbf s, \\mathbf z)`, (n, hidden)."""
        return self.joint(torch.cat([self.image(x).flatten(1), self.latent(z)], dim=1))

    def forward(self, x, z):
        """The logit of :math:`\\mathcal D(\\mathbf s, \\mathbf z)`, shape (n,)."""
        return self.out(self.dropout(self.features(x, z))).squeeze(1)


class PatchDiscriminator(nn.Module):
    r"""Fully convolutional :math:`\mathcal D(\mathbf s, \mathbf z)`: a map of verdicts, one per image region.

    The image branch (a :class:`~adcourse.deep.autoencoders.ConvEncoder` without
    bottleneck) brings :math:`\mathbf s` to the resolution of the seed map
    :math:`\mathbf z`; a 1×1 convolution lifts :math:`\mathbf z`; the two are
    concatenated and mixed by 1×1 convolutions into one output per location.
    With least-squares losses the output is a real number, 1 for "real pair",
    0 for "generated pair".

    Parameters
    ----------
    in_channels : int, default 1
    widths : sequence of int, default (16, 32, 64)
        The image branch (as many stride-2 stages as the encoder's).
    latent_channels : int, default 16
        Channels of :math:`\mathbf z`.
    hidden : int, default 64
    """

    def __init__(self, in_channels=1, widths=(16, 32, 64), latent_channels=16, hidden=64):
        super().__init__()
        self.widths = _check_widths(widths)
        self.image = ConvEncoder(in_channels, self.widths, 2, latent_channels=None)
        self.latent = nn.Sequential(nn.Conv2d(latent_channels, hidden, 1), nn.LeakyReLU(0.1))
        self.joint = nn.Sequential(nn.Conv2d(self.widths[-1] + hidden, hidden, 1), nn.LeakyReLU(0.1))
        self.out = nn.Conv2d(hidden, 1, 1)

    def forward(self, x, z):
        """The map of outputs, (n, h, w), at the resolution of ``z``."""
        return self.out(self.joint(torch.cat([self.image(x), self.latent(z)], dim=1))).squeeze(1)


# --------------------------------------------------------------------------- #
# losses and scores, as functions of the networks' outputs
# --------------------------------------------------------------------------- #
def _tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))


def _out(value, like):
    """Return torch for torch inputs, numpy (or float) for the rest."""
    if isinstance(like, torch.Tensor):
        return value
    value = value.detach().cpu().numpy()
    return float(value) if value.ndim == 0 else value


def _check_loss(loss):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def discriminator_loss(real, fake, loss="bce"):
    r"""The discriminator's loss on a batch: real outputs pushed to 1, generated ones to 0.

    ``real`` and ``fake`` are :math:`\mathcal D`'s raw outputs (logits
    :math:`\ell`, any shape) on real and on generated samples.

    * ``"bce"``: :math:`-\frac1n\sum\log\sigma(\ell_{\text{real}}) - \frac1m\sum\log(1-\sigma(\ell_{\text{fake}}))`,
      i.e. minus the GAN value :math:`V` (binary cross-entropy with labels 1 and 0);
    * ``"least-squares"``: :math:`\frac12\,\overline{(\ell_{\text{real}}-1)^2} + \frac12\,\overline{\ell_{\text{fake}}^{\,2}}`.

    Torch tensors in, a differentiable scalar out; arrays in, a float out.

    >>> round(discriminator_loss([0.0], [0.0]), 4)          # D undecided: 2 log 2
    1.3863
    >>> discriminator_loss([1.0, 1.0], [0.0], loss="least-squares")
    0.0
    """
    _check_loss(loss)
    r, f = _tensor(real), _tensor(fake)
    if loss == "bce":
        value = F.softplus(-r).mean() + F.softplus(f).mean()   # -log σ(r) = softplus(-r); -log(1-σ(f)) = softplus(f)
    else:
        value = 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()
    return _out(value, real)


def generator_loss(fake, loss="bce"):
    r"""The generator's loss on a batch: its samples should be taken for real.

    * ``"bce"``: the non-saturating :math:`-\frac1m\sum\log\sigma(\ell_{\text{fake}})`
      (minimising :math:`\log(1-\mathcal D(\mathcal G(\mathbf z)))` instead has the same
      fixed point but vanishing gradients while :math:`\mathcal D` wins easily);
    * ``"least-squares"``: :math:`\frac12\,\overline{(\ell_{\text{fake}}-1)^2}`.

    >>> round(generator_loss([0.0]), 4)
    0.6931
    >>> generator_loss([1.0, 3.0], loss="least-squares")
    1.0
    """
    _check_loss(loss)
    f = _tensor(fake)
    value = F.softplus(-f).mean() if loss == "bce" else 0.5 * ((f - 1) ** 2).mean()
    return _out(value, fake)


def _image_norm(diff):
    """Euclidean norm of each (image) row: (n, ...) -> (n,)."""
    return diff.reshape(diff.shape[0], -1).pow(2).sum(dim=1).sqrt()


def anogan_functional(images, generated, logits, lam=0.1):
    r"""AnoGAN's functional, image by image: :math:`\lVert\mathcal G(\mathbf z)-\mathbf s\rVert_2 + \lambda\log(1-\mathcal D(\mathcal G(\mathbf z)))`.

    Minimised over :math:`\mathbf z` it gives :math:`\hat{\mathbf z}`; at
    :math:`\hat{\mathbf z}` it is the anomaly score. The first term asks the
    generated image to reproduce :math:`\mathbf s`, the second to look real to the
    discriminator (:math:`\log(1-\mathcal D)` falls as :math:`\mathcal D` rises).
    :math:`\log(1-\sigma(\ell)) = -\operatorname{softplus}(\ell)` is computed in
    that stable form.

    Parameters
    ----------
    images : (n, ...) tensor or array
        :math:`\mathbf s`.
    generated : same shape
        :math:`\mathcal G(\mathbf z)`.
    logits : (n,)
        :math:`\ell = \operatorname{logit}\mathcal D(\mathcal G(\mathbf z))`.
    lam : float, default 0.1
        :math:`\lambda`.

    Returns
    -------
    (n,) tensor (differentiable) or array

    >>> s = np.zeros((1, 2, 2)); g = np.full((1, 2, 2), 0.5)       # ||g - s|| = 1
    >>> anogan_functional(s, g, np.array([0.0]), lam=1.0).round(4)  # 1 + log(1/2)
    array([0.3069])
    """
    s, g, ell = _tensor(images), _tensor(generated), _tensor(logits)
    if s.shape != g.shape:
        raise ValueError(f"images and generated must have the same shape, got {tuple(s.shape)} and {tuple(g.shape)}")
    if ell.shape != (s.shape[0],):
        raise ValueError(f"logits must have shape ({s.shape[0]},) (one per image), got {tuple(ell.shape)}")
    value = _image_norm(g - s) - lam * F.softplus(ell)
    return _out(value, images)


def bigan_score(images, reconstructions, features_real, features_reconstructed, alpha=0.1):
    r"""The BiGAN / EGBAD score :math:`A(\mathbf s)`, image by image.

    .. math::

        A(\mathbf s) = \alpha\,\lVert f(\mathbf s,\mathcal E(\mathbf s))
        - f(\mathcal G(\mathcal E(\mathbf s)),\mathcal E(\mathbf s))\rVert_2
        + (1-\alpha)\,\lVert\mathcal G(\mathcal E(\mathbf s))-\mathbf s\rVert_2

    The first term compares what the discriminator's intermediate layer
    :math:`f` sees in the image and in its reconstruction; the second is the
    reconstruction error. (EGBAD writes the same sum with :math:`\alpha` on the
    reconstruction and uses 0.9 for it: our default :math:`\alpha = 0.1` is that
    weighting.)

    Parameters
    ----------
    images, reconstructions : (n, ...) tensors or arrays
        :math:`\mathbf s` and :math:`\mathcal G(\mathcal E(\mathbf s))`.
    features_real, features_reconstructed : (n, F)
        :math:`f` of the two pairs.
    alpha : float in [0, 1], default 0.1

    Returns
    -------
    (n,) tensor or array

    >>> bigan_score(np.zeros((1, 4)), np.full((1, 4), 0.5), np.zeros((1, 2)), np.array([[3.0, 4.0]]), alpha=0.5)
    array([3.])
    """
    alpha = check_fraction(alpha, "alpha", inclusive=(True, True))
    s, g = _tensor(images), _tensor(reconstructions)
    fr, fg = _tensor(features_real), _tensor(features_reconstructed)
    if s.shape != g.shape or fr.shape != fg.shape or fr.shape[0] != s.shape[0]:
        raise ValueError(f"images/reconstructions and the two features must match in shape, got {tuple(s.shape)}, "
                         f"{tuple(g.shape)}, {tuple(fr.shape)}, {tuple(fg.shape)}")
    value = alpha * _image_norm(fr - fg) + (1 - alpha) * _image_norm(g - s)
    return _out(value, images)


def combined_map(disc_output, images, reconstructions, alpha=0.5, scales=(1.0, 1.0), sigma=0.0):
    r"""The fully convolutional model's anomaly map: :math:`\alpha(\mathcal D - 1)^2 + (1-\alpha)\lVert\mathcal G(\mathcal E(\mathbf s)) - \mathbf s\rVert_2`.

    * the **discriminator term** :math:`(\mathcal D(\mathbf s,\mathcal E(\mathbf s)) - 1)^2`
      is computed on :math:`\mathcal D`'s coarse map (normal regions are expected
      to give 1) and brought to the image size by bilinear interpolation;
    * the **reconstruction term** is, at every pixel, the Euclidean norm over the
      channels of :math:`\mathcal G(\mathcal E(\mathbf s)) - \mathbf s`;
    * each term is divided by its ``scale`` (the course measures both on the
      training images, so that neither dominates by its units alone), then they
      are mixed with :math:`\alpha` and optionally smoothed (Gaussian of ``sigma`` pixels).

    Parameters
    ----------
    disc_output : array (n, h, w)
        :math:`\mathcal D(\mathbf s,\mathcal E(\mathbf s))` (least-squares outputs).
    images, reconstructions : arrays (n, H, W) or (n, C, H, W)
    alpha : float in [0, 1], default 0.5
    scales : (float, float), default (1, 1)
        Divisors of the discriminator and reconstruction terms.
    sigma : float, default 0

    Returns
    -------
    ndarray (n, H, W)

    >>> d = np.ones((1, 2, 2)); d[0, 0, 0] = 0.0         # one coarse location judged fake
    >>> m = combined_map(d, np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), alpha=1.0)
    >>> m.shape, float(m[0, 0, 0]), float(m[0, 3, 3])
    ((1, 4, 4), 1.0, 0.0)
    """
    alpha = check_fraction(alpha, "alpha", inclusive=(True, True))
    d = np.asarray(disc_output, dtype=np.float64)
    s, g = np.asarray(images, dtype=np.float64), np.asarray(reconstructions, dtype=np.float64)
    if s.shape != g.shape or s.ndim not in (3, 4):
        raise ValueError(f"images and reconstructions must have one shape (n, H, W) or (n, C, H, W), got "
                         f"{s.shape} and {g.shape}")
    if d.ndim != 3 or d.shape[0] != s.shape[0]:
        raise ValueError(f"disc_output must be (n, h, w) with n = {s.shape[0]}, got {d.shape}")
    scale_d, scale_r = (_check_real(v, "scales", positive=True) for v in scales)
    rec = np.abs(g - s) if s.ndim == 3 else np.sqrt(((g - s) ** 2).sum(axis=1))
    disc = upsample_maps((d - 1.0) ** 2, rec.shape[-2:])
    out = alpha * disc / scale_d + (1 - alpha) * rec / scale_r
    return smooth_maps(out, sigma) if sigma > 0 else out


def nearest_training_samples(samples, training):
    r"""For each sample, the closest training image (Euclidean distance in pixel space).

    The lecture's check that a generator does not just copy its training set:
    show each generated image next to its nearest training image.

    Parameters
    ----------
    samples : array (m, ...)
    training : array (n, ...) with the same image shape

    Returns
    -------
    index : ndarray (m,) of int
        Row of ``training`` closest to each sample.
    distance : ndarray (m,)
        That distance.

    >>> nearest_training_samples(np.array([[0.9, 0.0]]), np.array([[0.0, 0.0], [1.0, 0.0]]))
    (array([1]), array([0.1]))
    """
    a = np.asarray(samples, dtype=np.float64)
    b = np.asarray(training, dtype=np.float64)
    if a.shape[1:] != b.shape[1:] or len(a) == 0 or len(b) == 0:
        raise ValueError(f"samples and training must be non-empty stacks of one image shape, got {a.shape} and {b.shape}")
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    d2 = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T
    index = np.argmin(d2, axis=1)
    return index, np.sqrt(np.maximum(d2[np.arange(len(a)), index], 0.0)).round(12)


# --------------------------------------------------------------------------- #
# the GAN and AnoGAN
# --------------------------------------------------------------------------- #
class _Trainable(BaseEstimator):
    """Shared checks of the GAN estimators (hyper-parameters, images, device)."""

    def _check_common(self):
        _check_int(self.latent_dim, "latent_dim")
        self._widths = _check_widths(self.widths)
        _check_int(self.n_epochs, "n_epochs")
        _check_int(self.batch_size, "batch_size")
        _check_real(self.lr, "lr", positive=True)
        _check_seed(self.random_state)
        resolve_device(self.device)

    def _train_input(self, images):
        images = check_images(images, "images")
        if len(images) < 2:
            raise ValueError(f"need at least 2 normal training images, got {len(images)}")
        self.image_shape_ = images.shape[1:]
        return _as_nchw(images)

    def _test_input(self, images):
        check_is_fitted(self, "generator_")
        images = check_images(images, "images", shape=self.image_shape_)
        return images, torch.as_tensor(_as_nchw(images), device=self.device_)

    def _seed_shape(self):
        return (int(self.latent_dim),)

    def _batches(self, x, batch_size=256):
        for a in range(0, len(x), batch_size):
            yield x[a:a + batch_size]

    def _seed_batch(self, n, random_state):
        """``n`` seeds z ~ N(0, I) from ``random_state`` (the global RNG untouched)."""
        seed = self.random_state if random_state is None else _check_seed(random_state)
        with seeded(int(seed)):
            z = torch.randn((n,) + self._seed_shape())
        return z.to(self.device_)

    def sample(self, n_samples=16, random_state=None):
        """``n_samples`` new images :math:`\\mathcal G(\\mathbf z)`, :math:`\\mathbf z \\sim N(0, I)`, shaped like the training images.

        ``random_state`` seeds the draw (default: the detector's own seed).
        """
        check_is_fitted(self, "generator_")
        z = self._seed_batch(_check_int(n_samples, "n_samples"), random_state)
        return self.generate(z.cpu().numpy())

    def generate(self, z):
        """:math:`\\mathcal G(\\mathbf z)` for seeds ``z`` (an array (n, d)), in eval mode, as numpy images."""
        check_is_fitted(self, "generator_")
        z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.device_)
        if tuple(z.shape[1:]) != self._seed_shape():
            raise ValueError(f"z must have shape (n, {', '.join(map(str, self._seed_shape()))}), got {tuple(z.shape)}")
        self.generator_.eval()
        with torch.no_grad():
            out = torch.cat([self.generator_(b) for b in self._batches(z)]).cpu().numpy()
        return _back(out.astype(np.float64), len(self.image_shape_) + 1)

    def interpolate(self, z0, z1, n_steps=8):
        """Images along the straight line from seed ``z0`` to seed ``z1`` (``n_steps`` points, ends included)."""
        z0, z1 = np.asarray(z0, dtype=np.float64), np.asarray(z1, dtype=np.float64)
        t = np.linspace(0.0, 1.0, _check_int(n_steps, "n_steps", 2))
        t = t.reshape((-1,) + (1,) * z0.ndim)
        return self.generate((1 - t) * z0[None] + t * z1[None])


class GAN(_Trainable):
    r"""A small DCGAN-like GAN of normal images: :math:`\mathcal G(\mathbf z)`, :math:`\mathbf z \sim N(0, I)`, and :math:`\mathcal D`.

    ``fit`` trains :class:`Generator` (a vector seed) and :class:`Discriminator`
    on the training images only, with :func:`discriminator_loss` /
    :func:`generator_loss` (``loss``) in the shared adversarial loop
    (:func:`adcourse.deep.training.fit_adversarial`: each mini-batch one step of
    :math:`\mathcal D`, then one of :math:`\mathcal G`). Afterwards it generates
    (:meth:`sample`, :meth:`generate`, :meth:`interpolate`); :class:`AnoGAN` adds the
    anomaly score.

    Parameters
    ----------
    latent_dim : int, default 16
        Dimension :math:`d` of :math:`\mathbf z`.
    widths : sequence of int, default (16, 32)
        Channels of the stride-2 stages of :math:`\mathcal D` (and, mirrored, of :math:`\mathcal G`).
    loss : {"bce", "least-squares"}, default "bce"
    n_epochs : int, default 150
        Passes over the training images (fixed in advance: no epoch is chosen on test data).
    batch_size : int, default 32
    lr : float, default 2e-3
        Adam's learning rate for both players (:math:`\beta_1 = 0.5`).
    random_state : int, default 0
        Seeds the initialisation, the batch order and the seeds :math:`\mathbf z`.
    device : "auto", "cpu", "cuda", ...
    progress : bool, default True

    Attributes
    ----------
    generator_, discriminator_ : torch.nn.Module
        The trained networks (eval mode).
    history_ : adcourse.deep.training.History
        ``losses["discriminator"]`` and ``losses["generator"]`` per epoch.
    image_shape_ : tuple

    Examples
    --------
    >>> from adcourse import data
    >>> split = data.load_digits_oneclass(normal_digit=3, size=16, random_state=0)
    >>> gan = GAN(n_epochs=5, progress=False, device="cpu").fit(split.images_train)
    >>> gan.sample(4).shape, sorted(gan.history_.losses)
    ((4, 16, 16), ['discriminator', 'generator'])
    """

    def __init__(self, latent_dim=16, widths=(16, 32), loss="bce", n_epochs=150, batch_size=32, lr=2e-3,
                 random_state=0, device="auto", progress=True):
        self.latent_dim = latent_dim
        self.widths = widths
        self.loss = loss
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self):
        self._check_common()
        _check_loss(self.loss)

    def fit(self, images, y=None):
        """Train :math:`\\mathcal G` and :math:`\\mathcal D` on normal ``images`` (n, H, W) or (n, C, H, W); ``y`` ignored."""
        self._check_params()
        x = self._train_input(images)
        self.device_ = resolve_device(self.device)
        c, h, w = x.shape[1:]
        d = int(self.latent_dim)
        with seeded(int(self.random_state)):
            G = Generator(d, c, self._widths, image_size=(h, w))
            D = Discriminator(c, self._widths, image_size=(h, w))
        loss = self.loss

        def d_loss(real):
            fake = G(torch.randn(len(real), d, device=real.device)).detach()
            return discriminator_loss(D(real), D(fake), loss)

        def g_loss(real):
            return generator_loss(D(G(torch.randn(len(real), d, device=real.device))), loss)

        self.history_ = fit_adversarial(
            {"discriminator": (D, d_loss), "generator": (G, g_loss)}, x, n_epochs=int(self.n_epochs),
            batch_size=int(self.batch_size), lr=float(self.lr), drop_last=len(x) % min(int(self.batch_size), len(x)) == 1,
            random_state=int(self.random_state), device=self.device_, progress=self.progress, desc="GAN",
        )
        self.generator_, self.discriminator_ = G.eval(), D.eval()
        return self

    def discriminate(self, images):
        """:math:`\\mathcal D(\\mathbf s)`: the probability that each image is real, shape (n,)."""
        _, x = self._test_input(images)
        with torch.no_grad():
            return torch.cat([torch.sigmoid(self.discriminator_(b)) for b in self._batches(x)]).double().cpu().numpy()


class AnoGAN(GAN):
    r"""AnoGAN (Schlegl et al., 2017): invert the GAN by optimisation, one problem per test image.

    ``fit`` trains a :class:`GAN` on the normal images. For every test image
    :math:`\mathbf s`, :meth:`invert` minimises AnoGAN's functional
    (:func:`anogan_functional`)

    .. math::

        \hat{\mathbf z} = \arg\min_{\mathbf z}\ \lVert\mathcal G(\mathbf z)-\mathbf s\rVert_2
        + \lambda\log\big(1-\mathcal D(\mathcal G(\mathbf z))\big)

    by ``n_steps`` Adam steps on :math:`\mathbf z` (learning rate ``step_lr``),
    starting from a seeded draw :math:`\mathbf z_0 \sim N(0, I)`, with both networks
    frozen in eval mode; the anomaly score is the functional at :math:`\hat{\mathbf z}`.
    The test images are optimised together as one batch: the functional is a sum
    of one term per image and Adam works coordinate by coordinate, so the batch
    gives exactly the :math:`\hat{\mathbf z}` of separate runs, just faster. Each
    image still costs ``n_steps`` forward and backward passes through
    :math:`\mathcal G` and :math:`\mathcal D`, against one forward pass for an
    encoder (:class:`BiGANDetector`).

    Parameters
    ----------
    lam : float, default 0.1
        :math:`\lambda`.
    n_steps : int, default 200
        Gradient steps per test image.
    step_lr : float, default 0.05
        Adam's learning rate on :math:`\mathbf z`.
    latent_dim, widths, loss, n_epochs, batch_size, lr, random_state, device, progress
        The GAN's (:class:`GAN`).

    Attributes
    ----------
    As :class:`GAN`.

    Examples
    --------
    >>> from adcourse import data, metrics
    >>> split = data.load_digits_oneclass(normal_digit=0, size=16, random_state=0)
    >>> det = AnoGAN(n_epochs=60, n_steps=50, progress=False, device="cpu").fit(split.images_train)
    >>> scores = det.anomaly_score(split.images_test[:200])
    >>> scores.shape, bool(metrics.roc_auc(scores, split.y_test[:200]) > 0.7)
    ((200,), True)
    """

    def __init__(self, lam=0.1, n_steps=200, step_lr=0.05, latent_dim=16, widths=(16, 32), loss="bce", n_epochs=150,
                 batch_size=32, lr=2e-3, random_state=0, device="auto", progress=True):
        super().__init__(latent_dim=latent_dim, widths=widths, loss=loss, n_epochs=n_epochs, batch_size=batch_size,
                         lr=lr, random_state=random_state, device=device, progress=progress)
        self.lam = lam
        self.n_steps = n_steps
        self.step_lr = step_lr

    def _check_params(self):
        super()._check_params()
        _check_real(self.lam, "lam", positive=False)
        _check_int(self.n_steps, "n_steps")
        _check_real(self.step_lr, "step_lr", positive=True)

    def invert(self, images, z0=None, return_trace=False):
        r"""Solve AnoGAN's problem for every image: :math:`\hat{\mathbf z}` and the functional there.

        Parameters
        ----------
        images : array (n, H, W) or (n, C, H, W)
        z0 : array (n, d), optional
            Starting seeds; default a draw :math:`N(0, I)` seeded by ``random_state``.
        return_trace : bool, default False

        Returns
        -------
        z_hat : ndarray (n, d)
        functional : ndarray (n,)
            The anomaly scores.
        trace : ndarray (n_steps + 1, n), only with ``return_trace``
            The functional of every image after each step (step 0 = the start).
        """
        self._check_params()
        _, x = self._test_input(images)
        G, D = self.generator_.eval(), self.discriminator_.eval()
        frozen = [p for net in (G, D) for p in net.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        z_all, f_all, traces = [], [], []
        if z0 is None:
            z0 = self._seed_batch(len(x), None)
        else:
            z0 = torch.as_tensor(np.asarray(z0, dtype=np.float32), device=self.device_)
            if tuple(z0.shape) != (len(x),) + self._seed_shape():
                raise ValueError(f"z0 must have shape ({len(x)}, {self.latent_dim}), got {tuple(z0.shape)}")
        try:
            for a in range(0, len(x), 256):
                s, z = x[a:a + 256], z0[a:a + 256].clone().requires_grad_(True)
                opt = torch.optim.Adam([z], lr=float(self.step_lr))
                trace = []
                for _ in range(int(self.n_steps)):
                    g = G(z)
                    value = anogan_functional(s, g, D(g), float(self.lam))
                    trace.append(value.detach())
                    opt.zero_grad(set_to_none=True)
                    value.sum().backward()
                    opt.step()
                with torch.no_grad():
                    g = G(z)
                    value = anogan_functional(s, g, D(g), float(self.lam))
                trace.append(value)
                z_all.append(z.detach())
                f_all.append(value)
                traces.append(torch.stack(trace))
        finally:
            for p in frozen:
                p.requires_grad_(True)
        z_hat = torch.cat(z_all).double().cpu().numpy()
        functional = torch.cat(f_all).double().cpu().numpy()
        if not np.all(np.isfinite(functional)):
            raise FloatingPointError("AnoGAN's functional is not finite: lower step_lr")
        if return_trace:
            return z_hat, functional, torch.cat(traces, dim=1).double().cpu().numpy()
        return z_hat, functional

    def anomaly_score(self, images):
        """AnoGAN's functional at :math:`\\hat{\\mathbf z}`, shape (n,), higher = more anomalous."""
        return self.invert(images)[1]

    def residual(self, images):
        """:math:`|\\mathcal G(\\hat{\\mathbf z}) - \\mathbf s|`, the pixels the GAN could not reproduce, shaped like ``images``."""
        images = check_images(images, "images")
        z_hat, _ = self.invert(images)
        return np.abs(self.generate(z_hat) - images)


# --------------------------------------------------------------------------- #
# BiGAN / EGBAD
# --------------------------------------------------------------------------- #
#: the scores of :class:`BiGANDetector`
BIGAN_SCORES = ("combined", "latent", "posterior", "anogan")


class BiGANDetector(_Trainable):
    r"""BiGAN / EGBAD (Donahue et al., 2017; Zenati et al., 2018): a GAN with an encoder that inverts it.

    ``fit`` trains three networks on the normal images: the encoder
    :math:`\mathcal E` (chapter 6's :class:`~adcourse.deep.autoencoders.ConvEncoder`
    with a vector code), the :class:`Generator` and the :class:`JointDiscriminator`
    :math:`\mathcal D(\mathbf s, \mathbf z)`. :math:`\mathcal D` learns to tell real
    pairs :math:`(\mathbf s, \mathcal E(\mathbf s))` from generated pairs
    :math:`(\mathcal G(\mathbf z), \mathbf z)` (:func:`discriminator_loss`);
    :math:`\mathcal G` and :math:`\mathcal E`, one player, learn to make it wrong
    both ways (the same loss with the labels swapped). At the fixed point of the
    game :math:`\mathcal E = \mathcal G^{-1}`.

    Scores (``score``; :meth:`scores` returns all four, from one forward pass):

    * ``"latent"``: :math:`-\log\phi_z(\mathcal E(\mathbf s)) = \tfrac12\lVert\mathcal E(\mathbf s)\rVert^2 + \tfrac d2\log 2\pi`;
    * ``"posterior"``: :math:`1 - \mathcal D(\mathbf s, \mathcal E(\mathbf s))` (a real, normal pair should get 1);
    * ``"combined"``: :math:`A(\mathbf s)` of :func:`bigan_score` (feature distance
      and reconstruction error, weighted by ``alpha``);
    * ``"anogan"``: "AnoGAN improved", AnoGAN's functional at
      :math:`\hat{\mathbf z} = \mathcal E(\mathbf s)`:
      :math:`\lVert\mathcal G(\mathcal E(\mathbf s))-\mathbf s\rVert_2 + \lambda\log(1-\mathcal D(\mathcal G(\mathcal E(\mathbf s)), \mathcal E(\mathbf s)))`.

    Parameters
    ----------
    score : {"combined", "latent", "posterior", "anogan"}, default "combined"
    alpha : float in [0, 1], default 0.1
        Weight of the feature term in :math:`A(\mathbf s)`.
    lam : float, default 0.1
        :math:`\lambda` of the "anogan" score.
    latent_dim : int, default 16
    widths : sequence of int, default (16, 32)
        Stages of :math:`\mathcal E` and of the image branch of :math:`\mathcal D` (mirrored in :math:`\mathcal G`).
    hidden : int, default 128
        Width of :math:`\mathcal D`'s seed branch and of its layer :math:`f`.
    reconstruction_weight : float >= 0, default 0.0
        :math:`\mu`: the encoder and the generator also minimise
        :math:`\mu\,\mathrm{mean}\,(\mathcal G(\mathcal E(\mathbf s)) - \mathbf s)^2`
        (the cycle term of ALICE, Li et al., 2017; the reconstruction term of
        :class:`FCGANDetector`). The game alone reaches
        :math:`\mathcal E = \mathcal G^{-1}` only at its equilibrium, which a
        short training does not reach: the reconstructions stay poor, and so do
        the scores built on them. ``0`` is the lecture's game :math:`V`.
    n_epochs : int, default 150
    batch_size : int, default 32
    lr : float, default 2e-3
    random_state : int, default 0
    device : "auto", "cpu", "cuda", ...
    progress : bool, default True

    Attributes
    ----------
    encoder_, generator_, discriminator_ : torch.nn.Module (eval mode)
    history_ : History
        ``losses["discriminator"]`` and ``losses["generator + encoder"]``.
    image_shape_ : tuple

    Examples
    --------
    >>> from adcourse import data, metrics
    >>> split = data.load_digits_oneclass(normal_digit=0, size=16, random_state=0)
    >>> det = BiGANDetector(n_epochs=60, progress=False, device="cpu").fit(split.images_train)
    >>> scores = det.scores(split.images_test)
    >>> sorted(scores), bool(metrics.roc_auc(scores["combined"], split.y_test) > 0.7)
    (['anogan', 'combined', 'latent', 'posterior'], True)
    """

    def __init__(self, score="combined", alpha=0.1, lam=0.1, latent_dim=16, widths=(16, 32), hidden=128,
                 reconstruction_weight=0.0, n_epochs=150, batch_size=32, lr=2e-3, random_state=0, device="auto",
                 progress=True):
        self.score = score
        self.alpha = alpha
        self.lam = lam
        self.latent_dim = latent_dim
        self.widths = widths
        self.hidden = hidden
        self.reconstruction_weight = reconstruction_weight
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self):
        self._check_common()
        if self.score not in BIGAN_SCORES:
            raise ValueError(f"score must be one of {BIGAN_SCORES}, got {self.score!r}")
        check_fraction(self.alpha, "alpha", inclusive=(True, True))
        _check_real(self.lam, "lam", positive=False)
        _check_int(self.hidden, "hidden")
        _check_real(self.reconstruction_weight, "reconstruction_weight", positive=False)

    def fit(self, images, y=None):
        """Train :math:`\\mathcal E`, :math:`\\mathcal G`, :math:`\\mathcal D` on normal ``images``; ``y`` ignored."""
        self._check_params()
        x = self._train_input(images)
        self.device_ = resolve_device(self.device)
        c, h, w = x.shape[1:]
        d = int(self.latent_dim)
        with seeded(int(self.random_state)):
            E = ConvEncoder(c, self._widths, 2, latent_dim=d, image_size=(h, w))
            G = Generator(d, c, self._widths, image_size=(h, w))
            D = JointDiscriminator(c, self._widths, (h, w), d, int(self.hidden))

        def d_loss(real):
            z = torch.randn(len(real), d, device=real.device)
            return discriminator_loss(D(real, E(real).detach()), D(G(z).detach(), z))

        mu = float(self.reconstruction_weight)

        def ge_loss(real):
            z = torch.randn(len(real), d, device=real.device)
            code = E(real)
            # the labels swapped: generated pairs should look real, real pairs generated
            adversarial = discriminator_loss(D(G(z), z), D(real, code))
            return adversarial + mu * F.mse_loss(G(code), real) if mu > 0 else adversarial

        self.history_ = fit_adversarial(
            {"discriminator": (D, d_loss), "generator + encoder": ((G, E), ge_loss)}, x,
            n_epochs=int(self.n_epochs), batch_size=int(self.batch_size), lr=float(self.lr),
            drop_last=len(x) % min(int(self.batch_size), len(x)) == 1, random_state=int(self.random_state),
            device=self.device_, progress=self.progress, desc="BiGAN",
        )
        self.encoder_, self.generator_, self.discriminator_ = E.eval(), G.eval(), D.eval()
        return self

    def encode(self, images):
        """:math:`\\mathcal E(\\mathbf s)`, shape (n, d)."""
        _, x = self._test_input(images)
        with torch.no_grad():
            return torch.cat([self.encoder_(b) for b in self._batches(x)]).double().cpu().numpy()

    def reconstruct(self, images):
        """:math:`\\mathcal G(\\mathcal E(\\mathbf s))`, shaped like ``images``."""
        images, x = self._test_input(images)
        with torch.no_grad():
            rec = torch.cat([self.generator_(self.encoder_(b)) for b in self._batches(x)])
        return _back(rec.double().cpu().numpy(), images.ndim)

    def residual(self, images):
        """:math:`|\\mathcal G(\\mathcal E(\\mathbf s)) - \\mathbf s|`, shaped like ``images``."""
        images = check_images(images, "images")
        return np.abs(self.reconstruct(images) - images)

    def scores(self, images):
        """All four scores (see the class docstring) from one pass: dict name -> (n,) array, higher = more anomalous."""
        self._check_params()
        _, x = self._test_input(images)
        E, G, D = self.encoder_, self.generator_, self.discriminator_
        out = {k: [] for k in BIGAN_SCORES}
        d = int(self.latent_dim)
        with torch.no_grad():
            for s in self._batches(x):
                z = E(s)
                g = G(z)
                out["latent"].append(0.5 * (z ** 2).sum(dim=1) + 0.5 * d * math.log(2 * math.pi))
                out["posterior"].append(1.0 - torch.sigmoid(D(s, z)))
                out["combined"].append(bigan_score(s, g, D.features(s, z), D.features(g, z), float(self.alpha)))
                out["anogan"].append(anogan_functional(s, g, D(g, z), float(self.lam)))
        return {k: torch.cat(v).double().cpu().numpy() for k, v in out.items()}

    def anomaly_score(self, images):
        """The score chosen by ``score``, shape (n,), higher = more anomalous."""
        return self.scores(images)[self.score]


# --------------------------------------------------------------------------- #
# fully convolutional GAN with encoder (least squares)
# --------------------------------------------------------------------------- #
#: the maps of :class:`FCGANDetector`
FCGAN_MAPS = ("combined", "reconstruction", "discriminator")


class FCGANDetector(BaseImageDetector):
    r"""A fully convolutional GAN with encoder, least-squares losses, pixel-level maps.

    Every network is convolutional: the encoder :math:`\mathcal E`
    (:class:`~adcourse.deep.autoencoders.ConvEncoder` with a code map of
    ``latent_channels`` at 1/:math:`2^K` of the resolution), the generator
    :math:`\mathcal G` (:class:`Generator` from a seed map) and the discriminator
    :math:`\mathcal D(\mathbf s, \mathbf z)` (:class:`PatchDiscriminator`, one verdict
    per region). ``fit`` trains them on random ``crop_size`` crops of the normal
    images with least-squares losses (:func:`discriminator_loss`,
    ``loss="least-squares"``),

    .. math::

        L_{\mathcal D} &= \tfrac12\,\overline{(\mathcal D(\mathbf s,\mathcal E(\mathbf s))-1)^2}
        + \tfrac12\,\overline{\mathcal D(\mathcal G(\mathbf z),\mathbf z)^2},\\
        L_{\mathcal G,\mathcal E} &= \tfrac12\,\overline{(\mathcal D(\mathcal G(\mathbf z),\mathbf z)-1)^2}
        + \tfrac12\,\overline{\mathcal D(\mathbf s,\mathcal E(\mathbf s))^2}
        + \mu\,\overline{(\mathcal G(\mathcal E(\mathbf s))-\mathbf s)^2},

    :math:`\mathbf z \sim N(0, I)` a seed map, :math:`\mu` = ``reconstruction_weight``
    (the reconstruction penalty, which makes :math:`\mathcal G(\mathcal E(\mathbf s))`
    follow :math:`\mathbf s`). Being convolutional, it scores images of any size.

    Maps (``map``; :meth:`maps` returns the three): the reconstruction error
    :math:`\lVert\mathcal G(\mathcal E(\mathbf s))-\mathbf s\rVert_2` per pixel, the
    discriminator term :math:`(\mathcal D(\mathbf s,\mathcal E(\mathbf s))-1)^2` upsampled,
    and their mix :func:`combined_map` with weight ``alpha``, each term divided by its
    mean over the training crops (``scales_``); every map is smoothed with a Gaussian
    of ``sigma`` pixels. The image score is the maximum of the map.

    Parameters
    ----------
    map : {"combined", "reconstruction", "discriminator"}, default "combined"
    alpha : float in [0, 1], default 0.5
    latent_channels : int, default 16
        Channels of the seed / code map.
    widths : sequence of int, default (16, 32, 64)
        Stride-2 stages of :math:`\mathcal E` and of :math:`\mathcal D`'s image branch.
    reconstruction_weight : float, default 1.0
        :math:`\mu`.
    crop_size : int, default 32
        Side of the training crops (images smaller than that are used whole).
    n_crops : int, default 256
        Number of training crops.
    sigma : float, default 2.0
        Smoothing of the maps (pixels).
    n_epochs : int, default 10
    batch_size : int, default 16
    lr : float, default 2e-3
    random_state : int, default 0
    device : "auto", "cpu", "cuda", ...
    progress : bool, default True

    Attributes
    ----------
    encoder_, generator_, discriminator_ : torch.nn.Module (eval mode)
    scales_ : dict
        Mean of the discriminator and reconstruction terms over the training crops.
    history_ : History
    image_shape_ : tuple

    Examples
    --------
    >>> from adcourse import data
    >>> train = data.make_nanofibers(n_images=4, size=64, anomaly_rate=0.0, random_state=0).images
    >>> det = FCGANDetector(n_epochs=2, n_crops=64, progress=False, device="cpu").fit(train)
    >>> det.anomaly_map(train[:1]).shape, det.sample(1, size=(48, 80)).shape    # any size
    ((1, 64, 64), (1, 48, 80))
    """

    def __init__(self, map="combined", alpha=0.5, latent_channels=16, widths=(16, 32, 64), reconstruction_weight=1.0,
                 crop_size=32, n_crops=256, sigma=2.0, n_epochs=10, batch_size=16, lr=2e-3, random_state=0,
                 device="auto", progress=True):
        self.map = map
        self.alpha = alpha
        self.latent_channels = latent_channels
        self.widths = widths
        self.reconstruction_weight = reconstruction_weight
        self.crop_size = crop_size
        self.n_crops = n_crops
        self.sigma = sigma
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self):
        if self.map not in FCGAN_MAPS:
            raise ValueError(f"map must be one of {FCGAN_MAPS}, got {self.map!r}")
        check_fraction(self.alpha, "alpha", inclusive=(True, True))
        _check_int(self.latent_channels, "latent_channels")
        self._widths = _check_widths(self.widths)
        _check_real(self.reconstruction_weight, "reconstruction_weight", positive=False)
        for name in ("crop_size", "n_crops", "n_epochs", "batch_size"):
            _check_int(getattr(self, name), name)
        _check_real(self.sigma, "sigma", positive=False)
        _check_real(self.lr, "lr", positive=True)
        _check_seed(self.random_state)
        resolve_device(self.device)

    def _crops(self, images):
        side = min(int(self.crop_size), *images.shape[-2:])
        if images.shape[-2:] == (side, side):
            return images
        return random_crops(images, int(self.n_crops), side, int(self.random_state))

    def _fit(self, images):
        self._check_params()
        if len(images) < 1:
            raise ValueError("need at least one normal training image")
        x = _as_nchw(self._crops(images))
        if len(x) < 2:
            raise ValueError(f"need at least 2 training crops, got {len(x)}: give more images or a smaller crop_size")
        self.device_ = resolve_device(self.device)
        c = x.shape[1]
        k, mu = int(self.latent_channels), float(self.reconstruction_weight)
        with seeded(int(self.random_state)):
            E = ConvEncoder(c, self._widths, 2, latent_channels=k)
            G = Generator(k, c, self._widths)
            D = PatchDiscriminator(c, self._widths, k)

        def d_loss(real):
            code = E(real).detach()
            z = torch.randn_like(code)
            return discriminator_loss(D(real, code), D(G(z, real.shape[-2:]).detach(), z), "least-squares")

        def ge_loss(real):
            code = E(real)
            z = torch.randn_like(code)
            adversarial = discriminator_loss(D(G(z, real.shape[-2:]), z), D(real, code), "least-squares")
            return adversarial + mu * F.mse_loss(G(code, real.shape[-2:]), real)

        self.history_ = fit_adversarial(
            {"discriminator": (D, d_loss), "generator + encoder": ((G, E), ge_loss)}, x,
            n_epochs=int(self.n_epochs), batch_size=int(self.batch_size), lr=float(self.lr),
            drop_last=len(x) % min(int(self.batch_size), len(x)) == 1, random_state=int(self.random_state),
            device=self.device_, progress=self.progress, desc="fully convolutional GAN",
        )
        self.encoder_, self.generator_, self.discriminator_ = E.eval(), G.eval(), D.eval()
        disc, rec = self._terms(x)
        self.scales_ = {"discriminator": max(float(disc.mean()), 1e-12), "reconstruction": max(float(rec.mean()), 1e-12)}

    def _forward(self, x):
        """(D(s, E(s)) map, G(E(s))) for a float32 (n, C, H, W) array, batch by batch, eval mode."""
        disc, rec = [], []
        with torch.no_grad():
            for a in range(0, len(x), 16):
                s = torch.as_tensor(x[a:a + 16], device=self.device_)
                code = self.encoder_(s)
                disc.append(self.discriminator_(s, code).double().cpu().numpy())
                rec.append(self.generator_(code, s.shape[-2:]).double().cpu().numpy())
        return np.concatenate(disc), np.concatenate(rec)

    def _terms(self, x):
        """The two unscaled, unsmoothed terms at pixel resolution: ((D-1)^2 upsampled, ||G(E(s)) - s||)."""
        d, rec = self._forward(x)
        return (combined_map(d, x, rec, alpha=1.0),
                combined_map(d, x, rec, alpha=0.0))

    def maps(self, images):
        """The three maps (see the class docstring): dict name -> (n, H, W)."""
        check_is_fitted(self, "image_shape_")
        images = check_images(images, "images")
        x = _as_nchw(images)
        d, rec = self._forward(x)
        scales = (self.scales_["discriminator"], self.scales_["reconstruction"])
        sigma = float(self.sigma)
        return {
            "combined": combined_map(d, x, rec, float(self.alpha), scales, sigma),
            "reconstruction": combined_map(d, x, rec, 0.0, scales, sigma),
            "discriminator": combined_map(d, x, rec, 1.0, scales, sigma),
        }

    def choose_alpha(self, images, masks, candidates=(0.0, 0.25, 0.5, 0.75, 1.0)):
        r"""Choose the mixing weight :math:`\alpha` on *validation* images with masks, never on test images.

        The maps of ``images`` are computed once; each candidate mixes their two
        smoothed terms, :math:`\alpha\,m_{\mathcal D} + (1-\alpha)\,m_{\text{rec}}`,
        and the one with the best pixel AUROC against ``masks`` wins (the first on
        ties). ``alpha`` is set to it: the networks are not touched.

        Returns
        -------
        best : float
        auroc : dict candidate -> validation pixel AUROC
        """
        check_is_fitted(self, "image_shape_")
        candidates = [check_fraction(a, "candidates", inclusive=(True, True)) for a in candidates]
        if not candidates:
            raise ValueError("candidates is empty: give at least one weight in [0, 1]")
        terms = self.maps(images)
        auroc = {a: metrics.pixel_roc_auc(a * terms["discriminator"] + (1 - a) * terms["reconstruction"], masks)
                 for a in candidates}
        best = max(candidates, key=auroc.get)
        self.set_params(alpha=best)
        return best, auroc

    def _map(self, images):
        return self.maps(images)[self.map]

    def reconstruct(self, images):
        """:math:`\\mathcal G(\\mathcal E(\\mathbf s))`, shaped like ``images`` (any size)."""
        check_is_fitted(self, "image_shape_")
        images = check_images(images, "images")
        return _back(self._forward(_as_nchw(images))[1], images.ndim)

    def sample(self, n_samples=1, size=None, random_state=None):
        r"""New images :math:`\mathcal G(\mathbf z)` from a random seed *map*: textures of any size.

        :math:`\mathbf z \sim N(0, I)` has ``latent_channels`` channels and
        :math:`\lceil H/2^K\rceil\times\lceil W/2^K\rceil` locations for images of
        ``size`` = (H, W) (default: the training crop size). Nothing ties distant
        locations together, so local structure is right and global structure absent.
        """
        check_is_fitted(self, "image_shape_")
        n = _check_int(n_samples, "n_samples")
        side = min(int(self.crop_size), *self.image_shape_[-2:])
        size = (side, side) if size is None else tuple(_check_int(v, "size") for v in size)
        h, w = _stage_sizes(*size, len(self._widths))[-1]
        seed = self.random_state if random_state is None else _check_seed(random_state)
        with seeded(int(seed)):
            z = torch.randn(n, int(self.latent_channels), h, w)
        with torch.no_grad():
            out = self.generator_(z.to(self.device_), size).double().cpu().numpy()
        return _back(out, len(self.image_shape_) + 1)
