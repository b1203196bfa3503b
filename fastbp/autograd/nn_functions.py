"""softmax and log_softmax over one axis, each forward beside its backward."""
from __future__ import annotations

import numpy as np

from fastbp.autograd.reductions import normalize_axis, stable_logsumexp
from fastbp.autograd.tensor import Tensor, apply, as_tensor, method


def _one_axis(axis, ndim: int) -> tuple[int]:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"axis: expected an int, got {axis!r}")
    return normalize_axis(axis, ndim)


@method("softmax")
def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) over `axis`; backward: s (g - sum(g s))."""
    x = as_tensor(x)
    axes = _one_axis(axis, x.ndim)
    s = np.exp(x.data - stable_logsumexp(x.data, axes))
    return apply(s, (x,), lambda g: (s * (g - np.sum(g * s, axis=axes, keepdims=True)),))


@method("log_softmax")
def log_softmax(x, axis: int = -1) -> Tensor:
    """x - logsumexp(x) over `axis`, stable; backward: g - softmax(x) sum(g)."""
    x = as_tensor(x)
    axes = _one_axis(axis, x.ndim)
    out = x.data - stable_logsumexp(x.data, axes)
    return apply(out, (x,), lambda g: (g - np.exp(out) * np.sum(g, axis=axes, keepdims=True),))
