"""Self-supervision with transformations: the transformations against numpy/scipy, TR_new, the
simple and Dirichlet scores (MLE against a direct optimisation of scipy's log-density), GEOM
and the two-step variant on digits, errors."""

import numpy as np
import pytest
import torch
from scipy import ndimage, optimize, stats
from scipy.special import digamma
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from adcourse.data import load_digits_oneclass
from adcourse.deep.selfsup import (
    Gamma,
    GaussianBlur,
    GeomDetector,
    Geometric,
    Sharpen,
    TRNew,
    TwoStepSelfSupervised,
    dirichlet_log_pdf,
    dirichlet_score,
    fit_dirichlet,
    inverse_digamma,
    simple_score,
    transformation_log_posteriors,
    transformation_set,
)
from adcourse.metrics import roc_auc
from adcourse.vectors.density import GaussianDetector

torch.set_num_threads(1)
FAST = {"n_epochs": 4, "progress": False, "device": "cpu"}


@pytest.fixture(scope="module")
def image():
    """A random image whose values are float32 numbers (the transformations compute in float32)."""
    return np.random.default_rng(0).random((9, 9)).astype(np.float32).astype(np.float64)


@pytest.fixture(scope="module")
def digits():
    return load_digits_oneclass(normal_digit=3, random_state=0)


@pytest.fixture(scope="module")
def geom(digits):
    return GeomDetector(**{**FAST, "n_epochs": 8}).fit(digits.images_train)


# --------------------------------------------------------------------------- transformations
@pytest.mark.parametrize("k", range(4))
@pytest.mark.parametrize("flip", [False, True])
def test_rotations_and_flips_are_numpy_s(image, flip, k):
    expected = np.rot90(np.fliplr(image) if flip else image, k)
    np.testing.assert_array_equal(Geometric(flip=flip, rot90=k)(image[None])[0], expected)


@pytest.mark.parametrize("shift", [(2, 0), (0, -3), (-1, 2), (4, 4)])
def test_translation_reflects_like_scipy_mirror(image, shift):
    expected = ndimage.shift(image, shift, order=0, mode="mirror")
    out = Geometric(shift=shift)(image[None])[0]
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_geometric_order_is_flip_then_shift_then_rotation(image):
    t = Geometric(flip=True, shift=(1, -2), rot90=3)
    expected = np.rot90(ndimage.shift(np.fliplr(image), (1, -2), order=0, mode="mirror"), 3)
    np.testing.assert_allclose(t(image[None])[0], expected, atol=1e-7)


def test_channels_are_transformed_alike():
    x = np.random.default_rng(1).random((2, 3, 8, 8))
    out = Geometric(flip=True, rot90=1)(x)
    assert out.shape == x.shape
    for c in range(3):
        np.testing.assert_array_equal(out[:, c], Geometric(flip=True, rot90=1)(x[:, c]))


def test_fractional_shift_is_rounded_per_image_size():
    t = Geometric(shift=(0.25, -0.25))
    assert t.pixel_shift((8, 8)) == (2, -2) and t.pixel_shift((32, 28)) == (8, -7)
    img = np.random.default_rng(2).random((1, 12, 12))
    np.testing.assert_array_equal(t(img), Geometric(shift=(3, -3))(img))


def test_sets_have_their_sizes_identity_first_and_distinct_images(image):
    for name, size in [("rotations", 4), ("rotations+flips", 8), ("geom", 72), ("non-geometric", 8)]:
        ts = transformation_set(name)
        assert len(ts) == size
        np.testing.assert_array_equal(ts[0](image[None])[0], image)
        outs = np.stack([t(image[None])[0] for t in ts]).reshape(size, -1)
        assert len(np.unique(outs.round(6), axis=0)) == size, name
        assert len({t.name for t in ts}) == size
        assert {t.kind for t in ts} == ({"geometric"} if name != "non-geometric" else {"geometric", "non-geometric"})


def test_rotations_and_flips_include_both_flips(image):
    outs = [t(image[None])[0] for t in transformation_set("rotations+flips")]
    for expected in (np.fliplr(image), np.flipud(image), image.T):
        assert any(np.array_equal(o, expected) for o in outs)


def test_geom_set_with_pixel_shift():
    ts = transformation_set("geom", shift=2)
    shifts = {t.shift for t in ts}
    assert shifts == {(dy, dx) for dy in (0, 2, -2) for dx in (0, 2, -2)}


@pytest.mark.parametrize("sigma", [0.6, 1.2, 2.4])
def test_blur_is_scipy_gaussian_filter(image, sigma):
    radius = min(int(4 * sigma + 0.5), 8)
    expected = ndimage.gaussian_filter(image, sigma, mode="mirror", radius=radius)
    np.testing.assert_allclose(GaussianBlur(sigma)(image[None])[0], expected, atol=1e-6)


def test_gamma_and_sharpen_formulas(image):
    np.testing.assert_allclose(Gamma(0.5)(image[None])[0], np.sqrt(image), atol=1e-6)
    blurred = ndimage.gaussian_filter(image, 1.0, mode="mirror", radius=4)
    expected = np.clip(image + 3.0 * (image - blurred), 0, 1)
    np.testing.assert_allclose(Sharpen(3.0, 1.0)(image[None])[0], expected, atol=1e-6)


def test_transformation_errors():
    with pytest.raises(ValueError, match="square"):
        Geometric(rot90=1)(np.zeros((1, 4, 6)))
    with pytest.raises(ValueError, match="too large"):
        Geometric(shift=(5, 0))(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="rot90"):
        Geometric(rot90=4)
    with pytest.raises(ValueError, match="shift"):
        Geometric(shift=(1.5, 0))
    with pytest.raises(ValueError, match="sigma"):
        GaussianBlur(0)
    with pytest.raises(ValueError, match="name must be one of"):
        transformation_set("colours")
    with pytest.raises(ValueError, match="shift"):
        transformation_set("geom", shift=0.7)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Gamma(2.0)(np.full((1, 4, 4), 2.0))


# --------------------------------------------------------------------------- TR_new
def test_tr_new_elements_are_transformed_images_with_their_labels():
    images = np.random.default_rng(3).random((5, 8, 8))
    ts = transformation_set("rotations+flips")
    tr = TRNew(images, ts)
    assert len(tr) == 40 and tr.n_classes == 8
    x, y = tr.arrays()
    assert x.shape == (40, 1, 8, 8) and y.tolist() == list(range(8)) * 5
    for k in (0, 7, 13, 39):
        np.testing.assert_allclose(x[k, 0], ts[k % 8](images[k // 8][None])[0], atol=1e-7)
    order = np.random.default_rng(0).permutation(40)[:17]       # a shuffled batch, as in training
    xb, yb = tr.arrays(order)
    np.testing.assert_array_equal(xb, x[order])
    np.testing.assert_array_equal(yb, y[order])
    with pytest.raises(IndexError):
        tr.batch([40])


# --------------------------------------------------------------------------- the simple score
def test_simple_score_is_one_minus_mean_right_posterior():
    rng = np.random.default_rng(4)
    alpha = rng.dirichlet(np.ones(5), size=(6, 5))               # (n, T, T)
    expected = [1 - np.mean([alpha[s, i, i] for i in range(5)]) for s in range(6)]
    np.testing.assert_allclose(simple_score(alpha), expected)
    assert simple_score(np.eye(5)[None])[0] == 0.0
    with pytest.raises(ValueError, match=r"\(n, T, T\)"):
        simple_score(alpha[:, :4])
    with pytest.raises(ValueError, match="probabilities"):
        simple_score(-alpha)


# --------------------------------------------------------------------------- Dirichlet
def test_inverse_digamma_inverts_digamma():
    y = np.linspace(-30, 8, 200)
    np.testing.assert_allclose(digamma(inverse_digamma(y)), y, rtol=1e-12, atol=1e-10)
    x = np.geomspace(1e-3, 1e3, 100)
    np.testing.assert_allclose(inverse_digamma(digamma(x)), x, rtol=1e-10)


def _scipy_mle(p):
    """MLE by direct optimisation of scipy's Dirichlet log-density (over log rho)."""
    def nll(log_rho):
        return -stats.dirichlet.logpdf(p.T, np.exp(log_rho)).sum()
    res = optimize.minimize(nll, np.zeros(p.shape[1]), method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-9})
    return np.exp(res.x), res.fun


@pytest.mark.parametrize("rho_true", [[2.0, 5.0, 1.0], [0.3, 0.2, 0.5, 0.1], [30.0, 1.0, 1.0, 1.0, 2.0],
                                      [300.0, 2000.0, 700.0]])   # the last: points all alike, a slow fixed point
def test_dirichlet_mle_matches_a_direct_optimisation_of_scipy(rho_true):
    p = np.random.default_rng(5).dirichlet(rho_true, size=400)
    p = np.clip(p, 1e-300, None)
    p /= p.sum(axis=1, keepdims=True)
    rho = fit_dirichlet(np.log(p))
    rho_ref, nll_ref = _scipy_mle(p)
    np.testing.assert_allclose(rho, rho_ref, rtol=2e-3)
    nll = -stats.dirichlet.logpdf(p.T, rho).sum()
    assert nll <= nll_ref + 1e-6                                  # ours is at least as good a maximum


def test_dirichlet_mle_batched_is_one_fit_per_leading_index():
    rng = np.random.default_rng(6)
    lp = np.log(np.stack([rng.dirichlet([1.0 + d, 2.0, 0.5], size=100) for d in range(3)]))
    rho = fit_dirichlet(lp)
    assert rho.shape == (3, 3)
    for d in range(3):
        np.testing.assert_allclose(rho[d], fit_dirichlet(lp[d]), rtol=1e-9)


def test_dirichlet_log_pdf_and_score_agree_with_scipy():
    rng = np.random.default_rng(7)
    T = 4
    rho = rng.uniform(0.3, 5.0, size=(T, T))
    alpha = rng.dirichlet(np.ones(T), size=(6, T))               # (n, T, T)
    for s in range(6):
        for i in range(T):
            assert np.isclose(dirichlet_log_pdf(np.log(alpha[s, i]), rho[i]), stats.dirichlet.logpdf(alpha[s, i], rho[i]))
    expected = [-sum(stats.dirichlet.logpdf(alpha[s, i], rho[i]) for i in range(T)) for s in range(6)]
    np.testing.assert_allclose(dirichlet_score(np.log(alpha), rho), expected, rtol=1e-10)


def test_dirichlet_errors():
    with pytest.raises(ValueError, match="finite"):
        fit_dirichlet(np.array([[-np.inf, 0.0], [np.log(0.5), np.log(0.5)]]))
    with pytest.raises(ValueError, match="eta must be"):
        dirichlet_score(np.log(np.full((2, 3, 3), 1 / 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="log-probabilities"):
        dirichlet_score(np.full((2, 3, 3), 0.5), np.ones((3, 3)))


# --------------------------------------------------------------------------- GEOM
def test_geom_learns_the_transformations_and_detects_other_digits(geom, digits):
    assert geom.train_accuracy_ > 0.9
    assert geom.dirichlet_.shape == (8, 8) and np.all(geom.dirichlet_ > 0)
    # the right transformation gets the largest Dirichlet parameter of its row
    assert np.all(geom.dirichlet_.argmax(axis=1) == np.arange(8))
    for score in (geom.dirichlet_score, geom.simple_score):
        s = score(digits.images_test)
        assert roc_auc(s, digits.y_test) > 0.85                    # higher = more anomalous
    np.testing.assert_allclose(geom.anomaly_score(digits.images_test[:5]), geom.dirichlet_score(digits.images_test[:5]))


def test_geom_posteriors_are_the_networks_on_the_transformed_images(geom, digits):
    imgs = digits.images_test[:3]
    post = geom.posteriors(imgs)
    np.testing.assert_allclose(post.sum(axis=2), 1.0, atol=1e-9)
    ts = geom.transformations_
    x = torch.as_tensor(ts[2](imgs)[:, None], dtype=torch.float32)
    with torch.no_grad():
        direct = torch.softmax(geom.model_(x).double(), dim=1).numpy()
    np.testing.assert_allclose(post[:, 2], direct, atol=1e-6)
    lp = transformation_log_posteriors(geom.model_, imgs, ts, batch_size=2)
    np.testing.assert_allclose(np.exp(lp), post, atol=1e-6)  # other batches: float32 round-off


def test_geom_remembers_the_last_posteriors_only_for_the_same_images_and_network(geom, digits):
    imgs = digits.images_test[:5]
    first = geom.log_posteriors(imgs)
    first[:] = 0.0                                          # the caller's copy, not the remembered one
    again = geom.log_posteriors(imgs)
    direct = transformation_log_posteriors(geom.model_, imgs, geom.transformations_, batch_size=geom.batch_size)
    np.testing.assert_array_equal(again, direct)
    other = imgs.copy()
    other[0, 0, 0] = 1.0 - other[0, 0, 0]                   # one pixel changed: computed anew
    np.testing.assert_array_equal(geom.log_posteriors(other),
                                  transformation_log_posteriors(geom.model_, other, geom.transformations_,
                                                                batch_size=geom.batch_size))
    refit = clone(geom).set_params(random_state=7).fit(digits.images_train[:20])
    refit._last_log_posteriors = geom._last_log_posteriors   # (as a copied detector would carry it)
    np.testing.assert_array_equal(refit.log_posteriors(other),
                                  transformation_log_posteriors(refit.model_, other, refit.transformations_,
                                                                batch_size=refit.batch_size))


def test_geom_dirichlet_is_the_mle_of_the_training_posteriors(geom, digits):
    lp = geom.log_posteriors(digits.images_train)
    for i in (0, 5):
        np.testing.assert_allclose(geom.dirichlet_[i], fit_dirichlet(lp[:, i]), rtol=1e-8)


def test_geom_same_seed_same_scores_and_clone(digits):
    a = GeomDetector(**FAST, random_state=3).fit(digits.images_train[:30]).anomaly_score(digits.images_test[:20])
    b = GeomDetector(**FAST, random_state=3).fit(digits.images_train[:30]).anomaly_score(digits.images_test[:20])
    np.testing.assert_array_equal(a, b)
    det = GeomDetector(transformations="rotations", score="simple", width=8)
    assert clone(det).get_params() == det.get_params()


def test_indistinguishable_transformations_leave_the_classifier_at_chance():
    # rotations of isotropic noise all look alike: nothing to learn, accuracy ~ 1/T on new images
    rng = np.random.default_rng(8)
    det = GeomDetector("rotations", **FAST).fit(rng.random((40, 8, 8)))
    assert det.accuracy(rng.random((200, 8, 8))) < 0.4


def test_geom_errors(digits):
    with pytest.raises(NotFittedError):
        GeomDetector().anomaly_score(digits.images_test)
    with pytest.raises(ValueError, match="score must be"):
        GeomDetector(score="max", **FAST).fit(digits.images_train)
    with pytest.raises(ValueError, match="at least 2"):
        GeomDetector(**FAST).fit(digits.images_train[:1])
    with pytest.raises(ValueError, match="square"):
        GeomDetector(**FAST).fit(np.zeros((4, 8, 6)))
    with pytest.raises(ValueError, match="n_epochs"):
        GeomDetector(n_epochs=0, progress=False).fit(digits.images_train)
    with pytest.raises(TypeError, match="Transformation"):
        GeomDetector(transformations=[np.rot90, np.fliplr], **FAST).fit(digits.images_train)


def test_geom_rejects_test_images_of_another_shape(geom):
    with pytest.raises(ValueError, match="shape of the training images"):
        geom.anomaly_score(np.zeros((2, 9, 9)))


# --------------------------------------------------------------------------- two-step
def test_two_step_splits_and_fits_a_chapter2_detector_on_features(digits):
    det = TwoStepSelfSupervised(detector=GaussianDetector(reg=1e-2), n_components=10, **FAST).fit(digits.images_train)
    n = len(digits.images_train)
    assert len(det.classifier_index_) == round(n / 2)
    assert isinstance(det.detector_, GaussianDetector) and det.n_components_ == 10
    feats = det.features(digits.images_test)
    assert feats.shape == (len(digits.images_test), 64)
    np.testing.assert_allclose(det.anomaly_score(digits.images_test),
                               det.detector_.anomaly_score(det.pca_.transform(feats)))
    assert roc_auc(det.anomaly_score(digits.images_test), digits.y_test) > 0.8


def test_two_step_features_are_the_penultimate_layer(digits):
    det = TwoStepSelfSupervised(**FAST).fit(digits.images_train)
    x = torch.as_tensor(digits.images_test[:4, None], dtype=torch.float32)
    with torch.no_grad():
        direct = det.model_.body(x).double().numpy()
    np.testing.assert_allclose(det.features(digits.images_test[:4]), direct, atol=1e-6)
    same = TwoStepSelfSupervised(**FAST).fit(digits.images_train)
    np.testing.assert_array_equal(same.anomaly_score(digits.images_test[:9]), det.anomaly_score(digits.images_test[:9]))


def test_two_step_errors(digits):
    with pytest.raises(ValueError, match="split"):
        TwoStepSelfSupervised(split=1.0, **FAST).fit(digits.images_train)
    with pytest.raises(ValueError, match="at least 4"):
        TwoStepSelfSupervised(**FAST).fit(digits.images_train[:3])
    with pytest.raises(ValueError, match="detector must be"):
        TwoStepSelfSupervised(detector="lof", **FAST).fit(digits.images_train)
