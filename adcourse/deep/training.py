r"""The one training loop shared by the deep chapters (5–9) of the course.

Every network trained in the course — the students of
:mod:`adcourse.deep.student_teacher`, the autoencoders, the flows, ... — is trained by
:func:`fit_model`: mini-batch gradient descent on a loss that the caller writes
as a small function of the model and a batch,

.. math::

    \theta_{t+1} = \theta_t - \eta\, \widehat{\nabla_\theta L}(\theta_t), \qquad
    \widehat{\nabla_\theta L} = \nabla_\theta \frac{1}{|B_t|} \sum_{k \in B_t} \ell(\theta; x_k),

where :math:`B_t` is the :math:`t`-th mini-batch of a random permutation of the
training set drawn anew at every epoch (one epoch = one pass over the data) and
the update is Adam's (default) or SGD with momentum's version of that step.

The loop is deliberately small and explicit, so that it can be read in class:

* **numpy at the edges**: the data are numpy arrays (or tensors), one array or a
  tuple of arrays with the same first dimension (e.g. ``(images, targets)``);
  batches are moved to the device as they are drawn;
* **the loss is a function** ``loss_fn(model, *batch) -> scalar tensor``, so the
  same loop trains a regressor (``F.mse_loss(model(x), y)``), an autoencoder
  (``F.mse_loss(model(x), x)``) or anything else;
* **reproducible**: the batch order comes from a seeded numpy generator and the
  torch random numbers used by the loss (dropout, noise, sampling) from a seeded
  torch generator, forked so that the global random state of the caller is left
  untouched (:func:`seeded`). On a CPU the same seed gives the same weights
  (for a fixed torch version and number of threads); on a GPU, cuDNN may add
  tiny run-to-run differences;
* **honest**: a loss that becomes NaN or infinite stops training with a
  :class:`FloatingPointError` naming the epoch, instead of silently producing
  a useless model;
* the mean training loss of every epoch (and the validation loss, if validation
  data are given) is returned in a :class:`History`, which can plot itself.

Examples
--------
Fit a straight line :math:`y = 2x - 1` with a one-neuron network:

>>> import numpy as np, torch
>>> from adcourse.deep.training import fit_model, seeded
>>> x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
>>> y = 2 * x - 1
>>> with seeded(0):                       # reproducible initialisation
...     model = torch.nn.Linear(1, 1)
>>> def mse(model, xb, yb):
...     return torch.nn.functional.mse_loss(model(xb), yb)
>>> history = fit_model(model, mse, (x, y), n_epochs=200, batch_size=16, lr=0.05,
...                     progress=False, device="cpu")
>>> len(history.loss), history.loss[-1] < 1e-4
(200, True)
>>> round(model.weight.item(), 2), round(model.bias.item(), 2)
(2.0, -1.0)
"""

from __future__ import annotations

import contextlib
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["resolve_device", "seeded", "History", "fit_model", "predict"]


# --------------------------------------------------------------------------- #
# devices and seeds
# --------------------------------------------------------------------------- #
def resolve_device(device="auto"):
    """The :class:`torch.device` meant by ``device``.

    ``"auto"`` gives CUDA if a GPU is available, else the CPU; any string torch
    understands (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...) or a
    :class:`torch.device` is passed through. A CUDA device on a machine without
    GPU raises a :class:`ValueError` that says so.
    """
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}"
            ) from err
    else:
        raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but no CUDA GPU is available; use 'auto' or 'cpu'")
    return dev


@contextlib.contextmanager
def seeded(random_state=0, device="cpu"):
    """Context manager: torch's random generator seeded with ``random_state``, then restored.

    Inside the block, ``torch.manual_seed(random_state)`` is in force, so that
    e.g. the random initialisation of a network is reproducible; on exit the
    global random state is put back as it was (``torch.random.fork_rng``), so
    seeding here does not change any other random draw of the program. With a
    CUDA ``device`` the GPU generators are forked as well.

    >>> import torch
    >>> with seeded(3):
    ...     a = torch.nn.Linear(2, 2).weight
    >>> with seeded(3):
    ...     b = torch.nn.Linear(2, 2).weight
    >>> torch.equal(a, b)
    True
    """
    if not isinstance(random_state, numbers.Integral) or isinstance(random_state, bool):
        raise TypeError(f"random_state must be an integer, got {random_state!r}")
    dev = resolve_device(device)
    cuda = list(range(torch.cuda.device_count())) if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(random_state))
        yield


# --------------------------------------------------------------------------- #
# history
# --------------------------------------------------------------------------- #
@dataclass
class History:
    """What happened during :func:`fit_model`.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch (average of the batch losses, weighted
        by the batch sizes). The weights change during the epoch, so it mixes
        successive models (usually a little above the loss of the epoch's last
        model).
    val_loss : list of float
        Loss on the validation data at the end of each epoch (model in eval
        mode, no gradient); empty without validation data.
    seconds : float
        Wall-clock training time.
    n_steps : int
        Number of optimisation steps (batches) taken.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    seconds: float = 0.0
    n_steps: int = 0

    @property
    def n_epochs(self):
        """Number of epochs completed."""
        return len(self.loss)

    def plot(self, ax=None, label=None):
        """Learning curve: loss per epoch (training, and validation if any).

        The y axis is logarithmic when all losses are positive. Returns the
        matplotlib axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.2))
        prefix = f"{label}: " if label else ""
        epochs = np.arange(1, len(self.loss) + 1)
        ax.plot(epochs, self.loss, marker=".", label=prefix + "training")
        if self.val_loss:
            ax.plot(epochs[: len(self.val_loss)], self.val_loss, marker=".", label=prefix + "validation")
        values = np.asarray(list(self.loss) + list(self.val_loss), dtype=float)
        if values.size and np.all(values > 0):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend()
        return ax


# --------------------------------------------------------------------------- #
# checks
# --------------------------------------------------------------------------- #
def _check_int(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_real(value, name, positive):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _as_tensors(data, name):
    """``data`` (one array or a tuple/list of arrays) -> tuple of CPU tensors, same length."""
    arrays = tuple(data) if isinstance(data, (tuple, list)) else (data,)
    if len(arrays) == 0:
        raise ValueError(f"{name} is an empty tuple: give at least one array")
    tensors = []
    for k, a in enumerate(arrays):
        t = a.detach().cpu() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
        if t.is_floating_point():
            t = t.float()  # the networks are float32
        if t.ndim == 0:
            raise ValueError(f"{name}[{k}] must have a first (sample) dimension, got a scalar")
        tensors.append(t)
    sizes = [t.shape[0] for t in tensors]
    if len(set(sizes)) != 1:
        shapes = [tuple(t.shape) for t in tensors]
        raise ValueError(f"the arrays of {name} must have the same first dimension, got shapes {shapes}")
    if sizes[0] == 0:
        raise ValueError(f"{name} is empty: got 0 samples")
    return tuple(tensors)


def _make_optimizer(optimizer, params, lr, weight_decay):
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if callable(optimizer):  # e.g. torch.optim.RMSprop
        return optimizer(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(
        "optimizer must be 'adam', 'adamw', 'sgd' or a torch.optim class "
        f"(called as optimizer(params, lr=..., weight_decay=...)), got {optimizer!r}"
    )


def _batch_loss(model, loss_fn, batch):
    loss = loss_fn(model, *batch)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(
            "loss_fn(model, *batch) must return a scalar torch tensor, got "
            f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}"
        )
    return loss.reshape(())


# --------------------------------------------------------------------------- #
# the loop
# --------------------------------------------------------------------------- #
def fit_model(
    model,
    loss_fn,
    data,
    *,
    n_epochs=10,
    batch_size=32,
    lr=1e-3,
    weight_decay=0.0,
    optimizer="adam",
    val_data=None,
    drop_last=False,
    random_state=0,
    device="auto",
    progress=True,
    desc="training",
):
    """Train ``model`` in place by mini-batch gradient descent on ``loss_fn``; return a :class:`History`.

    Parameters
    ----------
    model : torch.nn.Module
        The network; it is moved to ``device``, kept in train mode during
        training and left in **eval mode** at the end (also after an error).
    loss_fn : callable
        ``loss_fn(model, *batch) -> scalar tensor``, where ``batch`` holds one
        tensor per array of ``data`` (already on ``device``). Lower is better;
        it is minimised on average over the batch.
    data : array or tensor (n, ...), or tuple of them
        Training data; several arrays must have the same first dimension ``n``
        (e.g. ``(inputs, targets)``). Float arrays become float32.
    n_epochs : int, default 10
        Passes over the data.
    batch_size : int, default 32
        Samples per step (capped at ``n``). The last batch of an epoch may be
        smaller, unless ``drop_last`` is set (useful with batch normalisation,
        which fails on a batch of one).
    lr : float, default 1e-3
        Learning rate.
    weight_decay : float, default 0
        L2 penalty on the weights (decoupled with ``"adamw"``).
    optimizer : {"adam", "adamw", "sgd"} or torch.optim class, default "adam"
        ``"sgd"`` uses momentum 0.9.
    val_data : same structure as ``data``, optional
        Validation data: their mean loss is recorded after each epoch in
        ``History.val_loss`` (eval mode, no gradients).
    drop_last : bool, default False
        Drop the last, incomplete batch of every epoch.
    random_state : int, default 0
        Seed of the batch order (numpy) and of the torch random numbers drawn
        inside ``loss_fn`` / the model (dropout, noise); the caller's global
        torch random state is not changed.
    device : "auto", "cpu", "cuda", ... or torch.device
        Where to train (:func:`resolve_device`).
    progress : bool, default True
        Show a progress bar over epochs (``tqdm.auto``) with the running loss.
    desc : str
        Label of the progress bar.

    Raises
    ------
    ValueError
        Empty data, arrays with different first dimensions, bad hyper-parameters.
    FloatingPointError
        The loss became NaN or infinite (the message names the epoch): lower
        ``lr`` or check the data.
    """
    from tqdm.auto import tqdm

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, *batch), got {loss_fn!r}")
    n_epochs = _check_int(n_epochs, "n_epochs")
    batch_size = _check_int(batch_size, "batch_size")
    lr = _check_real(lr, "lr", positive=True)
    weight_decay = _check_real(weight_decay, "weight_decay", positive=False)
    if not isinstance(random_state, numbers.Integral) or isinstance(random_state, bool):
        raise TypeError(f"random_state must be an integer, got {random_state!r}")
    tensors = _as_tensors(data, "data")
    val = None if val_data is None else _as_tensors(val_data, "val_data")
    if val is not None and len(val) != len(tensors):
        raise ValueError(f"val_data must hold {len(tensors)} array(s) like data, got {len(val)}")
    dev = resolve_device(device)

    n = tensors[0].shape[0]
    batch_size = min(batch_size, n)
    rng = np.random.default_rng(int(random_state))
    model.to(dev)
    opt = _make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad], lr, weight_decay)
    history = History()
    start = time.perf_counter()
    try:
        with seeded(int(random_state), dev):
            bar = tqdm(range(n_epochs), desc=desc, disable=not progress, leave=False)
            for epoch in bar:
                model.train()
                order = torch.as_tensor(rng.permutation(n))
                total, count = 0.0, 0
                for s in range(0, n, batch_size):
                    idx = order[s : s + batch_size]
                    if drop_last and len(idx) < batch_size:
                        break
                    batch = [t[idx].to(dev, non_blocking=True) for t in tensors]
                    loss = _batch_loss(model, loss_fn, batch)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"the training loss is {loss.item()} at epoch {epoch + 1} "
                            f"(step {history.n_steps + 1}); lower lr (now {lr:g}) or check the data"
                        )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    history.n_steps += 1
                    total += loss.item() * len(idx)
                    count += len(idx)
                history.loss.append(total / count)
                postfix = {"loss": f"{history.loss[-1]:.4g}"}
                if val is not None:
                    history.val_loss.append(_mean_loss(model, loss_fn, val, batch_size, dev))
                    if not np.isfinite(history.val_loss[-1]):
                        raise FloatingPointError(
                            f"the validation loss is {history.val_loss[-1]} at epoch {epoch + 1}"
                        )
                    postfix["val"] = f"{history.val_loss[-1]:.4g}"
                bar.set_postfix(postfix)
            bar.close()
    finally:
        model.eval()
        history.seconds = time.perf_counter() - start
    return history


def _mean_loss(model, loss_fn, tensors, batch_size, dev):
    """Loss averaged over all samples of ``tensors``, eval mode, no gradients."""
    was_training = model.training
    model.eval()
    total, n = 0.0, tensors[0].shape[0]
    with torch.no_grad():
        for s in range(0, n, batch_size):
            batch = [t[s : s + batch_size].to(dev) for t in tensors]
            total += _batch_loss(model, loss_fn, batch).item() * batch[0].shape[0]
    model.train(was_training)
    return total / n


def predict(model, inputs, *, batch_size=64, device=None):
    """``model(inputs)`` batch by batch, in eval mode without gradients, as a float32 numpy array.

    ``inputs`` is an array or tensor (n, ...); ``device`` defaults to the one
    holding the model's parameters.
    """
    (x,) = _as_tensors(inputs, "inputs")
    batch_size = _check_int(batch_size, "batch_size")
    if device is None:
        p = next(model.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
    else:
        dev = resolve_device(device)
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            out.append(model(x[s : s + batch_size].to(dev)).float().cpu())
    return torch.cat(out).numpy()
