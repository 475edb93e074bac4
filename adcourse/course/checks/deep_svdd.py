r"""Checks of exercise 8, "Deep SVDD" (``solutions/08-deep-svdd.ipynb``).

Each check asks the student's functions questions made from the task's seed (never the
notebook's data) and compares the answers with the reference of
:mod:`adcourse.deep.deep_svdd`, imported by the judges only: the centre of the sphere from an
initial forward pass with the :math:`\varepsilon` rule (:func:`~adcourse.deep.deep_svdd.init_center`),
the one-class and the soft-boundary losses of a batch, with their gradients
(:func:`~adcourse.deep.deep_svdd.deep_svdd_loss`), the soft-boundary radius as a quantile
(:func:`~adcourse.deep.deep_svdd.radius_from_distances`) and the fraction of training images
outside the sphere for several :math:`\nu`. A wrong answer raises
:class:`~adcourse.course.checks.CheckFailed` with the input, the expected and the received values
and, when the answer matches a typical mistake (no :math:`\varepsilon` rule, the sign of
:math:`c_i` lost, a zero component left at 0, a sum instead of a mean, the distance instead of
its square, :math:`\nu` instead of :math:`1/\nu`, numpy's interpolating quantile, ...), its
likely cause.

======  ==================================  ===============================================
task    check                               the student's function
======  ==================================  ===============================================
task-1  :func:`check_initial_center`        ``initial_center(network, images, eps)``
task-2  :func:`check_one_class_loss`        ``one_class_loss(features, center)``
task-3  :func:`check_soft_boundary_loss`    ``soft_boundary_loss(features, center, radius, nu)``
task-4  :func:`check_soft_boundary_radius`  ``soft_boundary_radius(distances, nu)``
task-5  :func:`check_outside_fractions`     ``outside_fractions(distances, nus)``
======  ==================================  ===============================================

Tasks 1-3 are answered by *probes* that run where the student's code runs: task 1 records the
answer and whether the forward pass kept track of gradients; tasks 2 and 3 record the loss and
its gradient with respect to the features (the losses must be differentiable torch expressions,
since the network is trained with them). :mod:`torch` is imported inside the probes and judges
only, so that importing :mod:`adcourse.course.checks` stays light.

What the student's functions may use (:data:`ALLOW`, enforced by the grader): torch and NumPy,
never :mod:`adcourse.deep.deep_svdd`, whose functions solve the tasks.
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
    _check_gradients,
    _close,
    _fmt,
    _mismatch,
    _tensor_answer,
    task,
)

__all__ = [
    "check_initial_center",
    "check_one_class_loss",
    "check_soft_boundary_loss",
    "check_soft_boundary_radius",
    "check_outside_fractions",
    "TASKS",
]

#: What the student's functions may use, by task.
ALLOW = {
    "task-1": ("torch", "numpy"),
    "task-2": ("torch", "numpy"),
    "task-3": ("torch", "numpy"),
    "task-4": ("numpy", "math"),
    "task-5": ("numpy", "math"),
}


# --------------------------------------------------------------------------------------
# task 1: the centre from an initial forward pass, with the eps rule
# --------------------------------------------------------------------------------------

_NET = ("a small bias-free test network psi: Conv2d(1, 4, 3, stride 2, no bias) + LeakyReLU + "
        "Flatten + Linear(., d, no bias), in eval mode")


def _center_targets(rng, d, eps):
    """Means the test network's outputs are scaled to: large ones of both signs, small ones of both
    signs (|c_i| < eps), one exact zero, and one at exactly eps."""
    big = rng.uniform(2 * eps, 6 * eps, size=d) * rng.choice([-1.0, 1.0], size=d)
    small = rng.uniform(0.05 * eps, 0.9 * eps, size=d) * rng.choice([-1.0, 1.0], size=d)
    targets = np.where(rng.random(d) < 0.5, big, small)
    targets[:2] = [0.5 * eps, -0.5 * eps]
    targets[2] = 0.0
    targets[3] = eps
    return targets


def _test_network(seed, n, size, d, eps):
    """The seeded network and input of a question; the rows of the last layer are scaled so that
    the mean output over the images is exactly ``_center_targets`` (up to float32)."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False), nn.LeakyReLU(0.1),
                            nn.Flatten(), nn.Linear(4 * ((size + 1) // 2) ** 2, d, bias=False))
        x = torch.rand(n, 1, size, size)
    targets = _center_targets(np.random.default_rng(seed), d, eps)
    with torch.no_grad():
        h = net[:3](x).mean(dim=0)                       # mean hidden features
        w = torch.randn(d, h.numel(), generator=torch.Generator().manual_seed(seed + 1))
        w -= torch.outer(w @ h / (h @ h), h)             # rows orthogonal to h: mean output 0
        w += torch.outer(torch.as_tensor(targets, dtype=torch.float32), h / (h @ h))  # then the targets
        w[2] = 0.0                                       # an output exactly 0 for every image
        net[3].weight.copy_(w)
    return net.eval(), x


def _center_probe(functions, seed, n, size, d, eps):
    """Probe: the answer of initial_center, whether the forward pass tracked gradients, the mode
    the network is left in."""
    import torch

    net, x = _test_network(seed, n, size, d, eps)
    grad = []
    spy = net.register_forward_hook(lambda m, a, o: grad.append(torch.is_grad_enabled()))
    try:
        value = functions["initial_center"](net, x.clone(), eps)
    finally:
        spy.remove()
    return {"value": value, "grad": grad, "training": bool(net.training)}


def _center_questions(rng):
    seeds = [int(v) for v in rng.integers(1, 2**31, size=3)]
    return [Probe(_center_probe, seeds[0], 12, 8, 6, 0.1),
            Probe(_center_probe, seeds[1], 40, 10, 16, 0.1),
            Probe(_center_probe, seeds[2], 25, 6, 9, 0.25)]


def _reference_center(seed, n, size, d, eps):
    import torch

    from adcourse.deep.deep_svdd import init_center

    net, x = _test_network(seed, n, size, d, eps)
    with torch.no_grad():
        features = net(x).double().numpy()
    return features, init_center(features, eps)


@task(1, "initial_center", _center_questions, uses=("initial_center",), seed=8101, allow=ALLOW["task-1"])
def check_initial_center(answers):
    r"""Check ``initial_center(network, images, eps) -> ndarray (d,)``: the mean of
    ``network(images)`` over the images (a forward pass without gradient), each component with
    :math:`|c_i| < \varepsilon` replaced by :math:`-\varepsilon` if it is negative and by
    :math:`+\varepsilon` otherwise (an exact 0 too)."""
    __tracebackhide__ = True  # noqa: F841
    import torch

    for call, probe in answers.of("_center_probe"):
        seed, n, size, d, eps = call.args
        where = f"on {_NET} with d = {d} outputs, images = {n} random {size}x{size} images, eps = {eps}"
        if not isinstance(probe, dict):
            raise CheckFailed(f"no answer from initial_center\n{where}")
        value = probe.get("value")
        if isinstance(value, torch.Tensor):
            raise CheckFailed(f"initial_center returned a torch tensor; it must return a NumPy array (d,)\n"
                              f"{where}\nhint: c.detach().cpu().numpy()")
        features, expected = _reference_center(seed, n, size, d, eps)
        got = _as_array(value, "the centre returned by initial_center", (d,))
        if any(probe.get("grad") or []):
            raise CheckFailed(f"initial_center ran the network with gradients enabled\n{where}\n"
                              "hint: the centre is computed once and never trained: run the forward "
                              "pass inside `with torch.no_grad():`")
        if probe.get("training"):
            raise CheckFailed(f"initial_center left the network in training mode\n{where}\n"
                              "hint: do not call network.train(); leave the mode as it was given")
        if _allclose(got, expected, 1e-4):
            continue
        mean = features.mean(axis=0)
        small = np.abs(mean) < eps
        variants = [
            ("that is the mean without the eps rule: move every component with |c_i| < eps to -eps "
             "(if c_i < 0) or +eps (if c_i >= 0)", mean),
            ("the components with |c_i| < eps must keep their sign: -eps for the negative ones, +eps "
             "for the others", np.where(small, eps, mean)),
            ("a component exactly 0 must become +eps too (the rule is 'c_i >= 0 -> +eps'); "
             "np.sign(0) is 0", np.where(small, np.sign(mean) * eps, mean)),
            ("the rule applies to |c_i| < eps, i.e. to the negative components near 0 too, not only "
             "to 0 <= c_i < eps", np.where(small & (mean >= 0), eps, mean)),
            ("that is the median of the features; the centre is their mean",
             _with_rule(np.median(features, axis=0), eps)),
            ("that is the mean over all the entries of the features, not over the images (axis 0)",
             np.full(d, _with_rule(np.array([features.mean()]), eps)[0])),
        ]
        raise _mismatch("centre", "initial_center", where, expected, got, variants,
                        "c = mean of network(images) over the images (axis 0), then the eps rule "
                        "component by component", tol=1e-4)


def _with_rule(c, eps):
    c = np.array(c, dtype=float)
    small = np.abs(c) < eps
    c[small] = np.where(c[small] < 0, -eps, eps)
    return c


# --------------------------------------------------------------------------------------
# tasks 2 and 3: the losses of a batch, as differentiable torch expressions
# --------------------------------------------------------------------------------------

def _batch(seed, n, d, spread):
    """Seeded features (n, d) around a seeded centre (d,), float64 tensors."""
    import torch

    g = torch.Generator().manual_seed(seed)
    center = torch.randn(d, generator=g, dtype=torch.float64)
    features = center + spread * torch.randn(n, d, generator=g, dtype=torch.float64)
    return features, center


def _loss_probe(functions, name, seed, n, d, spread, *extra):
    """Probe: the loss returned by ``functions[name]`` on a seeded batch, and its gradient with
    respect to the features (None when the loss is not a differentiable tensor)."""
    import torch

    features, center = _batch(seed, n, d, spread)
    features.requires_grad_(True)
    loss = functions[name](features, center.clone(), *extra)
    out = {"type": type(loss).__name__, "value": loss, "grad": None}
    if isinstance(loss, torch.Tensor):
        out["value"] = loss.detach()
        if loss.requires_grad and loss.numel() == 1:
            (grad,) = torch.autograd.grad(loss.reshape(()), features, allow_unused=True)
            out["grad"] = grad
    return out


def _loss_reference(seed, n, d, spread, objective, radius=0.0, nu=0.1):
    import torch

    from adcourse.deep.deep_svdd import deep_svdd_loss

    features, center = _batch(seed, n, d, spread)
    features.requires_grad_(True)
    loss = deep_svdd_loss(((features - center) ** 2).sum(dim=1), objective, radius, nu)
    (grad,) = torch.autograd.grad(loss, features)
    return features.detach().numpy(), center.numpy(), float(loss.detach()), grad.numpy()


def _check_loss(probe, name, where, expected, expected_grad, variants, default_hint):
    """Common part of tasks 2 and 3: a scalar differentiable tensor with the right value and gradient."""
    got = float(_tensor_answer(probe, name, where, (), returns="a torch tensor (a scalar the optimiser can "
                               "differentiate)", hint="compute with torch operations on the features, no .item() "
                               "or .numpy()", shape_hint="average over the batch (and sum over the d features)"))
    if not _close(got, expected, 1e-7):
        hint = next((h for h, v in variants if _close(got, v, 1e-7) and not _close(v, expected, 1e-7)),
                    default_hint)
        raise CheckFailed(f"wrong loss returned by {name}\n{where}\nexpected {_fmt(expected)}\n"
                          f"received {_fmt(got)}\nhint: {hint}")
    _check_gradients(probe, name, where, [expected_grad], "the features", what="the loss", source="the features",
                     why="the network is trained by back-propagating this loss")


def _one_class_questions(rng):
    seeds = [int(v) for v in rng.integers(1, 2**31, size=3)]
    return [Probe(_loss_probe, "one_class_loss", seeds[0], 5, 3, 0.5),
            Probe(_loss_probe, "one_class_loss", seeds[1], 64, 32, 0.2),
            Probe(_loss_probe, "one_class_loss", seeds[2], 1, 8, 1.0)]


@task(2, "one_class_loss", _one_class_questions, uses=("one_class_loss",), seed=8202, allow=ALLOW["task-2"])
def check_one_class_loss(answers):
    r"""Check ``one_class_loss(features, center) -> scalar tensor``: the one-class Deep SVDD loss of a
    batch, :math:`\frac1N\sum_n \lVert\psi_n - \mathbf{c}\rVert^2` (weight decay excluded), for
    ``features`` (N, d) and ``center`` (d,) torch tensors, differentiable in the features."""
    __tracebackhide__ = True  # noqa: F841
    for call, probe in answers.of("_loss_probe"):
        _, seed, n, d, spread = call.args
        f, c, expected, grad = _loss_reference(seed, n, d, spread, "one-class")
        where = f"on a batch of N = {n} features of dimension d = {d} (float64 tensors) and a centre (d,)"
        sq = ((f - c) ** 2).sum(axis=1)
        variants = [
            ("that is the sum over the batch; the loss is the mean over the N images", sq.sum()),
            ("you averaged over all N*d entries; sum the squares over the d features, then average "
             "over the images", sq.mean() / d),
            ("that is the mean distance; the loss uses the squared distance ||psi - c||^2", np.sqrt(sq).mean()),
            ("that is the squared norm of the mean; average the squared distances of the images",
             float(((f.mean(axis=0) - c) ** 2).sum())),
        ]
        _check_loss(probe, "one_class_loss", where, expected, grad, variants,
                    "loss = ((features - center) ** 2).sum(dim=1).mean()")


def _soft_questions(rng):
    seeds = [int(v) for v in rng.integers(1, 2**31, size=4)]
    return [Probe(_loss_probe, "soft_boundary_loss", seeds[0], 6, 3, 0.6, 0.5, 0.25),
            Probe(_loss_probe, "soft_boundary_loss", seeds[1], 64, 32, 0.25, 1.2, 0.1),
            Probe(_loss_probe, "soft_boundary_loss", seeds[2], 20, 4, 0.5, 0.0, 0.5),   # R = 0: warm-up
            Probe(_loss_probe, "soft_boundary_loss", seeds[3], 10, 2, 0.1, 5.0, 0.1)]   # all inside


@task(3, "soft_boundary_loss", _soft_questions, uses=("soft_boundary_loss",), seed=8303,
      allow=ALLOW["task-3"])
def check_soft_boundary_loss(answers):
    r"""Check ``soft_boundary_loss(features, center, radius, nu) -> scalar tensor``:
    :math:`R^2 + \frac{1}{\nu N}\sum_n \max\{0, \lVert\psi_n - \mathbf{c}\rVert^2 - R^2\}`, with
    ``radius`` :math:`R` a float, differentiable in the features."""
    __tracebackhide__ = True  # noqa: F841
    for call, probe in answers.of("_loss_probe"):
        _, seed, n, d, spread, radius, nu = call.args
        f, c, expected, grad = _loss_reference(seed, n, d, spread, "soft-boundary", radius, nu)
        where = (f"on a batch of N = {n} features of dimension d = {d} (float64 tensors), a centre (d,), "
                 f"radius = {radius}, nu = {nu}")
        sq = ((f - c) ** 2).sum(axis=1)
        r2 = radius**2
        hinge = np.maximum(0.0, sq - r2)
        variants = [
            ("you multiplied by nu; the hinge terms are weighted by 1 / (nu N)", r2 + nu * hinge.mean()),
            ("the term R^2 is missing: loss = R^2 + sum(max(0, d_n - R^2)) / (nu N)", hinge.mean() / nu),
            ("you divided by nu only, not by nu N: average the hinge terms over the batch",
             r2 + hinge.sum() / nu),
            ("the hinge compares squared distances with R^2, not distances with R",
             r2 + np.maximum(0.0, np.sqrt(sq) - radius).mean() / nu),
            ("the images inside the sphere must not contribute: max(0, d_n - R^2), not d_n - R^2",
             r2 + (sq - r2).mean() / nu),
            ("R enters squared: R^2 + ...", radius + hinge.mean() / nu),
        ]
        _check_loss(probe, "soft_boundary_loss", where, expected, grad, variants,
                    "d = ((features - center) ** 2).sum(dim=1); loss = R^2 + clamp(d - R^2, min=0).mean() / nu")


# --------------------------------------------------------------------------------------
# task 4: the radius as a quantile
# --------------------------------------------------------------------------------------

def _order_statistic(d, nu):
    """The smallest distance d_i with at most nu N distances above it: d_(k), k = ceil((1 - nu) N)."""
    d = np.sort(np.asarray(d, dtype=float))
    n = d.size
    limit = nu * n + 1e-9
    for value in d:
        if np.sum(d > value) <= limit:
            return float(value)
    return float(d[-1])  # pragma: no cover - the largest always qualifies


def _distances(rng, n, ties=False):
    d = rng.gamma(2.0, 0.5, size=n)
    if ties:
        d = np.round(d, 1)
    return rng.permutation(d)


def _radius_questions(rng):
    return [Call("soft_boundary_radius", np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 0.3),
            Call("soft_boundary_radius", np.array([0.4, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.5, 0.6, 1.0]), 0.1),
            Call("soft_boundary_radius", _distances(rng, 91), 0.1),
            Call("soft_boundary_radius", _distances(rng, 37), 0.25),
            Call("soft_boundary_radius", _distances(rng, 200, ties=True), 0.05),
            Call("soft_boundary_radius", _distances(rng, 7), 1.0),
            Call("soft_boundary_radius", list(_distances(rng, 12)), 0.5)]


@task(4, "soft_boundary_radius", _radius_questions, uses=("soft_boundary_radius",), seed=8404,
      allow=ALLOW["task-4"])
def check_soft_boundary_radius(answers):
    r"""Check ``soft_boundary_radius(distances, nu) -> float``: the :math:`(1-\nu)`-quantile of the
    distances :math:`d_n = \lVert\psi_n - \mathbf{c}\rVert` (not squared), taken as the order
    statistic :math:`d_{(k)}`, :math:`k = \lceil (1-\nu) N \rceil`: the smallest distance with at
    most :math:`\nu N` distances above it."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.deep.deep_svdd import radius_from_distances

    for call, got in answers:
        distances, nu = call.args
        d = np.asarray(distances, dtype=float)
        expected = radius_from_distances(d, nu)
        assert expected == _order_statistic(d, nu)  # the two definitions agree
        r = _as_float(got, "the radius returned by soft_boundary_radius")
        if _close(r, expected, 1e-12):
            continue
        where = f"on the input distances={_fmt(d)} (N = {d.size}), nu={nu}"
        outside = int(np.sum(d > r))
        variants = [
            (f"numpy's default quantile interpolates between two distances; here it leaves {outside} "
             f"of {d.size} distances outside, more than nu N = {nu * d.size:g} when nu N is not an "
             "integer: take an order statistic, np.quantile(d, 1 - nu, method='inverted_cdf')",
             float(np.quantile(d, 1 - nu))),
            ("that is the nu-quantile; R is the (1 - nu)-quantile: a fraction nu of the distances lies above it",
             float(np.quantile(d, nu, method="inverted_cdf"))),
            ("that is R^2; the distances are not squared, R is one of them", expected**2),
            ("that is the next larger distance: k = ceil((1 - nu) N) counts from 1 (the smallest is d_(1) "
             "= np.sort(d)[0])", float(np.sort(d)[min(int(np.ceil((1 - nu) * d.size - 1e-9)), d.size - 1)])),
            ("that is one distance too small: k = ceil((1 - nu) N), not floor",
             float(np.sort(d)[max(int(np.floor((1 - nu) * d.size + 1e-9)) - 1, 0)])),
        ]
        hint = next((h for h, v in variants if _close(r, v, 1e-12) and not _close(v, expected, 1e-12)),
                    f"R = d_(k) with k = ceil((1 - nu) N): at most nu N distances above it (yours leaves "
                    f"{outside} above)")
        raise CheckFailed(f"wrong radius returned by soft_boundary_radius\n{where}\n"
                          f"expected {_fmt(expected)}\nreceived {_fmt(r)}\nhint: {hint}")


# --------------------------------------------------------------------------------------
# task 5: the fraction of training images outside the sphere, for several nu
# --------------------------------------------------------------------------------------

def _fraction_questions(rng):
    nus = np.array([0.05, 0.1, 0.2, 0.4])
    return [Call("outside_fractions", np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0.2, 0.3, 1.0])),
            Call("outside_fractions", _distances(rng, 90), nus),
            Call("outside_fractions", _distances(rng, 150, ties=True), nus),
            Call("outside_fractions", list(_distances(rng, 33)), [0.5, 0.01])]


@task(5, "outside_fractions", _fraction_questions, uses=("outside_fractions",), seed=8505,
      allow=ALLOW["task-5"])
def check_outside_fractions(answers):
    r"""Check ``outside_fractions(distances, nus) -> ndarray (len(nus),)``: for each :math:`\nu`, the
    fraction of the distances strictly greater than the radius :math:`R(\nu)` of task 4 (the training
    images outside the sphere; those on it are inside)."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse.deep.deep_svdd import radius_from_distances

    for call, got in answers:
        distances, nus = call.args
        d, nus = np.asarray(distances, dtype=float), np.asarray(nus, dtype=float)
        radii = np.array([radius_from_distances(d, nu) for nu in nus])
        expected = np.array([np.mean(d > r) for r in radii])
        value = _as_array(got, "the fractions returned by outside_fractions", (len(nus),))
        if _allclose(value, expected, 1e-12):
            continue
        where = f"on the input distances={_fmt(d)} (N = {d.size}), nus={_fmt(nus)}"
        variants = [
            ("you counted the distances equal to R as outside; the images on the sphere are inside "
             "(strictly greater than R is outside)", np.array([np.mean(d >= r) for r in radii])),
            ("those are counts; return fractions (divide by N)", expected * d.size),
            ("that is nu itself; count the distances above R(nu)", nus),
            ("with numpy's interpolating quantile the radius is not one of the distances; use the radius "
             "of task 4", np.array([np.mean(d > np.quantile(d, 1 - nu)) for nu in nus])),
        ]
        raise _mismatch("fractions", "outside_fractions", where, expected, value, variants,
                        "for each nu: R = soft_boundary_radius(distances, nu), then the mean of distances > R",
                        tol=1e-12)


#: Checks by task id (the ids in the check cells' metadata).
TASKS = {
    "task-1": check_initial_center,
    "task-2": check_one_class_loss,
    "task-3": check_soft_boundary_loss,
    "task-4": check_soft_boundary_radius,
    "task-5": check_outside_fractions,
}
