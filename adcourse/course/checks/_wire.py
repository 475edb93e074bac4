r"""Answers as data: how a kernel's answers travel to the grader (JSON, no code, no pickle).

:func:`encode` turns what a student's function returned into JSON-safe data;
:func:`decode` turns it back, in the grader, into plain Python and NumPy values.
Only data crosses: ``None``, booleans, integers, floats (NaN and infinities
included), complex numbers, strings, bytes, lists, tuples, dicts, sets, NumPy
arrays and scalars of numeric or boolean dtype, and torch tensors (decoded as
tensors when torch is installed). Anything else arrives as an :class:`Opaque`
stand-in of the same type name, with its ``repr`` and, when the object had one,
its ``float()`` value (so that a :class:`~adcourse.decision.Threshold` still reads
as a number). Depth, string lengths and array sizes are bounded; what does not
fit becomes an :class:`Opaque` too.

The decoder trusts nothing: every node is checked (types, dtypes, shapes against
the byte count) and a malformed node becomes an :class:`Opaque` "invalid answer".
"""

from __future__ import annotations

import base64
import math
import re

import numpy as np

__all__ = ["encode", "decode", "Opaque", "MAX_BYTES"]

#: The largest array (in bytes) that travels as data; larger ones arrive as an Opaque.
MAX_BYTES = 16 * 2 ** 20
_MAX_DEPTH = 12
_MAX_ITEMS = 100_000
_MAX_STR = 100_000
_KINDS = "biufc"  # bool, int, unsigned, float, complex


# --------------------------------------------------------------------------------------
# encoding (in the kernel)
# --------------------------------------------------------------------------------------


def _float(x):
    x = float(x)
    if math.isfinite(x):
        return x
    return {"float": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}


def _array(arr):
    arr = np.ascontiguousarray(arr)
    if arr.dtype.kind not in _KINDS:
        if arr.dtype == object and arr.size <= 10_000:
            return {"objects": list(arr.shape), "items": [encode(v) for v in arr.ravel().tolist()]}
        return _opaque(arr)
    if arr.nbytes > MAX_BYTES:
        return _opaque(arr, f"an array of shape {arr.shape} too large to be graded")
    return {"ndarray": arr.dtype.str, "shape": list(arr.shape),
            "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def _opaque(value, text=None):
    out = {"opaque": type(value).__name__[:60]}
    try:
        out["repr"] = (text or repr(value))[:400]
    except Exception:  # noqa: BLE001 - a broken __repr__
        out["repr"] = f"<{type(value).__name__}>"
    if not isinstance(value, (str, bytes)):
        try:
            out["float"] = _float(value)
        except Exception:  # noqa: BLE001 - no float() for this object
            pass
        try:
            out["len"] = int(len(value))
        except Exception:  # noqa: BLE001
            pass
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple) and all(isinstance(s, int) for s in shape):
            out["shape"] = list(shape)
    return out


def encode(value, _depth=0):
    """JSON-safe data for ``value`` (see the module docstring)."""
    if _depth > _MAX_DEPTH:
        return _opaque(value, "nested too deeply")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2 ** 63 else {"bigint": str(value)[:_MAX_STR]}
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, complex):
        return {"complex": [_float(value.real), _float(value.imag)]}
    if isinstance(value, str):
        return value if len(value) <= _MAX_STR else {"str": value[:_MAX_STR], "cut": len(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(value[:MAX_BYTES])).decode("ascii")}
    if isinstance(value, np.generic):
        if value.dtype.kind in _KINDS:
            return {"scalar": value.dtype.str, "value": encode(value.item(), _depth + 1)}
        return _opaque(value)
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if len(items) > _MAX_ITEMS:
            return _opaque(value, f"a {type(value).__name__} of {len(items)} items")
        enc = [encode(v, _depth + 1) for v in items]
        if isinstance(value, list):
            return enc
        return {"tuple" if isinstance(value, tuple) else "set": enc}
    if isinstance(value, dict):
        if len(value) > _MAX_ITEMS:
            return _opaque(value, f"a dict of {len(value)} items")
        return {"dict": [[encode(k, _depth + 1), encode(v, _depth + 1)] for k, v in value.items()]}
    tensor = _tensor(value)
    if tensor is not None:
        return tensor
    return _opaque(value)


def _tensor(value):
    torch = __import__("sys").modules.get("torch")
    if torch is None or not isinstance(value, torch.Tensor):
        return None
    try:
        arr = value.detach().cpu()
        if arr.is_complex() or arr.dtype in (torch.bfloat16,):
            arr = arr.to(torch.float32) if not arr.is_complex() else arr
        data = _array(arr.numpy())
    except Exception:  # noqa: BLE001 - a tensor NumPy cannot hold
        return _opaque(value)
    return {"tensor": data, "requires_grad": bool(value.requires_grad)}


# --------------------------------------------------------------------------------------
# decoding (in the grader)
# --------------------------------------------------------------------------------------


class Opaque:
    """Stand-in for an object that did not travel as data (its type name, repr, float)."""

    def __init__(self, node):
        self._repr = str(node.get("repr", ""))[:400]
        self._float = node.get("float")
        self._len = node.get("len")
        shape = node.get("shape")
        if isinstance(shape, list) and all(isinstance(s, int) for s in shape):
            self.shape = tuple(shape)

    def __repr__(self):
        return self._repr or f"<{type(self).__name__}>"

    def __float__(self):
        value = _decode_float(self._float)
        if value is None:
            raise TypeError(f"float() argument must be a number, not '{type(self).__name__}'")
        return value

    def __len__(self):
        if not isinstance(self._len, int) or self._len < 0:
            raise TypeError(f"object of type '{type(self).__name__}' has no len()")
        return self._len


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")
_OPAQUE_TYPES = {}


def _opaque_type(name):
    name = name if isinstance(name, str) and _NAME.match(name) else "Opaque"
    if name not in _OPAQUE_TYPES:
        _OPAQUE_TYPES[name] = type(name, (Opaque,), {"__module__": __name__})
    return _OPAQUE_TYPES[name]


def _invalid(why="invalid answer"):
    return _opaque_type("InvalidAnswer")({"repr": why})


def _decode_float(node):
    if isinstance(node, bool):
        return None
    if isinstance(node, (int, float)):
        return float(node)
    if isinstance(node, dict) and node.get("float") in ("nan", "inf", "-inf"):
        return float(node["float"])
    return None


def _decode_array(node):
    try:
        dtype = np.dtype(str(node["ndarray"]))
        shape = tuple(int(s) for s in node["shape"])
        if dtype.kind not in _KINDS or any(s < 0 for s in shape) or len(shape) > 32:
            return _invalid("an array of an unsupported type")
        data = base64.b64decode(str(node["data"]).encode("ascii"), validate=True)
        if len(data) > MAX_BYTES or len(data) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            return _invalid("a malformed array")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    except (KeyError, TypeError, ValueError, OverflowError):
        return _invalid("a malformed array")


def decode(node, _depth=0):
    """Plain Python / NumPy values from data made by :func:`encode` (never raises)."""
    if _depth > _MAX_DEPTH + 2:
        return _invalid("nested too deeply")
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if isinstance(node, float):
        return node
    if isinstance(node, list):
        return [decode(v, _depth + 1) for v in node[:_MAX_ITEMS]]
    if not isinstance(node, dict):
        return _invalid()
    try:
        if "float" in node and len(node) == 1:
            value = _decode_float(node)
            return _invalid() if value is None else value
        if "bigint" in node:
            return int(str(node["bigint"])[:4300])
        if "complex" in node:
            re_, im = (_decode_float(v) for v in node["complex"][:2])
            return complex(re_, im) if re_ is not None and im is not None else _invalid()
        if "str" in node:
            return str(node["str"])
        if "bytes" in node:
            return base64.b64decode(str(node["bytes"]).encode("ascii"))[:MAX_BYTES]
        if "scalar" in node:
            dtype = np.dtype(str(node["scalar"]))
            if dtype.kind not in _KINDS:
                return _invalid()
            return dtype.type(decode(node["value"], _depth + 1))
        if "ndarray" in node:
            return _decode_array(node)
        if "objects" in node:
            shape = tuple(int(s) for s in node["objects"])
            items = [decode(v, _depth + 1) for v in node["items"]]
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(shape)
        if "tuple" in node:
            return tuple(decode(v, _depth + 1) for v in node["tuple"][:_MAX_ITEMS])
        if "set" in node:
            items = [decode(v, _depth + 1) for v in node["set"][:_MAX_ITEMS]]
            try:
                return set(items)
            except TypeError:
                return _invalid("a set of unhashable values")
        if "dict" in node:
            out = {}
            for key, value in node["dict"][:_MAX_ITEMS]:
                key = decode(key, _depth + 1)
                try:
                    out[key] = decode(value, _depth + 1)
                except TypeError:  # an unhashable key
                    return _invalid("a dict with unhashable keys")
            return out
        if "tensor" in node:
            arr = decode(node["tensor"], _depth + 1)
            if not isinstance(arr, np.ndarray):
                return arr
            try:
                import torch
            except ImportError:  # pragma: no cover - torch is a dependency of the course
                return _opaque_type("Tensor")({"repr": f"tensor of shape {arr.shape}",
                                               "shape": list(arr.shape)})
            tensor = torch.from_numpy(arr)
            return tensor.requires_grad_(bool(node.get("requires_grad"))) if tensor.is_floating_point() else tensor
        if "opaque" in node:
            return _opaque_type(node["opaque"])(node)
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError):
        return _invalid()
    return _invalid()
