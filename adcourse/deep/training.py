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

**Adversarial training** (the GANs of chapter 9) runs in the same loop:
:func:`fit_adversarial` gives it several *players*, each a group of networks
with its own optimiser and its own loss, and at every mini-batch the players
take one step each, in turn (the discriminator ascends its objective, then the
generator descends its own). Seeds, devices, progress bar, NaN guard and
:class:`History` (one loss curve per player) are those of :func:`fit_model`:
both call the one loop :func:`_train`.

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
import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["resolve_device", "seeded", "History", "fit_model", "fit_adversarial", "predict"]


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
    losses : dict name -> list of float
        Adversarial training (:func:`fit_adversarial`): the mean loss of each
        player in each epoch, e.g. ``{"discriminator": [...], "generator": [...]}``
        (``loss`` stays empty, since the sum of the players' losses means nothing);
        empty for :func:`fit_model`.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    seconds: float = 0.0
    n_steps: int = 0
    losses: dict = field(default_factory=dict)

    @property
    def n_epochs(self):
        """Number of epochs completed."""
        return len(self.loss) if self.loss or not self.losses else len(next(iter(self.losses.values())))

    def plot(self, ax=None, label=None):
        """Learning curve: loss per epoch (training, and validation if any; one curve per player).

        The y axis is logarithmic when all losses are positive. Returns the
        matplotlib axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.2))
        prefix = f"{label}: " if label else ""
        curves = dict(self.losses) if self.losses else {"training": self.loss}
        if self.val_loss:
            curves["validation"] = self.val_loss
        for name, values in curves.items():
            ax.plot(np.arange(1, len(values) + 1), values, marker="." if len(values) <= 60 else None,
                    label=prefix + name)
        values = np.asarray([v for c in curves.values() for v in c], dtype=float)
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
    schedule="constant",
    val_data=None,
    drop_last=False,
    random_state=0,
    device="auto",
    progress=True,
    desc="training",
):
    r"""Train ``model`` in place by mini-batch gradient descent on ``loss_fn``; return a :class:`History`.

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
    schedule : {"constant", "cosine"}, default "constant"
        Learning rate along the :math:`T` steps of the training. ``"cosine"``:
        a linear warm-up over the first :math:`T_w = \lceil T/10 \rceil` steps,
        then a half cosine down to 0,

        .. math::

            \eta_t = \eta\,\frac{t}{T_w}\ (t \le T_w), \qquad
            \eta_t = \frac{\eta}{2}\Big(1 + \cos\frac{\pi (t - T_w)}{T - T_w}\Big)\ (t > T_w),

        for step :math:`t = 1, \dots, T`: the warm-up lets a large peak rate
        :math:`\eta` (``lr``) start without diverging, and the decay settles the
        weights at the end of a short training.
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
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, *batch), got {loss_fn!r}")
    n_epochs = _check_int(n_epochs, "n_epochs")
    batch_size = _check_int(batch_size, "batch_size")
    lr = _check_real(lr, "lr", positive=True)
    weight_decay = _check_real(weight_decay, "weight_decay", positive=False)
    _check_seed(random_state)
    tensors = _as_tensors(data, "data")
    val = None if val_data is None else _as_tensors(val_data, "val_data")
    if val is not None and len(val) != len(tensors):
        raise ValueError(f"val_data must hold {len(tensors)} array(s) like data, got {len(val)}")
    dev = resolve_device(device)

    n, val_batch = tensors[0].shape[0], min(batch_size, tensors[0].shape[0])
    rate = _schedule(schedule, n_epochs * (n // val_batch if drop_last else -(-n // val_batch)))

    model.to(dev)
    opt = _make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad], lr, weight_decay)
    player = _Player(None, (model,), opt, lambda batch: _batch_loss(model, loss_fn, batch), lr)
    validate = None if val is None else (lambda: _mean_loss(model, loss_fn, val, val_batch, dev))
    return _train([player], tensors, n_epochs=n_epochs, batch_size=batch_size, drop_last=drop_last,
                  random_state=int(random_state), dev=dev, progress=progress, desc=desc, validate=validate,
                  rate=rate)


def fit_adversarial(
    players,
    data,
    *,
    n_epochs=10,
    batch_size=32,
    lr=2e-4,
    betas=(0.5, 0.999),
    weight_decay=0.0,
    drop_last=False,
    random_state=0,
    device="auto",
    progress=True,
    desc="adversarial training",
):
    r"""Train several networks that play a game: each player takes one step per mini-batch, in turn.

    A GAN is a two-player game :math:`\min_{\mathcal G}\max_{\mathcal D} V(\mathcal D, \mathcal G)`:
    the discriminator :math:`\mathcal D` ascends :math:`V`, the generator
    :math:`\mathcal G` descends it. Written as losses to minimise, every player
    :math:`p` has its own parameters :math:`\theta_p` and its own loss
    :math:`L_p`, and at every mini-batch :math:`B_t` each player in turn takes one
    Adam step on its loss, with the other players' parameters fixed,

    .. math::

        \theta_p \leftarrow \theta_p - \eta_p\,\widehat{\nabla_{\theta_p} L_p}(B_t)
        \qquad p = 1, \dots, P \ \text{(in the order given)} .

    "Fixed" is literal: while player :math:`p` computes its loss and its backward
    pass, the other players' parameters have ``requires_grad`` off, so autograd
    computes no gradient for them (it would be thrown away) and a loss can only
    move its own player's networks.

    This is the loop of :func:`fit_model` (same seeding of the batch order and of
    the torch random numbers, devices, progress bar, NaN guard, eval mode at the
    end); only the step differs.

    Parameters
    ----------
    players : dict name -> (modules, loss_fn)
        In the order the players move (usually the discriminator first).
        ``modules`` is a ``torch.nn.Module`` or a tuple of them (e.g. the
        generator and the encoder of a BiGAN, which play together): the player's
        optimiser updates their parameters and nothing else. ``loss_fn(*batch)``
        returns the player's scalar loss (lower is better for that player); it
        reaches the networks through its closure and draws its own noise
        (``torch.randn(..., device=x.device)``, seeded by the loop). A loss that
        only needs another player's output should ``detach()`` it.
    data : array or tensor (n, ...), or tuple of them
        The real (normal) training samples, as in :func:`fit_model`.
    n_epochs, batch_size, drop_last, random_state, device, progress, desc
        As in :func:`fit_model`.
    lr : float or dict name -> float, default 2e-4
        Learning rate, one for all players or one per player.
    betas : (float, float), default (0.5, 0.999)
        Adam's moment coefficients; :math:`\beta_1 = 0.5` (DCGAN's choice) damps
        the oscillations of the game.
    weight_decay : float, default 0
        L2 penalty on every player's weights.

    Returns
    -------
    History
        ``losses[name]``: the player's mean loss in each epoch; ``n_steps``
        counts mini-batches (every player stepped once in each).

    Raises
    ------
    ValueError
        Bad players, empty data, bad hyper-parameters.
    FloatingPointError
        A player's loss became NaN or infinite (the message names the player
        and the epoch).

    Examples
    --------
    A one-dimensional GAN: the generator :math:`\mathcal G(z) = a z + b` learns to
    shift and scale :math:`z \sim N(0, 1)` until the discriminator cannot tell its
    samples from data drawn from :math:`N(3, 0.5^2)`.

    >>> import numpy as np, torch
    >>> import torch.nn.functional as F
    >>> real = np.random.default_rng(0).normal(3.0, 0.5, size=(512, 1)).astype(np.float32)
    >>> with seeded(0):
    ...     G = torch.nn.Linear(1, 1)
    ...     D = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 1))
    >>> def d_loss(x):
    ...     fake = G(torch.randn_like(x)).detach()
    ...     return (F.binary_cross_entropy_with_logits(D(x), torch.ones_like(x))
    ...             + F.binary_cross_entropy_with_logits(D(fake), torch.zeros_like(x)))
    >>> def g_loss(x):
    ...     return F.binary_cross_entropy_with_logits(D(G(torch.randn_like(x))), torch.ones_like(x))
    >>> h = fit_adversarial({"discriminator": (D, d_loss), "generator": (G, g_loss)}, real,
    ...                     n_epochs=150, batch_size=64, lr=5e-3, progress=False, device="cpu")
    >>> sorted(h.losses), h.n_epochs, h.n_steps
    (['discriminator', 'generator'], 150, 1200)
    >>> with torch.no_grad():
    ...     samples = G(torch.randn(4000, 1)).numpy()
    >>> bool(abs(samples.mean() - 3.0) < 0.3)
    True
    """
    if not isinstance(players, dict) or not players:
        raise ValueError(f"players must be a non-empty dict name -> (modules, loss_fn), got {players!r}")
    n_epochs = _check_int(n_epochs, "n_epochs")
    batch_size = _check_int(batch_size, "batch_size")
    weight_decay = _check_real(weight_decay, "weight_decay", positive=False)
    try:
        betas = tuple(float(b) for b in betas)
    except TypeError:
        betas = ()
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    rates = dict(lr) if isinstance(lr, dict) else {name: lr for name in players}
    if set(rates) != set(players):
        raise ValueError(f"lr must be a number or a dict with one rate per player {list(players)}, "
                         f"got keys {list(rates)}")
    _check_seed(random_state)
    tensors = _as_tensors(data, "data")
    dev = resolve_device(device)

    entries, seen = [], set()
    for name, spec in players.items():
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise ValueError(f"players[{name!r}] must be a pair (modules, loss_fn), got {spec!r}")
        modules, loss_fn = spec
        modules = (modules,) if isinstance(modules, torch.nn.Module) else tuple(modules)
        if not modules or not all(isinstance(m, torch.nn.Module) for m in modules):
            raise TypeError(f"players[{name!r}]: modules must be a torch.nn.Module or a tuple of them")
        if not callable(loss_fn):
            raise TypeError(f"players[{name!r}]: loss_fn must be callable as loss_fn(*batch), got {loss_fn!r}")
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"players[{name!r}] has no trainable parameters")
        if seen & {id(p) for p in params}:
            raise ValueError(f"players[{name!r}] shares parameters with an earlier player: "
                             "each network belongs to one player")
        seen |= {id(p) for p in params}
        rate = _check_real(rates[name], f"lr[{name!r}]", positive=True)
        for m in modules:
            m.to(dev)
        opt = torch.optim.Adam(params, lr=rate, betas=betas, weight_decay=weight_decay)
        entries.append(_Player(str(name), modules, opt, _player_loss(loss_fn, name), rate))
    return _train(entries, tensors, n_epochs=n_epochs, batch_size=batch_size, drop_last=drop_last,
                  random_state=int(random_state), dev=dev, progress=progress, desc=desc)


@dataclass
class _Player:
    """One optimiser and its loss: ``name`` None for :func:`fit_model`'s single player."""

    name: str | None
    modules: tuple
    optimizer: torch.optim.Optimizer
    loss: object  # callable(batch) -> scalar tensor
    lr: float


def _check_seed(random_state):
    if not isinstance(random_state, numbers.Integral) or isinstance(random_state, bool):
        raise TypeError(f"random_state must be an integer, got {random_state!r}")


def _player_loss(loss_fn, name):
    """``batch -> loss_fn(*batch)``, checked to be a scalar tensor."""
    def loss(batch):
        return _scalar(loss_fn(*batch), name)
    return loss


def _scalar(loss, name):
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(
            f"the loss_fn of player {name!r} must return a scalar torch tensor, got "
            f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}"
        )
    return loss.reshape(())


def _schedule(name, total_steps):
    """The factor ``rate(t)`` of the learning rate at step t = 1..total_steps (see ``fit_model``)."""
    if name == "constant":
        return None
    if name != "cosine":
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {name!r}")
    warm = max(1, math.ceil(total_steps / 10))

    def rate(t):
        if t <= warm:
            return t / warm
        return 0.5 * (1.0 + math.cos(math.pi * (t - warm) / max(total_steps - warm, 1)))

    return rate


def _train(players, tensors, *, n_epochs, batch_size, drop_last, random_state, dev, progress, desc,
           validate=None, rate=None):
    """The loop itself, shared by :func:`fit_model` (one player) and :func:`fit_adversarial`.

    Every epoch draws a permutation of the samples (seeded numpy generator); every
    mini-batch is moved to ``dev`` and each player, in turn, computes its loss,
    checks that it is finite, and takes one step of its optimiser. The torch
    random numbers drawn by the losses come from a generator seeded with
    ``random_state`` (:func:`seeded`). All networks are in train mode during
    training and in eval mode at the end, also after an error.
    """
    from tqdm.auto import tqdm

    n = tensors[0].shape[0]
    batch_size = min(batch_size, n)
    rng = np.random.default_rng(random_state)
    modules = [m for p in players for m in p.modules]
    single = len(players) == 1 and players[0].name is None
    # while a player moves, the other players' parameters are fixed: autograd skips their
    # gradients (the values of the mover's gradients do not change, only the work)
    own = [[q for group in p.optimizer.param_groups for q in group["params"]] for p in players]
    frozen = [[q for j, qs in enumerate(own) if j != k for q in qs] for k in range(len(players))]
    history = History()
    if not single:
        history.losses = {p.name: [] for p in players}
    start = time.perf_counter()
    try:
        with seeded(random_state, dev):
            bar = tqdm(range(n_epochs), desc=desc, disable=not progress, leave=False)
            for epoch in bar:
                for m in modules:
                    m.train()
                order = torch.as_tensor(rng.permutation(n))
                totals, count = [0.0] * len(players), 0
                for s in range(0, n, batch_size):
                    idx = order[s : s + batch_size]
                    if drop_last and len(idx) < batch_size:
                        break
                    batch = [t[idx].to(dev, non_blocking=True) for t in tensors]
                    for k, player in enumerate(players):
                        _freeze(frozen[k], True)  # the others' parameters: no gradient to compute
                        try:
                            loss = player.loss(batch)
                            if not torch.isfinite(loss):
                                what = "training loss" if single else f"loss of the {player.name}"
                                raise FloatingPointError(
                                    f"the {what} is {loss.item()} at epoch {epoch + 1} "
                                    f"(step {history.n_steps + 1}); lower lr (now {player.lr:g}) or check the data"
                                )
                            player.optimizer.zero_grad(set_to_none=True)
                            loss.backward()
                        finally:
                            _freeze(frozen[k], False)
                        if rate is not None:  # the scheduled rate of this step (t = n_steps + 1)
                            for group in player.optimizer.param_groups:
                                group["lr"] = player.lr * rate(history.n_steps + 1)
                        player.optimizer.step()
                        totals[k] += loss.item() * len(idx)
                    history.n_steps += 1
                    count += len(idx)
                if single:
                    history.loss.append(totals[0] / count)
                    postfix = {"loss": f"{history.loss[-1]:.4g}"}
                else:
                    postfix = {}
                    for player, total in zip(players, totals):
                        history.losses[player.name].append(total / count)
                        postfix[player.name] = f"{total / count:.4g}"
                if validate is not None:
                    history.val_loss.append(validate())
                    if not np.isfinite(history.val_loss[-1]):
                        raise FloatingPointError(
                            f"the validation loss is {history.val_loss[-1]} at epoch {epoch + 1}"
                        )
                    postfix["val"] = f"{history.val_loss[-1]:.4g}"
                bar.set_postfix(postfix)
            bar.close()
    finally:
        for m in modules:
            m.eval()
        history.seconds = time.perf_counter() - start
    return history


def _freeze(params, on):
    """Switch ``requires_grad`` off (``on``) or back on for ``params``."""
    for q in params:
        q.requires_grad_(not on)


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
