r"""Self-supervised anomaly detection with transformations (chapter 7).

*Transfer learning* (chapter 5) borrows a network trained on **another data set**
for **another task**. *Self-supervision* trains a network on the **target data
set** (normal images only), for a task whose labels come for free. Here the task
is: *which transformation was applied?*

1. Choose :math:`T` transformations :math:`\mathcal{T} = \{\tau_1, \dots, \tau_T\}`
   (:func:`transformation_set`; :math:`\tau_1` is the identity): rotations by
   multiples of 90°, flips, translations (:class:`Geometric`), or non-geometric
   ones (:class:`GaussianBlur`, :class:`Gamma`, :class:`Sharpen`).
2. Apply each of them to every normal image: the labelled training set

   .. math:: TR_{new} = \{(\tau_i(\mathbf{s}), i) \mid \mathbf{s} \in TR,\ i = 1, \dots, T\}

   has :math:`T` classes (:class:`TRNew`, built lazily batch by batch: it is never
   stored, it would be :math:`T` times the training set).
3. Train a CNN :math:`\psi` (:class:`TransformationClassifier`) on :math:`TR_{new}`
   by categorical cross-entropy (:func:`train_transformation_classifier`, through
   the course's one training loop :func:`adcourse.deep.training.fit_model`).

To recognise the rotation of a 3, the network must know what an upright 3 looks
like: it learns the *shape* of normal images. Fed the :math:`T` transformed
versions of a test image :math:`\mathbf{s}`, it returns :math:`T` posterior
vectors

.. math:: \mathbf{p}_i = \psi(\tau_i(\mathbf{s})) \in [0, 1]^T, \qquad i = 1, \dots, T,

where :math:`[\mathbf{p}_i]_i` is the posterior of the right label
:math:`i` (:func:`transformation_log_posteriors`). On a normal image the network
is confident and right; on an anomaly it hesitates or errs. Two scores
(:class:`GeomDetector`, Golan & El-Yaniv 2018):

* the **simple score** (:func:`simple_score`), zero when every transformation
  is recognised with certainty,

  .. math:: \text{score}(\mathbf{s}) = 1 - \frac{1}{T} \sum_{i=1}^{T} [\mathbf{p}_i]_i ;

* the **Dirichlet score** (:func:`dirichlet_score`): the posteriors of normal
  images under :math:`\tau_i` are modelled by a Dirichlet distribution
  :math:`P(\mathbf{p} \mid \tau_i) = \mathrm{Dir}(\mathbf{p}; \boldsymbol\eta_i)`
  fitted by maximum likelihood on the training posteriors (:func:`fit_dirichlet`),
  and

  .. math:: \text{score}(\mathbf{s}) = -\sum_{i=1}^{T} \log P(\mathbf{p}_i \mid \tau_i) .

  It uses the whole posterior vector, not only its right entry: how the network
  errs on normal images (which rotations it confuses, how sure it is) is part of
  the model.

Notation: the lecture writes the posteriors :math:`\boldsymbol\alpha_i`; the book
keeps :math:`\boldsymbol\alpha` for the sparse codes of chapter 4 and writes
:math:`\mathbf{p}_i`, and :math:`\boldsymbol\eta_i` for the parameters of a Dirichlet.

Sign: the GEOM paper reports :math:`\sum_i \log P(\mathbf{p}_i\mid\tau_i)`, a
*normality* score; ours is its opposite, **higher = more anomalous**, as every
score of the course.

The **two-step** variant of the lecture (:class:`TwoStepSelfSupervised`) uses the
classifier as a feature extractor instead: the training set is split in two, the
classifier is trained on the first half, and a chapter-2 detector is fitted on
the penultimate-layer features of the second half (a detector fitted on the
features of the classifier's own training images would see them too well).

References
----------
I. Golan, R. El-Yaniv, "Deep anomaly detection using geometric transformations",
NeurIPS 2018.
T. Minka, "Estimating a Dirichlet distribution", technical report, 2000 (the
fixed-point iteration and the inverse digamma function).
S. Gidaris, P. Singh, N. Komodakis, "Unsupervised representation learning by
predicting image rotations", ICLR 2018.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.special import digamma, gammaln, polygamma
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from adcourse.deep.latent import _LatentSpace
from adcourse.deep.training import fit_model, resolve_device, seeded
from adcourse.validation import check_images

__all__ = [
    "Transformation",
    "Geometric",
    "GaussianBlur",
    "Gamma",
    "Sharpen",
    "TRANSFORMATION_SETS",
    "transformation_set",
    "TRNew",
    "TransformationClassifier",
    "train_transformation_classifier",
    "transformation_log_posteriors",
    "simple_score",
    "inverse_digamma",
    "fit_dirichlet",
    "dirichlet_log_pdf",
    "dirichlet_score",
    "GeomDetector",
    "TwoStepSelfSupervised",
]


# --------------------------------------------------------------------------- #
# the transformations
# --------------------------------------------------------------------------- #
def _as_batch(images):
    """numpy images (n, H, W) / (n, C, H, W) -> float32 tensor (n, C, H, W), and whether 3-D."""
    images = check_images(images, "images")
    x = torch.as_tensor(np.ascontiguousarray(images, dtype=np.float32))
    return (x[:, None], True) if x.ndim == 3 else (x, False)


class Transformation:
    """A transformation :math:`\\tau` of images, applied to a whole batch at once.

    Subclasses implement :meth:`apply` on a float tensor (n, C, H, W) with values
    in [0, 1] and return a tensor of the same shape and range. Calling the object
    on numpy images (n, H, W) or (n, C, H, W) applies it and returns numpy.
    """

    #: "geometric" or "non-geometric"
    kind = "geometric"

    def apply(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, images):
        x, squeeze = _as_batch(images)
        self.check_shape(tuple(x.shape[-2:]))
        out = self.apply(x).numpy().astype(np.float64)
        return out[:, 0] if squeeze else out

    def check_shape(self, hw):
        """Raise a ValueError if the transformation cannot be applied to images of size ``hw``."""

    @property
    def name(self):
        return repr(self)


@dataclass(frozen=True)
class Geometric(Transformation):
    r"""Horizontal flip, then translation, then rotation by a multiple of 90°.

    The transformations of the GEOM paper, composed in its order: the image is
    (optionally) mirrored left-right, shifted by ``shift = (dy, dx)`` (down and right
    for positive values) with the pixels that enter at the border taken by
    **reflection** (``torch``'s ``"reflect"`` padding, like ``scipy.ndimage``
    ``mode="mirror"``: the border pixel is not repeated), then rotated
    counter-clockwise by ``rot90`` × 90° (as :func:`numpy.rot90` on the (H, W)
    axes). A vertical flip is ``Geometric(flip=True, rot90=2)``.

    Parameters
    ----------
    flip : bool, default False
    shift : (dy, dx), default (0, 0)
        Translation (rows, columns): an int is a number of pixels, a float in
        (-1, 1) a fraction of the image's height (width), rounded to pixels when the
        transformation is applied (so one set suits every image size); the shift
        must stay below the image size.
    rot90 : int in 0..3, default 0
        Rotations by 90° and 270° need square images.
    """

    flip: bool = False
    shift: tuple = (0, 0)
    rot90: int = 0

    def __post_init__(self):
        if not isinstance(self.flip, (bool, np.bool_)):
            raise TypeError(f"flip must be True or False, got {self.flip!r}")
        shift = tuple(self.shift)
        ok = len(shift) == 2 and all(
            (isinstance(v, numbers.Integral) and not isinstance(v, bool))
            or (isinstance(v, float) and -1 < v < 1) for v in shift)
        if not ok:
            raise ValueError(f"shift must be a pair (dy, dx) of pixel ints or fractions in (-1, 1), got {self.shift!r}")
        object.__setattr__(self, "shift", tuple(v if isinstance(v, float) else int(v) for v in shift))
        if not isinstance(self.rot90, numbers.Integral) or isinstance(self.rot90, bool) \
                or not 0 <= self.rot90 <= 3:
            raise ValueError(f"rot90 must be an integer in 0..3 (quarter turns), got {self.rot90!r}")

    def pixel_shift(self, hw):
        """The shift (dy, dx) in pixels for images of size ``hw = (H, W)``."""
        return tuple(int(round(v * n)) if isinstance(v, float) else v for v, n in zip(self.shift, hw))

    def check_shape(self, hw):
        (h, w), (dy, dx) = hw, self.pixel_shift(hw)
        if self.rot90 % 2 and h != w:
            raise ValueError(f"a rotation by {90 * self.rot90} degrees needs square images, got {h}x{w}")
        if abs(dy) >= h or abs(dx) >= w:
            raise ValueError(f"shift {self.shift} is too large for {h}x{w} images (reflection needs |shift| < size)")

    def apply(self, x):
        if self.flip:
            x = torch.flip(x, dims=(-1,))
        h, w = x.shape[-2:]
        dy, dx = self.pixel_shift((h, w))
        if dy or dx:
            # pad by |shift| on each side, then crop the window moved by the shift
            x = F.pad(x, (abs(dx), abs(dx), abs(dy), abs(dy)), mode="reflect")
            top, left = abs(dy) - dy, abs(dx) - dx
            x = x[..., top:top + h, left:left + w]
        if self.rot90:
            x = torch.rot90(x, self.rot90, dims=(-2, -1))
        return x.contiguous()

    @property
    def name(self):
        parts = ["flip"] if self.flip else []
        if any(self.shift):
            parts.append("shift " + ",".join(f"{v:+g}" for v in self.shift))
        if self.rot90:
            parts.append(f"rot{90 * self.rot90}")
        return " ".join(parts) or "identity"


def _gaussian_kernel(sigma, radius):
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(x, sigma):
    """Separable Gaussian blur of (n, C, H, W), reflect padding, radius min(round(4 sigma), size - 1)."""
    h, w = x.shape[-2:]
    radius = min(int(4 * sigma + 0.5), h - 1, w - 1)
    if radius < 1:
        return x
    c = x.shape[1]
    k = _gaussian_kernel(sigma, radius).to(x)
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class GaussianBlur(Transformation):
    r"""Gaussian blur with standard deviation ``sigma`` pixels.

    Separable convolution with the sampled Gaussian
    :math:`g(t) \propto e^{-t^2 / 2\sigma^2}`, :math:`|t| \le r`,
    :math:`r = \min(\lfloor 4\sigma + 1/2 \rfloor, H - 1, W - 1)`, normalised to sum
    1, borders by reflection (the same numbers as
    ``scipy.ndimage.gaussian_filter(mode="mirror", radius=r)``).
    """

    sigma: float = 1.0
    kind = "non-geometric"

    def __post_init__(self):
        _check_positive(self.sigma, "sigma")

    def apply(self, x):
        return _blur(x, float(self.sigma))

    @property
    def name(self):
        return f"blur {self.sigma:g}"


@dataclass(frozen=True)
class Gamma(Transformation):
    r"""Gamma correction :math:`s \mapsto s^\gamma` of every pixel (values in [0, 1]).

    :math:`\gamma < 1` brightens the dark tones, :math:`\gamma > 1` darkens them.
    """

    gamma: float = 2.0
    kind = "non-geometric"

    def __post_init__(self):
        _check_positive(self.gamma, "gamma")

    def apply(self, x):
        return x.clamp(0.0, 1.0) ** float(self.gamma)

    @property
    def name(self):
        return f"gamma {self.gamma:g}"


@dataclass(frozen=True)
class Sharpen(Transformation):
    r"""Unsharp masking :math:`s \mapsto \mathrm{clip}_{[0,1]}\big(s + a\,(s - g_\sigma * s)\big)`.

    Adds ``amount`` :math:`a` times the detail that a Gaussian blur of standard
    deviation ``sigma`` (:class:`GaussianBlur`) removes.
    """

    amount: float = 1.0
    sigma: float = 1.0
    kind = "non-geometric"

    def __post_init__(self):
        _check_positive(self.amount, "amount")
        _check_positive(self.sigma, "sigma")

    def apply(self, x):
        return (x + float(self.amount) * (x - _blur(x, float(self.sigma)))).clamp(0.0, 1.0)

    @property
    def name(self):
        return f"sharpen {self.amount:g}"


#: names accepted by :func:`transformation_set`, with their sizes T
TRANSFORMATION_SETS = {"rotations": 4, "rotations+flips": 8, "geom": 72, "non-geometric": 8}


def transformation_set(name="rotations+flips", shift=0.25):
    r"""A predefined set :math:`\mathcal{T}`, as a tuple of transformations (:math:`\tau_1` = identity).

    Parameters
    ----------
    name : str, default "rotations+flips"
        * ``"rotations"``: the 4 rotations by 0°, 90°, 180°, 270° (RotNet);
        * ``"rotations+flips"``: those 4, with and without a horizontal flip: the 8
          symmetries of the square (they include both flips: the vertical flip is
          the horizontal one rotated by 180°) -- the lecture's digit example;
        * ``"geom"``: the 72 of the GEOM paper: flip or not (2) × horizontal shift
          :math:`\{0, +d, -d\}` (3) × vertical shift (3) × rotation (4);
        * ``"non-geometric"``: 8 that keep every pixel in place: identity, Gaussian
          blur :math:`\sigma \in \{0.6, 1.2, 2.4\}`, gamma :math:`\gamma \in \{0.5, 2\}`,
          sharpening :math:`a \in \{1, 3\}` (:math:`\sigma = 1`).
    shift : float in (0, 0.5) or int, default 0.25
        Translation :math:`d` of ``"geom"``: a fraction of the image size (the paper
        shifts 32-pixel images by 8, i.e. 0.25), or a number of pixels (int). A
        fraction is turned into pixels when the set is applied, so the set suits any
        image size.

    Returns
    -------
    tuple of Transformation

    Examples
    --------
    >>> [t.name for t in transformation_set("rotations")]
    ['identity', 'rot90', 'rot180', 'rot270']
    >>> len(transformation_set("geom")), transformation_set("geom", shift=2)[5].name
    (72, 'shift +2,+0 rot90')
    """
    if name == "rotations":
        return tuple(Geometric(rot90=k) for k in range(4))
    if name == "rotations+flips":
        return tuple(Geometric(flip=f, rot90=k) for f in (False, True) for k in range(4))
    if name == "geom":
        integer = isinstance(shift, numbers.Integral) and not isinstance(shift, bool)
        if integer and shift < 1:
            raise ValueError(f"shift must be >= 1 pixel when an int, got {shift}")
        if not integer and (isinstance(shift, bool) or not isinstance(shift, numbers.Real) or not 0 < shift < 0.5):
            raise ValueError(f"shift must be a fraction in (0, 0.5) of the image size or an int >= 1, got {shift!r}")
        d = int(shift) if integer else float(shift)
        return tuple(Geometric(flip=f, shift=(ty, tx), rot90=k)
                     for f, tx, ty, k in itertools.product((False, True), (0, d, -d), (0, d, -d), range(4)))
    if name == "non-geometric":
        return (Geometric(), GaussianBlur(0.6), GaussianBlur(1.2), GaussianBlur(2.4),
                Gamma(0.5), Gamma(2.0), Sharpen(1.0), Sharpen(3.0))
    raise ValueError(f"name must be one of {sorted(TRANSFORMATION_SETS)}, got {name!r}")


def _resolve_transformations(transformations):
    """A tuple of Transformation from a set name or a sequence."""
    if isinstance(transformations, str):
        return transformation_set(transformations)
    try:
        ts = tuple(transformations)
    except TypeError:
        raise TypeError(
            f"transformations must be a set name {sorted(TRANSFORMATION_SETS)} or a sequence of "
            f"Transformation, got {type(transformations).__name__}"
        ) from None
    if len(ts) < 2:
        raise ValueError(f"transformations must hold at least 2 transformations (T >= 2 classes), got {len(ts)}")
    bad = [type(t).__name__ for t in ts if not isinstance(t, Transformation)]
    if bad:
        raise TypeError(f"every transformation must be an adcourse Transformation, got {bad[:3]}")
    return ts


def apply_all(x, transformations):
    """All transformed versions of a batch: tensor (n, C, H, W) -> (n, T, C, H, W)."""
    return torch.stack([t.apply(x) for t in transformations], dim=1)


# --------------------------------------------------------------------------- #
# the labelled set TR_new
# --------------------------------------------------------------------------- #
class TRNew:
    r"""The labelled training set :math:`TR_{new} = \{(\tau_i(\mathbf{s}), i)\}`, built lazily.

    Element :math:`k` (:math:`0 \le k < nT`) is the image :math:`\tau_i(\mathbf{s}_j)`
    with label :math:`i`, for :math:`j = \lfloor k / T \rfloor` and :math:`i = k \bmod T`
    (labels count from 0 in code): the first :math:`T` elements are the transformations
    of the first image. Only the :math:`n` images are stored; :meth:`batch` transforms
    the images a batch asks for, on the device where the images are.

    Parameters
    ----------
    images : array (n, H, W) or (n, C, H, W) in [0, 1]
        The normal training images :math:`TR`.
    transformations : str or sequence of Transformation
        :math:`\mathcal{T}` (a name of :func:`transformation_set`, or the transformations).
    device : "cpu", "cuda", "auto", ...
        Where the images are kept and transformed.

    Examples
    --------
    >>> import numpy as np
    >>> tr = TRNew(np.random.default_rng(0).random((5, 8, 8)), "rotations")
    >>> len(tr), tr.n_images, tr.n_classes
    (20, 5, 4)
    >>> x, y = tr.arrays([0, 1, 6])      # image 0 unrotated, image 0 at 90 degrees, image 1 at 180
    >>> x.shape, y.tolist()
    ((3, 1, 8, 8), [0, 1, 2])
    """

    def __init__(self, images, transformations="rotations+flips", device="cpu"):
        x, _ = _as_batch(images)
        self.transformations = _resolve_transformations(transformations)
        for t in self.transformations:
            t.check_shape(tuple(x.shape[-2:]))
        self.images = x.to(resolve_device(device))

    @property
    def n_images(self):
        return self.images.shape[0]

    @property
    def n_classes(self):
        return len(self.transformations)

    def __len__(self):
        return self.n_images * self.n_classes

    def indices(self):
        """All element indices ``0 .. nT - 1`` (what :func:`fit_model` shuffles into batches)."""
        return np.arange(len(self), dtype=np.int64)

    def batch(self, index):
        """The elements ``index`` (int tensor or array (B,)) as tensors (images (B, C, H, W), labels (B,))."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.images.device).reshape(-1)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise IndexError(f"TR_new has {len(self)} elements, got indices in "
                             f"[{int(index.min())}, {int(index.max())}]")
        T = self.n_classes
        j, labels = index // T, index % T
        src = self.images[j]
        out = torch.empty_like(src)
        for i in torch.unique(labels).tolist():
            sel = labels == i
            out[sel] = self.transformations[i].apply(src[sel])
        return out, labels

    def arrays(self, index=None):
        """Elements as numpy arrays (images (B, C, H, W) float32, labels (B,) int64); all if ``index`` is None.

        All of :math:`TR_{new}` is :math:`T` times the training set: materialise it for
        small sets and figures only.
        """
        index = self.indices() if index is None else np.asarray(index, dtype=np.int64)
        x, y = self.batch(index)
        return x.cpu().numpy(), y.cpu().numpy()


# --------------------------------------------------------------------------- #
# the classifier psi
# --------------------------------------------------------------------------- #
class TransformationClassifier(nn.Module):
    r"""The CNN :math:`\psi`: an image (n, C, H, W) -> logits over the :math:`T` transformations.

    The convolutional trunk is the course's :class:`adcourse.deep.autoencoders.ConvEncoder`
    (three 3×3 conv blocks with batch normalisation and LeakyReLU, ``width``,
    ``2 width`` and ``4 width`` channels, the last two with stride 2, no
    bottleneck), followed by an average pooling to a fixed 2×2 grid (any input
    size; the grid keeps *where* things are, which a global average would lose --
    and translations are among the transformations to recognise), a fully
    connected layer of ``n_features`` units with ReLU -- the **penultimate
    layer**, :meth:`features` -- and a linear layer to the :math:`T` logits. The
    softmax of the logits is :math:`\mathbf{p}`.
    """

    def __init__(self, c_in, n_classes, width=16, n_features=64):
        super().__init__()
        from adcourse.deep.autoencoders import ConvEncoder

        w = int(width)
        self.trunk = ConvEncoder(in_channels=c_in, widths=(w, 2 * w, 4 * w), strides=(1, 2, 2), latent_channels=None)
        self.body = nn.Sequential(self.trunk, nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                  nn.Linear(16 * w, int(n_features)), nn.ReLU())
        self.head = nn.Linear(int(n_features), int(n_classes))

    def features(self, x):
        """Penultimate-layer activations (n, n_features)."""
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def _check_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def default_n_epochs(n_transformations):
    """The GEOM paper's budget: :math:`\\lceil 200 / T \\rceil` epochs over :math:`TR_{new}`."""
    return math.ceil(200 / n_transformations)


def train_transformation_classifier(images, transformations="rotations+flips", *, width=16, n_features=64,
                                    n_epochs=None, batch_size=64, lr=1e-3, random_state=0, device="auto",
                                    progress=True):
    r"""Train :class:`TransformationClassifier` on :math:`TR_{new}` by cross-entropy; return ``(model, history)``.

    The loss of a batch :math:`B` of :math:`TR_{new}` is the categorical
    cross-entropy :math:`-\frac{1}{|B|}\sum_{(\tau_i(\mathbf{s}), i) \in B} \log [\psi(\tau_i(\mathbf{s}))]_i`;
    the batches are transformed on the fly (:meth:`TRNew.batch`) and the loop is
    :func:`adcourse.deep.training.fit_model` (Adam). ``n_epochs`` None means
    :func:`default_n_epochs` (:math:`\lceil 200/T \rceil` passes over the
    :math:`nT` elements). The network is initialised with ``random_state``; the
    model is returned in eval mode.
    """
    dev = resolve_device(device)
    tr_new = TRNew(images, transformations, device=dev)
    T = tr_new.n_classes
    n_epochs = default_n_epochs(T) if n_epochs is None else _check_int(n_epochs, "n_epochs")
    batch_size = _check_int(batch_size, "batch_size")
    with seeded(int(random_state)):
        model = TransformationClassifier(tr_new.images.shape[1], T, width=_check_int(width, "width"),
                                         n_features=_check_int(n_features, "n_features"))

    def cross_entropy(model, index):
        x, labels = tr_new.batch(index)
        return F.cross_entropy(model(x), labels)

    history = fit_model(model, cross_entropy, tr_new.indices(), n_epochs=n_epochs, batch_size=batch_size,
                        lr=lr, drop_last=len(tr_new) > batch_size, random_state=int(random_state), device=dev,
                        progress=progress, desc=f"classifier over T={T} transformations")
    return model, history


def _model_device(model):
    return next(model.parameters()).device


def transformation_log_posteriors(model, images, transformations, batch_size=64):
    r"""Log-posteriors :math:`\log \mathbf{p}_i` of every transformed version of every image.

    Returns ``L`` of shape (n, T, T), float64, with
    :math:`L[s, i, k] = \log [\psi(\tau_i(\mathbf{s}))]_k` -- row :math:`i` is the
    log of :math:`\mathbf{p}_i`, and :math:`[\mathbf{p}_i]_i = e^{L[s, i, i]}`.
    Computed as a log-softmax of the logits in float64, so that tiny posteriors
    keep their logarithm (a float32 softmax would round them to 0).
    """
    x, _ = _as_batch(images)
    transformations = _resolve_transformations(transformations)
    dev = _model_device(model)
    T = len(transformations)
    out = []
    model.eval()
    with torch.no_grad():
        for s in range(0, x.shape[0], max(1, batch_size)):
            xb = apply_all(x[s:s + batch_size].to(dev), transformations)  # (b, T, C, H, W)
            logits = model(xb.flatten(0, 1)).double()
            out.append(F.log_softmax(logits, dim=1).reshape(-1, T, T).cpu())
    return torch.cat(out).numpy()


# --------------------------------------------------------------------------- #
# the scores
# --------------------------------------------------------------------------- #
def _check_posteriors(posteriors, name, log):
    a = np.asarray(posteriors, dtype=np.float64)
    if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[1] < 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must be (n, T, T) with n >= 1 and T >= 2 (row i: the posterior of tau_i(s)), "
                         f"got shape {a.shape}")
    if log:
        if np.isnan(a).any() or np.isposinf(a).any() or (a > 1e-9).any():
            raise ValueError(f"{name} must hold log-probabilities (<= 0, no NaN)")
    elif not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
        raise ValueError(f"{name} must hold probabilities in [0, 1]")
    return a


def simple_score(posteriors):
    r"""The simple GEOM score :math:`1 - \frac{1}{T}\sum_i [\mathbf{p}_i]_i` of each image.

    Parameters
    ----------
    posteriors : array (n, T, T)
        Posteriors: ``posteriors[s, i]`` is :math:`\mathbf{p}_i = \psi(\tau_i(\mathbf{s}))`.

    Returns
    -------
    ndarray (n,)
        In [0, 1]; 0 when every transformation is recognised with posterior 1.

    >>> import numpy as np
    >>> simple_score(np.array([np.eye(3), np.full((3, 3), 1 / 3)])).round(3).tolist()
    [0.0, 0.667]
    """
    a = _check_posteriors(posteriors, "posteriors", log=False)
    return 1.0 - np.einsum("sii->s", a) / a.shape[1]


def inverse_digamma(y, n_iter=5):
    r"""The inverse :math:`\psi^{-1}` of the digamma function (Minka 2000, appendix C).

    Newton's method on :math:`\psi(x) = y` from Minka's start
    :math:`x_0 = e^{y} + 1/2` for :math:`y \ge -2.22`, :math:`x_0 = -1/(y - \psi(1))`
    otherwise; 5 steps give machine precision. Works element-wise on arrays.

    >>> from scipy.special import digamma
    >>> round(float(inverse_digamma(digamma(3.7))), 10)
    3.7
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.where(y >= -2.22, np.exp(np.minimum(y, 700.0)) + 0.5, -1.0 / (y - digamma(1.0)))
    for _ in range(n_iter):
        x = x - (digamma(x) - y) / polygamma(1, x)
    return x


def _moment_start(log_p):
    """Method-of-moments Dirichlet (Minka eq. 21-23) as a starting point; (..., N, K) -> (..., K)."""
    p = np.exp(log_p)
    m = p.mean(axis=-2)
    m2 = (p ** 2).mean(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = (m - m2) / (m2 - m ** 2)  # one estimate of sum(eta) per component
    ok = np.isfinite(precision) & (precision > 0)
    s = np.where(ok.any(axis=-1), np.exp(np.nanmean(np.where(ok, np.log(np.where(ok, precision, 1.0)), np.nan),
                                                    axis=-1)), 1.0)
    return np.maximum(m, 1e-12) * s[..., None]


def _log_pdf(log_p, eta):
    """Dirichlet log-density without checks; at ``log_p`` = the mean of the points' logs it is the mean
    log-likelihood per point (the density is linear in the logs)."""
    return gammaln(eta.sum(axis=-1)) - gammaln(eta).sum(axis=-1) + ((eta - 1.0) * log_p).sum(axis=-1)


def _newton_precision(eta, mean_log, n_steps=3):
    r"""Newton steps on :math:`\log s`, :math:`s = \sum_k \eta_k`, with the mean :math:`m = \eta / s` fixed.

    Along that ray the log-likelihood per point is
    :math:`L(s) = \log\Gamma(s) - \sum_k \log\Gamma(s m_k) + s \sum_k m_k \overline{\log p_k}` (+ const),
    with :math:`L' = \psi(s) - \sum_k m_k \psi(s m_k) + \sum_k m_k \overline{\log p_k}` and
    :math:`L'' = \psi'(s) - \sum_k m_k^2 \psi'(s m_k)`. A step is kept only where it
    increases the likelihood.
    """
    s = eta.sum(axis=-1, keepdims=True)
    m = eta / s
    for _ in range(n_steps):
        g = digamma(s) - (m * digamma(s * m)).sum(axis=-1, keepdims=True) + (m * mean_log).sum(axis=-1, keepdims=True)
        h = polygamma(1, s) - (m ** 2 * polygamma(1, s * m)).sum(axis=-1, keepdims=True)
        d1, d2 = s * g, s * g + s ** 2 * h                      # derivatives with respect to log s
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(d2 < 0, -d1 / d2, 0.0)
        s_new = s * np.exp(np.clip(np.nan_to_num(step), -2.0, 2.0))
        better = _log_pdf(mean_log, s_new * m) > _log_pdf(mean_log, s * m)
        s = np.where(better[..., None], s_new, s)
    return s * m


def fit_dirichlet(log_p, max_iter=1000, tol=1e-10):
    r"""Maximum-likelihood Dirichlet parameters :math:`\boldsymbol\eta` of points on the simplex.

    For :math:`N` points :math:`\mathbf{p}_1, \dots, \mathbf{p}_N` of the simplex in
    :math:`\mathbb{R}^K`, the log-likelihood
    :math:`N\big[\log\Gamma(\textstyle\sum_k \eta_k) - \sum_k \log\Gamma(\eta_k)
    + \sum_k (\eta_k - 1)\,\overline{\log p_k}\big]` depends on the data through
    :math:`\overline{\log p_k} = \frac1N\sum_n \log p_{nk}` only. Its gradient vanishes
    where :math:`\psi(\eta_k) = \psi(\sum_j \eta_j) + \overline{\log p_k}`, hence
    Minka's fixed-point iteration

    .. math:: \eta_k^{\text{new}} = \psi^{-1}\Big(\psi\big(\textstyle\sum_j \eta_j^{\text{old}}\big)
              + \overline{\log p_k}\Big),

    which increases the likelihood at every step and converges to the unique
    maximum (the log-likelihood is concave in :math:`\boldsymbol\eta`). It moves the
    *precision* :math:`s = \sum_k \eta_k` slowly when :math:`s` is large (points
    that are almost all alike, e.g. a classifier that gives nearly the same
    posterior to every training image: thousands of iterations), so each
    iteration is followed by a few Newton steps on :math:`\log s` with the mean
    :math:`\boldsymbol\eta / s` fixed (Minka, section 3.2), kept only where they
    increase the likelihood: a few dozen iterations then suffice. It starts from the
    method of moments and stops when no :math:`\eta_k` moves by more than ``tol``
    relative to itself (or after ``max_iter`` iterations: when all points are
    equal the maximum is at infinity).

    Parameters
    ----------
    log_p : array (N, K) or (D, N, K)
        Logarithms of the points (each row's exponentials sum to 1); a leading axis
        fits D Dirichlets at once (e.g. one per transformation).
    max_iter : int, default 1000
    tol : float, default 1e-10

    Returns
    -------
    eta : ndarray (K,) or (D, K)

    Examples
    --------
    >>> import numpy as np
    >>> p = np.random.default_rng(0).dirichlet([2.0, 5.0, 1.0], size=20000)
    >>> eta = fit_dirichlet(np.log(p))              # close to the true (2, 5, 1)
    >>> bool(np.abs(eta - [2.0, 5.0, 1.0]).max() < 0.15)
    True
    """
    lp = np.asarray(log_p, dtype=np.float64)
    if lp.ndim not in (2, 3) or lp.shape[-1] < 2 or lp.shape[-2] < 1:
        raise ValueError(f"log_p must be (N, K) or (D, N, K) with N >= 1 and K >= 2, got shape {lp.shape}")
    if np.isnan(lp).any() or np.isposinf(lp).any() or np.isneginf(lp).any():
        raise ValueError("log_p must be finite log-probabilities (a point with p_k = 0 has log p_k = -inf; "
                         "use log-softmax outputs, or clip p away from 0)")
    mean_log = lp.mean(axis=-2)
    eta = _moment_start(lp)
    for _ in range(_check_int(max_iter, "max_iter")):
        new = inverse_digamma(digamma(eta.sum(axis=-1, keepdims=True)) + mean_log)   # the fixed point
        new = _newton_precision(new, mean_log)
        done = np.all(np.abs(new - eta) <= tol * eta)
        eta = new
        if done:
            break
    return eta


def dirichlet_log_pdf(log_p, eta):
    r"""Log-density of the Dirichlet :math:`\mathrm{Dir}(\boldsymbol\eta)` at points given by their logs.

    .. math:: \log \mathrm{Dir}(\mathbf{p}; \boldsymbol\eta) = \log\Gamma\big(\textstyle\sum_k\eta_k\big)
              - \sum_k \log\Gamma(\eta_k) + \sum_k (\eta_k - 1) \log p_k

    ``log_p`` (..., K) and ``eta`` (K,) or broadcastable (e.g. (T, T) against
    (n, T, T)); the same number as ``scipy.stats.dirichlet.logpdf(p, eta)``.
    """
    lp = np.asarray(log_p, dtype=np.float64)
    eta = np.asarray(eta, dtype=np.float64)
    if eta.shape[-1] != lp.shape[-1] or (eta <= 0).any() or not np.all(np.isfinite(eta)):
        raise ValueError(f"eta must be positive with last dimension {lp.shape[-1]}, got shape {eta.shape}")
    return _log_pdf(lp, eta)


def dirichlet_score(log_posteriors, eta):
    r"""The Dirichlet GEOM score :math:`-\sum_i \log \mathrm{Dir}(\mathbf{p}_i; \boldsymbol\eta_i)` of each image.

    Parameters
    ----------
    log_posteriors : array (n, T, T)
        Log-posteriors, ``log_posteriors[s, i]`` :math:`= \log\mathbf{p}_i`
        (:func:`transformation_log_posteriors`).
    eta : array (T, T)
        Row :math:`i`: the Dirichlet :math:`\boldsymbol\eta_i` of the posteriors of
        normal images under :math:`\tau_i` (:func:`fit_dirichlet`).

    Returns
    -------
    ndarray (n,), higher = more anomalous (GEOM's normality score with the sign flipped).
    """
    la = _check_posteriors(log_posteriors, "log_posteriors", log=True)
    eta = np.asarray(eta, dtype=np.float64)
    if eta.shape != la.shape[1:]:
        raise ValueError(f"eta must be (T, T) = {la.shape[1:]} (one Dirichlet per transformation), got {eta.shape}")
    return -dirichlet_log_pdf(la, eta[None]).sum(axis=1)


# --------------------------------------------------------------------------- #
# the detectors
# --------------------------------------------------------------------------- #
_SCORES = ("dirichlet", "simple")


class _TransformationModel(BaseEstimator):
    """Shared parameters, checks and helpers of the two detectors (classifier on TR_new)."""

    def _check_params(self):
        self.transformations_ = _resolve_transformations(self.transformations)
        for name in ("width", "n_features", "batch_size"):
            _check_int(getattr(self, name), name)
        if self.n_epochs is not None:
            _check_int(self.n_epochs, "n_epochs")
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real) or not (np.isfinite(self.lr)
                                                                                       and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not isinstance(self.random_state, numbers.Integral) or isinstance(self.random_state, bool):
            raise TypeError(f"random_state must be an integer, got {self.random_state!r}")
        resolve_device(self.device)

    def _train(self, images):
        self.model_, self.history_ = train_transformation_classifier(
            images, self.transformations_, width=self.width, n_features=self.n_features, n_epochs=self.n_epochs,
            batch_size=self.batch_size, lr=self.lr, random_state=self.random_state, device=self.device,
            progress=self.progress)

    def _check_test_images(self, images):
        check_is_fitted(self, "model_")
        return check_images(images, "images", shape=self.image_shape_)

    def log_posteriors(self, images):
        r"""Log-posteriors (n, T, T) of the transformed images (:func:`transformation_log_posteriors`).

        The result for the last images asked is remembered (with the network that computed
        it), so that the simple and the Dirichlet score of the same images, or the accuracy
        and a score, cost one pass of the :math:`nT` transformed images through the network.
        """
        images = self._check_test_images(images)
        key = (images.shape, hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest())
        last = getattr(self, "_last_log_posteriors", None)
        if last is not None and last[0] == key and last[1] is self.model_:
            return last[2].copy()
        lp = transformation_log_posteriors(self.model_, images, self.transformations_, batch_size=self.batch_size)
        self._last_log_posteriors = (key, self.model_, lp)
        return lp.copy()

    def posteriors(self, images):
        r"""Posteriors :math:`\mathbf{p}_i` (n, T, T): ``[s, i, k]`` = :math:`[\psi(\tau_i(\mathbf{s}))]_k`."""
        return np.exp(self.log_posteriors(images))

    def accuracy(self, images):
        """Fraction of the transformed images :math:`\\tau_i(\\mathbf{s})` whose transformation is recognised."""
        lp = self.log_posteriors(images)
        return float((lp.argmax(axis=2) == np.arange(lp.shape[1])).mean())

    def _features(self, images):
        x, _ = _as_batch(images)
        dev = _model_device(self.model_)
        tau1 = self.transformations_[0]
        out = []
        with torch.no_grad():
            for s in range(0, x.shape[0], self.batch_size):
                out.append(self.model_.features(tau1.apply(x[s:s + self.batch_size].to(dev))).double().cpu())
        return torch.cat(out).numpy()


class GeomDetector(_TransformationModel):
    r"""GEOM (Golan & El-Yaniv 2018): recognise transformations of normal images; score the failures.

    ``fit`` trains :class:`TransformationClassifier` on :math:`TR_{new}` built from
    the normal images (:func:`train_transformation_classifier`), computes the
    log-posteriors of the training images (:func:`transformation_log_posteriors`)
    and fits one Dirichlet per transformation on them (:func:`fit_dirichlet`): row
    :math:`i` of ``dirichlet_`` is :math:`\boldsymbol\eta_i`. ``anomaly_score`` is
    the Dirichlet score :math:`-\sum_i \log P(\mathbf{p}_i\mid\tau_i)` or the
    simple score :math:`1 - \frac1T\sum_i[\mathbf{p}_i]_i` (``score``); both
    are available as methods whatever ``score`` says.

    This is an **image-level** detector (one score per image, no anomaly map).

    Parameters
    ----------
    transformations : str or sequence of Transformation, default "rotations+flips"
        :math:`\mathcal{T}`: a name of :func:`transformation_set` (``"rotations"``,
        ``"rotations+flips"``, ``"geom"``, ``"non-geometric"``) or the transformations
        (the first should be the identity). Rotations need square images.
    score : {"dirichlet", "simple"}, default "dirichlet"
    width : int, default 16
        Channels of the first convolution of :class:`TransformationClassifier`.
    n_features : int, default 64
        Units of its penultimate layer.
    n_epochs : int or None, default None
        Passes over :math:`TR_{new}`; None: :math:`\lceil 200/T \rceil` as in the paper.
    batch_size : int, default 64
    lr : float, default 1e-3
        Adam learning rate.
    random_state : int, default 0
        Seed of the initialisation and of the batch order.
    device : "auto", "cpu", "cuda", ...
    progress : bool, default True
        Progress bar during training.

    Attributes
    ----------
    transformations_ : tuple of Transformation
    model_ : TransformationClassifier
        The trained classifier :math:`\psi` (eval mode).
    history_ : adcourse.deep.training.History
    dirichlet_ : ndarray (T, T)
        :math:`\boldsymbol\eta_i` in row :math:`i`.
    train_accuracy_ : float
        Fraction of :math:`TR_{new}` classified right after training: near
        :math:`1/T` means the classifier cannot tell the transformations apart
        (and then its scores say little about anomalies).
    image_shape_ : tuple

    Examples
    --------
    >>> from adcourse.data import load_digits_oneclass
    >>> d = load_digits_oneclass(normal_digit=3, random_state=0)
    >>> det = GeomDetector(n_epochs=3, progress=False, device="cpu").fit(d.images_train)
    >>> det.dirichlet_.shape, det.posteriors(d.images_test[:2]).shape
    ((8, 8), (2, 8, 8))
    >>> det.anomaly_score(d.images_test[:2]).shape
    (2,)
    """

    def __init__(self, transformations="rotations+flips", score="dirichlet", width=16, n_features=64,
                 n_epochs=None, batch_size=64, lr=1e-3, random_state=0, device="auto", progress=True):
        self.transformations = transformations
        self.score = score
        self.width = width
        self.n_features = n_features
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def fit(self, images, y=None):
        """Train the classifier on :math:`TR_{new}` of the normal ``images`` and fit the Dirichlets.

        ``y`` is ignored: the model sees normal images only.
        """
        if self.score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {self.score!r}")
        self._check_params()
        images = check_images(images, "images")
        if len(images) < 2:
            raise ValueError(f"GeomDetector needs at least 2 normal training images, got {len(images)}")
        self.image_shape_ = images.shape[1:]
        self._train(images)
        lp = self.log_posteriors(images)                    # (n, T, T)
        self.dirichlet_ = fit_dirichlet(lp.transpose(1, 0, 2))  # one Dirichlet per transformation
        self.train_accuracy_ = float((lp.argmax(axis=2) == np.arange(lp.shape[1])).mean())
        return self

    def simple_score(self, images):
        r""":math:`1 - \frac1T\sum_i[\mathbf{p}_i]_i` of each image, shape (n,)."""
        return simple_score(self.posteriors(images))

    def dirichlet_score(self, images):
        r""":math:`-\sum_i \log \mathrm{Dir}(\mathbf{p}_i; \boldsymbol\eta_i)` of each image, shape (n,)."""
        return dirichlet_score(self.log_posteriors(images), self.dirichlet_)

    def anomaly_score(self, images):
        """Anomaly score of each image (the ``score`` chosen), shape (n,), higher = more anomalous."""
        return self.dirichlet_score(images) if self.score == "dirichlet" else self.simple_score(images)

    def features(self, images):
        r"""Penultimate-layer features :math:`\psi'(\tau_1(\mathbf{s}))` (n, n_features) of the images."""
        return self._features(self._check_test_images(images))


class TwoStepSelfSupervised(_LatentSpace, _TransformationModel):
    r"""The lecture's two-step approach: self-supervised features, then a chapter-2 detector.

    ``fit`` splits the normal images at random into two parts :math:`TR_1` and
    :math:`TR_2` (a fraction ``split`` in :math:`TR_1`); step 1 trains the
    transformation classifier on :math:`TR_{new}` of :math:`TR_1`
    (:func:`train_transformation_classifier`); step 2 takes the penultimate-layer
    features :math:`\psi'(\mathbf{s})` of the images of :math:`TR_2` (the
    untransformed image, :math:`\tau_1 =` identity), optionally standardises them and
    reduces them by PCA, and fits the chapter-2 ``detector`` on them (the chain of
    :class:`adcourse.deep.latent.LatentImageDetector`). The classifier's own training
    images would look more normal to it than new normal images do: the detector is
    fitted on images the classifier never saw, as the lecture's remark asks.

    Parameters
    ----------
    transformations, width, n_features, n_epochs, batch_size, lr, device, progress
        As in :class:`GeomDetector` (for the classifier of step 1).
    detector : None, "knn", "gaussian" or a vector detector, default None
        Step 2; None and ``"knn"``: distance to the nearest normal feature vector
        (:class:`adcourse.vectors.distance.KNNDetector`, ``n_neighbors=1``); an instance is cloned.
    n_components : int, float in (0, 1) or None, default None
        PCA of the features before the detector (None: no PCA).
    standardize : bool, default False
        Standardise each feature (over :math:`TR_2`) before the PCA.
    split : float in (0, 1), default 0.5
        Fraction of the training images in :math:`TR_1` (at least 2 images in each part).
    random_state : int, default 0
        Seed of the split, the initialisation and the batch order.

    Attributes
    ----------
    model_, history_, transformations_, image_shape_
        As in :class:`GeomDetector`.
    classifier_index_ : ndarray of int
        Indices (into the ``fit`` images) of :math:`TR_1`; the others form :math:`TR_2`.
    scaler_, pca_, n_components_, detector_
        The chain of step 2 (see :class:`adcourse.deep.latent.LatentImageDetector`).

    Examples
    --------
    >>> from adcourse.data import load_digits_oneclass
    >>> d = load_digits_oneclass(normal_digit=3, random_state=0)
    >>> det = TwoStepSelfSupervised(n_epochs=3, progress=False, device="cpu").fit(d.images_train)
    >>> det.features(d.images_test[:2]).shape, det.anomaly_score(d.images_test[:2]).shape
    ((2, 64), (2,))
    """

    _default_k = 1
    _unit = "one per image of the second half"

    def __init__(self, transformations="rotations+flips", detector=None, n_components=None, standardize=False,
                 split=0.5, width=16, n_features=64, n_epochs=None, batch_size=64, lr=1e-3, random_state=0,
                 device="auto", progress=True):
        self.transformations = transformations
        self.detector = detector
        self.n_components = n_components
        self.standardize = standardize
        self.split = split
        self.width = width
        self.n_features = n_features
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def fit(self, images, y=None):
        """Step 1 on one part of the normal ``images``, step 2 on the other. ``y`` is ignored."""
        self._check_params()
        self._check_space_params()
        sp = self.split
        if isinstance(sp, bool) or not isinstance(sp, numbers.Real) or not 0 < sp < 1:
            raise ValueError(f"split must be a fraction in (0, 1), got {sp!r}")
        images = check_images(images, "images")
        n = len(images)
        if n < 4:
            raise ValueError(f"TwoStepSelfSupervised needs at least 4 normal training images (2 per part), got {n}")
        self.image_shape_ = images.shape[1:]
        n1 = min(max(2, int(round(sp * n))), n - 2)
        order = np.random.default_rng(int(self.random_state)).permutation(n)
        self.classifier_index_ = np.sort(order[:n1])
        self._train(images[self.classifier_index_])
        self._fit_space(self._features(images[np.sort(order[n1:])]))
        return self

    def features(self, images):
        r"""Penultimate-layer features :math:`\psi'(\mathbf{s})` (n, n_features), before standardisation and PCA."""
        return self._features(self._check_test_images(images))

    def anomaly_score(self, images):
        """Score of the chapter-2 detector on the (reduced) features, shape (n,), higher = more anomalous."""
        return np.asarray(self.detector_.anomaly_score(self._reduce(self.features(images))), dtype=np.float64)
