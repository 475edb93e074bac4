r"""What every exercise's checks share: the failure type, the task decorator, helpers.

A check takes the student's object (a function, usually), runs it on fresh data
made with fixed seeds, compares the result with the reference and either prints
``✓ Task N passed`` or raises :class:`CheckFailed`. The helpers here format
inputs and values for the messages, call the student's function on copies of
the inputs, and compare numbers and arrays with one tolerance rule.

Errors raised *by the student's function* (``NotImplementedError`` of an
unsolved stub, a ``TypeError`` in their code, ...) are never caught: they reach
the notebook with the student's own traceback, and the grader reports them as
they are.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["CheckFailed"]

_TOL = 1e-9


class CheckFailed(AssertionError):
    """The answer of an exercise task is wrong; the message explains why and hints at a fix."""


def _task(number, what):
    """Decorate a check: prefix failures with the task, print a tick on success."""

    def decorate(check):
        @functools.wraps(check)
        def wrapper(*args, **kwargs):
            __tracebackhide__ = True  # noqa: F841  (pytest / IPython hide this frame)
            try:
                check(*args, **kwargs)
            except CheckFailed as exc:
                raise CheckFailed(f"Task {number} ({what}): {exc}") from None
            print(f"✓ Task {number} passed")

        wrapper.task = f"task-{number}"
        return wrapper

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


def _call(func, *args):
    """Call the student's function on copies of the inputs (so it cannot alter ours)."""
    __tracebackhide__ = True  # noqa: F841
    if not callable(func):
        raise CheckFailed(
            f"expected a function, received {type(func).__name__} {_fmt(func)}; "
            "pass the function itself, without calling it (no parentheses)"
        )
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    return func(*copies)


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
