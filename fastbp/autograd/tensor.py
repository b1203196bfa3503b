"""The Tensor, its tape, and reverse-mode backward over it.

Every operation returns a new Tensor holding its NumPy result and, while the tape records and an
operand requires a gradient, its parents and a `backward(g)` that maps the gradient of the result
to one gradient per parent. `Tensor.backward` visits the tape in reverse topological order, sums
each gradient back to its operand's shape (broadcasting) and dtype, and adds the gradients of
leaves into their `.grad`, as PyTorch does. The operations live in the family modules of this
package, which attach them to Tensor as methods and operators with `@method`.
"""
from __future__ import annotations

import numbers
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _Recording(threading.local):
    enabled = True


_recording = _Recording()


@contextmanager
def no_grad() -> Iterator[None]:
    """Within it, operations record nothing: their results require no gradient (this thread)."""
    before = _recording.enabled
    _recording.enabled = False
    try:
        yield
    finally:
        _recording.enabled = before


def is_recording() -> bool:
    """Whether operations in this thread record the tape (False inside `no_grad`)."""
    return _recording.enabled


def _float_array(value, name: str) -> np.ndarray:
    """`value` as a float32 or float64 array: Python numbers and lists become float64, NumPy
    float32/float64 arrays are kept; integer, boolean, complex and object arrays are refused."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a real number or a float array, got a boolean")
    if isinstance(value, numbers.Real) and not isinstance(value, np.generic):
        return np.asarray(float(value))
    try:
        arr = np.asarray(value) if isinstance(value, np.ndarray | np.generic) else \
            np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a real number or a float array, could not convert "
                        f"{type(value).__name__}: {exc}") from None
    if arr.dtype not in FLOAT_DTYPES:
        hint = " (convert it with .astype(np.float64))" if arr.dtype.kind in "biuf" else ""
        raise TypeError(f"{name}: expected float32 or float64 data, got dtype {arr.dtype}{hint}")
    return arr


class Tensor:
    """A float32 or float64 NumPy array that records the operations applied to it.

    Parameters
    ----------
    data : array-like. Python numbers and lists become float64; float32 and float64 arrays keep
        their dtype (no copy); integer, boolean and complex arrays are refused (TypeError).
    requires_grad : compute d(result)/d(this tensor) in `backward`, into `grad`.

    Operations on Tensors (``+ - * / ** @``, `exp`, `sum`, indexing, ...) give Tensors; an
    operand that is a Python number or a NumPy array is a constant, converted to the dtype of
    the other operand when it is a number or a non-float array.
    """

    __slots__ = ("data", "requires_grad", "grad", "_parents", "_backward")
    __array_ufunc__ = None   # ndarray <op> Tensor calls Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"requires_grad: expected True or False, got {requires_grad!r}")
        self.data: np.ndarray = _float_array(data, "data")
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable | None = None

    shape = property(lambda self: self.data.shape, doc="Shape of `data`.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.data.size, doc="Number of elements.")
    dtype = property(lambda self: self.data.dtype, doc="float32 or float64.")

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.size != 1:
            raise ValueError(f"item: expected a tensor of one element, got shape {self.shape}")
        return float(self.data.reshape(()))

    def numpy(self) -> np.ndarray:
        """The data (not a copy)."""
        return self.data

    def detach(self) -> Tensor:
        """The same data as a new tensor outside the tape (requires no gradient)."""
        return Tensor(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, separator=', ')}{grad})"

    # comparisons give plain boolean arrays (masks for `where`), outside the tape
    def __lt__(self, other): return self.data < _value(other)
    def __le__(self, other): return self.data <= _value(other)
    def __gt__(self, other): return self.data > _value(other)
    def __ge__(self, other): return self.data >= _value(other)

    def backward(self, gradient=None) -> None:
        """Add d(self)/d(leaf) into `.grad` of every leaf tensor with requires_grad.

        `gradient`: d(objective)/d(self), of self's shape; may be omitted for one element (1).
        The tape is kept: a second call adds the same gradients again.
        """
        if not self.requires_grad:
            raise ValueError("backward: this tensor does not require a gradient (no tensor it "
                             "was computed from has requires_grad=True, or it was computed "
                             "under no_grad)")
        if gradient is None:
            if self.size != 1:
                raise ValueError(f"gradient: expected an array of shape {self.shape} for the "
                                 f"backward of a tensor that is not a scalar, got None")
            seed = np.ones(self.shape, dtype=self.dtype)
        else:
            seed = _float_array(_value(gradient), "gradient")
            if seed.shape != self.shape:
                raise ValueError(f"gradient: expected shape {self.shape}, like the tensor, got "
                                 f"{seed.shape}")
            if not np.isfinite(seed).all():
                raise ValueError("gradient: expected finite values")
        grads = {id(self): seed.astype(self.dtype, copy=False)}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            for parent, pg in zip(node._parents, node._backward(g), strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                pg = unbroadcast(np.asarray(pg), parent.shape).astype(parent.dtype, copy=False)
                grads[id(parent)] = grads[id(parent)] + pg if id(parent) in grads else pg


def _topological_order(root: Tensor) -> list[Tensor]:
    """The tensors `root` depends on through the tape, each after its parents (iterative DFS:
    no recursion limit for long chains)."""
    order, seen, stack = [], {id(root)}, [(root, iter(root._parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent.requires_grad and id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent._parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`grad` of a broadcast result summed back to an operand of `shape`."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=kept, keepdims=True) if kept else grad


def _value(x):
    """The array inside a Tensor, or x itself."""
    return x.data if isinstance(x, Tensor) else x


def as_tensor(x, like: Tensor | None = None, name: str = "x") -> Tensor:
    """x if it is a Tensor; otherwise a constant: a Python number or a non-float array takes the
    dtype of `like` (float64 without one), a float array keeps its own."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, np.bool_)) or (isinstance(x, numbers.Real)
                                           and not isinstance(x, np.floating)):
        return Tensor(np.asarray(x, dtype=like.dtype if like is not None else np.float64))
    if isinstance(x, np.ndarray) and x.dtype.kind in "biu":
        return Tensor(x.astype(like.dtype if like is not None else np.float64))
    try:
        return Tensor(x)
    except TypeError as exc:
        raise TypeError(str(exc).replace("data:", f"{name}:", 1)) from None


def operands(a, b) -> tuple[Tensor, Tensor]:
    """Both operands of a binary operation as Tensors (constants take the other's dtype)."""
    a_t = a if isinstance(a, Tensor) else None
    b_t = b if isinstance(b, Tensor) else None
    return as_tensor(a, b_t, "a"), as_tensor(b, a_t, "b")


def apply(data: np.ndarray, parents: tuple[Tensor, ...], backward: Callable) -> Tensor:
    """The result of an operation on `parents`: `data`, recorded on the tape with `backward`
    (g -> one gradient per parent, None for none) when recording and a parent requires one."""
    out = Tensor.__new__(Tensor)
    out.data, out.grad = np.asarray(data), None
    out.requires_grad = _recording.enabled and any(p.requires_grad for p in parents)
    out._parents = parents if out.requires_grad else ()
    out._backward = backward if out.requires_grad else None
    return out


def method(*names: str, reflected: str | None = None) -> Callable:
    """Decorator: attach an operation to Tensor under `names` (and, for a binary operation, its
    reflected operator ``__r*__`` under `reflected`, with the operands swapped)."""
    def attach(fn: Callable) -> Callable:
        for name in names:
            setattr(Tensor, name, fn)
        if reflected is not None:
            setattr(Tensor, reflected, lambda self, other: fn(other, self))
        return fn
    return attach
