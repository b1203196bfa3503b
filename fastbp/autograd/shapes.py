"""Shape operations: reshape, transpose, indexing and take_along_axis, each forward beside its
backward (which moves the gradient back to where each element came from)."""
from __future__ import annotations

import numbers

import numpy as np

from fastbp.autograd.reductions import normalize_axis
from fastbp.autograd.tensor import Tensor, apply, as_tensor, method


@method("reshape")
def reshape(x, *shape) -> Tensor:
    """The same elements in `shape` (ints or one tuple, -1 for one inferred dimension)."""
    x = as_tensor(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        out = x.data.reshape(shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"shape: cannot reshape a tensor of shape {x.shape} to {shape}: "
                         f"{exc}") from None
    return apply(out, (x,), lambda g: (g.reshape(x.shape),))


@method("transpose")
def transpose(x, *axes) -> Tensor:
    """Axes permuted as np.transpose (none given: reversed); backward: the inverse permutation."""
    x = as_tensor(x)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    order = tuple(reversed(range(x.ndim)))
    if axes:
        normalize_axis(tuple(axes), x.ndim, "axes")     # ints in range, none twice
        order = tuple(int(a) % x.ndim for a in axes)
        if len(order) != x.ndim:
            raise ValueError(f"axes: expected a permutation of {x.ndim} axes, got {axes!r}")
    inverse = tuple(np.argsort(order))
    return apply(np.transpose(x.data, order), (x,), lambda g: (np.transpose(g, inverse),))


Tensor.T = property(transpose, doc="The tensor with its axes reversed (transpose()).")


@method("__getitem__")
def getitem(x, index) -> Tensor:
    """x[index], with NumPy's basic and advanced indexing (an index given twice gets the sum
    of its gradients)."""
    x = as_tensor(x)
    if isinstance(index, Tensor):
        raise TypeError("index: expected ints, slices or integer/boolean arrays, got a Tensor")

    def backward(g):
        dx = np.zeros(x.shape, dtype=g.dtype)
        np.add.at(dx, index, g)
        return (dx,)

    try:
        out = x.data[index]
    except IndexError as exc:
        raise IndexError(f"index: {exc} (tensor of shape {x.shape})") from None
    return apply(np.array(out), (x,), backward)


@method("take_along_axis")
def take_along_axis(x, indices, axis: int) -> Tensor:
    """np.take_along_axis(x, indices, axis): e.g. each row's entry at its label,
    ``take_along_axis(logp, y[:, None], 1)``; backward adds each gradient at its source."""
    x = as_tensor(x)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices: expected an integer array, got dtype {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ValueError(f"indices: expected {x.ndim} dimensions like the tensor, got shape "
                         f"{idx.shape}")
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis: expected an int, got {axis!r}")
    (ax,) = normalize_axis(axis, x.ndim)
    if idx.size and (idx.min() < -x.shape[ax] or idx.max() >= x.shape[ax]):
        raise IndexError(f"indices: expected values in [{-x.shape[ax]}, {x.shape[ax]}) for "
                         f"axis {axis} of shape {x.shape}")
    grid = tuple(idx if d == ax else np.arange(n).reshape([-1 if k == d else 1
                                                           for k in range(x.ndim)])
                 for d, n in enumerate(x.shape))

    def backward(g):
        dx = np.zeros(x.shape, dtype=g.dtype)
        np.add.at(dx, grid, g)
        return (dx,)

    return apply(x.data[grid], (x,), backward)
