"""The shared training loop: it learns, is reproducible, keeps the global RNG, and fails loudly."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adcourse.deep.training import History, fit_model, predict, resolve_device, seeded

torch.set_num_threads(1)


def _regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3
    return x, y


def _mse(model, x, y):
    return F.mse_loss(model(x), y)


def _model(seed=0):
    with seeded(seed):
        return torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1),
                                   torch.nn.Linear(16, 1))


def _fit(seed=0, model_seed=0, **kw):
    model = _model(model_seed)
    kw = {"n_epochs": 15, "batch_size": 8, "lr": 1e-2, "progress": False, "device": "cpu", **kw}
    hist = fit_model(model, _mse, _regression(), random_state=seed, **kw)
    return model, hist


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_loss_decreases_and_history_is_filled():
    model, hist = _fit()
    assert isinstance(hist, History)
    assert len(hist.loss) == hist.n_epochs == 15 and hist.val_loss == []
    assert hist.n_steps == 15 * 8  # 64 samples / batch of 8
    assert hist.seconds > 0
    assert hist.loss[-1] < 0.1 * hist.loss[0]
    x, y = _regression(seed=1)
    pred = predict(model, x)
    assert pred.dtype == np.float32 and pred.shape == y.shape
    assert np.mean((pred - y) ** 2) < 0.1 * np.var(y)


def test_sgd_and_partial_last_batch():
    _, hist = _fit(optimizer="sgd", batch_size=10, lr=0.02)  # 64 = 6 * 10 + 4
    assert hist.n_steps == 15 * 7 and hist.loss[-1] < hist.loss[0]
    _, hist = _fit(batch_size=10, drop_last=True, n_epochs=2)
    assert hist.n_steps == 2 * 6
    _, hist = _fit(batch_size=1000, n_epochs=2)  # capped at n: one batch per epoch
    assert hist.n_steps == 2


def test_same_seed_same_result_different_seed_different():
    m1, h1 = _fit(seed=0)
    m2, h2 = _fit(seed=0)
    m3, h3 = _fit(seed=1)  # other batch order and dropout masks, same initialisation
    assert torch.equal(_weights(m1), _weights(m2)) and h1.loss == h2.loss
    assert not torch.equal(_weights(m1), _weights(m3)) and h1.loss != h3.loss
    assert not torch.equal(_weights(_model(0)), _weights(_model(1)))


def test_global_rng_untouched_and_eval_mode_at_end():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    model, _ = _fit()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not model.training and not any(m.training for m in model.modules())
    with seeded(5):
        torch.rand(3)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_val_loss_recorded():
    x, y = _regression(seed=2, n=20)
    _, hist = _fit(val_data=(x, y))
    assert len(hist.val_loss) == 15 and all(np.isfinite(hist.val_loss))
    assert hist.val_loss[-1] < hist.val_loss[0]


def test_single_array_and_tensor_data():
    x = np.random.default_rng(0).normal(size=(32, 4))  # float64: converted to float32
    with seeded(0):
        ae = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Linear(2, 4))
    hist = fit_model(ae, lambda m, xb: F.mse_loss(m(xb), xb), x, n_epochs=30, lr=1e-2,
                     progress=False, device="cpu")
    assert hist.loss[-1] < hist.loss[0]
    hist = fit_model(ae, lambda m, xb: F.mse_loss(m(xb), xb), torch.as_tensor(x), n_epochs=2,
                     progress=False, device="cpu")
    assert len(hist.loss) == 2


def test_progress_bar_runs(capsys):
    _, hist = _fit(n_epochs=2, progress=True, desc="test bar")
    assert len(hist.loss) == 2


def test_history_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = History(loss=[1.0, 0.5, 0.2], val_loss=[1.1, 0.6, 0.4]).plot()
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    plt.close("all")


def test_errors():
    x, y = _regression()
    model = _model()
    kw = {"progress": False, "device": "cpu"}
    with pytest.raises(ValueError, match="empty"):
        fit_model(model, _mse, (x[:0], y[:0]), **kw)
    with pytest.raises(ValueError, match="same first dimension"):
        fit_model(model, _mse, (x, y[:10]), **kw)
    with pytest.raises(ValueError, match="val_data must hold 2"):
        fit_model(model, _mse, (x, y), val_data=x, **kw)
    for bad in ({"n_epochs": 0}, {"batch_size": 0}, {"batch_size": 2.5}, {"lr": 0.0},
                {"lr": float("nan")}, {"weight_decay": -1.0}, {"optimizer": "lbfgs"}):
        with pytest.raises(ValueError):
            fit_model(model, _mse, (x, y), **kw, **bad)
    with pytest.raises(TypeError, match="scalar"):
        fit_model(model, lambda m, xb, yb: m(xb) - yb, (x, y), **kw)
    with pytest.raises(TypeError, match="nn.Module"):
        fit_model(lambda t: t, _mse, (x, y), **kw)
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu please")


def test_nan_loss_raises_floating_point_error_and_leaves_eval_mode():
    x, y = _regression()
    y_bad = y.copy()
    y_bad[5] = np.nan
    model = _model()
    with pytest.raises(FloatingPointError, match="epoch 1"):
        fit_model(model, _mse, (x, y_bad), batch_size=64, progress=False, device="cpu")
    assert not model.training
    # divergence: a huge learning rate makes the loss overflow in a later epoch
    with pytest.raises(FloatingPointError, match="epoch"):
        fit_model(_model(), lambda m, xb, yb: (m(xb) - yb).pow(2).mean() * 1e30, (x, y),
                  lr=1e3, optimizer="sgd", n_epochs=50, progress=False, device="cpu")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


# --------------------------------------------------------------------------- #
# adversarial training: the same loop with several players
# --------------------------------------------------------------------------- #
from adcourse.deep.training import fit_adversarial  # noqa: E402


def _toy_gan(seed=0):
    """G(z) = a z + b against a small D; real data N(3, 0.5^2)."""
    with seeded(seed):
        G = torch.nn.Linear(1, 1)
        D = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.LeakyReLU(0.2), torch.nn.Dropout(0.1),
                                torch.nn.Linear(16, 1))

    def d_loss(x):
        fake = G(torch.randn_like(x)).detach()
        return (F.binary_cross_entropy_with_logits(D(x), torch.ones_like(x))
                + F.binary_cross_entropy_with_logits(D(fake), torch.zeros_like(x)))

    def g_loss(x):
        return F.binary_cross_entropy_with_logits(D(G(torch.randn_like(x))), torch.ones_like(x))

    return G, D, {"discriminator": (D, d_loss), "generator": (G, g_loss)}


def _real(n=256):
    return np.random.default_rng(0).normal(3.0, 0.5, size=(n, 1)).astype(np.float32)


def _fit_gan(seed=0, **kw):
    G, D, players = _toy_gan()
    kw = {"n_epochs": 60, "batch_size": 32, "lr": 5e-3, "progress": False, "device": "cpu", **kw}
    return G, D, fit_adversarial(players, _real(), random_state=seed, **kw)


def test_adversarial_game_moves_the_generator_onto_the_data():
    G, D, hist = _fit_gan(n_epochs=150, batch_size=64)
    assert hist.loss == [] and list(hist.losses) == ["discriminator", "generator"]
    assert hist.n_epochs == 150 and hist.n_steps == 150 * 4 and hist.seconds > 0
    assert all(np.isfinite(v).all() for v in hist.losses.values())
    with torch.no_grad():
        samples = G(torch.randn(4000, 1, generator=torch.Generator().manual_seed(1))).numpy()
    before = _toy_gan()[0]  # the same initialisation, untrained
    with torch.no_grad():
        start = before(torch.randn(4000, 1, generator=torch.Generator().manual_seed(1))).numpy()
    assert abs(start.mean() - 3.0) > 1.5  # it starts far from the data ...
    assert abs(samples.mean() - 3.0) < 0.3  # ... and ends on them
    # at the equilibrium D cannot tell: its loss is near 2 log 2 (undecided), not near 0
    assert np.mean(hist.losses["discriminator"][-20:]) > 1.0


def test_adversarial_same_seed_same_result_and_rng_untouched_and_eval_mode():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    G1, D1, h1 = _fit_gan(seed=0)
    G2, D2, h2 = _fit_gan(seed=0)
    G3, D3, h3 = _fit_gan(seed=1)  # other batch order, noise and dropout; same initialisation
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(_weights(G1), _weights(G2)) and torch.equal(_weights(D1), _weights(D2))
    assert h1.losses == h2.losses
    assert not torch.equal(_weights(G1), _weights(G3)) and h1.losses != h3.losses
    assert not any(m.training for net in (G1, D1) for m in net.modules())


def test_each_player_updates_only_its_own_parameters():
    with seeded(0):
        A, B = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    b0 = _weights(B).clone()
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    players = {
        # a's loss depends on B too (its backward writes gradients into B) ...
        "a": (A, lambda xb: (A(xb) + B(xb)).pow(2).mean()),
        # ... but b's own loss is flat: B must not move
        "b": (B, lambda xb: 0.0 * B(xb).sum()),
    }
    hist = fit_adversarial(players, x, n_epochs=5, batch_size=4, lr=0.1, progress=False, device="cpu")
    assert torch.equal(_weights(B), b0)
    assert hist.losses["a"][-1] < hist.losses["a"][0]
    # players given as a tuple of modules train together; lr per player
    with seeded(0):
        C1, C2 = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    c0 = torch.cat([_weights(C1), _weights(C2)]).clone()
    fit_adversarial({"pair": ((C1, C2), lambda xb: (C1(xb) - C2(xb) - 1).pow(2).mean())}, x, n_epochs=3,
                    lr={"pair": 0.05}, progress=False, device="cpu")
    assert not torch.equal(_weights(C1), c0[:3]) and not torch.equal(_weights(C2), c0[3:])


def test_while_a_player_moves_the_others_parameters_are_fixed():
    # autograd computes no gradient for the other players' weights (their values would be
    # thrown away); the mover's own gradients are the same either way
    with seeded(0):
        A, B = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    seen = {"a": [], "b": []}

    def loss(name, own, other):
        def f(xb):
            seen[name].append((all(q.requires_grad for q in own.parameters()),
                               any(q.requires_grad for q in other.parameters())))
            return (A(xb) + B(xb)).pow(2).mean()
        return f

    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    players = {"a": (A, loss("a", A, B)), "b": (B, loss("b", B, A))}
    fit_adversarial(players, x, n_epochs=2, batch_size=4, progress=False, device="cpu")
    assert seen["a"] == seen["b"] == [(True, False)] * 8
    assert all(q.requires_grad for net in (A, B) for q in net.parameters())   # switched back on

    def boom(xb):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fit_adversarial({"a": (A, loss("a", A, B)), "b": (B, boom)}, x, progress=False, device="cpu")
    assert all(q.requires_grad for net in (A, B) for q in net.parameters())   # also after an error


def test_adversarial_nan_guard_names_the_player_and_history_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    G, D, players = _toy_gan()
    good = players["discriminator"][1]
    calls = {"n": 0}

    def bad(x):
        calls["n"] += 1
        return G(x).mean() * (float("nan") if calls["n"] > 10 else 1.0)

    with pytest.raises(FloatingPointError, match=r"loss of the generator is nan at epoch 2 \(step 11\)"):
        fit_adversarial({"discriminator": (D, good), "generator": (G, bad)}, _real(), batch_size=32,
                        progress=False, device="cpu")
    assert not G.training and not any(m.training for m in D.modules())
    _, _, hist = _fit_gan(n_epochs=3, progress=True)
    ax = hist.plot()
    assert [line.get_label() for line in ax.lines] == ["discriminator", "generator"]
    plt.close("all")


def test_adversarial_errors():
    G, D, players = _toy_gan()
    x = _real()
    kw = {"progress": False, "device": "cpu"}
    for bad in ({}, [("d", players["discriminator"])], None):
        with pytest.raises(ValueError, match="players must be a non-empty dict"):
            fit_adversarial(bad, x, **kw)
    with pytest.raises(ValueError, match="pair"):
        fit_adversarial({"d": D}, x, **kw)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fit_adversarial({"d": ("D", players["discriminator"][1])}, x, **kw)
    with pytest.raises(TypeError, match="callable"):
        fit_adversarial({"d": (D, 3)}, x, **kw)
    with pytest.raises(ValueError, match="shares parameters"):
        fit_adversarial({"d": (D, lambda xb: D(xb).mean()), "e": ((D, G), lambda xb: G(xb).mean())}, x, **kw)
    with pytest.raises(ValueError, match="one rate per player"):
        fit_adversarial(players, x, lr={"discriminator": 1e-3}, **kw)
    for bad in ({"betas": (0.5,)}, {"betas": (1.0, 0.9)}, {"n_epochs": 0}, {"lr": -1.0}, {"weight_decay": -1.0}):
        with pytest.raises(ValueError):
            fit_adversarial(players, x, **kw, **bad)
    with pytest.raises(TypeError, match="player 'd' must return a scalar"):
        fit_adversarial({"d": (D, lambda xb: D(xb))}, x, **kw)
    with pytest.raises(ValueError, match="empty"):
        fit_adversarial(players, x[:0], **kw)


def test_cosine_schedule_warms_up_then_decays():
    # record the learning rate the optimizer uses at each step
    seen = []

    class Recorder(torch.optim.SGD):
        def __init__(self, params, lr, weight_decay=0.0):
            super().__init__(params, lr=lr, weight_decay=weight_decay)

        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    _, hist = _fit(optimizer=Recorder, schedule="cosine", lr=0.1, n_epochs=5, batch_size=16)  # 20 steps
    T, warm = 20, 2  # warm-up over ceil(T / 10) steps
    expected = [0.1 * t / warm if t <= warm else 0.05 * (1 + np.cos(np.pi * (t - warm) / (T - warm)))
                for t in range(1, T + 1)]
    np.testing.assert_allclose(seen, expected, atol=1e-12)
    assert hist.n_steps == T and seen[warm - 1] == pytest.approx(0.1) and seen[-1] == pytest.approx(0.0)
    # the default is a constant rate, as before
    seen.clear()
    _fit(optimizer=Recorder, lr=0.1, n_epochs=2, batch_size=16)
    assert seen == [0.1] * 8
    with pytest.raises(ValueError, match="schedule"):
        _fit(schedule="linear")
