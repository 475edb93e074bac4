r"""Checks of exercise 9, "Generative adversarial networks" (``solutions/09-gans.ipynb``).

Each check asks the student's functions questions made from the task's seed (never the
notebook's data) and compares the answers with the reference of :mod:`adcourse.deep.gans`,
imported by the judges only: the losses of one discriminator step and of one generator step,
cross-entropy (non-saturating) and least-squares, on given logits, with their gradients
(:func:`~adcourse.deep.gans.discriminator_loss`, :func:`~adcourse.deep.gans.generator_loss`);
AnoGAN's functional :math:`\lVert\mathcal G(\mathbf z) - s\rVert + \lambda_{\mathcal C}
\log(1 - \mathcal C(\mathcal G(\mathbf z)))` of given networks at a given :math:`\mathbf z`, with
its gradient with respect to :math:`\mathbf z` (:func:`~adcourse.deep.gans.anogan_functional`);
the BiGAN score :math:`\mathcal A(s)` from given features (:func:`~adcourse.deep.gans.bigan_score`)
and the anomaly map of the fully convolutional model (:func:`~adcourse.deep.gans.combined_map`).
A wrong answer raises :class:`~adcourse.course.checks.CheckFailed` with the input, the expected
and the received values and, when the answer matches a typical mistake (the labels swapped, the
saturating :math:`\log(1-\mathcal C)` for the generator, :math:`-\log\mathcal C` for
:math:`\log(1-\mathcal C)`, a wrong sign, a sum instead of a mean, a squared norm, the two
weights swapped, the square of :math:`\mathcal C - 1` forgotten, ...), its likely cause.

======  ===============================  ========================================================
task    check                            the student's function
======  ===============================  ========================================================
task-1  :func:`check_gan_losses`         ``disc_loss(real_logits, fake_logits, loss)`` and
                                         ``gen_loss(fake_logits, loss)``
task-2  :func:`check_anogan_functional`  ``anogan_functional(generator, discriminator, z, images, lam)``
task-3  :func:`check_bigan_score`        ``bigan_score(images, reconstructions, features_real,
                                         features_reconstructed, omega)``
task-4  :func:`check_combined_map`       ``combined_map(disc_output, images, reconstructions, omega,
                                         scales)``
======  ===============================  ========================================================

Tasks 1 and 2 are answered by *probes* that run where the student's code runs: they record the
value and its gradient with respect to the logits (task 1) or the seeds :math:`\mathbf z`
(task 2), since both are differentiable torch expressions in training or in AnoGAN's
optimisation. :mod:`torch` is imported inside the probes and judges only, so that importing
:mod:`adcourse.course.checks` stays light.

What the student's functions may use (:data:`ALLOW`, enforced by the grader): torch and NumPy,
and ``adcourse.decision.upsample_maps`` (the course's bilinear up-sampling) in task 4; never
:mod:`adcourse.deep.gans`, whose functions solve the tasks.
"""

from __future__ import annotations

import numpy as np

from adcourse.course.checks._base import (
    Call,
    CheckFailed,
    Probe,
    _allclose,
    _as_array,
    _check_gradients,
    _close,
    _fmt,
    _mismatch,
    _tensor_answer,
    task,
)

__all__ = [
    "check_gan_losses",
    "check_anogan_functional",
    "check_bigan_score",
    "check_combined_map",
    "TASKS",
]

#: What the student's functions may use, by task.
ALLOW = {
    "task-1": ("torch", "numpy", "math"),
    "task-2": ("torch", "numpy", "math"),
    "task-3": ("numpy", "math"),
    "task-4": ("numpy", "torch", "adcourse.decision.upsample_maps"),
}

_STABLE = ("compute log sigma(l) = -softplus(-l) and log(1 - sigma(l)) = -softplus(l) "
           "(torch.nn.functional.softplus or logsigmoid): torch.log(torch.sigmoid(l)) gives -inf for "
           "large logits")


#: the logits of a confident discriminator (task 1): log sigma and log(1 - sigma) must stay finite
_CONFIDENT = (-1000.0, -50.0, -5.0, 0.0, 5.0, 50.0, 1000.0)


def _softplus(x):
    return np.logaddexp(0.0, x)


#: why a gradient matters, in the messages of the tasks with one
_WHY = "the networks are trained (or z optimised) by back-propagating it"


def _scalar_probe_result(value, inputs):
    """What a probe returns for a loss: its type, its value (detached) and its gradients."""
    import torch

    out = {"type": type(value).__name__, "value": value, "grad": None}
    if isinstance(value, torch.Tensor):
        out["value"] = value.detach()
        if value.requires_grad:
            grads = torch.autograd.grad(value.sum(), inputs, allow_unused=True)
            out["grad"] = [None if g is None else g for g in grads]
    return out


# --------------------------------------------------------------------------------------
# task 1: the losses of one discriminator step and of one generator step
# --------------------------------------------------------------------------------------

def _logits(seed, n_real, n_fake, scale, shape=()):
    """Seeded logits of real and generated samples (float64 tensors (n,) + shape)."""
    import torch

    if scale == 0:   # a confident discriminator: hand-picked logits far from 0
        values = torch.tensor(_CONFIDENT, dtype=torch.float64)
        return values[:n_real].clone(), values[-n_fake:].clone()
    g = torch.Generator().manual_seed(seed)
    real = 0.5 * scale + scale * torch.randn((n_real,) + tuple(shape), generator=g, dtype=torch.float64)
    fake = -0.5 * scale + scale * torch.randn((n_fake,) + tuple(shape), generator=g, dtype=torch.float64)
    return real, fake


def _loss_probe(functions, player, loss, seed, n_real, n_fake, scale, shape=()):
    """Probe: ``disc_loss(real, fake, loss)`` or ``gen_loss(fake, loss)`` on seeded logits, with the
    gradient with respect to the logits."""
    real, fake = _logits(seed, n_real, n_fake, scale, shape)
    real.requires_grad_(True)
    fake.requires_grad_(True)
    if player == "discriminator":
        value = functions["disc_loss"](real, fake, loss)
        return _scalar_probe_result(value, (real, fake))
    value = functions["gen_loss"](fake, loss)
    return _scalar_probe_result(value, (fake,))


def _loss_questions(rng):
    seeds = [int(v) for v in rng.integers(1, 2**31, size=8)]
    out = []
    for k, loss in enumerate(("bce", "least-squares")):
        s = seeds[4 * k:4 * k + 4]
        out += [Probe(_loss_probe, "discriminator", loss, s[0], 5, 3, 1.0),
                Probe(_loss_probe, "discriminator", loss, s[1], 32, 48, 3.0, (3, 3)),   # patch verdicts
                Probe(_loss_probe, "generator", loss, s[2], 1, 7, 1.0),
                Probe(_loss_probe, "generator", loss, s[3], 1, 16, 2.0, (2, 2))]
    out += [Probe(_loss_probe, "discriminator", "bce", 0, 6, 6, 0.0),      # a confident D
            Probe(_loss_probe, "generator", "bce", 0, 1, 7, 0.0)]
    return out


def _loss_reference(player, loss, seed, n_real, n_fake, scale, shape):
    import torch

    from adcourse.deep.gans import discriminator_loss, generator_loss

    real, fake = _logits(seed, n_real, n_fake, scale, shape)
    real.requires_grad_(True)
    fake.requires_grad_(True)
    if player == "discriminator":
        value = discriminator_loss(real, fake, loss)
        inputs = (real, fake)
    else:
        value = generator_loss(fake, loss)
        inputs = (fake,)
    grads = torch.autograd.grad(value, inputs)
    return real.detach().numpy(), fake.detach().numpy(), float(value.detach()), [g.numpy() for g in grads]


def _loss_variants(player, loss, r, f):
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    if player == "discriminator" and loss == "bce":
        return [
            ("the labels are swapped: real samples have label 1 (-log sigma(l_real)), generated ones label 0 "
             "(-log(1 - sigma(l_fake)))", _softplus(r).mean() + _softplus(-f).mean()),
            ("that is V itself; the discriminator ascends V, so the loss to minimise is -V",
             -(_softplus(-r).mean() + _softplus(f).mean())),
            ("you averaged over the real and the generated logits together; the loss is the mean over the "
             "real ones plus the mean over the generated ones", (_softplus(-r).sum() + _softplus(f).sum())
             / (r.size + f.size)),
            ("that is a sum over the samples; take the means", _softplus(-r).sum() + _softplus(f).sum()),
            ("the arguments are logits: apply the sigmoid (or use softplus) before the logarithm",
             -np.log(np.abs(r)).mean() - np.log(np.abs(1 - f)).mean()),
        ]
    if player == "discriminator":
        return [
            ("the targets are swapped: real outputs go to 1, generated ones to 0",
             0.5 * (r ** 2).mean() + 0.5 * ((f - 1) ** 2).mean()),
            ("the factor 1/2 of each term is missing", ((r - 1) ** 2).mean() + (f ** 2).mean()),
            ("the least-squares loss squares the distances to the labels: (l - 1)^2 and l^2",
             0.5 * np.abs(r - 1).mean() + 0.5 * np.abs(f).mean()),
            ("the least-squares loss works on the raw outputs l, not on sigma(l)",
             0.5 * ((sig(r) - 1) ** 2).mean() + 0.5 * (sig(f) ** 2).mean()),
            ("you averaged over the real and the generated outputs together; take each mean separately",
             (0.5 * ((r - 1) ** 2).sum() + 0.5 * (f ** 2).sum()) / (r.size + f.size)),
            ("that is a sum over the samples; take the means", 0.5 * ((r - 1) ** 2).sum() + 0.5 * (f ** 2).sum()),
        ]
    if loss == "bce":
        return [
            ("that is the saturating form, the mean of log(1 - sigma(l)); the generator minimises the "
             "non-saturating -log sigma(l_fake)", -_softplus(f).mean()),
            ("the sign: the generator minimises -log sigma(l_fake) (its samples should be taken for real)",
             -_softplus(-f).mean()),
            ("that is -log(1 - sigma(l)), the discriminator's term for generated samples; the generator wants "
             "label 1: -log sigma(l)", _softplus(f).mean()),
            ("that is a sum over the samples; take the mean", _softplus(-f).sum()),
        ]
    return [
        ("the generator's target is 1 (real), not 0", 0.5 * (f ** 2).mean()),
        ("the factor 1/2 is missing", ((f - 1) ** 2).mean()),
        ("the least-squares loss works on the raw outputs l, not on sigma(l)", 0.5 * ((sig(f) - 1) ** 2).mean()),
        ("square the distance to the label: (l - 1)^2", 0.5 * np.abs(f - 1).mean()),
        ("that is a sum over the samples; take the mean", 0.5 * ((f - 1) ** 2).sum()),
    ]


@task(1, "disc_loss and gen_loss", _loss_questions, uses=("disc_loss", "gen_loss"), seed=9101,
      allow=ALLOW["task-1"])
def check_gan_losses(answers):
    r"""Check ``disc_loss(real_logits, fake_logits, loss) -> scalar tensor`` and
    ``gen_loss(fake_logits, loss) -> scalar tensor``, for logits :math:`\ell` (torch tensors, any
    shape) and ``loss`` in ``{"bce", "least-squares"}``:

    * ``"bce"``: :math:`L_{\mathcal C} = -\overline{\log\sigma(\ell_{real})}
      - \overline{\log(1-\sigma(\ell_{fake}))}` and the non-saturating
      :math:`L_{\mathcal G} = -\overline{\log\sigma(\ell_{fake})}`;
    * ``"least-squares"``: :math:`L_{\mathcal C} = \tfrac12\overline{(\ell_{real}-1)^2}
      + \tfrac12\overline{\ell_{fake}^2}` and :math:`L_{\mathcal G} = \tfrac12\overline{(\ell_{fake}-1)^2}`,

    the bars being means over all the entries; differentiable in the logits."""
    __tracebackhide__ = True  # noqa: F841
    for call, probe in answers.of("_loss_probe"):
        player, loss, seed, n_real, n_fake, scale = call.args[:6]
        shape = call.args[6] if len(call.args) > 6 else ()
        name = "disc_loss" if player == "discriminator" else "gen_loss"
        r, f, expected, grads = _loss_reference(player, loss, seed, n_real, n_fake, scale, shape)
        outs = "x".join(map(str, shape))
        per = f" ({outs} outputs per sample)" if shape else ""
        if player == "discriminator":
            where = (f"on loss={loss!r}, real_logits = {n_real} and fake_logits = {n_fake} logits{per} "
                     f"(float64 tensors), real {_fmt(r.ravel())}, fake {_fmt(f.ravel())}")
        else:
            where = f"on loss={loss!r}, fake_logits = {n_fake} logits{per} (float64 tensors), {_fmt(f.ravel())}"
        got = float(_tensor_answer(probe, name, where, ()))
        if not _close(got, expected, 1e-7):
            with np.errstate(all="ignore"):
                variants = _loss_variants(player, loss, r, f)
            if not np.isfinite(got):
                hint = f"your loss is not finite for large logits: {_STABLE}"
            else:
                hint = next((h for h, v in variants if _close(got, float(v), 1e-7)
                             and not _close(float(v), expected, 1e-7)), None)
            if hint is None:
                hint = (f"{_STABLE}" if scale == 0 else
                        "see the formulas of the task: means over all the entries of each tensor")
            raise CheckFailed(f"wrong loss returned by {name}\n{where}\nexpected {_fmt(expected)}\n"
                              f"received {_fmt(got)}\nhint: {hint}")
        _check_gradients(probe, name, where, grads, "the logits", why=_WHY)


# --------------------------------------------------------------------------------------
# task 2: AnoGAN's functional for a given z
# --------------------------------------------------------------------------------------

_NETS = ("a small generator G (Linear(d, H*W) + sigmoid, reshaped to (n, 1, H, W)) and discriminator C "
         "(Flatten + Linear + LeakyReLU + Linear to one logit per image, shape (n,)), float64, eval mode")


def _anogan_nets(seed, d, size):
    """The seeded test generator and discriminator (float64, eval mode)."""
    import torch
    from torch import nn

    class _G(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(d, size * size)

        def forward(self, z):
            return torch.sigmoid(self.fc(z)).reshape(len(z), 1, size, size)

    class _C(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(size * size, 8), nn.LeakyReLU(0.1), nn.Linear(8, 1))

        def forward(self, x):
            return self.body(x).squeeze(1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G, C = _G().double().eval(), _C().double().eval()
        with torch.no_grad():
            C.body[3].weight.mul_(6.0)   # logits of a few units: both signs, log(1 - C) matters
    return G, C


def _anogan_inputs(seed, n, d, size):
    import torch

    g = torch.Generator().manual_seed(seed + 7)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    images = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    return z, images


def _anogan_probe(functions, seed, n, d, size, lam):
    """Probe: the functional of the student at z, and its gradient with respect to z."""
    G, C = _anogan_nets(seed, d, size)
    z, images = _anogan_inputs(seed, n, d, size)
    z.requires_grad_(True)
    value = functions["anogan_functional"](G, C, z, images.clone(), lam)
    return _scalar_probe_result(value, (z,))


def _anogan_questions(rng):
    seeds = [int(v) for v in rng.integers(1, 2**31, size=3)]
    return [Probe(_anogan_probe, seeds[0], 4, 3, 5, 1.0),
            Probe(_anogan_probe, seeds[1], 9, 8, 8, 0.1),
            Probe(_anogan_probe, seeds[2], 1, 2, 4, 0.5)]


@task(2, "anogan_functional", _anogan_questions, uses=("anogan_functional",), seed=9202,
      allow=ALLOW["task-2"])
def check_anogan_functional(answers):
    r"""Check ``anogan_functional(generator, discriminator, z, images, lam) -> tensor (n,)``:
    image by image, :math:`\lVert\mathcal G(\mathbf z) - s\rVert_2 + \lambda_{\mathcal C}
    \log(1 - \mathcal C(\mathcal G(\mathbf z)))`, the discriminator returning the logit
    :math:`\ell` of :math:`\mathcal C = \sigma(\ell)`; differentiable in ``z``."""
    __tracebackhide__ = True  # noqa: F841
    import torch

    from adcourse.deep.gans import anogan_functional

    for call, probe in answers.of("_anogan_probe"):
        seed, n, d, size, lam = call.args
        G, C = _anogan_nets(seed, d, size)
        z, s = _anogan_inputs(seed, n, d, size)
        z.requires_grad_(True)
        g = G(z)
        ref = anogan_functional(s, g, C(g), lam)
        (grad,) = torch.autograd.grad(ref.sum(), z)
        where = (f"on {_NETS}, z = {n} seeds of dimension d = {d} (float64 tensor (n, d)), images = {n} "
                 f"random {size}x{size} images (n, 1, {size}, {size}), lam = {lam}")
        got = _tensor_answer(probe, "anogan_functional", where, (n,))
        expected = ref.detach().numpy()
        if not _allclose(got, expected, 1e-7):
            with torch.no_grad():
                gz, ell, ell_s = g.detach(), C(g).detach().numpy(), C(s).numpy()
                diff = (gz - s).reshape(n, -1).numpy()
            norm = np.sqrt((diff ** 2).sum(axis=1))
            variants = [
                ("the first term is the norm ||G(z) - s||, not its square", (diff ** 2).sum(axis=1)
                 - lam * _softplus(ell)),
                ("the sign of the second term: + lam * log(1 - C(G(z))), with log(1 - sigma(l)) = -softplus(l)",
                 norm + lam * _softplus(ell)),
                ("that is -log C(G(z)), the generator's loss; AnoGAN's term is log(1 - C(G(z)))",
                 norm + lam * _softplus(-ell)),
                ("that is log C(G(z)); AnoGAN's term is log(1 - C(G(z))) = -softplus(l)",
                 norm - lam * _softplus(-ell)),
                ("the discriminator judges the generated image G(z), not the test image s",
                 norm - lam * _softplus(ell_s)),
                ("that is the l1 norm; the functional uses the Euclidean norm ||G(z) - s||_2",
                 np.abs(diff).sum(axis=1) - lam * _softplus(ell)),
                ("that is the mean over the pixels; take the Euclidean norm of the difference of each image",
                 np.abs(diff).mean(axis=1) - lam * _softplus(ell)),
                ("lam weighs the discriminator term, not the residual", lam * norm - _softplus(ell)),
            ]
            raise _mismatch("functional", "anogan_functional", where, expected, got, variants,
                            "g = generator(z); value = ||g - s|| per image - lam * softplus(discriminator(g))",
                            tol=1e-7)
        _check_gradients(probe, "anogan_functional", where, [grad.numpy()], "z", why=_WHY)


# --------------------------------------------------------------------------------------
# task 3: the BiGAN score from given features
# --------------------------------------------------------------------------------------

def _bigan_inputs(rng, n, image_shape, n_features):
    s = rng.random((n,) + tuple(image_shape))
    g = np.clip(s + rng.normal(scale=0.2, size=s.shape), 0, 1)
    fr = rng.normal(size=(n, n_features))
    fg = fr + rng.normal(scale=rng.uniform(0.2, 2.0), size=fr.shape)
    return s, g, fr, fg


def _bigan_questions(rng):
    out = [Call("bigan_score", np.zeros((1, 4)), np.full((1, 4), 0.5), np.zeros((1, 2)), np.array([[3.0, 4.0]]),
                0.5)]
    for n, shape, nf, omega in [(5, (6, 6), 8, 0.1), (7, (1, 8, 8), 16, 0.3), (4, (3, 5, 4), 6, 0.8),
                                (6, (8, 8), 4, 0.0), (3, (4, 4), 5, 1.0)]:
        out.append(Call("bigan_score", *_bigan_inputs(rng, n, shape, nf), omega))
    return out


@task(3, "bigan_score", _bigan_questions, uses=("bigan_score",), seed=9303, allow=ALLOW["task-3"])
def check_bigan_score(answers):
    r"""Check ``bigan_score(images, reconstructions, features_real, features_reconstructed, omega)
    -> ndarray (n,)``: :math:`\mathcal A(s) = \omega\lVert f(s,\mathcal E(s)) - f(\mathcal G(\mathcal E(s)),
    \mathcal E(s))\rVert_2 + (1-\omega)\lVert\mathcal G(\mathcal E(s)) - s\rVert_2`, image by image
    (images (n, ...) of any shape, features (n, F))."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.deep.gans import bigan_score

    for call, got in answers:
        s, g, fr, fg, omega = call.args
        n = len(s)
        expected = np.asarray(bigan_score(s, g, fr, fg, omega), dtype=float)
        value = _as_array(got, "the scores returned by bigan_score", (n,))
        if _allclose(value, expected, 1e-9):
            continue
        where = (f"on images and reconstructions of shape {s.shape}, features of shape {fr.shape}, omega = {omega}"
                 f"\nimages[0] = {_fmt(s[0].ravel())}\nreconstructions[0] = {_fmt(g[0].ravel())}"
                 f"\nfeatures_real[0] = {_fmt(fr[0])}\nfeatures_reconstructed[0] = {_fmt(fg[0])}")
        rec = np.sqrt(((g - s) ** 2).reshape(n, -1).sum(axis=1))
        feat = np.sqrt(((fr - fg) ** 2).sum(axis=1))
        rec2, feat2 = rec ** 2, feat ** 2
        variants = [
            ("omega weighs the feature term, 1 - omega the reconstruction error (not the other way round)",
             (1 - omega) * feat + omega * rec),
            ("the two terms are norms, not squared norms", omega * feat2 + (1 - omega) * rec2),
            ("the reconstruction error is a norm, not its square", omega * feat + (1 - omega) * rec2),
            ("the feature distance is a norm, not its square", omega * feat2 + (1 - omega) * rec),
            ("those are l1 distances; A(s) uses Euclidean norms",
             omega * np.abs(fr - fg).sum(axis=1) + (1 - omega) * np.abs(g - s).reshape(n, -1).sum(axis=1)),
            ("those are mean squared differences; A(s) uses Euclidean norms",
             omega * ((fr - fg) ** 2).mean(axis=1) + (1 - omega) * ((g - s) ** 2).reshape(n, -1).mean(axis=1)),
            ("the weight of the reconstruction error is 1 - omega", omega * feat + rec),
        ]
        raise _mismatch("scores", "bigan_score", where, expected, value, variants,
                        "A = omega * ||f_real - f_rec|| + (1 - omega) * ||g - s||, each norm over all the "
                        "entries of one image (reshape to (n, -1))", tol=1e-9)


# --------------------------------------------------------------------------------------
# task 4: the anomaly map of the fully convolutional model
# --------------------------------------------------------------------------------------

def _map_inputs(rng, n, coarse, image_shape):
    d = 1.0 + rng.normal(scale=0.4, size=(n,) + tuple(coarse))
    s = rng.random((n,) + tuple(image_shape))
    g = np.clip(s + rng.normal(scale=0.15, size=s.shape), 0, 1)
    return d, s, g


def _map_questions(rng):
    d = np.ones((1, 2, 2))
    d[0, 0, 0] = 0.0
    out = [Call("combined_map", d, np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), 1.0, (1.0, 1.0))]
    for n, coarse, shape, omega, scales in [
        (2, (4, 4), (16, 16), 0.5, (1.0, 1.0)),
        (3, (2, 3), (16, 24), 0.3, (0.05, 0.2)),
        (2, (4, 4), (3, 32, 32), 0.7, (0.5, 0.1)),      # colour: the norm over the channels
        (1, (3, 5), (1, 12, 20), 0.0, (2.0, 0.3)),
        (2, (4, 5), (30, 37), 1.0, (0.25, 1.0)),        # not a whole multiple of the coarse size
    ]:
        out.append(Call("combined_map", *_map_inputs(rng, n, coarse, shape), omega, scales))
    return out


def _nearest(m, size):
    h, w = m.shape[-2:]
    rows = np.minimum((np.arange(size[0]) * h) // size[0], h - 1)
    cols = np.minimum((np.arange(size[1]) * w) // size[1], w - 1)
    return m[:, rows][:, :, cols]


def _corners(m, size):
    import torch
    import torch.nn.functional as F

    return F.interpolate(torch.as_tensor(m)[:, None], size=size, mode="bilinear", align_corners=True)[:, 0].numpy()


@task(4, "combined_map", _map_questions, uses=("combined_map",), seed=9404, allow=ALLOW["task-4"])
def check_combined_map(answers):
    r"""Check ``combined_map(disc_output, images, reconstructions, omega, scales) -> ndarray (n, H, W)``:
    :math:`\omega\,(\mathcal C(s,\mathcal E(s)) - 1)^2 / a_{\mathcal C}
    + (1-\omega)\,\lVert\mathcal G(\mathcal E(s)) - s\rVert_2 / a_{rec}`, the discriminator term
    computed on the coarse map (n, h, w) and brought to (H, W) bilinearly (half-pixel aligned,
    :func:`adcourse.decision.upsample_maps`), the reconstruction norm taken over the channels at every
    pixel (images (n, H, W) or (n, C, H, W)), ``scales`` = :math:`(a_{\mathcal C}, a_{rec})`."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.decision import upsample_maps
    from adcourse.deep.gans import combined_map

    for call, got in answers:
        d, s, g, omega, scales = call.args
        n, (H, W) = len(s), s.shape[-2:]
        expected = combined_map(d, s, g, omega, scales)
        value = _as_array(got, "the map returned by combined_map", (n, H, W))
        if _allclose(value, expected, 1e-9):
            continue
        where = (f"on disc_output of shape {d.shape}, images and reconstructions of shape {s.shape}, "
                 f"omega = {omega}, scales = {scales}\ndisc_output[0] = {_fmt(d[0])}")
        a_d, a_r = scales
        rec = np.abs(g - s) if s.ndim == 3 else np.sqrt(((g - s) ** 2).sum(axis=1))
        sq = (g - s) ** 2 if s.ndim == 3 else ((g - s) ** 2).sum(axis=1)
        up = upsample_maps((d - 1) ** 2, (H, W))

        def mix(disc, r=rec, w=omega, ad=a_d, ar=a_r):
            return w * disc / ad + (1 - w) * r / ar

        variants = [
            ("the discriminator term is squared: (C - 1)^2", mix(upsample_maps(np.abs(d - 1), (H, W)))),
            ("the discriminator term is squared: (C - 1)^2, not C - 1", mix(upsample_maps(d - 1, (H, W)))),
            ("a normal region is judged real, output 1: the term is (C - 1)^2, not C^2", mix(upsample_maps(d ** 2, (H, W)))),
            ("square C - 1 on the coarse map, then up-sample the squares (not the other way round)",
             mix(upsample_maps(d - 1, (H, W)) ** 2)),
            ("omega weighs the discriminator term, 1 - omega the reconstruction error", mix(up, w=1 - omega)),
            ("the reconstruction term is the norm ||G(E(s)) - s|| over the channels, not its square", mix(up, sq)),
            ("each term is divided by its scale, not multiplied", omega * up * a_d + (1 - omega) * rec * a_r),
            ("each term is divided by its scale (scales = (discriminator, reconstruction))", mix(up, ad=1.0, ar=1.0)),
            ("the scales are (discriminator, reconstruction): you swapped them", mix(up, ad=a_r, ar=a_d)),
            ("that is nearest-neighbour up-sampling; use bilinear (upsample_maps or F.interpolate(mode='bilinear', "
             "align_corners=False))", mix(_nearest((d - 1) ** 2, (H, W)))),
            ("with align_corners=True the grid is stretched corner to corner; use align_corners=False (half-pixel "
             "aligned, as upsample_maps)", mix(_corners((d - 1) ** 2, (H, W)))),
        ]
        if s.ndim == 4:
            variants.append(("the norm over the channels at every pixel, not the mean of |G(E(s)) - s|",
                             mix(up, np.abs(g - s).mean(axis=1))))
        raise _mismatch("map", "combined_map", where, expected, value, variants,
                        "map = omega * upsample((C - 1)^2) / scales[0] + (1 - omega) * ||G(E(s)) - s|| / scales[1]",
                        tol=1e-9, lead=1, name="map")


#: Checks by task id (the ids in the check cells' metadata).
TASKS = {
    "task-1": check_gan_losses,
    "task-2": check_anogan_functional,
    "task-3": check_bigan_score,
    "task-4": check_combined_map,
}
