r"""DAGMM: the Deep Autoencoding Gaussian Mixture Model (Zong et al., ICLR 2018).

Feature monitoring with an autoencoder (:class:`adcourse.deep.autoencoders.AutoencoderGMMDetector`)
learns the code for reconstruction and fits the mixture afterwards: the two are
**not jointly learned**. DAGMM trains them together, so that the code is shaped
to be well described by a Gaussian mixture.

**Compression network.** An autoencoder gives the code
:math:`\mathbf z_c = \mathcal E(\mathbf s)` and the reconstruction
:math:`\hat{\mathbf s} = \mathcal D(\mathbf z_c)`; two reconstruction features
are appended,

.. math::

    \mathbf z = \Bigl[\mathbf z_c,\ \frac{\lVert \mathbf s - \hat{\mathbf s}\rVert_2}{\lVert \mathbf s\rVert_2},\
        \frac{\mathbf s^\top \hat{\mathbf s}}{\lVert \mathbf s\rVert_2 \lVert \hat{\mathbf s}\rVert_2}\Bigr]
    \in \mathbb R^{m + 2}

(relative Euclidean error and cosine similarity).

**Estimation network.** A small MLP with a softmax output predicts the
membership of :math:`\mathbf z_i` in each of :math:`K` components,
:math:`\hat{\boldsymbol\gamma}_i = \mathrm{softmax}(\mathrm{MLP}(\mathbf z_i))`. On a
batch of :math:`N` samples, the mixture parameters are those of an M-step with
these memberships,

.. math::

    \hat\phi_k = \frac1N\sum_i \hat\gamma_{ik}, \qquad
    \hat\mu_k = \frac{\sum_i \hat\gamma_{ik}\mathbf z_i}{\sum_i \hat\gamma_{ik}}, \qquad
    \hat\Sigma_k = \frac{\sum_i \hat\gamma_{ik}(\mathbf z_i - \hat\mu_k)(\mathbf z_i - \hat\mu_k)^\top}
                        {\sum_i \hat\gamma_{ik}},

and the **sample energy** is the negative log-likelihood under that mixture,

.. math::

    E(\mathbf z) = -\log \sum_{k=1}^K \hat\phi_k\,
        \frac{\exp\bigl(-\frac12 (\mathbf z - \hat\mu_k)^\top \hat\Sigma_k^{-1} (\mathbf z - \hat\mu_k)\bigr)}
             {\sqrt{\lvert 2\pi\hat\Sigma_k\rvert}} .

**Objective.** Both networks are trained together on normal data, minimising

.. math::

    J = \frac1N \sum_i \lVert \mathbf s_i - \hat{\mathbf s}_i\rVert_2^2
        + \frac{\lambda_1}{N}\sum_i E(\mathbf z_i)
        + \lambda_2 \sum_{k=1}^K \sum_{j} \frac{1}{\hat\Sigma_{k,jj}} ,

where the last term keeps the covariances from collapsing (a component sitting
on one point has an arbitrarily low energy). At test time the mixture
parameters are estimated once, from the memberships of **the whole training
set**, and the anomaly score is :math:`E(\mathbf z)`.

Numerics (and three bugs of a widely copied PyTorch implementation, each tested
in ``tests/test_dagmm.py``):

* the energy is computed in the log domain with log-sum-exp: far from every
  component all the exponentials underflow and :math:`\log 0 = -\infty`; with
  :math:`a_k = \log\hat\phi_k - \frac12 \mathrm{maha}_k - \frac12\log\lvert 2\pi\hat\Sigma_k\rvert`,
  :math:`E = -\bigl(\max_k a_k + \log\sum_k e^{a_k - \max_k a_k}\bigr)`. (The
  reference clamps the exponents to be non-negative before taking their
  maximum; they are never positive, so its maximum is always 0 and the
  "stabilisation" does nothing.)
* :math:`\hat\Sigma_k + \varepsilon I = L_k L_k^\top` (Cholesky); the Mahalanobis
  distance is :math:`\lVert L_k^{-1}(\mathbf z - \hat\mu_k)\rVert^2` and
  :math:`\log\lvert\hat\Sigma_k\rvert = 2\sum_j \log L_{k,jj}`. (The reference
  takes the product of the Cholesky diagonal — already
  :math:`\sqrt{\lvert\Sigma\rvert}` — and square-roots it again.)
* test energies use the mixture of the whole training set, never the
  parameters left over from the last training batch (as the reference does),
  nor parameters re-estimated on the test batch: a test sample's score does not
  depend on which other samples are scored with it.

A factorisation that fails (a covariance that is not positive definite) stops
training with a :class:`FloatingPointError`, like the NaN guard of
:func:`adcourse.deep.training.fit_model`.

References
----------
B. Zong, Q. Song, M. R. Min, W. Cheng, C. Lumezanu, D. Cho, H. Chen, "Deep
Autoencoding Gaussian Mixture Model for Unsupervised Anomaly Detection", ICLR 2018.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from adcourse.deep.autoencoders import (
    ConvAutoencoder,
    MLPAutoencoder,
    _check_int_param,
    _check_real_param,
    _ImagesOrVectors,
    mlp,
    reconstruction_features,
)
from adcourse.deep.training import fit_model, seeded

__all__ = ["gmm_parameters", "gmm_energy", "covariance_penalty", "reconstruction_features", "DAGMMNet", "DAGMM"]


# --------------------------------------------------------------------------- #
# the mixture of a batch, its energy, the penalty
# --------------------------------------------------------------------------- #
def gmm_parameters(z, gamma):
    r"""Mixture parameters from soft memberships (an M-step): :math:`\hat\phi, \hat\mu, \hat\Sigma`.

    Parameters
    ----------
    z : tensor (N, d)
        Samples.
    gamma : tensor (N, K)
        Memberships :math:`\hat\gamma_{ik} \ge 0`, rows summing to 1.

    Returns
    -------
    phi : tensor (K,)
        :math:`\hat\phi_k = \frac1N\sum_i\hat\gamma_{ik}`.
    mu : tensor (K, d)
        :math:`\hat\mu_k = \sum_i\hat\gamma_{ik}\mathbf z_i / \sum_i\hat\gamma_{ik}`.
    cov : tensor (K, d, d)
        :math:`\hat\Sigma_k = \sum_i\hat\gamma_{ik}(\mathbf z_i-\hat\mu_k)(\mathbf z_i-\hat\mu_k)^\top / \sum_i\hat\gamma_{ik}`.

    The denominators get 10 machine epsilons, so an empty component divides by
    a positive number (as scikit-learn does).
    """
    if z.ndim != 2 or gamma.ndim != 2 or z.shape[0] != gamma.shape[0]:
        raise ValueError(f"z must be (N, d) and gamma (N, K) with the same N, got {tuple(z.shape)} and "
                         f"{tuple(gamma.shape)}")
    n_k = gamma.sum(0) + 10 * torch.finfo(z.dtype).eps  # (K,)
    phi = n_k / z.shape[0]
    mu = gamma.T @ z / n_k[:, None]  # (K, d)
    centred = z[None] - mu[:, None]  # (K, N, d)
    cov = torch.einsum("nk,kni,knj->kij", gamma, centred, centred) / n_k[:, None, None]
    return phi, mu, cov


def _cholesky(cov, eps):
    """Lower Cholesky factors of ``cov + eps I`` (K, d, d); a FloatingPointError names a failed component."""
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    factors, info = torch.linalg.cholesky_ex(cov + eps * eye)
    bad = torch.nonzero(info).flatten().tolist()
    if bad:
        raise FloatingPointError(
            f"the covariance of component(s) {bad} is not positive definite (a collapsed or NaN component); "
            f"increase eps (now {eps:g}) or lambda_cov, or lower lr"
        )
    return factors


def gmm_energy(z, phi, mu, cov, eps=1e-6):
    r"""Sample energy :math:`E(\mathbf z) = -\log\sum_k \hat\phi_k\,\mathcal N(\mathbf z; \hat\mu_k, \hat\Sigma_k + \varepsilon I)`.

    Computed with Cholesky factors and log-sum-exp (see the module docstring):
    finite even for samples far from every component.

    Parameters
    ----------
    z : tensor (n, d)
    phi, mu, cov : tensors (K,), (K, d), (K, d, d)
        Mixture parameters (e.g. from :func:`gmm_parameters`).
    eps : float, default 1e-6
        :math:`\varepsilon`, added to the diagonal of every covariance.

    Returns
    -------
    tensor (n,)
    """
    d = z.shape[1]
    L = _cholesky(cov, eps)  # (K, d, d)
    diff = (z[:, None, :] - mu[None]).unsqueeze(-1)  # (n, K, d, 1)
    y = torch.linalg.solve_triangular(L.unsqueeze(0), diff, upper=False).squeeze(-1)  # L_k y = z - mu_k
    maha = (y * y).sum(-1)  # (n, K)
    log_det = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # log |Sigma_k|, (K,)
    log_joint = torch.log(phi)[None] - 0.5 * (maha + log_det[None] + d * math.log(2 * math.pi))
    return -torch.logsumexp(log_joint, dim=1)


def covariance_penalty(cov):
    r""":math:`P(\hat\Sigma) = \sum_k \sum_j 1 / \hat\Sigma_{k,jj}`, DAGMM's guard against collapsing components."""
    return (1.0 / torch.diagonal(cov, dim1=-2, dim2=-1)).sum()


# --------------------------------------------------------------------------- #
# the network
# --------------------------------------------------------------------------- #
class DAGMMNet(nn.Module):
    """Compression network (an autoencoder) + estimation network (MLP + softmax).

    ``forward(x)`` returns ``(x_hat, z, gamma)``: the reconstruction, the
    representation :math:`\\mathbf z = [\\mathbf z_c, \\text{rel. error}, \\text{cosine}]`
    (n, m + 2) and the memberships (n, K).
    """

    def __init__(self, autoencoder, latent_dim, n_components, hidden=(10,), dropout=0.5):
        super().__init__()
        self.autoencoder = autoencoder
        self.estimation = nn.Sequential(
            mlp((latent_dim + 2, *hidden, n_components), activation="tanh", dropout=dropout), nn.Softmax(dim=1)
        )

    def forward(self, x):
        z_c, x_hat = self.autoencoder.code_and_reconstruction(x)
        z = torch.cat([z_c, reconstruction_features(x, x_hat)], dim=1)
        return x_hat, z, self.estimation(z)


# --------------------------------------------------------------------------- #
# the detector
# --------------------------------------------------------------------------- #
class DAGMM(_ImagesOrVectors):
    r"""Deep Autoencoding Gaussian Mixture Model: autoencoder and mixture trained jointly.

    See the module docstring for the model. Vectors (n, d) are min-max scaled
    to [0, 1] with the training minimum and maximum (as in the paper) and go
    through an :class:`~adcourse.deep.autoencoders.MLPAutoencoder` with tanh
    activations; images (n, H, W) / (n, C, H, W) of one fixed size through a
    :class:`~adcourse.deep.autoencoders.ConvAutoencoder` with a vector code.
    For maps, apply it to patches with :class:`adcourse.images.patches.PatchDetector`.

    Parameters
    ----------
    latent_dim : int, default 1
        :math:`m`, the dimension of :math:`\mathbf z_c` (the paper uses 1 or 2).
    n_components : int, default 4
        :math:`K`.
    widths : sequence of int or None, default None
        Hidden widths of the MLP autoencoder (vectors; None: (64, 32, 16)) or
        channels of the conv stages (images; None: (16, 32)).
    hidden : sequence of int, default (10,)
        Hidden widths of the estimation network.
    dropout : float, default 0.5
        Dropout in the estimation network (the paper's).
    lambda_energy : float, default 0.1
        :math:`\lambda_1`.
    lambda_cov : float, default 0.005
        :math:`\lambda_2`.
    eps : float, default 1e-6
        Diagonal added to the covariances before the Cholesky factorisation.
    n_epochs : int, default 100
    batch_size : int, default 32
        The mixture of each step is estimated on its batch: not much smaller.
    lr : float, default 3e-3
        Adam's learning rate (the paper's 1e-4 is for far more steps).
    random_state : int, default 0
        Seed of the initialisation, dropout and batch order.
    device, progress
        As in :class:`~adcourse.deep.autoencoders.AutoencoderDetector`.

    Attributes
    ----------
    model_ : DAGMMNet
    history_ : History
    phi_, mu_, cov_ : ndarrays (K,), (K, m+2), (K, m+2, m+2)
        The mixture estimated on the whole training set (used at test time).
    train_energy_ : ndarray (n_train,)
        Energies of the training samples under that mixture.
    min_, range_ : ndarrays (d,)
        Min-max scaling of vectors.

    Examples
    --------
    >>> from adcourse.data import load_digits_oneclass
    >>> d = load_digits_oneclass(normal_digit=0, random_state=0)
    >>> det = DAGMM(n_epochs=5, progress=False, device="cpu").fit(d.X_train)
    >>> det.mu_.shape, det.anomaly_score(d.X_test[:3]).shape
    ((4, 3), (3,))
    """

    def __init__(self, latent_dim=1, n_components=4, widths=None, hidden=(10,), dropout=0.5, lambda_energy=0.1,
                 lambda_cov=0.005, eps=1e-6, n_epochs=100, batch_size=32, lr=3e-3, random_state=0,
                 device="auto", progress=True):
        self.latent_dim = latent_dim
        self.n_components = n_components
        self.widths = widths
        self.hidden = hidden
        self.dropout = dropout
        self.lambda_energy = lambda_energy
        self.lambda_cov = lambda_cov
        self.eps = eps
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
        _check_real_param(self.dropout, "dropout", high=1.0)
        for name in ("lambda_energy", "lambda_cov", "eps"):
            _check_real_param(getattr(self, name), name)

    # ------------------------------------------------------------------ fit
    def _prepared(self, X):
        if self.input_kind_ == "vectors":
            X = (X - self.min_) / self.range_
        return np.ascontiguousarray(X, dtype=np.float32)

    def _loss(self, model, x):
        r"""The objective :math:`J` on one batch."""
        x_hat, z, gamma = model(x)
        phi, mu, cov = gmm_parameters(z, gamma)
        reconstruction = ((x - x_hat) ** 2).flatten(1).sum(1).mean()
        energy = gmm_energy(z, phi, mu, cov, self.eps).mean()
        return reconstruction + self.lambda_energy * energy + self.lambda_cov * covariance_penalty(cov)

    def _fit(self, X):
        seed = int(self.random_state)
        if self.input_kind_ == "vectors":
            self.min_ = X.min(axis=0)
            self.range_ = np.maximum(X.max(axis=0) - self.min_, 1e-12)
            with seeded(seed):
                ae = MLPAutoencoder(X.shape[1], hidden=self.widths or (64, 32, 16), latent_dim=self.latent_dim)
        else:
            with seeded(seed):
                ae = ConvAutoencoder(X.shape[1], widths=self.widths or (16, 32), latent_dim=self.latent_dim,
                                     image_size=X.shape[-2:])
        with seeded(seed):
            self.model_ = DAGMMNet(ae, self.latent_dim, self.n_components, tuple(self.hidden), self.dropout)
        data = self._prepared(X)
        self.history_ = fit_model(
            self.model_, self._loss, data, n_epochs=self.n_epochs, batch_size=self.batch_size, lr=self.lr,
            drop_last=len(data) > self.batch_size, random_state=seed, device=self.device,
            progress=self.progress, desc="DAGMM",
        )
        # test-time mixture: the memberships of the WHOLE training set (eval mode: no dropout)
        z, gamma = self._representation(data)
        phi, mu, cov = gmm_parameters(z, gamma)
        self.phi_, self.mu_, self.cov_ = (t.cpu().numpy().astype(np.float64) for t in (phi, mu, cov))
        self.train_energy_ = self._energy(z)

    def _representation(self, data, batch_size=512):
        """``z`` (n, m+2) and ``gamma`` (n, K) of prepared data, in eval mode, as float64 tensors on the CPU."""
        dev = next(self.model_.parameters()).device
        self.model_.eval()
        zs, gs = [], []
        with torch.no_grad():
            for s in range(0, len(data), batch_size):
                _, z, g = self.model_(torch.as_tensor(data[s : s + batch_size], device=dev))
                zs.append(z.cpu())
                gs.append(g.cpu())
        return torch.cat(zs).double(), torch.cat(gs).double()

    def _energy(self, z):
        params = (torch.as_tensor(p) for p in (self.phi_, self.mu_, self.cov_))
        return gmm_energy(z, *params, eps=self.eps).numpy()

    # -------------------------------------------------------------- scoring
    def representation(self, X):
        r""":math:`\mathbf z = [\mathbf z_c, \text{rel. error}, \text{cosine}]` of each sample, (n, m + 2)."""
        return self._representation(self._prepared(self._network_input(self._validated(X))))[0].numpy()

    def memberships(self, X):
        r"""The estimation network's :math:`\hat{\boldsymbol\gamma}` of each sample, (n, K)."""
        return self._representation(self._prepared(self._network_input(self._validated(X))))[1].numpy()

    def _score(self, X):
        z, _ = self._representation(self._prepared(X))
        return self._energy(z)
