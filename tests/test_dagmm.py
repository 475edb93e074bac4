"""DAGMM: the mixture of a batch, a stable energy, the three reference bugs, the detector."""

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from adcourse import metrics
from adcourse.data import load_digits_oneclass
from adcourse.deep.dagmm import (
    DAGMM,
    covariance_penalty,
    gmm_energy,
    gmm_parameters,
    reconstruction_features,
)

torch.set_num_threads(1)


def _mixture(seed=0, K=3, d=3):
    rng = np.random.default_rng(seed)
    phi = rng.dirichlet(np.ones(K))
    mu = rng.normal(size=(K, d)) * 2
    A = rng.normal(size=(K, d, d))
    cov = A @ A.transpose(0, 2, 1) + 0.3 * np.eye(d)  # well away from the identity: det != 1
    return phi, mu, cov


def _t(*arrays):
    return [torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in arrays]


def _scipy_energy(z, phi, mu, cov):
    logs = np.stack([np.log(p) + multivariate_normal(m, c).logpdf(z) for p, m, c in zip(phi, mu, cov)], axis=1)
    return -logsumexp(logs, axis=1)


def test_gmm_parameters_are_an_m_step():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 3))
    gamma = rng.dirichlet(np.ones(4), size=50)
    phi, mu, cov = (t.numpy() for t in gmm_parameters(*_t(z, gamma)))
    np.testing.assert_allclose(phi, gamma.mean(0))
    for k in range(4):
        w = gamma[:, k]
        m = (w[:, None] * z).sum(0) / w.sum()
        np.testing.assert_allclose(mu[k], m, atol=1e-12)
        np.testing.assert_allclose(cov[k], np.cov(z.T, aweights=w, bias=True), atol=1e-12)
    # hard memberships: the per-cluster sample means and (biased) covariances
    hard = np.eye(2)[(z[:, 0] > 0).astype(int)]
    _, mu, cov = (t.numpy() for t in gmm_parameters(*_t(z, hard)))
    np.testing.assert_allclose(mu[1], z[z[:, 0] > 0].mean(0), atol=1e-9)
    with pytest.raises(ValueError, match="same N"):
        gmm_parameters(*_t(z, gamma[:10]))


def test_energy_equals_scipy_and_the_determinant_is_not_rooted_twice():
    # bug 1 of the common reference: it takes sqrt(prod diag(L)) = |Sigma|^(1/4) as if it were |Sigma|^(1/2)
    phi, mu, cov = _mixture()
    z = np.random.default_rng(2).normal(size=(20, 3)) * 2
    ours = gmm_energy(*_t(z, phi, mu, cov), eps=0.0).numpy()
    np.testing.assert_allclose(ours, _scipy_energy(z, phi, mu, cov), rtol=1e-10, atol=1e-10)
    # one Gaussian, covariance s^2 I, at its mean: E = d/2 log(2 pi s^2) exactly
    s2, d = 7.0, 3
    e = gmm_energy(*_t(np.zeros((1, d)), [1.0], np.zeros((1, d)), [s2 * np.eye(d)]), eps=0.0)
    assert float(e[0]) == pytest.approx(0.5 * d * np.log(2 * np.pi * s2), rel=1e-12)
    # scaling every covariance by c shifts the energy at the means by (d/2) log c (|c Sigma| = c^d |Sigma|)
    e1 = gmm_energy(*_t(mu[:1], [1.0], mu[:1], cov[:1]), eps=0.0)
    e2 = gmm_energy(*_t(mu[:1], [1.0], mu[:1], 4 * cov[:1]), eps=0.0)
    assert float(e2 - e1) == pytest.approx(1.5 * np.log(4), rel=1e-10)


def test_energy_is_stable_far_from_every_component():
    # bug 2: the reference's log-sum-exp "stabilisation" clamps the exponents at >= 0 before taking the
    # max; the exponents are never positive, so the max is 0 and exp() underflows to 0 far away: E = inf
    phi, mu, cov = np.array([0.5, 0.5]), np.array([[0.0, 0.0], [1.0, 0.0]]), np.stack([np.eye(2)] * 2)
    z = np.array([[200.0, 0.0], [0.0, -300.0]])
    with np.errstate(divide="ignore"):
        naive = -np.log((phi * np.stack([multivariate_normal(m, c).pdf(z) for m, c in zip(mu, cov)], 1)).sum(1))
    assert np.all(np.isinf(naive))  # what a no-op stabilisation computes
    ours = gmm_energy(*_t(z, phi, mu, cov), eps=0.0).numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, _scipy_energy(z, phi, mu, cov), rtol=1e-12)
    # in float32 as well, and with gradients
    zt = torch.tensor(z, dtype=torch.float32, requires_grad=True)
    e = gmm_energy(zt, *[torch.as_tensor(a, dtype=torch.float32) for a in (phi, mu, cov)])
    e.sum().backward()
    assert torch.isfinite(e).all() and torch.isfinite(zt.grad).all()


def test_penalty_and_reconstruction_features():
    cov = torch.stack([torch.diag(torch.tensor([2.0, 4.0])), torch.eye(2)])
    assert float(covariance_penalty(cov)) == pytest.approx(0.5 + 0.25 + 2.0)
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    x_hat = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    f = reconstruction_features(x, x_hat)
    np.testing.assert_allclose(f.numpy(), [[0.0, 1.0], [np.sqrt(5.0), 0.0]], atol=1e-6)


def test_singular_covariance_stops_training():
    with pytest.raises(FloatingPointError, match="not positive definite"):
        gmm_energy(*_t(np.zeros((2, 2)), [1.0], np.zeros((1, 2)), [np.zeros((2, 2))]), eps=0.0)
    const = np.full((20, 5), 0.5)
    with pytest.raises(FloatingPointError):
        DAGMM(eps=0.0, lambda_cov=0.0, n_epochs=2, progress=False, device="cpu").fit(const)


@pytest.fixture(scope="module")
def digits():
    return load_digits_oneclass(normal_digit=1, random_state=0)


@pytest.fixture(scope="module")
def fitted(digits):
    return DAGMM(progress=False, device="cpu", random_state=0).fit(digits.X_train)


def test_test_time_mixture_is_the_whole_training_sets(fitted, digits):
    # bug 3: the reference scores test samples with the mixture of the last training batch
    det = fitted
    X = digits.X_train
    z, gamma = det.representation(X), det.memberships(X)
    phi, mu, cov = (t.numpy() for t in gmm_parameters(*_t(z, gamma)))
    np.testing.assert_allclose(det.phi_, phi, atol=1e-10)
    np.testing.assert_allclose(det.mu_, mu, atol=1e-10)
    np.testing.assert_allclose(det.cov_, cov, atol=1e-10)
    # ... and the parameters of a batch are different (so the test above can fail)
    _, mu_batch, _ = (t.numpy() for t in gmm_parameters(*_t(z[:64], gamma[:64])))
    assert np.abs(mu_batch - mu).max() > 1e-4
    # the scores are the energies under that mixture, whatever is scored with them
    scores = det.anomaly_score(digits.X_test)
    np.testing.assert_allclose(scores, gmm_energy(*_t(det.representation(digits.X_test), phi, mu, cov),
                                                   eps=det.eps).numpy(), atol=1e-8)
    # (float32 networks: other batch sizes take other summation orders, so the scores agree to
    # float32 rounding, relative to their size: 1e-5 is ~80 float32 ulps. An absolute 1e-5 failed
    # on an AMD EPYC machine at a score of 2.69, off by 1.2e-5, i.e. 4e-6 relative.)
    np.testing.assert_allclose(np.r_[det.anomaly_score(digits.X_test[:7]), det.anomaly_score(digits.X_test[7:])],
                               scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(det.train_energy_, det.anomaly_score(X), atol=1e-8)


def test_dagmm_detects_other_digits_and_is_deterministic(fitted, digits):
    scores = fitted.anomaly_score(digits.X_test)
    assert scores.shape == (len(digits.X_test),) and scores.dtype == np.float64
    assert metrics.roc_auc(scores, digits.y_test) > 0.8
    assert fitted.history_.loss[-1] < fitted.history_.loss[0]
    again = clone(fitted).fit(digits.X_train)
    np.testing.assert_array_equal(again.anomaly_score(digits.X_test), scores)
    assert fitted.get_params() == again.get_params()


def test_dagmm_on_images(digits):
    det = DAGMM(latent_dim=2, n_epochs=3, batch_size=32, progress=False, device="cpu").fit(digits.images_train)
    s = det.anomaly_score(digits.images_test[:10])
    assert s.shape == (10,) and np.isfinite(s).all()
    assert det.representation(digits.images_test[:4]).shape == (4, 4)
    assert np.allclose(det.memberships(digits.images_test[:4]).sum(1), 1)
    with pytest.raises(ValueError, match="training images"):
        det.anomaly_score(np.zeros((2, 9, 9)))
    with pytest.raises(ValueError, match="fitted on images"):
        det.anomaly_score(digits.X_test[:2])


def test_bad_input(digits):
    det = DAGMM(n_epochs=1, progress=False, device="cpu")
    with pytest.raises(NotFittedError):
        det.anomaly_score(digits.X_test)
    with pytest.raises(ValueError, match="NaN"):
        clone(det).fit(np.r_[digits.X_train, [[np.nan] * 64]])
    with pytest.raises(ValueError, match="at least"):
        clone(det).fit(digits.X_train[:1])
    with pytest.raises(ValueError, match="lambda_energy"):
        DAGMM(lambda_energy=-1).fit(digits.X_train)
    with pytest.raises(ValueError, match="dropout"):
        DAGMM(dropout=1.0).fit(digits.X_train)
    det.fit(digits.X_train)
    with pytest.raises(ValueError, match="features"):
        det.anomaly_score(digits.X_test[:, :10])
    with pytest.raises(TypeError):
        det.anomaly_score([["a"] * 64])
