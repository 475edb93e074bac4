r"""Deep SVDD (Ruff et al., ICML 2018): a hypersphere in a feature space learned from normal data.

Kernel SVDD (chapter 2, :class:`adcourse.vectors.SVDDDetector`) encloses the normal data
in the smallest hypersphere of a feature space fixed by a kernel. Deep SVDD **learns**
the feature map: a network :math:`\psi_\theta` maps every normal training image
:math:`\mathbf{s}_n` close to a centre :math:`\mathbf{c}`, so that normal images
end up inside a small sphere and anything unlike them outside. Two objectives:

* **soft-boundary** Deep SVDD, the lecture's first form, the direct analogue of SVDD,

  .. math::

      \min_{R,\theta}\; R^2 + \frac{1}{\nu N}\sum_{n=1}^{N}
      \max\{0,\ \lVert\psi_\theta(\mathbf{s}_n)-\mathbf{c}\rVert^2 - R^2\}
      + \lambda\lVert\theta\rVert^2 ,

  whose anomaly score is :math:`\lVert\psi_\theta(\mathbf{s})-\mathbf{c}\rVert^2 - R^2`
  (positive outside the sphere). For a fixed :math:`\theta` the optimal :math:`R` is the
  :math:`(1-\nu)`-quantile of the distances :math:`\lVert\psi_\theta(\mathbf{s}_n)-\mathbf{c}\rVert`
  (the subgradient in :math:`R^2` is :math:`1 - \#\{\text{outside}\}/(\nu N)`), so at most a
  fraction :math:`\nu` of the training images fall outside: :math:`\nu` bounds the
  false-positive rate on the training data (:func:`radius_from_distances`);
* **one-class** Deep SVDD, the lecture's simpler form,

  .. math::

      \min_{\theta}\; \frac{1}{N}\sum_{n=1}^{N}\lVert\psi_\theta(\mathbf{s}_n)-\mathbf{c}\rVert^2
      + \lambda\lVert\theta\rVert^2 ,

  whose score is :math:`\lVert\psi_\theta(\mathbf{s})-\mathbf{c}\rVert^2`; there is no
  :math:`R` and no bound on the FPR, so the threshold is chosen on normal validation scores
  (:meth:`adcourse.decision.Threshold.from_fpr`).

**Hypersphere collapse.** Both objectives have trivial minima: a network that maps
*every* input to :math:`\mathbf{c}` has loss 0 (one-class) or :math:`R = 0` (soft-boundary)
and a useless constant score. The lecture's constraints close the doors to it, and
:func:`check_collapse_guards` enforces each one:

* **no bias terms** — with a bias in the last layer, weights 0 and bias :math:`\mathbf{c}`
  is the constant map :math:`\psi \equiv \mathbf{c}`;
* **no learned affine batch norm** — its shift :math:`\beta` is a bias in disguise (and its
  scale :math:`\gamma = 0` cuts the input off);
* **unbounded activations** (leaky ReLU here) — a saturated sigmoid or tanh outputs the
  same constant for every input (a plain ReLU is unbounded above, but a unit whose input
  is negative for every image outputs 0 for all of them: with biases, a network of dead
  ReLUs plus a last bias *is* the constant map, and training finds it);
* **c is computed from data, not learned, and not 0** — learning :math:`\mathbf{c}` with
  :math:`\theta` lets both shrink to 0; :math:`\mathbf{c} = \mathbf{0}` is reached by all-zero
  weights. Here :math:`\mathbf{c}` is the mean of :math:`\psi_{\theta_0}` over the training
  images in an initial forward pass (after the optional autoencoder pretraining), fixed
  afterwards, and every component with :math:`|c_i| < \varepsilon` is pushed to
  :math:`\pm\varepsilon` (:func:`init_center`).

Implementation (:class:`DeepSVDD`): the network is :func:`deep_svdd_network`, a small
LeNet-type CNN without any bias (two stages of convolution, batch norm without affine
parameters and leaky ReLU, then a linear map to ``rep_dim`` features), built from the
encoder of chapter 6 (:class:`adcourse.deep.autoencoders.ConvEncoder`), for any input size
(28×28 MNIST, 32×32 CIFAR, 16×16 or 8×8 digits, ...); the optional pretraining trains it
as the encoder of chapter 6's autoencoder with the same bias-free layers. It is trained by the course's one loop :func:`adcourse.deep.training.fit_model` with Adam;
:math:`\lambda\lVert\theta\rVert^2` is the optimiser's weight decay (``weight_decay`` =
:math:`2\lambda`). The soft-boundary radius starts at 0, stays there for ``warm_up_epochs``
epochs and is then set at the start of every epoch to the :math:`(1-\nu)`-quantile of the
distances seen during the previous epoch (the reference code updates it batch by batch);
after the last epoch it is set once more from the final network on all training images,
the exact minimiser in :math:`R` for the final :math:`\theta`.

References
----------
L. Ruff, R. Vandermeulen, N. Görnitz, L. Deecke, S. Siddiqui, A. Binder, E. Müller,
M. Kloft, "Deep one-class classification", ICML 2018 (and its reference code,
github.com/lukasruff/Deep-SVDD-PyTorch).
D. Tax, R. Duin, "Support vector data description", Machine Learning 54, 2004.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from adcourse.decision import Threshold
from adcourse.deep.training import fit_model, predict, resolve_device, seeded
from adcourse.validation import check_fraction, check_images

__all__ = [
    "deep_svdd_network",
    "DeepSVDD",
    "init_center",
    "radius_from_distances",
    "deep_svdd_loss",
    "check_collapse_guards",
    "OBJECTIVES",
]

#: the two objectives of Ruff et al. (2018)
OBJECTIVES = ("one-class", "soft-boundary")

#: activation modules bounded above and below: their saturation gives constant outputs
_BOUNDED = (nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardsigmoid, nn.Softsign, nn.Softmax)  # ReLU6 is a Hardtanh
#: normalisations whose learned affine transform (scale and shift) is a bias in disguise
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


# --------------------------------------------------------------------------- #
# the pieces of the method, as functions (the exercise rebuilds them)
# --------------------------------------------------------------------------- #
def init_center(features, eps=0.1):
    r"""The centre :math:`\mathbf{c}`: mean of the initial features, pushed away from 0.

    .. math::

        \mathbf{c} = \frac1N\sum_{n=1}^N \psi_{\theta_0}(\mathbf{s}_n), \qquad
        c_i \leftarrow \begin{cases} -\varepsilon & -\varepsilon < c_i < 0\\
        +\varepsilon & 0 \le c_i < \varepsilon \end{cases}

    A component near 0 could be matched by weights near 0, the first step of a
    collapse; :math:`\pm\varepsilon` keeps the sign of the mean (an exact 0 goes
    to :math:`+\varepsilon`; the reference code leaves it at 0).

    Parameters
    ----------
    features : array (N, d)
        :math:`\psi_{\theta_0}(\mathbf{s}_n)` of the training images (initial forward pass).
    eps : float > 0, default 0.1
        :math:`\varepsilon`.

    Returns
    -------
    ndarray (d,), float64

    Examples
    --------
    >>> init_center([[0.5, 0.02, -0.3, 0.0], [0.7, 0.04, 0.2, 0.0]], eps=0.1).tolist()
    [0.6, 0.1, -0.1, 0.1]
    """
    z = np.asarray(features, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"features must be a non-empty (N, d) array, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("features contains NaN or inf: the network diverged on the training images")
    eps = _check_positive(eps, "eps")
    c = z.mean(axis=0)
    small = np.abs(c) < eps
    c[small] = np.where(c[small] < 0, -eps, eps)
    return c


def radius_from_distances(distances, nu):
    r"""The soft-boundary radius :math:`R`: the :math:`(1-\nu)`-quantile of the distances.

    ``distances`` are :math:`d_n = \lVert\psi_\theta(\mathbf{s}_n)-\mathbf{c}\rVert` (squared
    distances give :math:`R^2`: the quantile commutes with any increasing map). The quantile
    is the order statistic :math:`R = d_{(k)}`, :math:`k = \lceil (1-\nu) N \rceil` (the
    smallest :math:`d_n` with at least a fraction :math:`1-\nu` of the distances at or below
    it; numpy's ``method="inverted_cdf"``), so at most :math:`\lfloor \nu N \rfloor` distances
    exceed :math:`R`, and the ones on the sphere are training images. (The reference code
    interpolates between two order statistics; the bound is the same.)

    >>> radius_from_distances([1.0, 2.0, 3.0, 4.0, 5.0], nu=0.25)   # k = ceil(0.75 * 5) = 4
    4.0
    >>> radius_from_distances([1.0, 2.0, 3.0, 4.0, 5.0], nu=0.2)    # k = 4: one distance outside
    4.0
    """
    d = np.asarray(distances, dtype=np.float64).ravel()
    if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError("distances must be a non-empty array of finite numbers >= 0")
    nu = check_fraction(nu, "nu", inclusive=(False, True))
    return float(np.quantile(d, 1.0 - nu, method="inverted_cdf"))


def deep_svdd_loss(sq_distances, objective="one-class", radius=0.0, nu=0.1):
    r"""The data term of a Deep SVDD objective on a batch (without :math:`\lambda\lVert\theta\rVert^2`).

    ``sq_distances`` are :math:`d_n = \lVert\psi_\theta(\mathbf{s}_n)-\mathbf{c}\rVert^2`
    (a torch tensor, to keep the gradient, or an array). One-class:
    :math:`\frac1N\sum_n d_n`; soft-boundary:
    :math:`R^2 + \frac{1}{\nu N}\sum_n \max\{0, d_n - R^2\}`.

    >>> import torch
    >>> d = torch.tensor([1.0, 2.0, 6.0])
    >>> float(deep_svdd_loss(d)), float(deep_svdd_loss(d, "soft-boundary", radius=2.0, nu=0.5))
    (3.0, 5.333333492279053)
    """
    d = sq_distances if isinstance(sq_distances, torch.Tensor) else torch.as_tensor(
        np.asarray(sq_distances, dtype=np.float64))
    if objective == "one-class":
        return d.mean()
    if objective == "soft-boundary":
        r2 = float(radius) ** 2
        return r2 + torch.clamp(d - r2, min=0).mean() / float(nu)
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def check_collapse_guards(network, center=None, eps=0.1):
    r"""The lecture's constraints against hypersphere collapse that ``network`` (and ``center``) break.

    Returns a list of sentences, empty when every constraint holds: no bias terms
    (a ``bias`` parameter of any module), no batch/group/layer/instance norm with a
    learned affine transform, no bounded activation module (sigmoid, tanh,
    hard-tanh, ...; activations called as functions inside ``forward`` cannot be
    seen), and, if ``center`` is given, no component with :math:`|c_i| < \varepsilon`.

    >>> import torch.nn as nn
    >>> check_collapse_guards(nn.Sequential(nn.Linear(3, 2), nn.Tanh()))
    ['0 has a bias term (bias of shape (2,))', '1 is a bounded activation (Tanh)']
    >>> check_collapse_guards(deep_svdd_network((1, 16, 16)))
    []
    """
    problems = []
    for name, module in network.named_modules():
        label = name or type(module).__name__
        if isinstance(module, _NORMS):
            if getattr(module, "affine", False) or getattr(module, "elementwise_affine", False):
                problems.append(f"{label} is a normalisation with a learned affine transform "
                                "(its shift is a bias)")
        elif isinstance(getattr(module, "bias", None), torch.Tensor):
            problems.append(f"{label} has a bias term (bias of shape {tuple(module.bias.shape)})")
        if isinstance(module, _BOUNDED):
            problems.append(f"{label} is a bounded activation ({type(module).__name__})")
    if center is not None:
        c = np.asarray(center, dtype=np.float64).ravel()
        near = np.flatnonzero(np.abs(c) < eps)
        if near.size:
            problems.append(
                f"the centre has {near.size} component(s) with |c_i| < eps = {eps:g} "
                f"(first at index {int(near[0])}: {c[near[0]]:.3g})"
            )
    return problems


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- #
# the network
# --------------------------------------------------------------------------- #
def deep_svdd_network(input_shape, channels=(8, 4), rep_dim=32, *, bias=False, batch_norm=True,
                      affine=False, negative_slope=0.1):
    r"""The network :math:`\psi_\theta` of Deep SVDD: image (n, C, H, W) -> (n, rep_dim), without bias.

    A small LeNet-type CNN built from chapter 6's blocks
    (:class:`adcourse.deep.autoencoders.ConvEncoder`): one stage per entry of
    ``channels`` (3×3 convolution of stride 2, batch norm **without** learned affine
    parameters, leaky ReLU), then a linear map without bias from the last map to
    ``rep_dim`` features. With the defaults it has the channels of the MNIST network of
    Ruff et al. (2018) (8 and 4 channels, 32 features; theirs uses 5×5 convolutions and
    max pooling where the course's encoder uses strided convolutions); with
    ``channels=(32, 64, 128)`` and ``rep_dim=128``, those of their CIFAR-10 network. The
    same encoder, with a decoder, is the autoencoder used to pretrain it
    (``DeepSVDD(pretrain_epochs=...)``).

    ``bias``, ``batch_norm=False``, ``affine`` and ``negative_slope=0`` (a plain ReLU,
    whose units can die) exist to **break** the guards on purpose, for the collapse
    demonstrations; :class:`DeepSVDD` refuses biases and affine batch norm unless
    ``guard=False``.

    Parameters
    ----------
    input_shape : (C, H, W)
        Shape of one image (any H, W >= 1: 28×28 MNIST, 32×32 CIFAR, 16×16 digits, ...).
    channels : tuple of int, default (8, 4)
    rep_dim : int, default 32
        Dimension :math:`d` of the feature space.
    bias, batch_norm, affine, negative_slope
        As in :func:`adcourse.deep.autoencoders.conv_block`.

    Returns
    -------
    adcourse.deep.autoencoders.ConvEncoder

    Examples
    --------
    >>> import torch
    >>> net = deep_svdd_network((1, 28, 28))
    >>> net(torch.rand(2, 1, 28, 28)).shape, net.grid
    (torch.Size([2, 32]), (7, 7))
    >>> sum(p.numel() for p in net.parameters())   # 8*9 + 4*8*9 + 4*7*7*32
    6632
    >>> check_collapse_guards(net)
    []
    """
    from adcourse.deep.autoencoders import ConvEncoder

    c, h, w = (int(v) for v in input_shape)
    return ConvEncoder(c, widths=tuple(channels), strides=2, latent_dim=rep_dim, image_size=(h, w), bias=bias,
                       batch_norm=batch_norm, affine=affine, negative_slope=negative_slope)


# --------------------------------------------------------------------------- #
# training objective for the shared loop
# --------------------------------------------------------------------------- #
class _Objective:
    """``loss_fn(model, x)`` of :func:`fit_model`, holding :math:`\\mathbf{c}` and the soft-boundary :math:`R`.

    Soft-boundary: the squared distances of an epoch are kept; at the first step of
    each epoch after ``warm_up_epochs`` the radius becomes the (1 - nu)-quantile of
    the previous epoch's distances. ``steps_per_epoch`` is what :func:`fit_model`
    takes (``ceil(n / batch_size)``, or ``n // batch_size`` with ``drop_last``).
    """

    def __init__(self, center, objective, nu, warm_up_epochs, steps_per_epoch):
        self.center = center
        self.objective = objective
        self.nu = nu
        self.warm_up_epochs = warm_up_epochs
        self.steps_per_epoch = steps_per_epoch
        self.radius = 0.0
        self.radii = []  # R during each epoch
        self._step = 0
        self._epoch_d2 = []

    def __call__(self, model, x):
        if self._step % self.steps_per_epoch == 0:  # a new epoch starts
            epoch = self._step // self.steps_per_epoch
            if self.objective == "soft-boundary" and epoch >= self.warm_up_epochs and self._epoch_d2:
                d2 = torch.cat(self._epoch_d2).cpu().numpy()
                self.radius = float(np.sqrt(radius_from_distances(d2, self.nu)))
            self._epoch_d2 = []
            self.radii.append(self.radius)
        self._step += 1
        d2 = ((model(x) - self.center) ** 2).sum(dim=1)
        self._epoch_d2.append(d2.detach())
        return deep_svdd_loss(d2, self.objective, self.radius, self.nu)


def _reconstruction_loss(model, x):
    return F.mse_loss(model(x), x)


# --------------------------------------------------------------------------- #
# the detector
# --------------------------------------------------------------------------- #
class DeepSVDD(BaseEstimator):
    r"""Deep SVDD (Ruff et al., 2018), one-class or soft-boundary, guarded against collapse.

    ``fit`` builds the network (``network``, or :func:`deep_svdd_network` for the image
    shape), checks the constraints against collapse (:func:`check_collapse_guards`),
    optionally pretrains it as the encoder of an autoencoder, computes the centre
    :math:`\mathbf{c}` from an initial forward pass (:func:`init_center`), and trains
    :math:`\theta` on the objective with :func:`adcourse.deep.training.fit_model` (see the
    module docstring for the math). ``anomaly_score`` is
    :math:`\lVert\psi_\theta(\mathbf{s})-\mathbf{c}\rVert^2` (one-class) or
    :math:`\lVert\psi_\theta(\mathbf{s})-\mathbf{c}\rVert^2 - R^2` (soft-boundary, > 0 outside
    the sphere; :meth:`sphere_threshold` is that decision rule as a
    :class:`~adcourse.decision.Threshold`).

    Parameters
    ----------
    objective : {"one-class", "soft-boundary"}, default "one-class"
    nu : float in (0, 1], default 0.1
        Soft-boundary: the bound on the fraction of training images outside the
        sphere. Ignored by the one-class objective.
    rep_dim : int, default 32
        Output dimension of the default network.
    channels : tuple of int, default (8, 4)
        Convolution channels of the default network (one pooling stage each).
    network : torch.nn.Module or None, default None
        Your own :math:`\psi_\theta` mapping (n, C, H, W) tensors in [0, 1] to (n, d);
        it is copied at ``fit``, never modified. None: :func:`deep_svdd_network` with
        ``channels`` and ``rep_dim``, initialised with ``random_state``.
    center : None or array (d,), default None
        None: :math:`\mathbf{c}` from the data (:func:`init_center`). An array: that
        centre (with ``guard``, every :math:`|c_i| \geq` ``eps`` is required).
    eps : float, default 0.1
        :math:`\varepsilon` of the centre rule.
    n_epochs : int, default 50
    batch_size : int, default 64
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 1e-6
        Adam's weight decay, i.e. :math:`2\lambda` for the penalty :math:`\lambda\lVert\theta\rVert^2`.
    optimizer : {"adam", "adamw", "sgd"}, default "adam"
        Of :func:`adcourse.deep.training.fit_model`; with ``"adamw"`` the decay is decoupled
        from the gradient (every step multiplies the weights by ``1 - lr * weight_decay``).
    warm_up_epochs : int, default 10
        Soft-boundary: epochs with :math:`R = 0` before the radius updates start.
    pretrain_epochs : int, default 0
        Epochs of autoencoder pretraining of the network (0: none, random initialisation).
    guard : bool, default True
        Refuse networks and centres that break the constraints against collapse
        (ValueError naming them). ``False`` only to demonstrate the collapse.
    random_state : int, default 0
        Seed of the initialisation and of the batch order: same seed, same scores.
    device : "auto", "cpu", "cuda", ...
    progress : bool, default True
        Progress bars of the training loops.

    Attributes
    ----------
    network_ : torch.nn.Module
        The trained :math:`\psi_\theta` (eval mode).
    center_ : ndarray (d,)
        :math:`\mathbf{c}` (never updated during training).
    radius_ : float or None
        :math:`R` (soft-boundary), None for one-class.
    squared_radius_ : float or None
        :math:`R^2`, the :math:`(1-\nu)`-quantile of the squared training distances (one of them).
    radii_ : list of float
        Soft-boundary :math:`R` used during each epoch.
    history_ : adcourse.deep.training.History
        Training loss per epoch (data term + nothing else: the weight decay is in the optimiser).
    pretrain_history_ : History or None
        Reconstruction loss of the pretraining.
    train_scores_ : ndarray (N,)
        Scores of the training images after training.
    training_outlier_fraction_ : float or None
        Soft-boundary: fraction of training images outside the sphere (:math:`\leq \nu`).
    image_shape_ : tuple
        Shape of one training image.

    Examples
    --------
    >>> from adcourse import data, metrics
    >>> split = data.load_digits_oneclass(normal_digit=0, size=16, random_state=0)   # 16 x 16 digits
    >>> det = DeepSVDD(n_epochs=20, progress=False, device="cpu").fit(split.images_train)   # zeros only
    >>> det.center_.shape, det.anomaly_score(split.images_test).shape
    ((32,), (901,))
    >>> bool(metrics.roc_auc(det.anomaly_score(split.images_test), split.y_test) > 0.9)   # 0 vs 1..9
    True
    """

    def __init__(self, objective="one-class", nu=0.1, rep_dim=32, channels=(8, 4), network=None,
                 center=None, eps=0.1, n_epochs=50, batch_size=64, lr=1e-3, weight_decay=1e-6,
                 optimizer="adam", warm_up_epochs=10, pretrain_epochs=0, guard=True, random_state=0,
                 device="auto", progress=True):
        self.objective = objective
        self.nu = nu
        self.rep_dim = rep_dim
        self.channels = channels
        self.network = network
        self.center = center
        self.eps = eps
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.warm_up_epochs = warm_up_epochs
        self.pretrain_epochs = pretrain_epochs
        self.guard = guard
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        check_fraction(self.nu, "nu", inclusive=(False, True))
        for name, minimum in (("rep_dim", 1), ("n_epochs", 1), ("batch_size", 1),
                              ("warm_up_epochs", 0), ("pretrain_epochs", 0)):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        _check_positive(self.eps, "eps")
        _check_positive(self.lr, "lr")
        wd = self.weight_decay
        if isinstance(wd, bool) or not isinstance(wd, numbers.Real) or not (np.isfinite(wd) and wd >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {wd!r}")
        if self.network is not None and not isinstance(self.network, nn.Module):
            raise TypeError(f"network must be None or a torch.nn.Module, got {type(self.network).__name__}")
        if not isinstance(self.random_state, numbers.Integral) or isinstance(self.random_state, bool):
            raise ValueError(f"random_state must be an integer, got {self.random_state!r}")
        resolve_device(self.device)

    @staticmethod
    def _as_input(images):
        """Validated images as a float32 (n, C, H, W) array."""
        x = images[:, None] if images.ndim == 3 else images
        return np.ascontiguousarray(x, dtype=np.float32)

    def _check_test_images(self, images):
        check_is_fitted(self, "network_")
        return check_images(images, "images", shape=self.image_shape_)

    # ------------------------------------------------------------------- fit
    def _build_network(self, x):
        if self.network is not None:
            return copy.deepcopy(self.network)
        with seeded(int(self.random_state)):
            return deep_svdd_network(x.shape[1:], channels=self.channels, rep_dim=self.rep_dim)

    def _center(self, net, x, device):
        """:math:`\\mathbf{c}`: ``center``, or :func:`init_center` of an initial forward pass over ``x``.

        The forward pass runs in training mode (batch norm normalises with the statistics
        of each batch of ``batch_size`` images, as the loss will see them), without gradient.
        """
        bs = min(int(self.batch_size), len(x))
        stops = list(range(bs, len(x), bs)) + [len(x)]
        if len(stops) > 1 and stops[-1] - stops[-2] == 1:  # no batch of one image (batch norm)
            del stops[-2]
        net.to(device).train()
        with torch.no_grad():
            z = torch.cat([net(torch.as_tensor(x[a:b]).to(device)).cpu()
                           for a, b in zip([0] + stops[:-1], stops)]).numpy()
        if z.ndim != 2:
            raise ValueError(f"the network must map (n, C, H, W) images to (n, d) features, got shape {z.shape}")
        if self.center is None:
            return init_center(z, float(self.eps))
        center = np.asarray(self.center, dtype=np.float64)
        if center.shape != (z.shape[1],) or not np.all(np.isfinite(center)):
            raise ValueError(f"center must be a finite array of shape ({z.shape[1]},) (the network's "
                             f"output dimension), got shape {center.shape}")
        return center.copy()

    def fit(self, images, y=None):
        """Train the network on normal ``images`` (n, H, W) or (n, C, H, W) in [0, 1]; ``y`` is ignored."""
        self._check_params()
        images = check_images(images, "images")
        if len(images) < 2:
            raise ValueError(f"need at least 2 normal training images, got {len(images)}")
        self.image_shape_ = images.shape[1:]
        x = self._as_input(images)
        device = resolve_device(self.device)
        batch_size = min(int(self.batch_size), len(x))
        self.pretrain_history_ = None
        if self.pretrain_epochs:
            if self.network is not None:
                raise ValueError("pretrain_epochs > 0 pretrains the default network: leave network=None "
                                 "(or pretrain your own network before passing it)")
            net, self.pretrain_history_ = self._pretrained_encoder(x, batch_size, device)
        else:
            net = self._build_network(x)
        self.center_ = self._center(net, x, device)
        if self.guard:
            problems = check_collapse_guards(net, self.center_, float(self.eps))
            if problems:
                raise ValueError(
                    "the network or the centre breaks the constraints against hypersphere collapse: "
                    + "; ".join(problems) + " (use deep_svdd_network and center=None, or guard=False "
                    "to demonstrate the collapse)"
                )
        c = torch.as_tensor(self.center_, dtype=torch.float32, device=device)

        drop_last = len(x) % batch_size == 1  # batch norm cannot train on a batch of one image
        steps_per_epoch = len(x) // batch_size if drop_last else -(-len(x) // batch_size)
        objective = _Objective(c, self.objective, float(self.nu), int(self.warm_up_epochs), steps_per_epoch)
        self.history_ = fit_model(
            net, objective, x, n_epochs=int(self.n_epochs), batch_size=batch_size, lr=float(self.lr),
            weight_decay=float(self.weight_decay), optimizer=self.optimizer, drop_last=drop_last, random_state=int(self.random_state),
            device=device, progress=self.progress, desc=f"Deep SVDD ({self.objective})",
        )
        self.network_ = net.eval()
        d2 = self._sq_distances(x)
        if self.objective == "soft-boundary":
            self.squared_radius_ = radius_from_distances(d2, self.nu)  # an element of d2: exact
            self.radius_ = float(np.sqrt(self.squared_radius_))
            self.radii_ = objective.radii
            self.training_outlier_fraction_ = float(np.mean(d2 > self.squared_radius_))
        else:
            self.radius_ = self.squared_radius_ = self.training_outlier_fraction_ = None
            self.radii_ = []
        self.train_scores_ = self._score_from_sq(d2)
        return self

    def _pretrained_encoder(self, x, batch_size, device):
        r"""The encoder of chapter 6's bias-free autoencoder, trained on ``x`` to reconstruct it.

        The autoencoder :math:`\mathcal D(\mathcal E(\mathbf s))` has the encoder
        :func:`deep_svdd_network` (same channels, ``rep_dim`` code, no bias, no affine
        batch norm) and the mirrored decoder; it minimises the mean squared
        reconstruction error :math:`\frac1N\sum_n\lVert\mathbf s_n-\hat{\mathbf s}_n\rVert^2`
        for ``pretrain_epochs`` epochs (same optimiser settings). Returns the encoder and
        the History.
        """
        from adcourse.deep.autoencoders import ConvAutoencoder

        c, h, w = x.shape[1:]
        with seeded(int(self.random_state)):
            ae = ConvAutoencoder(c, widths=tuple(self.channels), strides=2, latent_dim=self.rep_dim,
                                 image_size=(h, w), bias=False, affine=False)
        history = fit_model(
            ae, _reconstruction_loss, x, n_epochs=int(self.pretrain_epochs), batch_size=batch_size,
            lr=float(self.lr), weight_decay=float(self.weight_decay), optimizer=self.optimizer,
            drop_last=len(x) % batch_size == 1, random_state=int(self.random_state), device=device,
            progress=self.progress, desc="autoencoder pretraining",
        )
        return ae.encoder, history

    # --------------------------------------------------------------- scoring
    def _sq_distances(self, x):
        z = predict(self.network_, x, batch_size=256)
        return ((z.astype(np.float64) - self.center_) ** 2).sum(axis=1)

    def _score_from_sq(self, d2):
        return d2 - self.squared_radius_ if self.objective == "soft-boundary" else d2

    def features(self, images):
        r""":math:`\psi_\theta(\mathbf{s})`, shape (n, d)."""
        images = self._check_test_images(images)
        return predict(self.network_, self._as_input(images), batch_size=256).astype(np.float64)

    def distances(self, images):
        r""":math:`\lVert\psi_\theta(\mathbf{s})-\mathbf{c}\rVert` (not squared), shape (n,)."""
        images = self._check_test_images(images)
        return np.sqrt(self._sq_distances(self._as_input(images)))

    def anomaly_score(self, images):
        r"""Anomaly score, shape (n,), higher = more anomalous: :math:`\lVert\psi-\mathbf{c}\rVert^2` (- :math:`R^2`)."""
        images = self._check_test_images(images)
        return self._score_from_sq(self._sq_distances(self._as_input(images)))

    def sphere_threshold(self):
        """Soft-boundary decision rule: detected strictly outside the sphere, ``score > 0``.

        A :class:`~adcourse.decision.Threshold` at the smallest positive float (it detects
        ``score >=`` its value), so that the training images on the sphere are normal and
        at most a fraction :math:`\nu` of the training images is detected.
        """
        check_is_fitted(self, "network_")
        if self.objective != "soft-boundary":
            raise ValueError(
                "the one-class objective has no radius: choose the threshold on normal validation "
                "scores, e.g. Threshold.from_fpr(det.anomaly_score(normal_val), fpr)"
            )
        return Threshold(np.nextafter(0.0, 1.0), "deep_svdd_sphere", {"nu": float(self.nu), "R": self.radius_})
