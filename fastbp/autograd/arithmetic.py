"""Arithmetic: + - * / ** negation and @, each forward beside its backward.

Gradients are given at the broadcast shape of the result; the tape sums them back to each
operand's shape (`unbroadcast`).
"""
from __future__ import annotations

import numpy as np

from fastbp.autograd.tensor import Tensor, apply, method, operands, unbroadcast


@method("__add__", "__radd__")
def add(a, b) -> Tensor:
    """a + b."""
    a, b = operands(a, b)
    return apply(a.data + b.data, (a, b), lambda g: (g, g))


@method("__sub__", reflected="__rsub__")
def sub(a, b) -> Tensor:
    """a - b."""
    a, b = operands(a, b)
    return apply(a.data - b.data, (a, b), lambda g: (g, -g))


@method("__neg__")
def neg(a) -> Tensor:
    """-a."""
    a, _ = operands(a, 0.0)
    return apply(-a.data, (a,), lambda g: (-g,))


@method("__mul__", "__rmul__")
def mul(a, b) -> Tensor:
    """a * b: d/da = b, d/db = a."""
    a, b = operands(a, b)
    return apply(a.data * b.data, (a, b), lambda g: (g * b.data, g * a.data))


@method("__truediv__", reflected="__rtruediv__")
def div(a, b) -> Tensor:
    """a / b: d/da = 1 / b, d/db = -a / b^2."""
    a, b = operands(a, b)
    out = a.data / b.data
    return apply(out, (a, b), lambda g: (g / b.data, -g * out / b.data))


@method("__pow__", reflected="__rpow__")
def power(a, b) -> Tensor:
    """a ** b: d/da = b a^(b-1) (0 where b = 0), d/db = a^b log a (0 where a = 0 and b >= 0,
    as PyTorch)."""
    a, b = operands(a, b)
    out = a.data ** b.data

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            da = np.where(b.data == 0, 0, g * b.data * a.data ** (b.data - 1)) \
                if a.requires_grad else None
            db = np.where((a.data == 0) & (b.data >= 0), 0, g * out * np.log(a.data)) \
                if b.requires_grad else None
        return da, db

    return apply(out, (a, b), backward)


@method("__matmul__", reflected="__rmatmul__")
def matmul(a, b) -> Tensor:
    """a @ b as np.matmul (1-D operands, broadcast batch dimensions): with 1-D operands taken as
    a row (a) or a column (b), d/da = g @ b^T, d/db = a^T @ g."""
    a, b = operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: expected operands of at least one dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    A = a.data if a.ndim > 1 else a.data[None, :]
    B = b.data if b.ndim > 1 else b.data[:, None]
    if A.shape[-1] != B.shape[-2]:
        raise ValueError(f"matmul: the inner dimensions differ: shapes {a.shape} and {b.shape}")
    full = A @ B
    out = full.reshape(full.shape[:-2] + full.shape[-2:-1] * (a.ndim > 1)
                       + full.shape[-1:] * (b.ndim > 1))

    def backward(g):
        G = g.reshape(full.shape)
        da = unbroadcast(G @ np.swapaxes(B, -1, -2), A.shape).reshape(a.shape)
        db = unbroadcast(np.swapaxes(A, -1, -2) @ G, B.shape).reshape(b.shape)
        return da, db

    return apply(out, (a, b), backward)
