r"""A variational autoencoder as an anomaly detector (chapter 9, the bridge to the VAE lecture).

A VAE (Kingma & Welling, 2014) is a generative model with an explicit, if
approximate, likelihood. A decoder :math:`p_\theta(\mathbf s\mid\mathbf z)` turns a
latent :math:`\mathbf z \sim N(\mathbf 0, I)` into a distribution over images; an
encoder :math:`q_\phi(\mathbf z\mid\mathbf s) = N(\boldsymbol\mu_\phi(\mathbf s),
\operatorname{diag}\boldsymbol\sigma^2_\phi(\mathbf s))` approximates the posterior.
Both are trained on normal images by maximising the **evidence lower bound**

.. math::

    \log p_\theta(\mathbf s) \;\ge\; \mathrm{ELBO}(\mathbf s) =
    \mathbb E_{q_\phi(\mathbf z\mid\mathbf s)}\big[\log p_\theta(\mathbf s\mid\mathbf z)\big]
    - \mathrm{KL}\big(q_\phi(\mathbf z\mid\mathbf s)\,\Vert\,N(\mathbf 0, I)\big),

with the closed form
:math:`\mathrm{KL} = \tfrac12\sum_j(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)` and the
expectation estimated with :math:`\mathbf z = \boldsymbol\mu + \boldsymbol\sigma\odot\boldsymbol\epsilon`,
:math:`\boldsymbol\epsilon\sim N(\mathbf 0, I)` (the reparameterisation, which lets
the gradient flow through the sampling). The decoder outputs one probability per
pixel, :math:`p_\theta(s_p\mid\mathbf z) = \pi_p^{s_p}(1-\pi_p)^{1-s_p}` (Bernoulli,
binary cross-entropy; the usual choice for grey levels in [0, 1]).

Where a GAN gives no likelihood at all (its generator is implicit), a VAE gives
a bound on it, so the anomaly score is simply the *negative* ELBO: a low bound
means an image the model finds improbable. A second score, the **reconstruction
probability** (An & Cho, 2015), keeps only the first term,
:math:`-\frac1L\sum_{l=1}^{L}\log p_\theta(\mathbf s\mid\mathbf z_l)` with
:math:`\mathbf z_l \sim q_\phi(\mathbf z\mid\mathbf s)`, and its per-pixel terms form a
map of where the image is improbable. Both are estimated with ``n_samples``
draws :math:`\boldsymbol\epsilon_l` from a seeded generator, the same draws for every
image (same seed, same scores, and an image's score does not depend on the other
images scored with it). The encoder and decoder
are chapter 6's blocks; the training is the course's one loop
(:func:`adcourse.deep.training.fit_model`).

References
----------
D. Kingma, M. Welling, "Auto-encoding variational Bayes", ICLR 2014.
J. An, S. Cho, "Variational autoencoder based anomaly detection using reconstruction
probability", SNU Data Mining Center, 2015.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from adcourse.deep.autoencoders import ConvDecoder, ConvEncoder
from adcourse.deep.training import _check_int, _check_real, fit_model, resolve_device, seeded
from adcourse.validation import check_images

__all__ = ["VAE", "VAEDetector", "gaussian_kl", "VAE_SCORES"]

#: the two scores of :class:`VAEDetector`
VAE_SCORES = ("elbo", "reconstruction")


def gaussian_kl(mu, log_var):
    r""":math:`\mathrm{KL}(N(\boldsymbol\mu, \operatorname{diag}\boldsymbol\sigma^2)\,\Vert\,N(\mathbf 0, I)) = \tfrac12\sum_j(\mu_j^2+\sigma_j^2-1-\log\sigma_j^2)`, one value per row.

    >>> import torch
    >>> gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3))      # the prior itself
    tensor([0.])
    >>> gaussian_kl(torch.tensor([[2.0]]), torch.zeros(1, 1))  # a shifted mean: mu^2 / 2
    tensor([2.])
    """
    return 0.5 * (mu ** 2 + log_var.exp() - 1.0 - log_var).sum(dim=1)


class VAE(nn.Module):
    r"""Encoder :math:`q_\phi(\mathbf z\mid\mathbf s)` and decoder :math:`p_\theta(\mathbf s\mid\mathbf z)` for images of one size.

    The encoder is a :class:`~adcourse.deep.autoencoders.ConvEncoder` with a vector
    code of :math:`2d` numbers, read as :math:`(\boldsymbol\mu, \log\boldsymbol\sigma^2)`; the
    decoder a :class:`~adcourse.deep.autoencoders.ConvDecoder` that outputs the
    logits of the pixel probabilities :math:`\boldsymbol\pi`.
    """

    def __init__(self, in_channels=1, image_size=(16, 16), latent_dim=8, widths=(16, 32)):
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.encoder = ConvEncoder(in_channels, widths, 2, latent_dim=2 * self.latent_dim, image_size=image_size)
        self.decoder = ConvDecoder(out_channels=in_channels, widths=widths, latent_dim=self.latent_dim,
                                   grid=self.encoder.grid, output="none")
        self.sizes = self.encoder.stage_sizes(*self.encoder.image_size)[:-1]

    def encode(self, x):
        """:math:`(\\boldsymbol\\mu, \\log\\boldsymbol\\sigma^2)`, each (n, d)."""
        mu, log_var = self.encoder(x).chunk(2, dim=1)
        return mu, log_var.clamp(-12.0, 8.0)

    def decode_logits(self, z):
        """Logits of :math:`\\boldsymbol\\pi = p_\\theta(\\cdot\\mid\\mathbf z)`, (n, C, H, W)."""
        return self.decoder(z, self.sizes)

    def terms(self, x, eps=None):
        r"""Per-pixel :math:`-\log p_\theta(\mathbf s\mid\mathbf z)` averaged over draws of :math:`\mathbf z`, and the KL per image.

        ``eps`` (L, d): the standard normal draws :math:`\boldsymbol\epsilon_l`, the same
        for every image (so that an image's estimate does not depend on the other
        images of the batch); default one fresh draw per image (training).
        Returns ``(nll_map (n, C, H, W), kl (n,))``; the negative ELBO is
        ``nll_map.sum((1, 2, 3)) + kl``.
        """
        mu, log_var = self.encode(x)
        std = (0.5 * log_var).exp()
        draws = [torch.randn_like(std)] if eps is None else [e.expand_as(std) for e in eps]
        nll = 0.0
        for e in draws:
            z = mu + std * e
            nll = nll + F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="none")
        return nll / len(draws), gaussian_kl(mu, log_var)

    def forward(self, x):
        """The mean reconstruction :math:`\\boldsymbol\\pi(\\boldsymbol\\mu_\\phi(\\mathbf s))`, shaped like ``x``."""
        return torch.sigmoid(self.decode_logits(self.encode(x)[0]))


def _negative_elbo(model, x):
    nll, kl = model.terms(x)
    return (nll.sum(dim=(1, 2, 3)) + kl).mean()


class VAEDetector(BaseEstimator):
    r"""Anomaly detection with a VAE: the negative ELBO, or the reconstruction probability.

    ``fit`` trains a :class:`VAE` on normal images by minimising the negative
    ELBO (summed over the pixels, averaged over the batch) with the shared loop.
    ``anomaly_score`` is, with ``score="elbo"``, :math:`-\mathrm{ELBO}(\mathbf s)`, and
    with ``score="reconstruction"`` the negative log reconstruction probability;
    both estimated with ``n_samples`` draws of :math:`\mathbf z` (seeded).
    :meth:`pixel_terms` gives the per-pixel part, the map of improbable pixels.

    Parameters
    ----------
    score : {"elbo", "reconstruction"}, default "elbo"
    latent_dim : int, default 8
    widths : sequence of int, default (16, 32)
    n_samples : int, default 16
        Draws :math:`L` of :math:`\mathbf z` per test image.
    n_epochs : int, default 100
    batch_size : int, default 32
    lr : float, default 2e-3
    random_state : int, default 0
    device : "auto", "cpu", "cuda", ...
    progress : bool, default True

    Attributes
    ----------
    model_ : VAE (eval mode)
    history_ : History
        The negative ELBO per epoch.
    image_shape_ : tuple

    Examples
    --------
    >>> from adcourse import data, metrics
    >>> split = data.load_digits_oneclass(normal_digit=0, size=16, random_state=0)
    >>> det = VAEDetector(n_epochs=40, progress=False, device="cpu").fit(split.images_train)
    >>> bool(metrics.roc_auc(det.anomaly_score(split.images_test), split.y_test) > 0.9)
    True
    """

    def __init__(self, score="elbo", latent_dim=8, widths=(16, 32), n_samples=16, n_epochs=100, batch_size=32,
                 lr=2e-3, random_state=0, device="auto", progress=True):
        self.score = score
        self.latent_dim = latent_dim
        self.widths = widths
        self.n_samples = n_samples
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self):
        if self.score not in VAE_SCORES:
            raise ValueError(f"score must be one of {VAE_SCORES}, got {self.score!r}")
        for name in ("latent_dim", "n_samples", "n_epochs", "batch_size"):
            _check_int(getattr(self, name), name)
        _check_real(self.lr, "lr", positive=True)
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, numbers.Integral):
            raise ValueError(f"random_state must be an integer, got {self.random_state!r}")
        resolve_device(self.device)

    @staticmethod
    def _as_input(images):
        x = images[:, None] if images.ndim == 3 else images
        return np.ascontiguousarray(x, dtype=np.float32)

    def fit(self, images, y=None):
        """Train the VAE on normal ``images`` (n, H, W) or (n, C, H, W) in [0, 1]; ``y`` is ignored."""
        self._check_params()
        images = check_images(images, "images")
        if len(images) < 2:
            raise ValueError(f"need at least 2 normal training images, got {len(images)}")
        self.image_shape_ = images.shape[1:]
        x = self._as_input(images)
        self.device_ = resolve_device(self.device)
        with seeded(int(self.random_state)):
            model = VAE(x.shape[1], x.shape[-2:], int(self.latent_dim), tuple(self.widths))
        batch = min(int(self.batch_size), len(x))
        self.history_ = fit_model(
            model, _negative_elbo, x, n_epochs=int(self.n_epochs), batch_size=batch, lr=float(self.lr),
            drop_last=len(x) % batch == 1, random_state=int(self.random_state), device=self.device_,
            progress=self.progress, desc="VAE",
        )
        self.model_ = model.eval()
        return self

    def _check_test(self, images):
        check_is_fitted(self, "model_")
        return check_images(images, "images", shape=self.image_shape_)

    def _terms(self, images):
        x = torch.as_tensor(self._as_input(images))
        with seeded(int(self.random_state)):
            eps = torch.randn(int(self.n_samples), 1, int(self.latent_dim)).to(self.device_)
        nll, kl = [], []
        with torch.no_grad():
            for a in range(0, len(x), 256):
                n, k = self.model_.terms(x[a:a + 256].to(self.device_), eps)
                nll.append(n.double().cpu())
                kl.append(k.double().cpu())
        return torch.cat(nll).numpy(), torch.cat(kl).numpy()

    def pixel_terms(self, images):
        r"""Per-pixel :math:`-\frac1L\sum_l\log p_\theta(s_p\mid\mathbf z_l)`, shape (n, H, W) (summed over channels)."""
        images = self._check_test(images)
        return self._terms(images)[0].sum(axis=1)

    def reconstruct(self, images):
        """The mean reconstruction :math:`\\boldsymbol\\pi(\\boldsymbol\\mu_\\phi(\\mathbf s))`, shaped like ``images``."""
        images = self._check_test(images)
        with torch.no_grad():
            out = self.model_(torch.as_tensor(self._as_input(images), device=self.device_)).double().cpu().numpy()
        return out[:, 0] if images.ndim == 3 else out

    def sample(self, n_samples=16, random_state=None):
        r"""New images: the pixel probabilities :math:`\boldsymbol\pi(\mathbf z)` for :math:`\mathbf z \sim N(\mathbf 0, I)`."""
        check_is_fitted(self, "model_")
        seed = self.random_state if random_state is None else random_state
        with seeded(int(seed)):
            z = torch.randn(int(n_samples), int(self.latent_dim))
        with torch.no_grad():
            out = torch.sigmoid(self.model_.decode_logits(z.to(self.device_))).double().cpu().numpy()
        return out[:, 0] if len(self.image_shape_) == 2 else out

    def anomaly_score(self, images):
        """Negative ELBO (``score="elbo"``) or negative log reconstruction probability, shape (n,)."""
        images = self._check_test(images)
        nll, kl = self._terms(images)
        nll = nll.reshape(len(nll), -1).sum(axis=1)
        return nll + kl if self.score == "elbo" else nll
