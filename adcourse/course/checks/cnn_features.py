r"""Checks of exercise 5, "CNN features for anomaly detection" (``solutions/05-cnn-features.ipynb``).

Each check asks the student's function questions on data it makes itself (from
the task's seed, never the notebook's data) and compares the answers with a
reference computed here, with NumPy (and, for task 1, with the layers of a small seeded network
called one after the other): the activation of one layer captured by a forward
hook, the per-location Gaussian of PaDiM (:class:`adcourse.deep.padim.PerLocationGaussian`
computes the same statistics), the Mahalanobis map, the student–teacher score
of Bergmann et al. (2020) and a three-sigma threshold on image scores
(:meth:`adcourse.decision.Threshold.three_sigma`). A wrong answer raises
:class:`~adcourse.course.checks.CheckFailed` with the input, the expected and the
received values and, when the answer matches a typical mistake (a hook left
registered, ``1/n`` instead of ``1/(n-1)``, ``reshape`` used to move an axis, a
squared distance, statistics of the test set instead of the validation set,
...), what the mistake probably was.

======  ==================================  ==============================================================
task    check                               the student's function
======  ==================================  ==============================================================
task-1  :func:`check_collect_activations`   ``collect_activations(model, layer_name, x)``
task-2  :func:`check_location_statistics`   ``location_statistics(emb, eps)``
task-3  :func:`check_mahalanobis_map`       ``mahalanobis_map(emb, mean, cov)``
task-4  :func:`check_student_teacher_score` ``student_teacher_score(student_preds, teacher, val_student_preds, val_teacher)``
task-5  :func:`check_three_sigma_threshold` ``three_sigma_threshold(val_maps, k)``
======  ==================================  ==============================================================

:mod:`torch` is imported inside the check of task 1 only, so that importing
:mod:`adcourse.course.checks` stays light. Task 1's answers are *probes*: what the student's
function returned, the hooks it left on the model, the gradient mode of the forward pass and
the mode the model is left in (measured where the student's code runs).

What the student's functions may use (:data:`ALLOW`, enforced by the grader): torch in task 1,
NumPy (and torch, SciPy's linear algebra) in the others -- never :mod:`adcourse.deep.padim` or
:class:`adcourse.decision.Threshold`, which solve tasks 2, 3 and 5.
"""

from __future__ import annotations

import numpy as np

from adcourse.course.checks._base import (
    Call,
    CheckFailed,
    Probe,
    _allclose,
    _as_array,
    _as_float,
    _close,
    _fmt,
    _mismatch,
    task,
)

__all__ = [
    "check_collect_activations",
    "check_location_statistics",
    "check_mahalanobis_map",
    "check_student_teacher_score",
    "check_three_sigma_threshold",
    "TASKS",
]


#: What the student's functions may use, by task.
ALLOW = {
    "task-1": ("torch", "numpy"),
    "task-2": ("numpy", "torch", "scipy.linalg"),
    "task-3": ("numpy", "torch", "scipy.linalg"),
    "task-4": ("numpy", "torch"),
    "task-5": ("numpy", "torch"),
}

# --------------------------------------------------------------------------------------
# task 1: the activation of one layer, with a forward hook
# --------------------------------------------------------------------------------------

_TINY_NET = ("a small test network: stem = Conv2d(3, 4, stride 2) + ReLU, block = Conv2d(4, 6) + "
             "BatchNorm2d(6) + ReLU, head = global average pooling + Linear(6, 2); in eval mode")


def _tiny_net(seed):
    """A seeded small CNN with nested named modules, in eval mode (BatchNorm with non-trivial
    running statistics, so that training mode gives other values)."""
    import torch
    from torch import nn

    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))

        def forward(self, x):
            return self.head(self.block(self.stem(x)))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TinyNet()
        with torch.no_grad():
            net.block[1].running_mean.normal_(0.0, 0.5)
            net.block[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def _direct(net, layer, x):
    """The output of ``layer``, computed by calling the layers one after the other."""
    import torch

    with torch.no_grad():
        return {
            "stem": lambda: net.stem(x),
            "stem.0": lambda: net.stem[0](x),
            "block": lambda: net.block(net.stem(x)),
            "block.1": lambda: net.block[1](net.block[0](net.stem(x))),
        }[layer]().numpy()


def _all_activations(net, x, train=False):
    """Inputs and outputs of every named module of a copy of ``net`` (one forward pass)."""
    import copy

    import torch

    net = copy.deepcopy(net).train(train)
    inputs, outputs = {}, {}

    def spy(name):
        def hook(module, args, output):
            if args and isinstance(args[0], torch.Tensor):
                inputs.setdefault(name, args[0].detach().clone().numpy())
            outputs.setdefault(name, output.detach().clone().numpy())
        return hook

    handles = [m.register_forward_hook(spy(name)) for name, m in net.named_modules()]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return inputs, outputs


def _hooks(net):
    """The ids of the hooks registered on every module of ``net``."""
    return {name: (set(m._forward_hooks), set(m._forward_pre_hooks))
            for name, m in net.named_modules()}


def _new_hooks(net, before):
    after = _hooks(net)
    return [name or "(the model itself)" for name in after
            if after[name][0] - before[name][0] or after[name][1] - before[name][1]]


def _tiny_input(seed, shape):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.randn(*shape)


def _activation_probe(functions, seed, layer, shape):
    """Probe: the activation returned for the seeded network and input, the hooks left on the
    network, the gradient mode of its forward passes, whether it is left in training mode."""
    import torch

    net, x = _tiny_net(seed), _tiny_input(seed, shape)
    grad_mode = []
    spy = net.register_forward_hook(lambda m, a, o: grad_mode.append(torch.is_grad_enabled()))
    before = _hooks(net)
    try:
        value = functions["collect_activations"](net, layer, x.clone())
    finally:
        left = _new_hooks(net, before)
        spy.remove()
    return {"value": value, "left": left, "grad": grad_mode, "training": bool(net.training)}


def _failure_probe(functions, seed):
    """Probe: the hooks left when the forward pass fails (an input with 2 channels instead of 3)."""
    import torch

    net = _tiny_net(seed)
    before = _hooks(net)
    try:
        functions["collect_activations"](net, "block", torch.zeros(1, 2, 8, 8))
    except Exception:  # noqa: BLE001 - the error is expected; the hooks are what is checked
        pass
    return _new_hooks(net, before)


def _activation_questions(rng):
    seeds = [int(v) for v in rng.integers(1, 2 ** 31, size=4)]
    return [Probe(_activation_probe, seeds[0], "block", (2, 3, 12, 10)),
            Probe(_activation_probe, seeds[1], "stem.0", (3, 3, 8, 8)),
            Probe(_activation_probe, seeds[2], "block.1", (1, 3, 9, 7)),
            Probe(_failure_probe, seeds[3])]


@task(1, "collect_activations", _activation_questions, uses=("collect_activations",), seed=5101,
      allow=ALLOW["task-1"])
def check_collect_activations(answers):
    r"""Check ``collect_activations(model, layer_name, x) -> ndarray``: the output of the
    submodule ``dict(model.named_modules())[layer_name]`` when ``model`` runs on the
    tensor ``x``, as a NumPy array, captured with a forward hook that is removed
    afterwards (also when the forward pass fails), computed without gradients.
    The model is a small seeded network made here; the reference calls its layers
    one after the other."""
    __tracebackhide__ = True  # noqa: F841
    import torch

    for call, probe in answers.of("_activation_probe"):
        seed, layer, shape = call.args
        net, x = _tiny_net(seed), _tiny_input(seed, shape)
        expected = _direct(net, layer, x)
        where = (f"on {_TINY_NET}, layer_name={layer!r}, x = a random tensor of shape {tuple(shape)}")
        if not isinstance(probe, dict):
            raise CheckFailed(f"no answer from collect_activations\n{where}")
        value, left = probe.get("value"), list(probe.get("left") or [])
        grad_mode, training = list(probe.get("grad") or []), probe.get("training") is not False
        if left:
            raise CheckFailed(
                f"collect_activations left a hook registered on {', '.join(map(repr, left))}\n{where}\n"
                "hint: register_forward_hook returns a handle; call handle.remove() once the "
                "activation is captured (in a finally: clause, so that it also happens when the "
                "forward pass fails), else every later forward pass runs your hook again")
        if isinstance(value, torch.Tensor):
            raise CheckFailed(
                f"collect_activations returned a torch tensor (shape {tuple(value.shape)}); it must "
                f"return a NumPy array\n{where}\nhint: output.detach().cpu().numpy()")
        if not isinstance(value, np.ndarray):
            raise CheckFailed(
                f"collect_activations must return a NumPy array, received {type(value).__name__}\n"
                f"{where}\nhint: store the hook's `output` argument and return output.detach().cpu().numpy()")
        if value.shape == expected.shape and _allclose(value, expected, 1e-5):
            pass
        else:
            inputs, outputs = _all_activations(net, x)
            _, train_outputs = _all_activations(net, x, train=True)
            variants = [
                (f"that is the INPUT of {layer!r}: the hook is called as hook(module, inputs, "
                 "output), with `inputs` a tuple of the layer's inputs; keep `output`",
                 inputs.get(layer)),
                ("the layer ran in training mode (BatchNorm normalised with the batch's own "
                 "statistics): leave the model in evaluation mode, do not call model.train()",
                 train_outputs.get(layer)),
                ("that is the output of the whole model (what model(x) returns); the layer's "
                 "output is the `output` argument the hook receives", outputs[""]),
            ] + [(f"that is the output of {name!r}, not of {layer!r}: hook "
                  f"dict(model.named_modules())[layer_name]", out)
                 for name, out in outputs.items() if name not in (layer, "")]
            if value.shape != expected.shape:
                hint = next((h for h, v in variants if v is not None and v.shape == value.shape
                             and _allclose(value, v, 1e-5)),
                            "return the whole batch, the hook's `output` of the layer, without "
                            "squeezing or indexing it")
                raise CheckFailed(
                    f"wrong shape of the activation returned by collect_activations\n{where}\n"
                    f"expected shape {expected.shape} (n, C, h, w), received {value.shape}\n"
                    f"hint: {hint}")
            got = _as_array(value, "the activation returned by collect_activations", expected.shape)
            raise _mismatch("activation", "collect_activations", where, expected, got, variants,
                            "register a forward hook on dict(model.named_modules())[layer_name] "
                            "that stores its `output`, run model(x), remove the hook, return the "
                            "stored output as a NumPy array", tol=1e-5, lead=2, name="activation")
        if grad_mode and any(grad_mode):
            raise CheckFailed(
                f"collect_activations ran the model with gradients enabled\n{where}\n"
                "hint: run the forward pass inside `with torch.no_grad():` (no graph is built: "
                "faster and lighter, and the output can be turned into NumPy directly)")
        if training:
            raise CheckFailed(
                f"collect_activations left the model in training mode\n{where}\n"
                "hint: the model is given in evaluation mode; do not call model.train()")

    # the hook goes away also when the forward pass fails
    for _, left in answers.of("_failure_probe"):
        if not left:
            continue
        raise CheckFailed(
            f"when the forward pass fails, collect_activations leaves its hook on "
            f"{', '.join(map(repr, left))}\non {_TINY_NET}, layer_name='block', x of shape "
            f"(1, 2, 8, 8) (2 channels instead of 3: model(x) raises a RuntimeError)\n"
            "hint: remove the hook in a finally: clause,\n"
            "    handle = module.register_forward_hook(hook)\n"
            "    try:\n        ...\n    finally:\n        handle.remove()")


# --------------------------------------------------------------------------------------
# task 2: mean and covariance at every location
# --------------------------------------------------------------------------------------


def _embeddings(rng, n, C, h, w, shift=0.0):
    """(n, C, h, w) embeddings whose mean and correlations depend on the location."""
    loc_mean = 2.0 * rng.normal(size=(h, w, C)) + 1.0
    mix = rng.normal(size=(h, w, C, C)) / np.sqrt(C) + np.eye(C)
    z = rng.normal(size=(n, h, w, C))
    x = loc_mean + np.einsum("hwcd,nhwd->nhwc", mix, z) + shift
    return x.transpose(0, 3, 1, 2)


def _stats_questions(rng):
    return [Call("location_statistics", emb, eps) for emb, eps in _stats_cases(rng)]


def _stats_cases(rng):
    yield _embeddings(rng, 9, 3, 4, 5), 0.1
    yield _embeddings(rng, 6, 4, 2, 3), 0.01
    yield _embeddings(rng, 15, 2, 3, 3), 0.5


def _np_cov_stats(emb, eps):
    """Mean (h, w, C) and np.cov + eps I (h, w, C, C), location by location."""
    n, C, h, w = emb.shape
    mean = np.empty((h, w, C))
    cov = np.empty((h, w, C, C))
    for i in range(h):
        for j in range(w):
            x = emb[:, :, i, j]
            mean[i, j] = x.mean(axis=0)
            cov[i, j] = np.atleast_2d(np.cov(x, rowvar=False)) + eps * np.eye(C)
    return mean, cov


def _scatter(x, mean):
    """Centred scatter matrices of x (n, h, w, C) around mean (h, w, C): (h, w, C, C)."""
    d = x - mean
    return np.einsum("nhwc,nhwd->hwcd", d, d)


def _stats_values(value, n, C, h, w, where):
    if isinstance(value, np.ndarray) or not isinstance(value, (tuple, list)) or len(value) != 2:
        what = (f"an array of shape {value.shape}" if isinstance(value, np.ndarray)
                else type(value).__name__
                + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
        raise CheckFailed(f"location_statistics must return 2 arrays, (mean, cov), received {what}\n"
                          f"{where}")
    out = []
    for v, name, shape in zip(value, ("mean", "cov"), ((h, w, C), (h, w, C, C))):
        arr = np.asarray(v, dtype=float) if not isinstance(v, (str, bytes)) else None
        if arr is not None and arr.shape != shape:
            hint = ""
            if name == "mean" and arr.shape == (C, h, w):
                hint = "\nhint: put the channels LAST: mean[i, j] is the mean vector of location (i, j)"
            elif name == "mean" and arr.shape in ((C,), (n, h, w)):
                hint = "\nhint: average over the images only (axis 0), one mean vector per location"
            elif name == "cov" and arr.shape in ((C, C, h, w), (C, h, w, C)):
                hint = "\nhint: cov[i, j] is the C x C covariance matrix of location (i, j): (h, w, C, C)"
            elif name == "cov" and arr.shape == (h, w, n, n):
                hint = ("\nhint: that is the covariance between IMAGES; the covariance is between "
                        "channels: (C, C) per location (np.cov with rowvar=False on an (n, C) array)")
            raise CheckFailed(f"wrong shape of {name} returned by location_statistics\n{where}\n"
                              f"expected shape {shape}, received {arr.shape}{hint}")
        out.append(_as_array(v, f"{name} (returned by location_statistics)", shape))
    return out


@task(2, "location_statistics", _stats_questions, uses=("location_statistics",), seed=5201,
      allow=ALLOW["task-2"])
def check_location_statistics(answers):
    r"""Check ``location_statistics(emb, eps) -> (mean, cov)``: for embeddings ``emb``
    of shape ``(n, C, h, w)``, the mean ``(h, w, C)`` and the unbiased covariance plus
    ``eps I`` ``(h, w, C, C)`` of the ``n`` vectors seen at every location, PaDiM's
    :math:`\Sigma_{ij} = \frac{1}{n-1}\sum_k (x^k_{ij}-\mu_{ij})(x^k_{ij}-\mu_{ij})^\top
    + \varepsilon I`; compared with ``np.cov`` location by location."""
    __tracebackhide__ = True  # noqa: F841
    for call, value in answers:
        emb, eps = call.args
        n, C, h, w = emb.shape
        where = (f"on the input emb of shape {emb.shape} (n={n} images, C={C} channels, "
                 f"{h}x{w} locations), eps={eps:g}")
        mean, cov = _stats_values(value, n, C, h, w, where)
        e_mean, e_cov = _np_cov_stats(emb, eps)
        x = emb.transpose(0, 2, 3, 1)               # (n, h, w, C)
        wrong_x = emb.reshape(n, h, w, C)           # reshape instead of moving the axis
        pooled = np.broadcast_to(x.reshape(-1, C).mean(axis=0), (h, w, C))
        eye = np.eye(C)
        if not _allclose(mean, e_mean, 1e-8):
            variants = [
                ("you moved the channel axis with reshape: emb.reshape(n, h, w, C) keeps the order "
                 "of the numbers in memory and mixes channels and locations; use "
                 "emb.transpose(0, 2, 3, 1) (or np.moveaxis(emb, 1, -1))", wrong_x.mean(axis=0)),
                ("that is one mean for all the locations: PaDiM fits one Gaussian PER location, "
                 "average over the images only", pooled),
            ]
            raise _mismatch("mean", "location_statistics", where, e_mean, mean, variants,
                            "mean[i, j] = emb[:, :, i, j].mean(axis=0)", tol=1e-8, lead=2,
                            name="mean")
        if _allclose(cov, e_cov, 1e-8):
            continue
        S = _scatter(x, e_mean)
        variants = [
            (f"you divided by n = {n}; the unbiased covariance divides the scatter by n - 1 = "
             f"{n - 1} (np.cov's default)", S / n + eps * eye),
            ("eps is missing: add eps on the DIAGONAL of every covariance, cov + eps * np.eye(C)",
             S / (n - 1)),
            (f"you divided by n = {n} and forgot eps: cov = scatter / (n - 1) + eps I", S / n),
            ("you added eps to every entry of the matrix; it goes on the diagonal only: "
             "+ eps * np.eye(C)", S / (n - 1) + eps),
            ("eps was added before dividing by n - 1: cov = scatter / (n - 1) + eps I",
             (S + eps * eye) / (n - 1)),
            ("you did not subtract the mean: the covariance is of x - mu, sum_k (x_k - mu)(x_k - "
             "mu)^T / (n - 1)", np.einsum("nhwc,nhwd->hwcd", x, x) / (n - 1) + eps * eye),
            ("you moved the channel axis with reshape: emb.reshape(n, h, w, C) mixes channels and "
             "locations; use emb.transpose(0, 2, 3, 1)",
             _scatter(wrong_x, wrong_x.mean(axis=0)) / (n - 1) + eps * eye),
            ("that is one covariance for all the locations: PaDiM fits one Gaussian PER location",
             np.broadcast_to(np.cov(x.reshape(-1, C), rowvar=False) + eps * eye, (h, w, C, C))),
        ]
        raise _mismatch("cov", "location_statistics", where, e_cov, cov, variants,
                        "cov[i, j] = np.cov(emb[:, :, i, j], rowvar=False) + eps * np.eye(C)",
                        tol=1e-8, lead=2, name="cov")


# --------------------------------------------------------------------------------------
# task 3: the Mahalanobis map
# --------------------------------------------------------------------------------------


def _maha(x, mean, M):
    """sqrt(d^T M d) at every (n, h, w), d = x - mean, x (n, h, w, C), M (h, w, C, C)."""
    d = x - mean
    return np.sqrt(np.maximum(np.einsum("nhwc,hwcd,nhwd->nhw", d, M, d), 0.0))


def _maha_questions(rng):
    return [Call("mahalanobis_map", *case) for case in _maha_cases(rng)]


def _maha_cases(rng):
    for n_train, n, C, h, w, eps in [(12, 3, 3, 4, 5, 0.1), (8, 2, 5, 3, 2, 0.01), (20, 4, 2, 2, 2, 0.5)]:
        both = _embeddings(rng, n_train + n, C, h, w)  # the same Gaussians for training and test
        mean, cov = _np_cov_stats(both[:n_train], eps)
        emb = both[n_train:] + rng.normal(size=(n, C, h, w)) * (rng.random((n, 1, h, w)) < 0.3)
        yield emb, mean, cov


@task(3, "mahalanobis_map", _maha_questions, uses=("mahalanobis_map",), seed=5301,
      allow=ALLOW["task-3"])
def check_mahalanobis_map(answers):
    r"""Check ``mahalanobis_map(emb, mean, cov) -> ndarray (n, h, w)``: the Mahalanobis
    distance :math:`\sqrt{(x_{ij}-\mu_{ij})^\top\Sigma_{ij}^{-1}(x_{ij}-\mu_{ij})}` of
    every location of every embedding ``emb`` ``(n, C, h, w)`` to the Gaussian of its own
    location, ``mean`` ``(h, w, C)``, ``cov`` ``(h, w, C, C)``."""
    __tracebackhide__ = True  # noqa: F841
    for call, value in answers:
        emb, mean, cov = call.args
        n, C, h, w = emb.shape
        x = emb.transpose(0, 2, 3, 1)
        inv = np.linalg.inv(cov)
        expected = _maha(x, mean, inv)
        where = (f"on the input emb of shape {emb.shape}, mean of shape {mean.shape}, cov of shape "
                 f"{cov.shape} (mean[i, j] = {_fmt(mean[0, 0])} at location (0, 0))")
        arr = np.asarray(value, dtype=float) if isinstance(value, np.ndarray) else value
        if isinstance(arr, np.ndarray) and arr.shape in ((h, w, n),) and (h, w, n) != (n, h, w):
            raise CheckFailed(f"wrong shape of the map returned by mahalanobis_map\n{where}\n"
                              f"expected shape {(n, h, w)}, received {arr.shape}\n"
                              "hint: one map per image, images first: (n, h, w)")
        got = _as_array(value, "the map returned by mahalanobis_map", (n, h, w))
        if _allclose(got, expected, 1e-7):
            continue
        diag = np.zeros_like(cov)
        idx = np.arange(C)
        diag[:, :, idx, idx] = 1.0 / cov[:, :, idx, idx]
        eye = np.broadcast_to(np.eye(C), cov.shape)
        variants = [
            ("you returned the SQUARED distance (x - mu)^T Sigma^-1 (x - mu); the Mahalanobis "
             "distance is its square root", expected ** 2),
            ("you multiplied by Sigma instead of its inverse: solve Sigma z = x - mu "
             "(np.linalg.solve) and take sqrt((x - mu) . z)", _maha(x, mean, cov)),
            ("that is the Euclidean distance ||x - mu||: weight it with the inverse covariance",
             _maha(x, mean, eye)),
            ("you used only the variances (the diagonal of Sigma): the full covariance, with the "
             "correlations between channels, is Sigma_ij = cov[i, j]", _maha(x, mean, diag)),
            ("you did not subtract the mean of the location: d = x_ij - mu_ij",
             _maha(x, 0.0, inv)),
            ("you moved the channel axis with reshape: emb.reshape(n, h, w, C) mixes channels and "
             "locations; use emb.transpose(0, 2, 3, 1) (or np.moveaxis(emb, 1, -1))",
             _maha(emb.reshape(n, h, w, C), mean, inv)),
        ]
        raise _mismatch("distances", "mahalanobis_map", where, expected, got, variants,
                        "d = emb.transpose(0, 2, 3, 1) - mean (n, h, w, C), then sqrt(d^T Sigma^-1 d) "
                        "with Sigma = cov[i, j] at every location: np.linalg.solve(cov, d[..., None]) "
                        "broadcasts over the locations, np.einsum sums the products", tol=1e-7,
                        lead=1, name="map")


# --------------------------------------------------------------------------------------
# task 4: the student-teacher score
# --------------------------------------------------------------------------------------


def _st_set(rng, M, n, C, h, w, anomalous):
    """Teacher features y (n, C, h, w) and M students' predictions (M, n, C, h, w)."""
    y = rng.normal(size=(n, C, h, w))
    spread = 0.2 + 0.4 * rng.random((n, 1, h, w))   # the students disagree more in places
    bias = 0.3 * rng.normal(size=(n, C, h, w))
    if anomalous:                                    # a square where the students are lost
        bias[:, :, 1:3, 1:3] += 1.5 * rng.normal(size=(n, C, 2, 2))
        spread[:, :, 1:3, 1:3] *= 3.0
    preds = y + bias + spread * rng.normal(size=(M, n, C, h, w))
    return preds, y


def _st_questions(rng):
    return [Call("student_teacher_score", *case) for case in _st_cases(rng)]


def _st_cases(rng):
    for M, n, nv, C, h, w in [(3, 2, 3, 4, 5, 6), (5, 3, 4, 2, 4, 4), (2, 1, 2, 6, 3, 5)]:
        preds, y = _st_set(rng, M, n, C, h, w, anomalous=True)
        val_preds, val_y = _st_set(rng, M, nv, C, h, w, anomalous=False)
        yield preds, y, val_preds, val_y


def _st_terms(preds, y):
    """Regression error e and predictive uncertainty v, (n, h, w) each."""
    mu = preds.mean(axis=0)
    e = np.sum((mu - y) ** 2, axis=1)
    v = np.mean(np.sum(preds ** 2, axis=2), axis=0) - np.sum(mu ** 2, axis=1)
    return e, v


def _standardise(a, ref, ddof=0, axis=None):
    mean = ref.mean(axis=axis, keepdims=axis is not None)
    std = ref.std(ddof=ddof, axis=axis, keepdims=axis is not None)
    return (a - mean) / std


@task(4, "student_teacher_score", _st_questions, uses=("student_teacher_score",), seed=5401,
      allow=ALLOW["task-4"])
def check_student_teacher_score(answers):
    r"""Check ``student_teacher_score(student_preds, teacher, val_student_preds, val_teacher)
    -> ndarray (n, h, w)``: with :math:`\mu` the mean of the ``M`` students' predictions
    ``(M, n, C, h, w)``, the regression error :math:`e = \|\mu - y\|^2` and the predictive
    uncertainty :math:`v = \frac1M\sum_i\|\mu_i\|^2 - \|\mu\|^2` (norms over the
    channels), each standardised with the mean and standard deviation of its values over
    all the locations of the validation set, and summed. The standard deviation may be
    the plain one or the unbiased one (``ddof=1``); mean instead of sum over channels and
    ``1/(M-1)`` in the variance are accepted (standardising removes those factors)."""
    __tracebackhide__ = True  # noqa: F841
    for call, value in answers:
        preds, y, val_preds, val_y = call.args
        M, n, C, h, w = preds.shape
        nv = val_y.shape[0]
        where = (f"on the input student_preds of shape {preds.shape} (M={M} students, n={n} test "
                 f"images, C={C} channels, {h}x{w} locations), teacher of shape {y.shape}, "
                 f"val_student_preds of shape {val_preds.shape}, val_teacher of shape {val_y.shape}")
        e, v = _st_terms(preds, y)
        ev, vv = _st_terms(val_preds, val_y)
        expected = _standardise(e, ev) + _standardise(v, vv)
        got = _as_array(value, "the score map returned by student_teacher_score", (n, h, w))
        if _allclose(got, expected, 1e-7) or _allclose(
                got, _standardise(e, ev, 1) + _standardise(v, vv, 1), 1e-7):
            continue
        second = np.mean(np.sum(preds ** 2, axis=2), axis=0)
        second_v = np.mean(np.sum(val_preds ** 2, axis=2), axis=0)
        e_each = np.mean(np.sum((preds - y) ** 2, axis=2), axis=0)
        e_each_v = np.mean(np.sum((val_preds - val_y) ** 2, axis=2), axis=0)
        variants = [
            ("the uncertainty v must subtract ||mu||^2: v = mean_i ||mu_i||^2 - ||mu||^2 (the "
             "variance of the ensemble, summed over the channels), not the mean of ||mu_i||^2 alone",
             _standardise(e, ev) + _standardise(second, second_v)),
            ("you standardised with the statistics of the TEST maps; the means and standard "
             "deviations of e and v come from the VALIDATION set (val_student_preds, val_teacher), "
             "normal images only", _standardise(e, e) + _standardise(v, v)),
            ("the score is missing the uncertainty term: score = (e - mean_e) / std_e + "
             "(v - mean_v) / std_v", _standardise(e, ev)),
            ("the score is missing the regression-error term: score = (e - mean_e) / std_e + "
             "(v - mean_v) / std_v", _standardise(v, vv)),
            ("the regression error is that of the ensemble MEAN, e = ||mu - y||^2 with mu = "
             "mean_i mu_i, not the mean of the students' own errors mean_i ||mu_i - y||^2",
             _standardise(e_each, e_each_v) + _standardise(v, vv)),
            ("the regression error is the SQUARED norm ||mu - y||^2",
             _standardise(np.sqrt(e), np.sqrt(ev)) + _standardise(v, vv)),
            ("the uncertainty is the variance of the ensemble (mean_i ||mu_i||^2 - ||mu||^2), not "
             "its square root", _standardise(e, ev) + _standardise(np.sqrt(np.maximum(v, 0)),
                                                                   np.sqrt(np.maximum(vv, 0)))),
            ("the terms were not standardised: subtract the validation mean and divide by the "
             "validation standard deviation of each before adding them", e + v),
            ("divide by the standard deviations too: (e - mean_e) / std_e + (v - mean_v) / std_v",
             (e - ev.mean()) + (v - vv.mean())),
            ("the statistics of e and v are over ALL the locations of ALL the validation images "
             "(one mean and one std for each term), not per location",
             _standardise(e, ev, axis=0) + _standardise(v, vv, axis=0)),
        ]
        raise _mismatch("scores", "student_teacher_score", where, expected, got, variants,
                        "mu = mean over students, e = sum_c (mu - y)^2, v = mean_i sum_c mu_i^2 - "
                        "sum_c mu^2; compute e and v on the validation set too, then "
                        "(e - e_val.mean()) / e_val.std() + (v - v_val.mean()) / v_val.std()",
                        tol=1e-7, lead=1, name="score")


# --------------------------------------------------------------------------------------
# task 5: a three-sigma threshold on image scores
# --------------------------------------------------------------------------------------


def _threshold_questions(rng):
    return [Call("three_sigma_threshold", maps, k) for maps, k in _threshold_cases(rng)]


def _threshold_cases(rng):
    for n, h, w, k in [(8, 6, 7, 3.0), (5, 4, 4, 2.0), (12, 5, 3, 2.5)]:
        maps = rng.gamma(2.0, 1.0, size=(n, h, w)) + rng.random((n, 1, 1))
        yield maps, k


@task(5, "three_sigma_threshold", _threshold_questions, uses=("three_sigma_threshold",), seed=5501,
      allow=ALLOW["task-5"])
def check_three_sigma_threshold(answers):
    r"""Check ``three_sigma_threshold(val_maps, k) -> Threshold or float``: the image
    score is the maximum of its anomaly map; the threshold is the mean plus ``k``
    unbiased standard deviations of the image scores of the normal validation maps
    ``(n, h, w)``: ``Threshold.three_sigma(val_maps.max(axis=(1, 2)), k)``."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.decision import Threshold

    for call, value in answers:
        maps, k = call.args
        n, h, w = maps.shape
        scores = maps.max(axis=(1, 2))
        expected = Threshold.three_sigma(scores, k).value
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.item()
        got = _as_float(value, "the value returned by three_sigma_threshold")
        if _close(got, expected, 1e-9):
            continue
        pixels = maps.ravel()
        means = maps.mean(axis=(1, 2))
        variants = [
            (f"you used the plain standard deviation (ddof=0); with n = {n} validation images "
             "use the unbiased one, np.std(scores, ddof=1)", scores.mean() + k * scores.std()),
            ("that threshold is on all the PIXELS of the maps; the image score is the MAXIMUM of "
             "each map: scores = val_maps.max(axis=(1, 2))", pixels.mean() + k * pixels.std(ddof=1)),
            ("that threshold is on all the PIXELS of the maps, with ddof=0; the image score is the "
             "MAXIMUM of each map: scores = val_maps.max(axis=(1, 2))", pixels.mean() + k * pixels.std()),
            ("the image score is the MAXIMUM of its map, not its mean", means.mean() + k * means.std(ddof=1)),
            (f"you ignored k = {k:g} (and used 3)", scores.mean() + 3.0 * scores.std(ddof=1)),
            ("mean plus k standard deviations: you forgot the factor k",
             scores.mean() + scores.std(ddof=1)),
            ("mean PLUS k standard deviations: high scores are anomalous",
             scores.mean() - k * scores.std(ddof=1)),
        ]
        hint = next((h_ for h_, v in variants if _close(got, v, 1e-9) and not _close(v, expected, 1e-9)),
                    "scores = val_maps.max(axis=(1, 2)); gamma = scores.mean() + k * scores.std(ddof=1) "
                    "(Threshold.three_sigma(scores, k))")
        raise CheckFailed("\n".join([
            "wrong threshold returned by three_sigma_threshold",
            f"on the input val_maps of shape {maps.shape} ({n} normal validation maps of {h}x{w} "
            f"pixels, image scores {_fmt(scores)}), k={k:g}",
            f"expected {expected:.6g}", f"received {got:.6g}", "hint: " + hint]))


#: The checks of exercise 5 by task id (the ids of the ``check`` cells' metadata).
TASKS = {
    "task-1": check_collect_activations,
    "task-2": check_location_statistics,
    "task-3": check_mahalanobis_map,
    "task-4": check_student_teacher_score,
    "task-5": check_three_sigma_threshold,
}
