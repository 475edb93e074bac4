"""Autoencoder building blocks (shapes, options) and the autoencoder detectors."""

import numpy as np
import pytest
import torch

from adcourse.deep.autoencoders import (
    ConvAutoencoder,
    ConvDecoder,
    ConvEncoder,
    MLPAutoencoder,
    conv_block,
    mlp,
)
from adcourse.deep.training import seeded

torch.set_num_threads(1)


# --------------------------------------------------------------------------- #
# building blocks
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("size", [(28, 28), (31, 17), (64, 48), (9, 9)])
@pytest.mark.parametrize("skips", [False, True])
def test_conv_autoencoder_any_size(size, skips):
    with seeded(0):
        ae = ConvAutoencoder(widths=(4, 8, 8), strides=(1, 2, 2), latent_channels=3, skips=skips)
    x = torch.rand(2, 1, *size)
    out = ae(x)
    assert out.shape == x.shape
    assert float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1  # sigmoid output
    code = ae.encode(x)
    assert code.shape == (2, 3, -(-size[0] // 4), -(-size[1] // 4))


def test_bottleneck_set_by_channels_and_strides():
    enc = ConvEncoder(in_channels=3, widths=(8, 16, 32), strides=(2, 2, 1), latent_channels=5)
    assert enc(torch.rand(1, 3, 32, 32)).shape == (1, 5, 8, 8)
    assert enc.stage_sizes(33, 20) == [(33, 20), (17, 10), (9, 5), (9, 5)]
    assert [f.shape[1] for f in enc.features(torch.rand(1, 3, 32, 32))] == [8, 16, 32]
    assert ConvEncoder(widths=(8,), latent_channels=None)(torch.rand(1, 1, 8, 8)).shape == (1, 8, 4, 4)


def test_vector_code_bias_free_and_non_affine():
    with seeded(0):
        ae = ConvAutoencoder(widths=(8, 16), latent_dim=2, image_size=28, bias=False, affine=False)
    x = torch.rand(6, 1, 28, 28)
    assert ae.encode(x).shape == (6, 2) and ae(x).shape == x.shape
    names = [n for n, _ in ae.encoder.named_parameters()]
    assert names and not any(n.endswith("bias") for n in names)
    bns = [m for m in ae.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.weight is None and m.bias is None for m in bns)  # affine=False: no scale/shift
    # an encoder without biases and without affine batch norm maps 0 to 0 (in eval mode, centred stats)
    enc = ae.encoder.eval()
    for m in enc.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.zero_()
    assert torch.allclose(enc(torch.zeros(1, 1, 28, 28)), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="image_size"):
        ConvEncoder(latent_dim=2)
    with pytest.raises(ValueError, match="linear bottleneck"):
        ae.encode(torch.rand(1, 1, 32, 32))


def test_blocks_options():
    b = conv_block(1, 4, stride=2, batch_norm=False, bias=False)
    assert len(b) == 2 and b[0].bias is None and b[0].stride == (2, 2)
    assert b(torch.rand(1, 1, 9, 9)).shape == (1, 4, 5, 5)
    net = mlp((5, 7, 3), dropout=0.5)
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Dropout", "Linear"]
    net = mlp((5, 7, 3), batch_norm=True, last_activation=True, activation="relu")
    assert [type(m).__name__ for m in net] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU"]
    ae = MLPAutoencoder(12, hidden=(6,), latent_dim=3, output="sigmoid")
    assert ae(torch.rand(4, 12)).shape == (4, 12) and ae.encode(torch.rand(4, 12)).shape == (4, 3)
    dec = ConvDecoder(widths=(4, 8), latent_channels=2, skips=True)
    with pytest.raises(ValueError, match="feature maps"):
        dec(torch.rand(1, 2, 4, 4), [(16, 16), (8, 8)])


def test_seeded_construction_is_reproducible():
    def build():
        with seeded(3):
            return ConvAutoencoder(widths=(4, 8))

    a, b = build(), build()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"widths": ()}, "widths"),
        ({"widths": (8, 0)}, "widths"),
        ({"strides": (2,)}, "strides must have"),
        ({"latent_channels": 0}, "latent_channels"),
        ({"output": "tanh"}, "output"),
        ({"in_channels": 1.5}, "in_channels"),
    ],
)
def test_bad_architecture(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvAutoencoder(**{"widths": (8, 16), **kwargs})
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        ConvEncoder(widths=(4,))(torch.rand(4, 4))


def test_mlp_checks():
    with pytest.raises(ValueError, match="sizes"):
        mlp((5,))
    with pytest.raises(ValueError, match="activation"):
        mlp((5, 2), activation="gelu")
    with pytest.raises(ValueError, match="dropout"):
        mlp((5, 2), dropout=1.0)
    assert np.isfinite(MLPAutoencoder(3)(torch.rand(2, 3)).detach().numpy()).all()


# --------------------------------------------------------------------------- #
# detectors
# --------------------------------------------------------------------------- #
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from adcourse import metrics  # noqa: E402
from adcourse.deep.autoencoders import AutoencoderDetector, AutoencoderGMMDetector  # noqa: E402
from adcourse.deep.dagmm import DAGMM  # noqa: E402
from adcourse.deep.losses import reconstruction_loss  # noqa: E402

FAST = dict(progress=False, device="cpu")


def _stripes(n, size=32, seed=0, blob=False):
    """Normal images: oblique sinusoidal stripes of random phase; anomalies: a bright disc on them."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[:size, :size]
    images, masks = [], []
    for _ in range(n):
        img = 0.5 + 0.3 * np.sin(2 * np.pi * (r + c) / 8 + rng.uniform(0, 2 * np.pi))
        mask = np.zeros((size, size), bool)
        if blob:
            cy, cx = rng.integers(8, size - 8, 2)
            mask = (r - cy) ** 2 + (c - cx) ** 2 <= 16
            img = np.where(mask, 1.0, img)
        images.append(img)
        masks.append(mask)
    return np.clip(np.array(images), 0, 1), np.array(masks)


def _plane(n, seed=0, off=0.0, d=10):
    """Vectors near a 2-D plane of R^10; ``off`` moves them perpendicular to it."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(99).normal(size=(d, d)))[0]
    coords = rng.normal(size=(n, 2))
    X = coords @ basis[:, :2].T + 0.02 * rng.normal(size=(n, d))
    return X + off * basis[:, 2]


@pytest.fixture(scope="module")
def stripes_detector():
    train, _ = _stripes(12)
    det = AutoencoderDetector(loss="ssim", n_crops=256, n_epochs=4, batch_size=32, **FAST)
    return det.fit(train)


def test_autoencoder_map_is_the_training_loss_per_pixel(stripes_detector):
    det = stripes_detector
    test, masks = _stripes(6, seed=1, blob=True)
    maps = det.anomaly_map(test)
    assert maps.shape == test.shape and maps.dtype == np.float64
    x = torch.as_tensor(test[:, None], dtype=torch.float32)
    x_hat = torch.as_tensor(det.reconstruct(test)[:, None], dtype=torch.float32)
    expected = reconstruction_loss(x, x_hat, "ssim").map.numpy()
    np.testing.assert_allclose(maps, expected, atol=1e-5)
    np.testing.assert_allclose(det.anomaly_score(test), maps.reshape(6, -1).max(1), atol=1e-12)
    assert det.history_.loss[-1] < det.history_.loss[0]
    assert metrics.pixel_roc_auc(maps, masks) > 0.9  # the disc is not reconstructed
    # any size (fully convolutional), and colour images
    assert det.anomaly_map(_stripes(2, size=45)[0]).shape == (2, 45, 45)
    rgb = AutoencoderDetector(n_crops=16, n_epochs=1, **FAST).fit(np.repeat(test[:, None], 3, axis=1))
    assert rgb.anomaly_map(np.repeat(test[:2, None], 3, axis=1)).shape == (2, 32, 32)


@pytest.mark.parametrize("loss", ["l2", "ms_ssim", "gms", "msgms", "cw_ssim"])
def test_autoencoder_losses_and_options(loss):
    train, _ = _stripes(4)
    det = AutoencoderDetector(loss=loss, weight=0.5, n_crops=32, n_epochs=1, sigma=1.0, image_score="mean", **FAST)
    det.fit(train)
    assert det.loss_ == loss
    maps = det.anomaly_map(train)
    np.testing.assert_allclose(det.anomaly_score(train), maps.reshape(4, -1).mean(1), atol=1e-12)


def test_autoencoder_is_deterministic_for_a_seed():
    train, _ = _stripes(6)
    make = dict(n_crops=64, n_epochs=2, batch_size=16, **FAST)
    a = AutoencoderDetector(random_state=3, **make).fit(train).anomaly_map(train)
    b = AutoencoderDetector(random_state=3, **make).fit(train).anomaly_map(train)
    c = AutoencoderDetector(random_state=4, **make).fit(train).anomaly_map(train)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_autoencoder_on_vectors_scores_off_plane_points():
    det = AutoencoderDetector(latent=2, n_epochs=60, batch_size=32, **FAST).fit(_plane(300))
    X = np.r_[_plane(50, seed=1), _plane(50, seed=2, off=1.0)]
    y = np.r_[np.zeros(50), np.ones(50)]
    assert det.loss_ == "l2" and metrics.roc_auc(det.anomaly_score(X), y) > 0.95
    assert det.reconstruct(X[:3]).shape == (3, 10)
    with pytest.raises(ValueError, match="fitted on vectors"):
        det.anomaly_map(X)
    with pytest.raises(ValueError, match="needs images"):
        AutoencoderDetector(loss="ssim", **FAST).fit(_plane(20))


def test_feature_monitoring_misses_what_the_code_cannot_see():
    # the lecture's remark: points off the normal plane get codes of normal points (the encoder
    # projects them); a density on the code alone misses them, the reconstruction features do not
    X = _plane(400)
    off = _plane(60, seed=2, off=1.0)
    test = np.r_[_plane(60, seed=1), off]
    y = np.r_[np.zeros(60), np.ones(60)]
    kw = dict(latent_dim=2, n_components=1, n_epochs=60, **FAST)
    code = AutoencoderGMMDetector(**kw).fit(X)
    both = AutoencoderGMMDetector(features="code+errors", **kw).fit(X)
    assert metrics.roc_auc(code.anomaly_score(test), y) < 0.8
    assert metrics.roc_auc(both.anomaly_score(test), y) > 0.95
    assert code.encode(test).shape == (120, 2) and both.monitored_features(test).shape == (120, 4)
    # V and S are disjoint and cover the data
    assert np.intersect1d(code.val_index_, code.train_index_).size == 0
    assert len(code.val_index_) + len(code.train_index_) == len(X)
    # the mixture is chapter 2's GMM, fitted on the standardised codes of V
    v = (code.encode(X[code.val_index_]) - code.code_mean_) / code.code_scale_
    np.testing.assert_allclose(v.mean(0), 0, atol=1e-8)
    np.testing.assert_allclose(code.anomaly_score(test), code.gmm_.anomaly_score(code.monitored_features(test)))


def test_feature_monitoring_on_images():
    train, _ = _stripes(20, size=16)
    det = AutoencoderGMMDetector(n_epochs=2, **FAST).fit(train)
    assert det.encode(train[:3]).shape == (3, 2) and det.anomaly_score(train[:3]).shape == (3,)
    with pytest.raises(ValueError, match="training images"):
        det.anomaly_score(_stripes(2, size=20)[0])
    with pytest.raises(ValueError, match="too few"):
        AutoencoderGMMDetector(n_components=5, **FAST).fit(train[:4])


DETECTORS = [
    lambda: AutoencoderDetector(latent=2, n_epochs=5, **FAST),
    lambda: AutoencoderGMMDetector(n_epochs=5, **FAST),
    lambda: DAGMM(n_epochs=5, **FAST),
]


@pytest.mark.parametrize("make", DETECTORS, ids=["AE", "AE+GMM", "DAGMM"])
def test_protocol_clone_determinism_and_bad_input(make):
    X = _plane(80)
    det = make()
    params = det.get_params()
    with pytest.raises(NotFittedError):
        det.anomaly_score(X)
    s1 = det.fit(X).anomaly_score(X)
    s2 = clone(det).fit(X).anomaly_score(X)
    assert s1.shape == (80,) and s1.dtype == np.float64
    np.testing.assert_array_equal(s1, s2)
    assert det.get_params() == params
    np.testing.assert_allclose(det.anomaly_score(X[:3].tolist()), s1[:3], atol=1e-5)
    with pytest.raises(ValueError, match="features"):
        det.anomaly_score(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        det.anomaly_score(np.r_[X[:2], [[np.nan] * 10]])
    with pytest.raises(ValueError, match="fitted on vectors"):
        det.anomaly_score(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="at least|empty|0 samples"):
        clone(det).fit(X[:0])
    with pytest.raises(TypeError):
        det.anomaly_score([["a"] * 10])
    with pytest.raises(ValueError, match=r"vectors \(n, d\) or images"):
        det.anomaly_score(np.zeros(5))
    with pytest.raises(ValueError, match="n_epochs"):
        clone(det).set_params(n_epochs=0).fit(X)


# --------------------------------------------------------------------------- #
# exercise 6: the checks pass the reference and name the typical mistakes
# --------------------------------------------------------------------------- #
from pathlib import Path  # noqa: E402

from scipy import ndimage  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from test_checks import fails, passes_everywhere, solution_functions  # noqa: E402  (tests/ is on sys.path)

from adcourse.course import checks  # noqa: E402

EX6 = "06-autoencoders"


@pytest.fixture(scope="module")
def ref6():
    """The reference functions of exercise 6, from its solution notebook."""
    path = Path(__file__).resolve().parent.parent / "solutions" / f"{EX6}.ipynb"
    return solution_functions(path, ndimage=ndimage, logsumexp=logsumexp)


def test_exercise_6_registry():
    tasks = checks.TASKS[EX6]
    assert list(tasks) == [f"task-{i}" for i in range(1, 5)]
    assert all(f.task == t for t, f in tasks.items())
    assert all(f.allow == ("numpy", "scipy") for f in tasks.values())


@pytest.mark.parametrize("task", [f"task-{i}" for i in range(1, 5)])
def test_exercise_6_reference_passes(ref6, capsys, task):
    passes_everywhere(checks.TASKS[EX6][task], ref6, capsys, seeds=(1,))


def _ssim(mode="mirror", truncate=3.5, uniform=False, squared=True, luminance=True):
    def ssim_map(x, y):
        if uniform:
            def blur(a):
                return ndimage.uniform_filter(a, 11, mode="mirror")
        else:
            def blur(a):
                return ndimage.gaussian_filter(a, 1.5, truncate=truncate, mode=mode)
        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        c1, c2 = (0.01**2, 0.03**2) if squared else (0.01, 0.03)
        cs = (2 * cov + c2) / (vx + vy + c2)
        return cs * (2 * mx * my + c1) / (mx**2 + my**2 + c1) if luminance else cs
    return ssim_map


@pytest.mark.parametrize("kwargs, pattern", [
    ({"mode": "reflect"}, "mode='mirror'"),
    ({"truncate": 4.0}, "truncate=3.5"),
    ({"uniform": True}, "uniform 11x11"),
    ({"squared": False}, "not squared"),
    ({"luminance": False}, "luminance factor"),
])
def test_ex6_task1_mistakes(kwargs, pattern):
    fails(checks.check_ssim_map, _ssim(**kwargs), match=[pattern, "wrong SSIM map", r"expected map\["])


def _threshold(ref6, reduce="max", rule="ok", terms="both", lam_on="ssim"):
    ssim_map = ref6["ssim_map"]

    def reconstruction_threshold(images, reconstructions, fpr, lam=1.0):
        scores = []
        for s, r in zip(images, reconstructions):
            sq, st = (s - r) ** 2, 1 - ssim_map(s, r)
            m = {"both": sq + lam * st, "l2": sq, "ssim": lam * st}[terms]
            if lam_on == "l2":
                m = lam * sq + st
            scores.append(m.max() if reduce == "max" else m.mean())
        scores = np.array(scores)
        k = int(np.floor(len(scores) * fpr + 1e-9))
        if rule == "quantile":
            return float(np.quantile(scores, 1 - fpr))
        if rule == "next":
            return float(np.sort(scores)[::-1][k])
        return float(np.nextafter(scores.max(), np.inf)) if k == 0 else float(np.sort(scores)[::-1][k - 1])
    return reconstruction_threshold


@pytest.mark.parametrize("kwargs, pattern", [
    ({"reduce": "mean"}, "mean of the map"),
    ({"rule": "quantile"}, "interpolating quantile"),
    ({"rule": "next"}, r"\(m\+1\)-th largest"),
    ({"terms": "l2"}, "structural term is missing"),
    ({"terms": "ssim"}, "squared error is missing"),
    ({"lam_on": "l2"}, "lam weights the structural term"),
])
def test_ex6_task2_mistakes(ref6, kwargs, pattern):
    fails(checks.check_reconstruction_threshold, _threshold(ref6, **kwargs), match=[pattern, "wrong threshold"])


def _gmm(naive=False, over="components", weights_used=True, logdet=True, sign=-1):
    def gmm_scores(codes, weights, means, covariances):
        n, d = codes.shape
        a = np.empty((n, len(weights)))
        for k, (w, mu, cov) in enumerate(zip(weights, means, covariances)):
            L = np.linalg.cholesky(cov)
            y = np.linalg.solve(L, (codes - mu).T)
            a[:, k] = ((np.log(w) if weights_used else 0) - 0.5 * (y**2).sum(0)
                       - (np.log(np.diag(L)).sum() if logdet else 0) - 0.5 * d * np.log(2 * np.pi))
        if naive:
            dens = np.exp(a)
            return dens / dens.sum(1, keepdims=True), -np.log(dens.sum(1))
        ll = logsumexp(a, axis=1)
        r = np.exp(a - ll[:, None]) if over == "components" else np.exp(a) / np.exp(a).sum(0, keepdims=True)
        return r, sign * ll
    return gmm_scores


@pytest.mark.parametrize("kwargs, pattern", [
    ({"naive": True}, ["NaN or inf", "log-sum-exp"]),
    ({"over": "samples"}, ["normalised over the codes"]),
    ({"weights_used": False}, ["mixing weights"]),
    ({"logdet": False}, ["1/2 log|Sigma_k|"]),
    ({"sign": 1}, ["NEGATIVE"]),
])
def test_ex6_task3_mistakes(kwargs, pattern):
    with np.errstate(all="ignore"):
        fails(checks.check_gmm_scores, _gmm(**kwargs), match=pattern)


def _dagmm(ref6, mistake=None):
    gmm_scores = ref6["gmm_scores"]

    def dagmm_energy(z_train, memberships, z_test, eps):
        n_k = memberships.sum(0)
        w = n_k if mistake == "weights" else n_k / len(z_train)
        mu = memberships.T @ z_train / n_k[:, None]
        covs = np.stack([(memberships[:, k, None] * (z_train - mu[k])).T @ (z_train - mu[k]) / n_k[k]
                         for k in range(len(n_k))])
        if mistake == "unweighted":
            covs = np.stack([np.cov(z_train.T, bias=True)] * len(n_k))
        if mistake != "no-eps":
            covs = covs + eps * np.eye(z_train.shape[1])
        if mistake == "root-twice":  # sqrt(prod diag L) taken as sqrt|Sigma|: half the log-determinant
            d = z_train.shape[1]
            out = []
            for k in range(len(n_k)):
                L = np.linalg.cholesky(covs[k])
                y = np.linalg.solve(L, (z_test - mu[k]).T)
                out.append(np.log(w[k]) - 0.5 * (y**2).sum(0) - 0.5 * np.log(np.diag(L)).sum()
                           - 0.5 * d * np.log(2 * np.pi))
            return -logsumexp(np.stack(out, 1), axis=1)
        if mistake == "naive":
            return -np.log(np.exp(-gmm_scores(z_test, w, mu, covs)[1]))
        return gmm_scores(z_test, w, mu, covs)[1]
    return dagmm_energy


@pytest.mark.parametrize("mistake, pattern", [
    ("root-twice", "square-rooted twice"),
    ("no-eps", "eps is missing"),
    ("weights", r"pi_k = sum_i r_ik / n"),
    ("unweighted", "weighted by its memberships"),
    ("naive", "NaN or inf"),
])
def test_ex6_task4_mistakes(ref6, mistake, pattern):
    with np.errstate(all="ignore"):
        fails(checks.check_dagmm_energy, _dagmm(ref6, mistake), match=pattern)
