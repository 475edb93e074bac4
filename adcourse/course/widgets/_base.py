"""What every explorer widget of the course shares.

The widgets follow one rule: **precompute in Python, interact in the browser**.
Python computes everything that needs the data (with :mod:`adcourse.metrics`)
once, and sends it to the front end as synced traitlets; the JavaScript front
end only looks things up and draws. Because the precomputed data is part of
the widget state, it is embedded in the static HTML of the book by MyST-NB and
the widget stays interactive there, with no kernel.

This module holds the two shared pieces:

* :func:`encode_array` / :func:`decode_array`: numeric arrays travel as
  little-endian binary packed in base64 (exact, about 1.4 bytes per byte, JSON
  friendly, so the state still serialises with :func:`json.dumps`). The
  JavaScript twin ``decodeArray`` lives in ``_shared.js``.
* :class:`PrecomputedWidget`: an :class:`anywidget.AnyWidget` whose ESM front
  end is ``_shared.js`` (array decoding, binary search, SVG and axis helpers)
  followed by the widget's own ``.js`` file, and whose CSS is ``widgets.css``.
"""

from __future__ import annotations

import base64
import math
import pathlib

import anywidget
import numpy as np
import traitlets

from adcourse.decision import Threshold
from adcourse.validation import check_fraction

__all__ = ["encode_array", "decode_array", "check_span", "start_threshold", "PrecomputedWidget"]

_HERE = pathlib.Path(__file__).parent

# largest magnitude of a score: beyond it the axis margins and spans could overflow
_MAX_MAGNITUDE = 1e300

# dtypes that both sides understand (JavaScript typed arrays of the same name)
_DTYPES = {
    "float64": np.dtype("<f8"),
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "uint32": np.dtype("<u4"),
    "uint8": np.dtype("<u1"),
}


def encode_array(values, dtype="float64"):
    """Pack a numeric array as ``{"dtype", "shape", "b64"}`` for the front end.

    Parameters
    ----------
    values : array-like
        The numbers to send.
    dtype : {"float64", "float32", "int32", "uint32", "uint8"}
        Type on the wire. ``float64`` is exact for Python floats; integer types
        must hold the values exactly (checked).

    Returns
    -------
    dict
        JSON-serialisable; decoded by ``decodeArray`` in ``_shared.js`` into the
        matching JavaScript typed array (row-major, flattened), or by
        :func:`decode_array` in Python.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    arr = np.asarray(values)
    wire = np.ascontiguousarray(arr, dtype=_DTYPES[dtype])
    if wire.dtype.kind in "iu" and not np.array_equal(wire, arr):
        raise ValueError(f"values do not fit exactly in {dtype}")
    return {
        "dtype": dtype,
        "shape": [int(n) for n in wire.shape],
        "b64": base64.b64encode(wire.tobytes()).decode("ascii"),
    }


def decode_array(packed):
    """Inverse of :func:`encode_array` (what the browser sees, as numpy)."""
    raw = base64.b64decode(packed["b64"])
    return np.frombuffer(raw, dtype=_DTYPES[packed["dtype"]]).reshape(packed["shape"])


def check_span(lo, hi, name):
    """``hi - lo`` for the scores ``name`` in ``[lo, hi]``; ValueError if so large it overflows.

    The widgets widen the score range and step over it: with magnitudes up to
    1e300 every such value stays a finite float64.
    """
    if max(abs(lo), abs(hi)) > _MAX_MAGNITUDE:
        raise ValueError(
            f"{name} must be at most {_MAX_MAGNITUDE:g} in magnitude, got values in "
            f"[{lo:.3g}, {hi:.3g}]; rescale them (e.g. take their logarithm)"
        )
    return hi - lo


def start_threshold(threshold, normal_scores, fpr, fallback, fallback_name):
    r"""The threshold an explorer starts at, as a :class:`~adcourse.decision.Threshold`, and a note.

    An explicit ``threshold`` (a number or a ``Threshold``) is used as it is (no
    note). Otherwise the widget starts where a detector is operated: at
    :meth:`Threshold.from_fpr` of ``normal_scores`` (normal validation scores,
    finite, any shape) with target ``fpr`` — the smallest threshold that detects
    at most a fraction ``fpr`` of them — never at the best ROC point, which needs
    labelled anomalies. Without ``normal_scores`` the rule is applied to
    ``fallback`` (the normal samples of the data shown), named ``fallback_name``
    in the note.

    Returns
    -------
    (Threshold, str)
        The rule, and the sentence the widget shows under its title ("" when
        the threshold was given).
    """
    if threshold is not None:
        rule = threshold if isinstance(threshold, Threshold) else Threshold(float(threshold))
        return rule, ""
    fpr = check_fraction(fpr, "fpr")
    if normal_scores is None:
        pool, source = fallback, fallback_name
    else:
        pool = np.asarray(normal_scores, dtype=np.float64).ravel()
        if pool.size == 0 or not np.all(np.isfinite(pool)):
            raise ValueError("normal_scores must be non-empty and finite (normal validation scores)")
        source = "normal validation scores"
    rule = Threshold.from_fpr(pool, fpr)
    n_detected = int(np.sum(pool >= rule.value))
    note = (f"Starts at γ = {rule.value:.4g}, set on normal data only: it detects {n_detected} of "
            f"the {pool.size} {source} (target FPR ≤ {100 * fpr:g} %).")
    return rule, note


def _read_esm(own_file):
    shared = (_HERE / "_shared.js").read_text(encoding="utf-8")
    own = pathlib.Path(own_file).read_text(encoding="utf-8")
    return f"{shared}\n// ---- {pathlib.Path(own_file).name} ----\n{own}"


class PrecomputedWidget(anywidget.AnyWidget):
    """Base class: an anywidget whose front end reads precomputed data.

    Subclasses set ``_esm_file`` to the path of their JavaScript module (an ES
    module with ``export default { render }``). Its source is appended to
    ``_shared.js``, so it can call the shared helpers (``decodeArray``,
    ``lowerBound``, ``niceTicks``, ``svgEl``, ``fmt`` ...) without importing
    them: the widget front end runs from a single string in the static book.
    """

    _esm_file: pathlib.Path | None = None

    #: the decision threshold (detected = score >= threshold), synced with the browser
    threshold = traitlets.Float(0.0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    #: a line under the title: how the starting threshold was set
    note = traitlets.Unicode("").tag(sync=True)
    # precomputed data read by the front end (arrays packed by encode_array)
    _data = traitlets.Dict().tag(sync=True)

    # read here (not a Path) so anywidget never starts a file watcher
    _css = (_HERE / "widgets.css").read_text(encoding="utf-8")

    @traitlets.validate("threshold")
    def _check_threshold(self, proposal):
        value = float(proposal["value"])
        if math.isnan(value):
            raise ValueError("threshold must be a number, got NaN")
        return value

    def __init_subclass__(cls, **kwargs):
        own = cls.__dict__.get("_esm_file")
        if own is not None:
            cls._esm = _read_esm(own)
        super().__init_subclass__(**kwargs)
