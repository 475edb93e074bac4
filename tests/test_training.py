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
