"""Reductions over `axis` (None: all axes; an int or a tuple of ints), with `keepdims`, each
forward beside its backward. Backward puts the removed axes back and broadcasts the gradient
over them."""
from __future__ import annotations

import numbers

import numpy as np

from fastbp.autograd.tensor import Tensor, apply, as_tensor, method


def normalize_axis(axis, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """`axis` (None, an int or a tuple of ints) as a sorted tuple of distinct axes in [0, ndim)."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    axes = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name}: expected None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= item < ndim:
            raise ValueError(f"{name}: axis {item} is out of range for a tensor of {ndim} "
                             f"dimensions")
        axes.append(int(item) % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name}: repeated axis in {axis!r}")
    return tuple(sorted(axes))


def _spread(g: np.ndarray, axes: tuple[int, ...], keepdims: bool, shape) -> np.ndarray:
    """The gradient of a reduction over `axes`, broadcast back to the input `shape`."""
    return np.broadcast_to(g if keepdims else np.expand_dims(g, axes), shape)


@method("sum")
def sum(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over `axis`; d/dx = 1."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    return apply(np.sum(x.data, axis=axes, keepdims=keepdims), (x,),
                 lambda g: (_spread(g, axes, keepdims, x.shape),))


@method("mean")
def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over `axis`; d/dx = 1 / (number of elements averaged)."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    count = int(np.prod([x.shape[i] for i in axes]))
    if count == 0:
        raise ValueError(f"mean: no elements to average over axis {axis!r} of shape {x.shape}")
    return apply(np.mean(x.data, axis=axes, keepdims=keepdims), (x,),
                 lambda g: (_spread(g, axes, keepdims, x.shape) / count,))


@method("max")
def max(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over `axis`; the gradient is shared evenly by the elements equal to the maximum
    (as torch.amax)."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    if any(x.shape[i] == 0 for i in axes):
        raise ValueError(f"max: no elements over axis {axis!r} of shape {x.shape}")
    top = np.max(x.data, axis=axes, keepdims=True)

    def backward(g):
        hit = x.data == top
        return (_spread(g, axes, keepdims, x.shape) * hit / hit.sum(axis=axes, keepdims=True),)

    return apply(top if keepdims else np.squeeze(top, axes), (x,), backward)


def stable_logsumexp(data: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """log(sum(exp(data))) over `axes`, keepdims, shifted by the maximum (no overflow; an
    all -inf slice gives -inf)."""
    top = np.max(data, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    with np.errstate(divide="ignore"):
        return top + np.log(np.sum(np.exp(data - top), axis=axes, keepdims=True))


@method("logsumexp")
def logsumexp(x, axis=None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over `axis`, stable; d/dx = softmax(x) over those axes."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    lse = stable_logsumexp(x.data, axes)
    return apply(lse if keepdims else np.squeeze(lse, axes), (x,),
                 lambda g: (_spread(g, axes, keepdims, x.shape) * np.exp(x.data - lse),))
