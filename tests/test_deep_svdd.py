"""Tests of adcourse.deep.deep_svdd: Deep SVDD (Ruff et al., 2018), one-class and soft-boundary.

The pieces (centre rule, radius quantile, losses) against their formulas and PyOD's centre
rule; each constraint against hypersphere collapse enforced; the guarded network does not
collapse while an unguarded one does; the nu property of the soft boundary; training through
the shared loop (weight decay, progress bars, pretraining with chapter 6's autoencoder);
determinism, defaults and input validation. Data: scikit-learn's digits at 16 x 16. Last, the
checks of exercise 8 (adcourse.course.checks.deep_svdd): the reference passes, mistakes are named.
"""

from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.base import clone
from test_checks import fails, passes_everywhere  # tests/ is on sys.path

import adcourse.deep.deep_svdd as dsvdd_module
from adcourse import data, metrics
from adcourse.course import checks
from adcourse.deep import DeepSVDD, deep_svdd_network
from adcourse.deep.autoencoders import ConvAutoencoder, ConvEncoder
from adcourse.deep.deep_svdd import (
    _Objective,
    check_collapse_guards,
    deep_svdd_loss,
    init_center,
    radius_from_distances,
)
from adcourse.deep.training import fit_model, seeded

torch.set_num_threads(1)
FAST = dict(progress=False, device="cpu")


@pytest.fixture(scope="module")
def digits():
    """Digit 3 normal (train: 3s only), test: every digit; 16 x 16 images."""
    return data.load_digits_oneclass(3, size=16, random_state=0)


# --------------------------------------------------------------------------- #
# the pieces
# --------------------------------------------------------------------------- #
def test_init_center_mean_and_eps_rule():
    z = np.array([[0.5, 0.02, -0.3, 0.0, -0.06], [0.7, 0.04, 0.2, 0.0, 0.0]])
    c = init_center(z, eps=0.1)
    # mean (0.6, 0.03, -0.05, 0, -0.03) -> small components pushed to +-eps with their sign
    np.testing.assert_allclose(c, [0.6, 0.1, -0.1, 0.1, -0.1])
    assert np.all(np.abs(init_center(np.random.default_rng(0).normal(size=(50, 9)), 0.3)) >= 0.3)


def test_init_center_matches_pyod_rule():
    """PyOD (>= 3.6.3) computes the same centre: mean of the forward pass, |c_i| < eps -> +-eps.

    PyOD leaves an exact 0 at 0; ours sends it to +eps (else all-zero weights reach it)."""
    from pyod.models.deep_svdd import InnerDeepSVDD

    with seeded(0):
        inner = InnerDeepSVDD(12, use_ae=False, hidden_neurons=[16, 8], hidden_activation="relu",
                              output_activation="sigmoid", dropout_rate=0.0, l2_regularizer=0.0)
    X = torch.as_tensor(np.random.default_rng(1).normal(size=(40, 12)), dtype=torch.float32)
    with torch.no_grad():
        features = inner.model.eval()(X).numpy()
    theirs = inner._init_c(X, eps=0.1).numpy()
    ours = init_center(features, eps=0.1)
    nonzero = theirs != 0
    assert nonzero.sum() >= 4
    np.testing.assert_allclose(ours[nonzero], theirs[nonzero], rtol=1e-6)
    np.testing.assert_array_equal(ours[~nonzero], 0.1)


@pytest.mark.parametrize("bad, match", [(np.zeros((0, 3)), "non-empty"), (np.zeros(3), "non-empty"),
                                        ([[np.nan, 1.0]], "NaN")])
def test_init_center_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        init_center(bad)
    with pytest.raises(ValueError, match="eps"):
        init_center([[1.0]], eps=0)


def _order_statistic(d, nu):
    """d_(k), k = ceil((1 - nu) N): the smallest distance with >= (1 - nu) N distances at or below it."""
    k = int(np.ceil((1 - nu) * len(d) - 1e-9))
    return np.sort(d)[max(k, 1) - 1]


def test_radius_is_the_quantile_and_bounds_the_outside_fraction():
    rng = np.random.default_rng(0)
    for n in (7, 91, 1000):
        d = rng.gamma(2.0, size=n)
        for nu in (0.01, 0.05, 0.1, 0.3, 0.5, 1.0):
            R = radius_from_distances(d, nu)
            assert R == _order_statistic(d, nu)
            assert np.mean(d > R) <= nu  # the nu property
            assert np.mean(d >= R) >= min(nu, 1.0) or nu * n < 1  # and R is not larger than needed
            assert radius_from_distances(d**2, nu) == R**2  # squared distances give R^2
    with pytest.raises(ValueError, match="nu"):
        radius_from_distances(d, 0.0)
    with pytest.raises(ValueError, match="distances"):
        radius_from_distances([-1.0, 2.0], 0.1)


def test_losses_match_their_formulas():
    rng = np.random.default_rng(0)
    d2 = rng.gamma(1.0, size=64)
    assert float(deep_svdd_loss(torch.tensor(d2))) == pytest.approx(d2.mean())
    R, nu = 0.9, 0.2
    expected = R**2 + np.maximum(0, d2 - R**2).sum() / (nu * len(d2))
    assert float(deep_svdd_loss(torch.tensor(d2), "soft-boundary", R, nu)) == pytest.approx(expected)
    # inside the sphere a sample contributes no gradient; outside 1 / (nu N)
    t = torch.tensor(d2, requires_grad=True)
    deep_svdd_loss(t, "soft-boundary", R, nu).backward()
    np.testing.assert_allclose(t.grad.numpy(), np.where(d2 > R**2, 1 / (nu * len(d2)), 0.0), rtol=1e-6)
    with pytest.raises(ValueError, match="objective"):
        deep_svdd_loss(t, "hard")


def test_soft_boundary_radius_updates_after_warm_up():
    """_Objective: R = 0 during warm-up, then the (1-nu)-quantile of the previous epoch's distances."""
    c = torch.zeros(2)
    obj = _Objective(c, "soft-boundary", nu=0.25, warm_up_epochs=2, steps_per_epoch=2)
    model = nn.Identity()
    batches = [torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([[3.0, 0.0], [4.0, 0.0]])]
    for epoch in range(4):
        for b in batches:
            obj(model, b * (epoch + 1))
    assert obj.radii[:3] == [0.0, 0.0, pytest.approx(_order_statistic(np.array([2, 4, 6, 8]), 0.25))]
    assert obj.radii[3] == pytest.approx(9.0)  # k = ceil(0.75 * 4) = 3: the third of 3, 6, 9, 12
    one = _Objective(c, "one-class", nu=0.25, warm_up_epochs=0, steps_per_epoch=1)
    for b in batches:
        one(model, b)
    assert one.radii == [0.0, 0.0]


# --------------------------------------------------------------------------- #
# the network and the guards
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 16, 16), (1, 8, 8)])
def test_network_is_bias_free_non_affine_and_unbounded(shape):
    net = deep_svdd_network(shape)
    assert isinstance(net, ConvEncoder)
    # no bias anywhere: the zero image goes to the zero feature vector (fresh batch-norm statistics)
    assert torch.count_nonzero(net.eval()(torch.zeros(1, *shape))) == 0
    assert net.train()(torch.rand(3, *shape)).shape == (3, 32)
    assert not [n for n, _ in net.named_parameters() if n.endswith("bias")]
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 2 and not any(m.affine for m in bns)
    assert all(isinstance(m, nn.LeakyReLU) for m in net.modules() if isinstance(m, (nn.LeakyReLU, nn.ReLU,
                                                                                     nn.Sigmoid, nn.Tanh)))
    assert check_collapse_guards(net) == []


def test_guards_name_every_broken_constraint():
    assert any("bias" in p for p in check_collapse_guards(deep_svdd_network((1, 16, 16), bias=True)))
    assert any("affine" in p for p in check_collapse_guards(deep_svdd_network((1, 16, 16), affine=True)))
    assert check_collapse_guards(nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.Sigmoid())) == [
        "1 is a bounded activation (Sigmoid)"]
    assert any("Tanh" in p for p in check_collapse_guards(nn.Sequential(nn.Tanh())))
    assert any("affine" in p for p in check_collapse_guards(nn.Sequential(nn.LayerNorm(4))))
    problems = check_collapse_guards(nn.Identity(), center=[0.5, 0.01, -0.2], eps=0.1)
    assert len(problems) == 1 and "index 1" in problems[0]
    assert check_collapse_guards(nn.Sequential(nn.ReLU()), center=[0.5, -0.2]) == []  # ReLU: unbounded above


@pytest.mark.parametrize("kwargs, match", [
    ({"network": "bias"}, "bias"),
    ({"network": "affine"}, "affine"),
    ({"center": np.zeros(32)}, "centre"),
    ({"center": np.full(32, 0.05)}, "centre"),
])
def test_detector_refuses_unguarded_setups(digits, kwargs, match):
    if kwargs.get("network") == "bias":
        kwargs = {"network": deep_svdd_network((1, 16, 16), bias=True)}
    elif kwargs.get("network") == "affine":
        kwargs = {"network": deep_svdd_network((1, 16, 16), affine=True)}
    with pytest.raises(ValueError, match=match):
        DeepSVDD(n_epochs=1, **kwargs, **FAST).fit(digits.images_train)
    DeepSVDD(n_epochs=1, guard=False, **kwargs, **FAST).fit(digits.images_train)  # allowed on purpose


def test_center_from_the_initial_forward_pass_and_fixed(digits):
    x = digits.images_train[:, None].astype(np.float32)
    det = DeepSVDD(n_epochs=3, batch_size=32, random_state=4, **FAST).fit(digits.images_train)
    with seeded(4):
        net = deep_svdd_network((1, 16, 16))
    net.train()
    with torch.no_grad():  # the same batches of 32 as fit (the last one holds 26 images)
        z = torch.cat([net(torch.as_tensor(x[s:s + 32])) for s in range(0, len(x), 32)]).numpy()
    np.testing.assert_allclose(det.center_, init_center(z, 0.1), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(det.center_) >= 0.1)
    # c is not a parameter of the network: the optimiser never moves it
    assert not any(p.shape == (32,) for p in det.network_.parameters())
    np.testing.assert_allclose(det.train_scores_,
                               ((det.features(digits.images_train) - det.center_) ** 2).sum(axis=1), rtol=1e-5)


# --------------------------------------------------------------------------- #
# collapse
# --------------------------------------------------------------------------- #
def test_guarded_network_does_not_collapse(digits):
    det = DeepSVDD(n_epochs=100, batch_size=32, lr=0.03, **FAST).fit(digits.images_train)
    scores = det.anomaly_score(digits.images_test)
    assert scores.var() > 1e-3 * np.mean(det.center_**2)
    assert len(np.unique(scores)) == len(scores)
    assert metrics.roc_auc(scores, digits.y_test) > 0.9
    assert det.history_.loss[-1] > 1e-5 * det.history_.loss[0]


@pytest.mark.parametrize("variant", ["biases", "c = 0"])
def test_unguarded_network_collapses(digits, variant):
    """An ordinary CNN (ReLU, no batch norm) with biases, or without biases but c = 0, trained with
    the optimiser settings of the guarded test above, maps every image onto c: loss ~0, one score."""
    with seeded(2):
        net = deep_svdd_network((1, 16, 16), bias=variant == "biases", batch_norm=False, negative_slope=0.0)
    center = np.zeros(32) if variant == "c = 0" else None
    det = DeepSVDD(network=net, center=center, guard=False, n_epochs=100, batch_size=32, lr=0.03,
                   random_state=2, **FAST).fit(digits.images_train)
    scores = det.anomaly_score(digits.images_test)
    assert det.history_.loss[-1] < 1e-6 * det.history_.loss[0]
    assert scores.std() < 1e-6
    assert abs(metrics.roc_auc(scores, digits.y_test) - 0.5) < 0.02


# --------------------------------------------------------------------------- #
# soft boundary
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("nu", [0.05, 0.2])
def test_soft_boundary_nu_bounds_the_training_outliers(digits, nu):
    det = DeepSVDD("soft-boundary", nu=nu, n_epochs=30, warm_up_epochs=5, batch_size=32,
                   **FAST).fit(digits.images_train)
    assert det.training_outlier_fraction_ <= nu + 0.02
    assert det.training_outlier_fraction_ == pytest.approx(np.mean(det.train_scores_ > 0))
    d = det.distances(digits.images_train)
    assert det.radius_ == pytest.approx(_order_statistic(d, nu), rel=1e-6)
    assert det.training_outlier_fraction_ <= nu
    np.testing.assert_allclose(det.anomaly_score(digits.images_test),
                               det.distances(digits.images_test) ** 2 - det.radius_**2, rtol=1e-6, atol=1e-9)
    assert det.radii_[:5] == [0.0] * 5 and min(det.radii_[6:]) > 0 and len(det.radii_) == 30
    flags = det.sphere_threshold().predict(det.anomaly_score(digits.images_test))
    np.testing.assert_array_equal(flags, det.distances(digits.images_test) >= det.radius_)
    assert metrics.roc_auc(det.anomaly_score(digits.images_test), digits.y_test) > 0.9


def test_one_class_has_no_radius(digits):
    det = DeepSVDD(n_epochs=2, **FAST).fit(digits.images_train)
    assert det.radius_ is None and det.training_outlier_fraction_ is None
    np.testing.assert_allclose(det.anomaly_score(digits.images_test), det.distances(digits.images_test) ** 2,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="Threshold.from_fpr"):
        det.sphere_threshold()


# --------------------------------------------------------------------------- #
# training through the shared loop
# --------------------------------------------------------------------------- #
def test_trained_by_the_shared_loop_with_weight_decay_and_progress(digits, monkeypatch):
    calls = []

    def spy(model, loss_fn, data, **kwargs):
        calls.append((type(model).__name__, kwargs))
        return fit_model(model, loss_fn, data, **kwargs)

    monkeypatch.setattr(dsvdd_module, "fit_model", spy)
    det = DeepSVDD(n_epochs=3, pretrain_epochs=2, weight_decay=1e-4, optimizer="adamw", device="cpu")
    det.fit(digits.images_train)
    assert [name for name, _ in calls] == ["ConvAutoencoder", "ConvEncoder"]
    for _, kwargs in calls:
        assert kwargs["weight_decay"] == 1e-4 and kwargs["optimizer"] == "adamw"
        assert kwargs["progress"] is True and kwargs["random_state"] == 0
    assert calls[0][1]["n_epochs"] == 2 and calls[1][1]["n_epochs"] == 3
    assert det.pretrain_history_.n_epochs == 2 and det.history_.n_epochs == 3


def test_weight_decay_shrinks_the_weights(digits):
    norms = []
    for wd in (0.0, 5.0):
        det = DeepSVDD(n_epochs=20, lr=0.01, weight_decay=wd, optimizer="adamw", **FAST).fit(digits.images_train)
        norms.append(sum(float((p.detach() ** 2).sum()) for p in det.network_.parameters()))
    assert norms[1] < 0.5 * norms[0]


def test_pretraining_is_chapter6_autoencoder_encoder(digits):
    det = DeepSVDD(n_epochs=1, pretrain_epochs=15, **FAST).fit(digits.images_train)
    h = det.pretrain_history_.loss
    assert len(h) == 15 and h[-1] < 0.7 * h[0]  # the autoencoder learned to reconstruct
    with seeded(0):
        ae = ConvAutoencoder(1, widths=(8, 4), latent_dim=32, image_size=(16, 16), bias=False, affine=False)
    assert check_collapse_guards(ae) == []  # the same bias-free architecture, decoder included
    fresh = DeepSVDD(n_epochs=1, **FAST).fit(digits.images_train)
    # same architecture as the randomly initialised network, different (pretrained) weights
    assert [p.shape for p in det.network_.parameters()] == [p.shape for p in fresh.network_.parameters()]
    assert not torch.allclose(next(det.network_.parameters()), next(fresh.network_.parameters()))
    with pytest.raises(ValueError, match="pretrain"):
        DeepSVDD(network=deep_svdd_network((1, 16, 16)), pretrain_epochs=1, **FAST).fit(digits.images_train)


# --------------------------------------------------------------------------- #
# protocol: defaults, determinism, shapes, validation
# --------------------------------------------------------------------------- #
def test_works_with_defaults_on_28x28_images():
    split = data.load_digits_oneclass(1, size=28, random_state=0)
    det = DeepSVDD().fit(split.images_train)
    s = det.anomaly_score(split.images_test)
    assert s.shape == (len(split.images_test),) and s.dtype == np.float64
    assert metrics.roc_auc(s, split.y_test) > 0.9
    assert det.features(split.images_test[:4]).shape == (4, 32)


def test_deterministic_for_a_seed(digits):
    a = DeepSVDD(n_epochs=4, random_state=1, **FAST).fit(digits.images_train).anomaly_score(digits.images_test)
    b = DeepSVDD(n_epochs=4, random_state=1, **FAST).fit(digits.images_train).anomaly_score(digits.images_test)
    c = DeepSVDD(n_epochs=4, random_state=2, **FAST).fit(digits.images_train).anomaly_score(digits.images_test)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_colour_images_and_custom_network():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(20, 3, 32, 32))
    det = DeepSVDD(n_epochs=2, channels=(4, 8, 8), rep_dim=16, **FAST).fit(images)
    assert det.anomaly_score(images[:3]).shape == (3,) and det.center_.shape == (16,)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 5, bias=False), nn.LeakyReLU())
    det = DeepSVDD(network=net, n_epochs=2, **FAST).fit(images)
    assert det.features(images[:2]).shape == (2, 5)
    assert det.network_ is not net and torch.equal(net[1].weight, clone(det).network[1].weight)


def test_clone_and_params():
    det = DeepSVDD("soft-boundary", nu=0.2, n_epochs=3)
    assert clone(det).get_params() == det.get_params()
    assert det.get_params()["objective"] == "soft-boundary"


@pytest.mark.parametrize("kwargs, match", [
    ({"objective": "hard-boundary"}, "objective"),
    ({"nu": 0.0}, "nu"),
    ({"nu": 1.5}, "nu"),
    ({"eps": -1.0}, "eps"),
    ({"n_epochs": 0}, "n_epochs"),
    ({"lr": 0}, "lr"),
    ({"weight_decay": -1e-3}, "weight_decay"),
    ({"warm_up_epochs": -1}, "warm_up_epochs"),
    ({"random_state": 0.5}, "random_state"),
])
def test_bad_parameters(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeepSVDD(**kwargs, **FAST).fit(digits.images_train)
    with pytest.raises(TypeError, match="network"):
        DeepSVDD(network="lenet", **FAST).fit(digits.images_train)


def test_bad_images(digits):
    det = DeepSVDD(n_epochs=1, **FAST)
    with pytest.raises(ValueError, match="images"):
        det.fit(digits.images_train * 16)  # not in [0, 1]
    bad = digits.images_train.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="images"):
        det.fit(bad)
    with pytest.raises(ValueError, match="images"):
        det.fit(digits.X_train)  # (n, d) vectors, not images
    with pytest.raises(ValueError, match="at least 2"):
        det.fit(digits.images_train[:1])
    with pytest.raises(ValueError, match="center"):
        DeepSVDD(center=np.ones(5), **FAST).fit(digits.images_train)
    det.fit(digits.images_train)
    with pytest.raises(ValueError, match="shape of the training images"):
        det.anomaly_score(np.zeros((2, 8, 8)))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DeepSVDD().anomaly_score(digits.images_test)


# --------------------------------------------------------------------------- #
# exercise 8: the checks pass the reference and name the typical mistakes
# --------------------------------------------------------------------------- #
EX8 = "08-deep-svdd"


@pytest.fixture(scope="module")
def ref8():
    """The reference functions of exercise 8, from its solution notebook."""
    path = Path(__file__).resolve().parent.parent / "solutions" / f"{EX8}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    ns = {"np": np, "torch": torch}
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            exec(compile(cell.source, str(path), "exec"), ns)
    return ns


def test_exercise_8_registry():
    tasks = checks.TASKS[EX8]
    assert list(tasks) == [f"task-{i}" for i in range(1, 6)]
    assert all(f.task == t for t, f in tasks.items())


@pytest.mark.parametrize("task", [f"task-{i}" for i in range(1, 6)])
def test_exercise_8_reference_passes(ref8, capsys, task):
    passes_everywhere(checks.TASKS[EX8][task], ref8, capsys, seeds=(1,))


def _center_fn(rule="ok", reducer="mean", no_grad=True, tensor=False):
    def initial_center(network, images, eps):
        ctx = torch.no_grad() if no_grad else torch.enable_grad()
        with ctx:
            out = network(images)
        z = out.detach().double().numpy()
        c = np.median(z, axis=0) if reducer == "median" else z.mean(axis=0)
        small = np.abs(c) < eps
        if rule == "ok":
            c[small] = np.where(c[small] < 0, -eps, eps)
        elif rule == "abs":
            c[small] = eps
        elif rule == "sign":
            c = np.where(small, np.sign(c) * eps, c)
        return torch.as_tensor(c) if tensor else c
    return initial_center


@pytest.mark.parametrize("kwargs, pattern", [
    ({"rule": "none"}, "without the eps rule"),
    ({"rule": "abs"}, "keep their sign"),
    ({"rule": "sign"}, "exactly 0 must become"),
    ({"reducer": "median"}, "median"),
    ({"no_grad": False}, "torch.no_grad"),
    ({"tensor": True}, "NumPy array"),
])
def test_ex8_task1_mistakes(kwargs, pattern):
    fails(checks.check_initial_center, _center_fn(**kwargs), match=pattern)


def _one_class(mode):
    def one_class_loss(features, center):
        sq = ((features - center) ** 2).sum(dim=1)
        return {"sum": sq.sum, "all": ((features - center) ** 2).mean, "norm": sq.sqrt().mean,
                "detach": lambda: sq.mean().detach(), "float": lambda: float(sq.mean().detach())}[mode]()
    return one_class_loss


@pytest.mark.parametrize("mode, pattern", [
    ("sum", "sum over the batch"), ("all", "all N\\*d entries"), ("norm", "squared distance"),
    ("detach", "no gradient"), ("float", "must return a torch tensor"),
])
def test_ex8_task2_mistakes(mode, pattern):
    fails(checks.check_one_class_loss, _one_class(mode), match=pattern)


def _soft(mode):
    def soft_boundary_loss(features, center, radius, nu):
        sq = ((features - center) ** 2).sum(dim=1)
        hinge = torch.clamp(sq - radius**2, min=0)
        return {"times_nu": radius**2 + nu * hinge.mean(), "no_r2": hinge.mean() / nu,
                "no_hinge": radius**2 + (sq - radius**2).mean() / nu,
                "no_mean": radius**2 + hinge.sum() / nu}[mode]
    return soft_boundary_loss


@pytest.mark.parametrize("mode, pattern", [
    ("times_nu", "multiplied by nu"), ("no_r2", "R\\^2 is missing"), ("no_hinge", "must not contribute"),
    ("no_mean", "not by nu N"),
])
def test_ex8_task3_mistakes(mode, pattern):
    fails(checks.check_soft_boundary_loss, _soft(mode), match=pattern)


@pytest.mark.parametrize("fn, pattern", [
    (lambda d, nu: float(np.quantile(d, 1 - nu)), "interpolates"),
    (lambda d, nu: float(np.quantile(d, nu, method="inverted_cdf")), "nu-quantile"),
    (lambda d, nu: float(np.quantile(d, 1 - nu, method="inverted_cdf")) ** 2, "R\\^2"),
])
def test_ex8_task4_mistakes(fn, pattern):
    def soft_boundary_radius(distances, nu):
        return fn(np.asarray(distances, dtype=float), nu)
    fails(checks.check_soft_boundary_radius, soft_boundary_radius, match=pattern)


def test_ex8_task4_any_correct_formulation_passes(capsys):
    def soft_boundary_radius(distances, nu):  # the library's order statistic
        return float(np.quantile(np.asarray(distances, dtype=float), 1 - nu, method="inverted_cdf"))
    checks.check_soft_boundary_radius(soft_boundary_radius)
    assert "✓ Task 4 passed" in capsys.readouterr().out


@pytest.mark.parametrize("mode, pattern", [("ge", "equal to R as outside"), ("count", "counts"),
                                           ("linear", "interpolating quantile")])
def test_ex8_task5_mistakes(mode, pattern):
    def outside_fractions(distances, nus):
        d = np.asarray(distances, dtype=float)
        out = []
        for nu in nus:
            r = np.quantile(d, 1 - nu, method="linear" if mode == "linear" else "inverted_cdf")
            out.append(np.mean(d >= r) if mode == "ge" else np.mean(d > r) * (d.size if mode == "count" else 1))
        return np.array(out)
    fails(checks.check_outside_fractions, outside_fractions, match=pattern)
