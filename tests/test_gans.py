"""Tests of adcourse.deep.gans and adcourse.deep.vae (chapter 9).

The formulas (adversarial losses, AnoGAN's functional, the BiGAN score A(s), the fully
convolutional model's combined map, the nearest training sample, the VAE's KL and ELBO)
against torch / numpy / scikit-learn / torch.distributions references; the networks' shapes
at any size; the detectors: trained by the shared adversarial loop, deterministic for a seed,
scoring in eval mode (a test image's score does not depend on the other test images),
AnoGAN's batched inversion equal to one run per image, the BiGAN's four scores equal to their
formulas, every detector better than chance where it should be; input validation.
Data: scikit-learn's digits at 16 x 16, tiny textures.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestNeighbors

from adcourse import data, metrics
from adcourse.deep import GAN, AnoGAN, BiGANDetector, FCGANDetector, VAEDetector
from adcourse.deep.gans import (
    Discriminator,
    Generator,
    JointDiscriminator,
    PatchDiscriminator,
    anogan_functional,
    bigan_score,
    combined_map,
    discriminator_loss,
    generator_loss,
    nearest_training_samples,
)
from adcourse.deep.training import seeded
from adcourse.deep.vae import VAE, gaussian_kl

torch.set_num_threads(1)
FAST = dict(progress=False, device="cpu")


@pytest.fixture(scope="module")
def digits():
    """Digit 0 normal (train: 0s only); a test subset of 150 images of every digit; 16 x 16."""
    split = data.load_digits_oneclass(0, size=16, random_state=0)
    return split.images_train, split.images_test[:150], split.y_test[:150]


@pytest.fixture(scope="module")
def bigan(digits):
    return BiGANDetector(n_epochs=60, **FAST).fit(digits[0])


@pytest.fixture(scope="module")
def anogan(digits):
    return AnoGAN(n_epochs=60, n_steps=40, **FAST).fit(digits[0])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------- #
# formulas
# --------------------------------------------------------------------------- #
def test_adversarial_losses_against_references():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=7) * 3, rng.normal(size=5) * 3
    r, f = torch.tensor(real), torch.tensor(fake)
    bce = (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
           + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))).item()
    assert discriminator_loss(real, fake) == pytest.approx(bce, rel=1e-12)
    # minus the GAN value V = E log D(s) + E log(1 - D(G(z)))
    V = np.mean(np.log(_sigmoid(real))) + np.mean(np.log(1 - _sigmoid(fake)))
    assert discriminator_loss(real, fake) == pytest.approx(-V, rel=1e-10)
    assert generator_loss(fake) == pytest.approx(-np.mean(np.log(_sigmoid(fake))), rel=1e-10)
    assert discriminator_loss(real, fake, "least-squares") == pytest.approx(
        0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake ** 2))
    assert generator_loss(fake, "least-squares") == pytest.approx(0.5 * np.mean((fake - 1) ** 2))
    # torch in: a differentiable tensor out
    t = torch.tensor(fake, requires_grad=True)
    loss = generator_loss(t)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad
    loss.backward()
    np.testing.assert_allclose(t.grad.numpy(), -(1 - _sigmoid(fake)) / len(fake), rtol=1e-10)
    with pytest.raises(ValueError, match="loss must be one of"):
        generator_loss(fake, "wasserstein")


def test_anogan_functional_against_numpy():
    rng = np.random.default_rng(1)
    s, g, ell = rng.random((4, 1, 5, 5)), rng.random((4, 1, 5, 5)), rng.normal(size=4) * 4
    expected = np.sqrt(((g - s) ** 2).reshape(4, -1).sum(1)) + 0.3 * np.log(1 - _sigmoid(ell))
    np.testing.assert_allclose(anogan_functional(s, g, ell, lam=0.3), expected, rtol=1e-10)
    # stable where the naive form underflows: log(1 - sigmoid(40)) = -40 (to 1e-17)
    assert anogan_functional(s[:1], s[:1], np.array([40.0]), lam=1.0)[0] == pytest.approx(-40.0)
    with pytest.raises(ValueError, match="same shape"):
        anogan_functional(s, g[:, :, :4], ell)
    with pytest.raises(ValueError, match="one per image"):
        anogan_functional(s, g, ell[:3])


def test_bigan_score_against_numpy():
    rng = np.random.default_rng(2)
    s, g = rng.random((3, 1, 4, 4)), rng.random((3, 1, 4, 4))
    fr, fg = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    for alpha in (0.0, 0.1, 1.0):
        expected = (alpha * np.linalg.norm(fr - fg, axis=1)
                    + (1 - alpha) * np.linalg.norm((g - s).reshape(3, -1), axis=1))
        np.testing.assert_allclose(bigan_score(s, g, fr, fg, alpha), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="alpha"):
        bigan_score(s, g, fr, fg, 1.5)
    with pytest.raises(ValueError, match="match in shape"):
        bigan_score(s, g, fr, fg[:, :5])


def test_combined_map_terms_scales_and_channels():
    from skimage.transform import resize

    rng = np.random.default_rng(3)
    d = rng.normal(1.0, 0.5, size=(2, 3, 4))
    s, g = rng.random((2, 12, 16)), rng.random((2, 12, 16))
    disc = resize((d - 1) ** 2, (2, 12, 16), order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(combined_map(d, s, g, alpha=1.0), disc, atol=1e-12)
    np.testing.assert_allclose(combined_map(d, s, g, alpha=0.0), np.abs(g - s), atol=1e-12)
    mixed = combined_map(d, s, g, alpha=0.3, scales=(2.0, 4.0))
    np.testing.assert_allclose(mixed, 0.3 * disc / 2.0 + 0.7 * np.abs(g - s) / 4.0, atol=1e-12)
    # colour images: the Euclidean norm over the channels at each pixel
    s3, g3 = rng.random((2, 3, 12, 16)), rng.random((2, 3, 12, 16))
    np.testing.assert_allclose(combined_map(d, s3, g3, alpha=0.0), np.linalg.norm(g3 - s3, axis=1), atol=1e-12)
    for bad in (dict(disc_output=d[:1]), dict(reconstructions=g[:, :5])):
        args = dict(disc_output=d, images=s, reconstructions=g) | bad
        with pytest.raises(ValueError):
            combined_map(**args)


def test_nearest_training_samples_against_sklearn():
    rng = np.random.default_rng(4)
    train, samples = rng.random((40, 6, 6)), rng.random((9, 6, 6))
    idx, dist = nearest_training_samples(samples, train)
    nn_dist, nn_idx = NearestNeighbors(n_neighbors=1).fit(train.reshape(40, -1)).kneighbors(samples.reshape(9, -1))
    np.testing.assert_array_equal(idx, nn_idx[:, 0])
    np.testing.assert_allclose(dist, nn_dist[:, 0], rtol=1e-9)
    assert nearest_training_samples(train[[5, 7]], train)[0].tolist() == [5, 7]
    with pytest.raises(ValueError):
        nearest_training_samples(samples[:, :5], train)


def test_networks_shapes_any_size():
    with seeded(0):
        G = Generator(8, 1, (8, 16), image_size=(16, 16))
        D = Discriminator(1, (8, 16), image_size=(16, 16))
        J = JointDiscriminator(1, (8, 16), (16, 16), latent_dim=8, hidden=12)
        Gs = Generator(4, 3, (8, 16, 32))
        P = PatchDiscriminator(3, (8, 16, 32), latent_channels=4)
    z = torch.randn(5, 8)
    torch.set_grad_enabled(False)
    assert G(z).shape == (5, 1, 16, 16) and float(G(z).min()) >= 0 and float(G(z).max()) <= 1
    assert D(G(z)).shape == (5,) and D.features(G(z)).shape == (5, 16 * 4 * 4)
    assert J(G(z), z).shape == (5,) and J.features(G(z), z).shape == (5, 12)
    zmap = torch.randn(2, 4, 3, 5)
    assert Gs(zmap).shape == (2, 3, 24, 40)  # 2^3 times the seed map
    assert Gs(zmap, size=(21, 37)).shape == (2, 3, 21, 37)  # or the size asked for (odd sizes)
    x = torch.rand(2, 3, 21, 37)
    assert P(x, zmap).shape == (2, 3, 5)  # one verdict per location of the code map
    torch.set_grad_enabled(True)


# --------------------------------------------------------------------------- #
# GAN
# --------------------------------------------------------------------------- #
def test_gan_samples_look_like_the_training_digit_and_are_deterministic():
    ones = data.load_digits_oneclass(1, size=16, random_state=0)
    gan = GAN(n_epochs=80, **FAST).fit(ones.images_train)
    samples = gan.sample(32)
    assert samples.shape == (32, 16, 16) and 0 <= samples.min() and samples.max() <= 1
    assert all(np.isfinite(v).all() for v in gan.history_.losses.values())
    assert not any(m.training for m in gan.generator_.modules())
    # closer to the training 1s than to 0s or to noise: it learnt the digit
    zeros = data.load_digits_oneclass(0, size=16, random_state=0).images_train
    d_ones = nearest_training_samples(samples, ones.images_train)[1].mean()
    d_zeros = nearest_training_samples(samples, zeros)[1].mean()
    noise = np.random.default_rng(0).random((32, 16, 16)) * ones.images_train.mean() * 2
    assert d_ones < 0.8 * d_zeros
    assert d_ones < 0.5 * nearest_training_samples(noise, ones.images_train)[1].mean()
    np.testing.assert_array_equal(gan.sample(8, random_state=3), GAN(n_epochs=80, **FAST).fit(
        ones.images_train).sample(8, random_state=3))
    assert not np.allclose(gan.sample(8, random_state=3), gan.sample(8, random_state=4))
    line = gan.interpolate(np.zeros(16), np.ones(16), n_steps=5)
    assert line.shape == (5, 16, 16)
    np.testing.assert_allclose(line[0], gan.generate(np.zeros((1, 16)))[0], rtol=1e-5, atol=1e-6)
    p = gan.discriminate(ones.images_test[:10])
    assert p.shape == (10,) and np.all((p > 0) & (p < 1))


def test_gan_least_squares_and_other_seed():
    x = data.load_digits_oneclass(7, size=16, random_state=0).images_train
    a = GAN(loss="least-squares", n_epochs=5, **FAST).fit(x)
    b = GAN(loss="least-squares", n_epochs=5, random_state=1, **FAST).fit(x)
    assert not np.allclose(a.sample(4, random_state=0), b.sample(4, random_state=0))
    assert a.history_.n_epochs == 5


# --------------------------------------------------------------------------- #
# AnoGAN
# --------------------------------------------------------------------------- #
def test_anogan_scores_are_the_functional_at_the_solution(anogan, digits):
    _, X, y = digits
    z_hat, f, trace = anogan.invert(X[:20], return_trace=True)
    assert z_hat.shape == (20, 16) and trace.shape == (41, 20)
    g = anogan.generate(z_hat)[:, None]
    with torch.no_grad():
        logits = anogan.discriminator_(torch.as_tensor(g, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(f, anogan_functional(X[:20, None], g, logits, anogan.lam), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(trace[-1], f)
    assert np.all(trace[-1] < trace[0])  # the descent lowers every image's functional ...
    assert np.all(np.diff(trace.mean(axis=1)) < 0)  # ... and their mean at every step
    np.testing.assert_allclose(anogan.anomaly_score(X[:20]), f)  # deterministic (seeded start)


def test_anogan_batched_inversion_is_one_problem_per_image(anogan, digits):
    _, X, _ = digits
    z0 = np.random.default_rng(0).normal(size=(6, 16))
    z_together, f_together = anogan.invert(X[:6], z0=z0)
    for k in range(6):  # each image alone, from the same start: the same solution
        z_alone, f_alone = anogan.invert(X[k:k + 1], z0=z0[k:k + 1])
        np.testing.assert_allclose(z_alone[0], z_together[k], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(f_alone[0], f_together[k], rtol=1e-4, atol=1e-5)
    bn = [m for m in anogan.generator_.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    stats = [m.running_mean.clone() for m in bn]
    anogan.anomaly_score(X[:10])
    assert all(torch.equal(a, m.running_mean) for a, m in zip(stats, bn))  # eval mode: stats untouched
    with pytest.raises(ValueError, match="z0 must have shape"):
        anogan.invert(X[:2], z0=z0)


def test_anogan_detects_other_digits(anogan, digits):
    _, X, y = digits
    assert metrics.roc_auc(anogan.anomaly_score(X), y) > 0.8
    assert anogan.residual(X[:3]).shape == (3, 16, 16)


# --------------------------------------------------------------------------- #
# BiGAN / EGBAD
# --------------------------------------------------------------------------- #
def test_bigan_scores_equal_their_formulas(bigan, digits):
    _, X, y = digits
    sc = bigan.scores(X)
    z = bigan.encode(X)
    np.testing.assert_allclose(sc["latent"], 0.5 * (z ** 2).sum(1) + 8 * np.log(2 * np.pi), rtol=1e-5)
    rec = bigan.reconstruct(X)
    assert rec.shape == X.shape
    s = torch.as_tensor(X[:, None], dtype=torch.float32)
    zt, g = torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(rec[:, None], dtype=torch.float32)
    D = bigan.discriminator_
    with torch.no_grad():
        post = 1 - torch.sigmoid(D(s, zt)).numpy()
        A = bigan_score(X[:, None], rec[:, None], D.features(s, zt).numpy(), D.features(g, zt).numpy(), 0.1)
        ano = anogan_functional(X[:, None], rec[:, None], D(g, zt).numpy(), 0.1)
    np.testing.assert_allclose(sc["posterior"], post, atol=1e-5)
    np.testing.assert_allclose(sc["combined"], A, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sc["anogan"], ano, rtol=1e-4, atol=1e-5)
    for name in sc:  # the scoring settings change the score, not the fitted model
        np.testing.assert_allclose(bigan.set_params(score=name).anomaly_score(X[:5]), sc[name][:5], rtol=1e-6)
    bigan.set_params(score="combined")
    np.testing.assert_allclose(bigan.residual(X[:4]), np.abs(rec[:4] - X[:4]), atol=1e-6)


def test_bigan_detects_other_digits_and_scores_each_image_alone(bigan, digits):
    _, X, y = digits
    sc = bigan.scores(X)
    assert metrics.roc_auc(sc["combined"], y) > 0.8
    assert metrics.roc_auc(sc["anogan"], y) > 0.8
    alone = np.array([bigan.anomaly_score(X[k:k + 1])[0] for k in range(5)])
    np.testing.assert_allclose(alone, sc["combined"][:5], rtol=1e-5, atol=1e-6)
    assert not any(m.training for net in (bigan.encoder_, bigan.generator_, bigan.discriminator_)
                   for m in net.modules())
    assert list(bigan.history_.losses) == ["discriminator", "generator + encoder"]
    assert bigan.sample(3).shape == (3, 16, 16)


def test_bigan_deterministic_for_a_seed(digits):
    train, X, _ = digits
    a = BiGANDetector(n_epochs=4, **FAST).fit(train).anomaly_score(X[:10])
    b = BiGANDetector(n_epochs=4, **FAST).fit(train).anomaly_score(X[:10])
    c = BiGANDetector(n_epochs=4, random_state=1, **FAST).fit(train).anomaly_score(X[:10])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bigan_reconstruction_weight_adds_the_cycle_term(digits):
    """mu > 0 adds mu * mean (G(E(s)) - s)^2 to the encoder's and generator's loss: the loss
    recorded is the game's plus that term, and the reconstructions of the training images improve."""
    train, X, y = digits
    plain = BiGANDetector(n_epochs=20, **FAST).fit(train)
    cycle = BiGANDetector(n_epochs=20, reconstruction_weight=1000.0, **FAST).fit(train)
    err = {name: float(np.mean((det.reconstruct(train) - train) ** 2)) for name, det in
           (("plain", plain), ("cycle", cycle))}
    assert err["cycle"] < 0.5 * err["plain"], err
    assert all(np.isfinite(v).all() for v in cycle.history_.losses.values())
    assert metrics.roc_auc(cycle.scores(X)["anogan"], y) > 0.8
    with pytest.raises(ValueError, match="reconstruction_weight"):
        BiGANDetector(reconstruction_weight=-1.0, **FAST).fit(train)


# --------------------------------------------------------------------------- #
# fully convolutional GAN
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def blobs():
    """Smooth random textures; test images with a bright square (the anomaly) of known mask."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)

    def texture(n, size):
        t = gaussian_filter(rng.random((n, size, size)), (0, 1.5, 1.5))
        return np.clip((t - t.mean()) * 4 + 0.4, 0, 1)

    train = texture(8, 48)
    test = texture(6, 40)
    masks = np.zeros(test.shape, bool)
    for k in range(6):
        r, c = rng.integers(4, 26, size=2)
        test[k, r:r + 10, c:c + 10] = 1.0
        masks[k, r:r + 10, c:c + 10] = True
    return train, test, masks


def test_fcgan_maps_any_size_and_the_combination(blobs):
    train, test, masks = blobs
    det = FCGANDetector(n_epochs=6, n_crops=96, **FAST).fit(train)
    maps = det.maps(test)
    assert set(maps) == {"combined", "reconstruction", "discriminator"}
    assert all(m.shape == test.shape and np.isfinite(m).all() for m in maps.values())
    # the combination is linear (and so is the smoothing): alpha d + (1 - alpha) r
    np.testing.assert_allclose(maps["combined"], 0.5 * maps["discriminator"] + 0.5 * maps["reconstruction"],
                               atol=1e-9)
    np.testing.assert_allclose(det.anomaly_score(test), maps["combined"].max(axis=(1, 2)))
    assert det.scales_["discriminator"] > 0 and det.scales_["reconstruction"] > 0
    assert det.reconstruct(test).shape == test.shape
    assert det.sample(2, size=(24, 56)).shape == (2, 24, 56)
    assert metrics.pixel_roc_auc(maps["reconstruction"], masks) > 0.8  # the square is not a texture
    # each image is scored alone (eval mode)
    np.testing.assert_allclose(det.anomaly_map(test[2:3])[0], maps["combined"][2], rtol=1e-5)
    assert not any(m.training for net in (det.encoder_, det.generator_, det.discriminator_)
                   for m in net.modules())


def test_fcgan_choose_alpha_on_validation_images(blobs):
    train, test, masks = blobs
    det = FCGANDetector(n_epochs=2, n_crops=64, **FAST).fit(train)
    val, val_masks = test[:3], masks[:3]
    maps = det.maps(val)
    expected = {a: metrics.pixel_roc_auc(a * maps["discriminator"] + (1 - a) * maps["reconstruction"], val_masks)
                for a in (0.0, 0.25, 0.5, 0.75, 1.0)}
    before = det.anomaly_map(test[3:])
    best, auroc = det.choose_alpha(val, val_masks)
    assert auroc == expected and best == max(expected, key=expected.get) and det.alpha == best
    # only alpha changes: the maps of the chosen weight are those of a detector set by hand
    np.testing.assert_allclose(det.maps(test[3:])["combined"],
                               best * det.maps(test[3:])["discriminator"]
                               + (1 - best) * det.maps(test[3:])["reconstruction"], atol=1e-9)
    assert det.set_params(alpha=0.5).anomaly_map(test[3:]).tobytes() == before.tobytes()
    # candidates of one's own, in their order (the first wins a tie)
    best, auroc = det.choose_alpha(val, val_masks, candidates=(1.0, 0.0))
    assert list(auroc) == [1.0, 0.0] and auroc == {1.0: expected[1.0], 0.0: expected[0.0]}
    assert best == (1.0 if expected[1.0] >= expected[0.0] else 0.0) and det.alpha == best
    with pytest.raises(ValueError, match="candidates is empty"):
        det.choose_alpha(val, val_masks, candidates=())
    with pytest.raises(ValueError, match=r"candidates must be in \[0.0, 1.0\]"):
        det.choose_alpha(val, val_masks, candidates=(0.5, 1.5))
    with pytest.raises(NotFittedError):
        FCGANDetector().choose_alpha(val, val_masks)


def test_fcgan_deterministic_for_a_seed(blobs):
    train, test, _ = blobs
    a = FCGANDetector(n_epochs=2, n_crops=64, **FAST).fit(train).anomaly_map(test[:2])
    b = FCGANDetector(n_epochs=2, n_crops=64, **FAST).fit(train).anomaly_map(test[:2])
    c = FCGANDetector(n_epochs=2, n_crops=64, random_state=1, **FAST).fit(train).anomaly_map(test[:2])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# --------------------------------------------------------------------------- #
# VAE
# --------------------------------------------------------------------------- #
def test_gaussian_kl_against_torch_distributions():
    rng = np.random.default_rng(5)
    mu, log_var = torch.tensor(rng.normal(size=(4, 3))), torch.tensor(rng.normal(size=(4, 3)))
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    p = torch.distributions.Normal(torch.zeros(4, 3), torch.ones(4, 3))
    np.testing.assert_allclose(gaussian_kl(mu, log_var).numpy(),
                               torch.distributions.kl_divergence(q, p).sum(1).numpy(), rtol=1e-10)


def test_vae_scores_are_the_negative_elbo_and_detect_other_digits(digits):
    train, X, y = digits
    det = VAEDetector(n_epochs=30, **FAST).fit(train)
    elbo = det.anomaly_score(X)
    rec = det.set_params(score="reconstruction").anomaly_score(X)
    pix = det.pixel_terms(X)
    np.testing.assert_allclose(rec, pix.reshape(len(X), -1).sum(1), rtol=1e-9)
    assert np.all(elbo > rec)  # the KL term is positive
    # the per-pixel term is -log Bernoulli(s | pi) (torch.distributions), for one draw of z
    model = det.model_
    s = torch.as_tensor(X[:3, None], dtype=torch.float32)
    with torch.no_grad():
        logits = model.decode_logits(model.encode(s)[0])
        ref = -torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(s)
        mine = F.binary_cross_entropy_with_logits(logits, s, reduction="none")
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    assert metrics.roc_auc(elbo, y) > 0.9 and metrics.roc_auc(rec, y) > 0.9
    # the same seeded draws for every image: a score does not depend on the other test images
    np.testing.assert_allclose(det.set_params(score="elbo").anomaly_score(X[:7]), elbo[:7], rtol=1e-5)
    np.testing.assert_allclose(det.anomaly_score(X[3:4]), elbo[3:4], rtol=1e-5)
    assert det.reconstruct(X[:2]).shape == (2, 16, 16) and det.sample(3).shape == (3, 16, 16)
    assert isinstance(det.model_, VAE) and det.history_.loss[-1] < det.history_.loss[0]


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("make", [
    lambda **k: GAN(**k), lambda **k: AnoGAN(**k), lambda **k: BiGANDetector(**k), lambda **k: VAEDetector(**k),
    lambda **k: FCGANDetector(**k),
])
def test_bad_parameters_and_inputs(make, digits):
    train = digits[0][:8]
    for bad in ({"n_epochs": 0}, {"batch_size": 2.5}, {"lr": 0.0}, {"random_state": "a"}, {"widths": ()}):
        key = next(iter(bad))
        if key in make().get_params():
            with pytest.raises(ValueError, match=key):
                make(**FAST, **bad).fit(train)
    det = make(n_epochs=1, **FAST)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        det.fit(train * 3)
    with pytest.raises(ValueError, match="NaN"):
        det.fit(np.full_like(train, np.nan))
    with pytest.raises(ValueError, match="images must be"):
        det.fit(train[0])
    det.fit(train)
    if not isinstance(det, (GAN, FCGANDetector)) or isinstance(det, AnoGAN):
        with pytest.raises(ValueError, match="shape of the training images"):
            det.anomaly_score(np.zeros((2, 12, 12)))


def test_bad_choices():
    for make, key in ((lambda: BiGANDetector(score="max"), "score"), (lambda: FCGANDetector(map="x"), "map"),
                      (lambda: VAEDetector(score="kl"), "score"), (lambda: GAN(loss="hinge"), "loss"),
                      (lambda: BiGANDetector(alpha=2.0), "alpha"), (lambda: AnoGAN(n_steps=0), "n_steps")):
        with pytest.raises(ValueError, match=key):
            make().fit(np.random.default_rng(0).random((4, 8, 8)))
