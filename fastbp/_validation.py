"""Checks at the Python boundary: every user value is validated and converted here.

Errors name the argument, what was expected and what came, so that nothing malformed ever
reaches the C core.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def as_dtype(dtype) -> np.dtype:
    """The network dtype named by `dtype` ("float32", "float64" or the NumPy type)."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
    return resolved


def _numeric(value, name: str) -> np.ndarray:
    """np.asarray(value), refusing object, complex, string and boolean-free nonsense arrays."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected a numeric array, could not convert it: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    return arr


_FINITE_CHUNK = 1 << 16


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ValueError if `arr` holds NaN or infinity.

    A float64 sum has no temporary the size of `arr` and is finite when every element is
    (NaN and infinity propagate); only a non-finite sum (or an overflow of huge float64
    values) takes the slower search, chunk by chunk.
    """
    if arr.dtype.kind != "f" or np.isfinite(np.sum(arr, dtype=np.float64)):
        return
    flat = arr.reshape(-1)
    for start in range(0, flat.size, _FINITE_CHUNK):
        chunk = np.isfinite(flat[start:start + _FINITE_CHUNK])
        if not chunk.all():
            bad = np.unravel_index(start + int(np.argmin(chunk)), arr.shape)
            raise ValueError(f"{name}: expected finite values, got {arr[bad]} at index "
                             f"{tuple(int(i) for i in bad)}")


def as_matrix(X, name: str, dtype: np.dtype, width: int | None = None,
              layer: str | None = None) -> np.ndarray:
    """X as a finite, C-contiguous (n, width) array of `dtype`, with n >= 1."""
    arr = _numeric(X, name)
    if arr.ndim != 2:
        hint = (" (use X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single "
                "sample)" if arr.ndim == 1 else "")
        raise ValueError(f"{name}: expected a 2-D array (samples, features), got shape "
                         f"{arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one sample, got shape {arr.shape}")
    if width is not None and arr.shape[1] != width:
        where = f" of layer {layer}" if layer else ""
        raise ValueError(f"{name}: expected {width} features for the input{where} "
                         f"(shape (n, {width})), got shape {arr.shape}")
    source = arr
    with np.errstate(over="ignore"):      # values beyond float32's range: the error below
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if (source is not arr and arr.dtype.kind == "f" and arr.itemsize < source.itemsize
            and not np.isfinite(np.sum(arr, dtype=np.float64)) and np.isfinite(source).all()):
        raise ValueError(f"{name}: expected values within the range of {np.dtype(dtype)} "
                         f"(magnitude at most {np.finfo(dtype).max:.4g}), got "
                         f"{np.abs(source).max():.4g}")
    check_finite(arr, name)
    return arr


def positive_int(value, name: str) -> int:
    """`value` as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def positive_float(value, name: str) -> float:
    """`value` as a finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def nonnegative_float(value, name: str, upper: float | None = None) -> float:
    """`value` as a finite float >= 0 (and < upper when given)."""
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and math.isfinite(value) and value >= 0 and (upper is None or value < upper))
    if not ok:
        bound = f" and < {upper}" if upper is not None else ""
        raise ValueError(f"{name}: expected a finite number >= 0{bound}, got {value!r}")
    return float(value)


def boolean(value, name: str) -> bool:
    """`value` if it is True or False (a NumPy bool too): a string or number is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def seed_value(value, name: str = "seed") -> int:
    """`value` as a seed: an integer >= 0 (a NumPy integer too; never a float or a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


def choose(value: str, name: str, known) -> str:
    """`value` if it is one of `known` (a dict or collection of names)."""
    if not isinstance(value, str) or value not in known:
        raise ValueError(f"{name}: expected one of {sorted(known)}, got {value!r}")
    return value


def callable_name(fn) -> str:
    """The name of a function (or the type of another callable) for error messages."""
    return getattr(fn, "__name__", type(fn).__name__)
