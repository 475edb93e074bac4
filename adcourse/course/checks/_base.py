r"""What every exercise's checks share: the task format, the failure types, helpers.

**A task** (:class:`Task`, made with the :func:`task` decorator) is three things:

* ``uses`` -- the names of the student's functions it checks (``("roc_points",
  "auc_trapezoid")``);
* ``questions(rng) -> [Call, ...]`` -- the inputs: each :class:`Call` asks one of
  those functions for its answer on arguments made from ``rng`` (hand-picked edge
  cases plus random ones), or runs a *probe* (:class:`Probe`: a function of the
  student's functions that returns data, for answers that are not a return value:
  hooks left on a model, the result of 300 iterations, ...);
* ``judge(answers)`` -- the comparison: it iterates ``for call, got in answers``
  (the inputs and the student's answer), computes the reference from the inputs with
  :mod:`adcourse`, and raises :class:`CheckFailed` with a hint on the first wrong one.

The same task runs two ways:

* **in the check cell** (``check_roc()``): the questions are made with the task's
  fixed ``seed``, the student's functions are called on copies of the inputs in the
  notebook, the judge runs there and prints ``✓ Task N passed`` or raises
  :class:`CheckFailed`; errors of the student's own code reach the notebook with the
  student's traceback. A function that is not defined yet raises
  :class:`NotDefined` ("run the cell above that defines ... first");
* **at grading time** (:mod:`adcourse.course.judge`): the kernel only computes the
  answers (:func:`adcourse.course.checks._kernel.answer`, questions made with a seed
  drawn by the grader) and writes them as data (:mod:`adcourse.course.checks._wire`);
  the grader, in its own process, makes the same questions from the same seed and
  runs the judge on the decoded answers (:meth:`Task.judge_record`). Nothing the
  kernel does decides the verdict.

``allow`` is the task's policy: the modules the student's functions may use
(:mod:`adcourse.course.policy` enforces it in the grader).

Failures print only their message in a notebook (``_render_traceback_``), not a
traceback of the checking code.
"""

from __future__ import annotations

import copy
import functools
import math
import sys

import numpy as np

__all__ = ["CheckFailed", "NotDefined", "StudentError", "NoAnswer", "Call", "Probe", "Task", "task"]

_TOL = 1e-9


def _render(exc, name=None):
    """IPython's view of a check failure: the message, its first line after the error name."""
    lines = str(exc).splitlines() or [""]
    return [f"\x1b[0;31m{name or type(exc).__name__}\x1b[0m: {lines[0]}", *lines[1:]]


class CheckFailed(AssertionError):
    """The answer of an exercise task is wrong; the message explains why and hints at a fix."""

    def _render_traceback_(self):  # IPython shows this instead of the traceback
        return _render(self)


class NotDefined(NameError):
    """A function that a check needs is not defined (yet) in the notebook."""

    def _render_traceback_(self):
        return _render(self, "NameError")


class StudentError(Exception):
    """At grading time: the student's function raised ``kind`` (the kernel reported it)."""

    def __init__(self, kind, message=""):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind, self.message = kind, message


class NoAnswer(Exception):
    """At grading time: the kernel reported no answer for a question."""


# --------------------------------------------------------------------------------------
# questions and answers
# --------------------------------------------------------------------------------------


def _copy(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, dict, tuple, set)):
        return copy.deepcopy(value)
    return value


class Call:
    """A question: the answer of the student's function ``name`` on ``args`` (given copies)."""

    probe = None

    def __init__(self, name, *args):
        self.name, self.args = name, args

    def ask(self, functions):
        """The student's answer (runs the student's code; its errors are not caught)."""
        __tracebackhide__ = True  # noqa: F841
        return functions[self.name](*[_copy(a) for a in self.args])

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, ...)"


class Probe(Call):
    """A question answered by ``probe(functions, *args)``, run where the student's code runs.

    ``functions[name]`` gives the student's function ``name``. A probe returns data
    (numbers, arrays, lists, dicts) and must not catch the student's errors unless
    the check is about them.
    """

    def __init__(self, probe, *args):
        super().__init__(probe.__name__, *args)
        self.probe = probe

    def ask(self, functions):
        __tracebackhide__ = True  # noqa: F841
        return self.probe(functions, *[_copy(a) for a in self.args])


class Answers:
    """The questions of a task with the student's answers: ``for call, got in answers``.

    ``answers.of(name)`` iterates over the calls of one function only. The answer is
    fetched when the judge reaches it: in a notebook the student's function runs at
    that moment (so the first wrong answer stops the check, as it stops the student).
    """

    def __init__(self, calls, fetch):
        self._calls, self._fetch = list(calls), fetch

    def __iter__(self):
        __tracebackhide__ = True  # noqa: F841
        for i, call in enumerate(self._calls):
            yield call, self._fetch(i, call)

    def of(self, name):
        __tracebackhide__ = True  # noqa: F841
        for i, call in enumerate(self._calls):
            if call.name == name:
                yield call, self._fetch(i, call)

    def __len__(self):
        return len(self._calls)


class _Functions(dict):
    """The student's functions by name (a dict; the key error names the missing function)."""

    def __missing__(self, name):
        raise NotDefined(f"{name} is not defined")


def _not_a_function(name, value):
    return CheckFailed(
        f"expected a function {name}, received {type(value).__name__} {_fmt(value)}; "
        "pass the function itself, without calling it (no parentheses)"
    )


# --------------------------------------------------------------------------------------
# tasks
# --------------------------------------------------------------------------------------


class Task:
    """One task of an exercise: its questions, its judge, the functions it uses (see the module doc)."""

    def __init__(self, number, what, questions, judge, *, uses, seed, allow=None):
        self.number, self.what = number, what
        self.questions, self.judge = questions, judge
        self.uses, self.seed, self.allow = tuple(uses), seed, allow
        functools.update_wrapper(self, judge)

    @property
    def task(self):
        """The task id, as in the ``check`` cell's metadata: ``"task-N"``."""
        return f"task-{self.number}"

    def calls(self, seed=None):
        """The questions made with ``seed`` (default: the task's own seed, the check cell's)."""
        return list(self.questions(np.random.default_rng(self.seed if seed is None else seed)))

    def _prefix(self, exc):
        return f"Task {self.number} ({self.what}): {exc}"

    # ---- in the notebook ----------------------------------------------------------

    def functions(self, args=(), named=None, namespace=None):
        """The student's functions, from ``args`` (in the order of ``uses``), ``named`` or ``namespace``.

        Raises :class:`NotDefined` (a function missing from the namespace) or
        :class:`CheckFailed` (not a function).
        """
        __tracebackhide__ = True  # noqa: F841
        named = dict(named or {})
        if len(args) > len(self.uses):
            raise TypeError(f"{self.__name__} checks {', '.join(self.uses)}: received {len(args)} "
                            "arguments")
        named.update(zip(self.uses, args))
        out = _Functions()
        for name in self.uses:
            if name in named:
                value = named[name]
            elif namespace is not None and name in namespace:
                value = namespace[name]
            else:
                raise NotDefined(self._prefix(
                    f"{name} is not defined: run the cell above that defines {name} first "
                    "(and the cells before it), then this check again"))
            if not callable(value):
                raise CheckFailed(self._prefix(_not_a_function(name, value)))
            out[name] = value
        return out

    def __call__(self, *args, **named):
        """Run the check in the notebook: ``check_x()`` finds the functions by name in the caller's
        namespace; ``check_x(f, g)`` checks the functions given (in the order of ``uses``)."""
        __tracebackhide__ = True  # noqa: F841
        namespace = None if len(args) + len(named) >= len(self.uses) else sys._getframe(1).f_globals
        functions = self.functions(args, named, namespace)
        try:
            self.judge(Answers(self.calls(), lambda i, call: call.ask(functions)))
        except CheckFailed as exc:
            raise CheckFailed(self._prefix(exc)) from None
        print(f"✓ Task {self.number} passed")

    # ---- at grading time ----------------------------------------------------------

    def judge_record(self, record, seed):
        """Judge the answers a kernel reported (a decoded record of :mod:`._kernel`) for ``seed``.

        Returns None when every answer is right; raises :class:`CheckFailed` (prefixed
        with the task), :class:`NotDefined`, :class:`StudentError` or :class:`NoAnswer`.
        """
        missing = record.get("missing") or []
        if missing:
            raise NotDefined(f"{missing[0]} is not defined")
        problem = record.get("problem")
        if problem:
            raise CheckFailed(self._prefix(str(problem)))
        answers = record.get("answers") or []

        def fetch(i, call):
            if i >= len(answers) or not isinstance(answers[i], dict):
                raise NoAnswer(f"no answer for question {i + 1} ({call.name})")
            entry = answers[i]
            if "raised" in entry:
                kind, message = (list(entry["raised"]) + ["", ""])[:2]
                raise StudentError(str(kind), str(message))
            if "value" not in entry:
                raise NoAnswer(f"no answer for question {i + 1} ({call.name})")
            return entry["value"]

        try:
            self.judge(Answers(self.calls(seed), fetch))
        except CheckFailed as exc:
            raise CheckFailed(self._prefix(exc)) from None


def task(number, what, questions, *, uses, seed, allow=None):
    """Decorator: ``@task(2, "roc_points and auc_trapezoid", _roc_questions, uses=..., seed=202)``
    on the judge ``def check_roc(answers): ...`` makes the :class:`Task` ``check_roc``."""

    def decorate(judge):
        return Task(number, what, questions, judge, uses=uses, seed=seed, allow=allow)

    return decorate


def _fmt(x, max_items=12):
    """Compact one-line repr of a number or an array, for the messages."""
    if isinstance(x, (list, tuple)) or isinstance(x, np.ndarray):
        arr = np.asarray(x)
        if arr.dtype.kind in "iub":
            return np.array2string(arr, threshold=max_items, edgeitems=4, separator=", ")
        return np.array2string(
            arr.astype(float), threshold=max_items, edgeitems=4, precision=4, separator=", "
        ).replace("\n", "")
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    return repr(x)


def _inputs(**kwargs):
    return "on the input " + ", ".join(f"{k}={_fmt(v)}" for k, v in kwargs.items())


def _as_float(value, what):
    if isinstance(value, (bool, np.bool_)):
        raise CheckFailed(f"{what} must be a number, received the boolean {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"{what} must be a number, received {type(value).__name__} {_fmt(value)}"
        ) from None
    return out


def _as_array(value, what, shape):
    """``value`` as a float array of ``shape`` (a scalar for ``shape == ()``), or CheckFailed."""
    if isinstance(value, (bool, np.bool_)):
        raise CheckFailed(f"{what} must be numbers, received the boolean {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"{what} must be an array of numbers of shape {shape}, received "
            f"{type(value).__name__} {_fmt(value) if not callable(value) else ''}"
        ) from None
    if arr.shape != tuple(shape):
        if arr.squeeze().shape == tuple(s for s in shape if s != 1):
            return arr.reshape(shape)  # (n, 1) for (n,) and the like: the numbers matter
        raise CheckFailed(f"{what} must have shape {tuple(shape)}, received shape {arr.shape}")
    return arr


def _tensor_answer(probe, name, where, shape, *, returns="a torch tensor (the optimiser differentiates it)",
                   hint="compute with torch operations, no .item() or .numpy()", shape_hint=None):
    """The torch-tensor answer of a probe (a dict ``{"type", "value", "grad"}``) as a float array of
    ``shape`` (``()``: a scalar), or CheckFailed naming ``name``, what it returned and ``where``.

    A tensor with the right number of values is accepted whatever its shape ((n, 1) for (n,)):
    the numbers matter. ``returns`` and ``hint`` word the error for a non-tensor answer,
    ``shape_hint`` (optional) the one for a wrong number of values."""
    import torch

    if not isinstance(probe, dict):
        raise CheckFailed(f"no answer from {name}\n{where}")
    value = probe.get("value")
    if probe.get("type") != "Tensor" or not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{name} must return {returns}, received {probe.get('type')} {_fmt(value)}\n"
                          f"{where}\nhint: {hint}")
    if tuple(value.shape) != tuple(shape) and value.numel() != int(np.prod(shape, dtype=int)):
        what = "a scalar tensor" if shape == () else f"a tensor of shape {tuple(shape)}"
        raise CheckFailed(f"{name} must return {what}, received a tensor of {value.numel()} values\n"
                          f"{where}" + (f"\nhint: {shape_hint}" if shape_hint else ""))
    return value.detach().double().reshape(shape).numpy()


def _check_gradients(probe, name, where, expected_grads, wrt, *, what="the value", source="the inputs",
                     why="the networks are trained by back-propagating it"):
    """The gradients of a probe's tensor answer (``probe["grad"]``: one per input, or one array)
    against ``expected_grads`` (a list of arrays, in the same order), or CheckFailed: no gradient
    at all (the answer was detached, or built again from NumPy), or a wrong one (part of it a
    constant). ``what``, ``wrt``, ``source`` and ``why`` word the messages."""
    import torch

    grads = probe.get("grad")
    if grads is not None and not isinstance(grads, (list, tuple)):
        grads = [grads]
    if grads is None or len(grads) != len(expected_grads) or any(g is None for g in grads):
        raise CheckFailed(f"{what} returned by {name} is right but it has no gradient with respect to "
                          f"{wrt}\n{where}\nhint: do not detach, convert to NumPy or rebuild the tensor: "
                          f"{why}")
    for g, expected in zip(grads, expected_grads):
        expected = np.asarray(expected)
        g = _as_array(g.numpy() if isinstance(g, torch.Tensor) else g, f"the gradient of {name}", expected.shape)
        if not _allclose(g, expected, 1e-6):
            raise CheckFailed(f"{what} returned by {name} is right but its gradient with respect to {wrt} "
                              f"is wrong\n{where}\nhint: compute it from {source} with torch operations "
                              "only (no constant replacing part of it)")


def _close(a, b, tol=_TOL):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(b))


def _allclose(a, b, tol=1e-6):
    """Same shape and every entry within ``tol`` relative (absolute below 1); NaN never matches."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return bool(np.array_equal(a, b))
    return bool(np.all(np.abs(a - b) <= tol * np.maximum(1.0, np.abs(b))))


def _rng(seed):
    return np.random.default_rng(seed)


def _mismatch(what, func, where, expected, got, variants, default_hint, tol=1e-6, lead=0,
              name=None):
    """CheckFailed for a wrong array: input, expected, received, and the first matching hint.

    ``variants`` are ``(hint, value)`` pairs: the hint of the first value the answer
    matches (and the expected answer does not) is shown, else ``default_hint``.
    For arrays of several axes, ``lead > 0`` shows only the sub-array ``name[i, ...]``
    (over the first ``lead`` axes) that holds the first wrong value, and how many differ.
    """
    hint = next((h for h, v in variants
                 if v is not None and _allclose(got, v, tol) and not _allclose(v, expected, tol)),
                None)
    if hint is None:
        hint = default_hint(got) if callable(default_hint) else default_hint
    lines = [f"wrong {what} returned by {func}", where]
    if lead:
        bad = ~(np.abs(got - expected) <= tol * np.maximum(1.0, np.abs(expected)))
        first = np.argwhere(bad)
        idx = tuple(int(i) for i in first[0][:lead]) if len(first) else (0,) * lead
        at = f"{name or what}[{', '.join(map(str, idx))}]"
        lines += [f"{int(bad.sum())} of the {bad.size} values differ; the first at {at}:",
                  f"expected {at} = {_fmt(expected[idx], 40)}",
                  f"received {at} = {_fmt(got[idx], 40)}"]
    else:
        lines += [f"expected {_fmt(expected)}", f"received {_fmt(got)}"]
    if hint:
        lines.append("hint: " + hint)
    return CheckFailed("\n".join(lines))
