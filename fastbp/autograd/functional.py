"""The functional form: ``grad(f)(*args)`` and ``value_and_grad(f)(*args)``."""
from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from fastbp.autograd.tensor import Tensor


def _argnums(argnums) -> tuple[int, ...]:
    items = argnums if isinstance(argnums, tuple) else (argnums,)
    if not items or any(isinstance(i, bool) or not isinstance(i, numbers.Integral) or i < 0
                        for i in items):
        raise ValueError(f"argnums: expected an int >= 0 or a tuple of them, got {argnums!r}")
    return tuple(int(i) for i in items)


def value_and_grad(f: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """``value_and_grad(f)(*args) -> (f(*args) as a float, df/d args[argnums])``.

    `f` takes Tensors and returns a one-element Tensor. The arguments in `argnums` become leaf
    tensors that require a gradient (a Tensor argument: its data); the others are passed as
    given. The gradients are NumPy arrays of the arguments' shapes (zeros for one `f` does not
    depend on), a tuple when `argnums` is a tuple.
    """
    if not callable(f):
        raise TypeError(f"f: expected a function, got {type(f).__name__}")
    wanted = _argnums(argnums)

    def evaluate(*args, **kwargs):
        if max(wanted) >= len(args):
            raise ValueError(f"argnums: {argnums!r} asks for argument {max(wanted)}, but "
                             f"{len(args)} were given")
        args = list(args)
        leaves = [Tensor(args[i], requires_grad=True) for i in wanted]
        for i, leaf in zip(wanted, leaves, strict=True):
            args[i] = leaf
        out = f(*args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"f: expected it to return a Tensor, got {type(out).__name__}")
        if out.size != 1:
            raise ValueError(f"f: expected it to return one element, got shape {out.shape}")
        if out.requires_grad:
            out.backward()
        grads = tuple(leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
                      for leaf in leaves)
        return out.item(), grads if isinstance(argnums, tuple) else grads[0]

    return evaluate


def grad(f: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """``grad(f)(*args) -> df/d args[argnums]`` (see `value_and_grad`)."""
    evaluate = value_and_grad(f, argnums)
    return lambda *args, **kwargs: evaluate(*args, **kwargs)[1]
