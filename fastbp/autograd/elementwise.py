"""Elementwise functions, each forward beside its backward.

At the points where a function has no derivative, the gradient is PyTorch's: relu'(0) = 0,
abs'(0) = 0, clip passes the gradient where lo <= x <= hi, and maximum/minimum split it in
halves between equal operands.
"""
from __future__ import annotations

import numpy as np

from fastbp.autograd.tensor import Tensor, apply, as_tensor, method, operands


@method("exp")
def exp(x) -> Tensor:
    """e^x; d/dx = e^x."""
    x = as_tensor(x)
    out = np.exp(x.data)
    return apply(out, (x,), lambda g: (g * out,))


@method("log")
def log(x) -> Tensor:
    """Natural logarithm; d/dx = 1 / x."""
    x = as_tensor(x)
    return apply(np.log(x.data), (x,), lambda g: (g / x.data,))


@method("sqrt")
def sqrt(x) -> Tensor:
    """Square root; d/dx = 1 / (2 sqrt x)."""
    x = as_tensor(x)
    out = np.sqrt(x.data)
    return apply(out, (x,), lambda g: (g / (2 * out),))


@method("abs", "__abs__")
def abs(x) -> Tensor:  # noqa: A001
    """|x|; d/dx = sign(x)."""
    x = as_tensor(x)
    return apply(np.abs(x.data), (x,), lambda g: (g * np.sign(x.data),))


@method("tanh")
def tanh(x) -> Tensor:
    """tanh x; d/dx = 1 - tanh^2 x."""
    x = as_tensor(x)
    out = np.tanh(x.data)
    return apply(out, (x,), lambda g: (g * (1 - out * out),))


@method("sigmoid")
def sigmoid(x) -> Tensor:
    """1 / (1 + e^-x), computed as exp(-log(1 + e^-x)) (no overflow); d/dx = s (1 - s)."""
    x = as_tensor(x)
    out = np.exp(-np.logaddexp(0, -x.data))
    return apply(out, (x,), lambda g: (g * out * (1 - out),))


@method("relu")
def relu(x) -> Tensor:
    """max(x, 0); d/dx = 1 where x > 0, else 0."""
    x = as_tensor(x)
    positive = x.data > 0
    return apply(np.where(positive, x.data, 0), (x,), lambda g: (g * positive,))


def _select(a, b, take_a: np.ndarray, out: np.ndarray) -> Tensor:
    """maximum/minimum: `out` took a where `take_a`, b elsewhere; ties share the gradient."""
    tie = a.data == b.data
    share_a = np.where(tie, 0.5, take_a.astype(out.dtype))
    return apply(out, (a, b), lambda g: (g * share_a, g * (1 - share_a)))


@method("maximum")
def maximum(a, b) -> Tensor:
    """Elementwise max(a, b)."""
    a, b = operands(a, b)
    return _select(a, b, a.data > b.data, np.maximum(a.data, b.data))


@method("minimum")
def minimum(a, b) -> Tensor:
    """Elementwise min(a, b)."""
    a, b = operands(a, b)
    return _select(a, b, a.data < b.data, np.minimum(a.data, b.data))


def where(condition, a, b) -> Tensor:
    """a where `condition` (a boolean array, broadcast), else b; the gradient goes the same way."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"condition: expected a boolean array, got dtype {cond.dtype}")
    a, b = operands(a, b)
    return apply(np.where(cond, a.data, b.data), (a, b),
                 lambda g: (np.where(cond, g, 0), np.where(cond, 0, g)))


@method("clip")
def clip(x, lo=None, hi=None) -> Tensor:
    """x limited to [lo, hi] (numbers or arrays, None: no bound); the gradient passes where
    lo <= x <= hi."""
    x = as_tensor(x)
    if lo is None and hi is None:
        raise ValueError("clip: expected a bound lo or hi, got neither")
    lo = -np.inf if lo is None else np.asarray(lo.data if isinstance(lo, Tensor) else lo)
    hi = np.inf if hi is None else np.asarray(hi.data if isinstance(hi, Tensor) else hi)
    inside = (x.data >= lo) & (x.data <= hi)
    out = np.clip(x.data, lo, hi).astype(x.dtype, copy=False)
    return apply(out, (x,), lambda g: (g * inside,))
