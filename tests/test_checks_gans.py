"""Exercise 9 (GANs): the checks of adcourse.course.checks.gans pass the reference solution
everywhere and name the typical mistakes."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_checks import fails, passes_everywhere, solution_functions  # tests/ is on sys.path

from adcourse.course import checks
from adcourse.course.checks import gans as ex9
from adcourse.decision import upsample_maps

EX9 = "09-gans"
SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / f"{EX9}.ipynb"


@pytest.fixture(scope="module")
def ref9():
    """The reference functions of exercise 9, from its solution notebook (the set-up cell's names given)."""
    return solution_functions(SOLUTION, F=F, torch=torch, upsample_maps=upsample_maps)


def test_exercise_9_registry():
    tasks = checks.TASKS[EX9]
    assert list(tasks) == [f"task-{i}" for i in range(1, 5)]
    assert all(f.task == t for t, f in tasks.items())
    assert all(f.allow == ex9.ALLOW[t] for t, f in tasks.items())


@pytest.mark.parametrize("task", [f"task-{i}" for i in range(1, 5)])
def test_exercise_9_reference_passes(ref9, capsys, task):
    passes_everywhere(checks.TASKS[EX9][task], ref9, capsys)


def test_the_references_of_the_judges_agree_with_the_formulas():
    # the module's losses are the written formulas, and stay finite where the naive ones do not
    from adcourse.deep.gans import anogan_functional, discriminator_loss, generator_loss

    r, f = torch.tensor([-1000.0, 0.3, 2.0], dtype=torch.float64), torch.tensor([1000.0, -0.5], dtype=torch.float64)
    sig = torch.sigmoid
    naive = float(-torch.log(sig(r[1:])).sum() / 3 - torch.log(1 - sig(f[1:])).sum() / 2)  # the finite entries
    assert float(discriminator_loss(r, f)) == pytest.approx(1000 / 3 + naive + 1000 / 2)
    assert float(generator_loss(f)) == pytest.approx(float(-torch.log(sig(f)).mean()))
    s, g = np.zeros((2, 1, 2, 2)), np.full((2, 1, 2, 2), 0.5)
    np.testing.assert_allclose(anogan_functional(s, g, np.array([0.0, 3.0]), 0.5),
                               1.0 + 0.5 * np.log(1 - 1 / (1 + np.exp(-np.array([0.0, 3.0])))))
    # the question's upsampling (task 4) is torch's bilinear with align_corners=False
    m = np.random.default_rng(0).random((2, 4, 5))
    up = F.interpolate(torch.as_tensor(m)[:, None], size=(30, 37), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(upsample_maps(m, (30, 37)), up.numpy(), atol=1e-12)


def test_student_errors_propagate_unchanged():
    def stub(*args):
        raise NotImplementedError()

    for check in checks.TASKS[EX9].values():
        with pytest.raises(NotImplementedError):
            check(*[stub] * len(check.uses))


# ---- task 1 ---------------------------------------------------------------------------


def _losses(mistake=None):
    def disc_loss(real, fake, loss="bce"):
        if loss == "bce":
            if mistake == "swapped":
                return F.softplus(real).mean() + F.softplus(-fake).mean()
            if mistake == "concat":
                return torch.cat([F.softplus(-real).ravel(), F.softplus(fake).ravel()]).mean()
            if mistake == "naive":
                return -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
            if mistake == "sum":
                return F.softplus(-real).sum() + F.softplus(fake).sum()
            if mistake == "detached":
                return (F.softplus(-real).mean() + F.softplus(fake).mean()).detach()
            return F.softplus(-real).mean() + F.softplus(fake).mean()
        if mistake == "ls_no_half":
            return ((real - 1) ** 2).mean() + (fake ** 2).mean()
        if mistake == "ls_sigmoid":
            return 0.5 * ((torch.sigmoid(real) - 1) ** 2).mean() + 0.5 * (torch.sigmoid(fake) ** 2).mean()
        if mistake == "ls_abs":
            return 0.5 * (real - 1).abs().mean() + 0.5 * fake.abs().mean()
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()

    def gen_loss(fake, loss="bce"):
        if loss == "bce":
            if mistake == "saturating":
                return torch.log(1 - torch.sigmoid(fake)).mean()
            if mistake == "saturating_stable":
                return -F.softplus(fake).mean()
            if mistake == "gen_sign":
                return F.softplus(fake).mean()
            if mistake == "numpy":
                return F.softplus(-fake).mean().item()
            return F.softplus(-fake).mean()
        if mistake == "gen_target_0":
            return 0.5 * (fake ** 2).mean()
        return 0.5 * ((fake - 1) ** 2).mean()

    return disc_loss, gen_loss


@pytest.mark.parametrize("mistake, match", [
    ("swapped", ["wrong loss returned by disc_loss", "labels are swapped"]),
    ("concat", ["mean over the\\s+real ones plus the mean over the generated"]),
    ("sum", ["sum over the samples"]),
    ("naive", ["loss='bce'", "not finite for large logits", "softplus"]),
    ("detached", ["no gradient with respect to the logits"]),
    ("ls_no_half", ["least-squares", "factor 1/2"]),
    ("ls_sigmoid", ["raw outputs l, not on sigma"]),
    ("ls_abs", ["squares the distances"]),
    ("saturating_stable", ["wrong loss returned by gen_loss", "saturating form"]),
    ("gen_sign", ["discriminator's term for generated samples"]),
    ("numpy", ["gen_loss must return a torch tensor"]),
    ("gen_target_0", ["generator's target is 1"]),
])
def test_task_1_names_the_mistake(mistake, match):
    fails(checks.check_gan_losses, *_losses(mistake), match=match)


def test_task_1_saturating_naive_form_is_caught_too():
    # log(1 - sigmoid) computed naively: the value is right on small logits, then the sign hint
    fails(checks.check_gan_losses, *_losses("saturating"), match=["gen_loss", "saturating form"])


def test_task_1_a_reference_with_a_wrong_gradient_fails():
    disc, gen = _losses()

    def disc_loss(real, fake, loss="bce"):   # right value, gradient blocked for the generated logits
        return disc(real, fake.detach(), loss)

    fails(checks.check_gan_losses, disc_loss, gen, match=["no gradient with respect to the logits"])


# ---- task 2 ---------------------------------------------------------------------------


def _anogan(mistake=None):
    def anogan_functional(generator, discriminator, z, images, lam):
        g = generator(z)
        diff = (g - images).flatten(1)
        norm = diff.norm(dim=1)
        logit = discriminator(g)
        if mistake == "squared":
            return (diff ** 2).sum(dim=1) - lam * F.softplus(logit)
        if mistake == "sign":
            return norm + lam * F.softplus(logit)
        if mistake == "minus_log_d":
            return norm - lam * torch.log(torch.sigmoid(logit))
        if mistake == "d_of_s":
            return norm - lam * F.softplus(discriminator(images))
        if mistake == "mean":
            return diff.abs().mean(dim=1) - lam * F.softplus(logit)
        if mistake == "sum":
            return (norm - lam * F.softplus(logit)).sum()
        if mistake == "detached":
            return (norm - lam * F.softplus(logit)).detach()
        return norm - lam * F.softplus(logit)

    return anogan_functional


@pytest.mark.parametrize("mistake, match", [
    ("squared", ["wrong functional returned by anogan_functional", "the norm ||G\\(z\\) - s||, not its square"]),
    ("sign", ["the sign of the second term"]),
    ("minus_log_d", ["that is -log C\\(G\\(z\\)\\)"]),
    ("d_of_s", ["judges the generated image G\\(z\\)"]),
    ("mean", ["mean over the pixels"]),
    ("sum", ["must return a tensor of shape"]),
    ("detached", ["no gradient with respect to z"]),
])
def test_task_2_names_the_mistake(mistake, match):
    fails(checks.check_anogan_functional, _anogan(mistake), match=match)


# ---- task 3 ---------------------------------------------------------------------------


def _bigan(mistake=None):
    def bigan_score(images, reconstructions, features_real, features_reconstructed, omega):
        n = len(images)
        rec = np.linalg.norm((reconstructions - images).reshape(n, -1), axis=1)
        feat = np.linalg.norm(features_real - features_reconstructed, axis=1)
        if mistake == "swapped":
            return (1 - omega) * feat + omega * rec
        if mistake == "squared":
            return omega * feat ** 2 + (1 - omega) * rec ** 2
        if mistake == "squared_rec":
            return omega * feat + (1 - omega) * rec ** 2
        if mistake == "mse":
            return (omega * ((features_real - features_reconstructed) ** 2).mean(axis=1)
                    + (1 - omega) * ((reconstructions - images) ** 2).reshape(n, -1).mean(axis=1))
        if mistake == "no_weight":
            return omega * feat + rec
        if mistake == "rows":   # the norm of the last axis only
            return omega * feat + (1 - omega) * np.linalg.norm(reconstructions - images, axis=-1).sum(axis=-1)
        return omega * feat + (1 - omega) * rec

    return bigan_score


@pytest.mark.parametrize("mistake, match", [
    ("swapped", ["wrong scores returned by bigan_score", "omega weighs the feature term"]),
    ("squared", ["norms, not squared norms"]),
    ("squared_rec", ["reconstruction error is a norm"]),
    ("mse", ["mean squared differences"]),
    ("no_weight", ["weight of the reconstruction error is 1 - omega"]),
    ("rows", ["expected", "received", "hint: A = omega"]),
])
def test_task_3_names_the_mistake(mistake, match):
    fails(checks.check_bigan_score, _bigan(mistake), match=match)


def test_task_3_shape():
    fails(checks.check_bigan_score, lambda s, g, fr, fg, w: np.zeros(len(s) + 1), match=["must have shape"])


# ---- task 4 ---------------------------------------------------------------------------


def _map(mistake=None):
    def combined_map(disc_output, images, reconstructions, omega, scales):
        d = np.asarray(disc_output, dtype=float)
        s, g = np.asarray(images, float), np.asarray(reconstructions, float)
        residual = np.abs(g - s) if s.ndim == 3 else np.sqrt(((g - s) ** 2).sum(axis=1))
        size = residual.shape[-2:]
        disc = upsample_maps((d - 1) ** 2, size)
        a_d, a_r = scales
        if mistake == "no_square":
            disc = upsample_maps(np.abs(d - 1), size)
        elif mistake == "square_after":
            disc = upsample_maps(d - 1, size) ** 2
        elif mistake == "target_0":
            disc = upsample_maps(d ** 2, size)
        elif mistake == "nearest":
            disc = ex9._nearest((d - 1) ** 2, size)
        elif mistake == "corners":
            disc = ex9._corners((d - 1) ** 2, size)
        elif mistake == "swapped":
            omega = 1 - omega
        elif mistake == "squared_rec":
            residual = residual ** 2
        elif mistake == "multiplied":
            a_d, a_r = 1 / a_d, 1 / a_r
        elif mistake == "scales_swapped":
            a_d, a_r = a_r, a_d
        elif mistake == "channel_mean" and s.ndim == 4:
            residual = np.abs(g - s).mean(axis=1)
        return omega * disc / a_d + (1 - omega) * residual / a_r

    return combined_map


@pytest.mark.parametrize("mistake, match", [
    ("no_square", ["wrong map returned by combined_map", "discriminator term is squared"]),
    ("square_after", ["square C - 1 on the coarse map, then up-sample"]),
    ("target_0", ["not C\\^2"]),
    ("nearest", ["nearest-neighbour up-sampling"]),
    ("corners", ["align_corners=True"]),
    ("swapped", ["omega weighs the discriminator term"]),
    ("squared_rec", ["not its square"]),
    ("multiplied", ["divided by its scale, not multiplied"]),
    ("scales_swapped", ["you swapped them"]),
    ("channel_mean", ["norm over the channels at every pixel"]),
])
def test_task_4_names_the_mistake(mistake, match):
    fails(checks.check_combined_map, _map(mistake), match=match)


def test_task_4_shape():
    fails(checks.check_combined_map, lambda d, s, g, w, a: np.zeros(d.shape), match=["must have shape"])
