"""Losses: each gives the batch-mean loss and its gradient with respect to the network output
in one fused C pass."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastbp import _core
from fastbp._validation import _numeric, as_matrix, boolean, callable_name, check_finite
from fastbp.autograd import Tensor
from fastbp.registry import LOSSES


class Loss:
    """Base class. ``value, dout = loss(out, y)``: mean loss over the batch and d(value)/d(out).

    `prepare_targets` validates targets once (e.g. for a whole data set); `compute` then runs the
    kernel without checks on already-prepared arrays (the training hot path). A loss the
    compiled training step computes says so by `plan_kind`. Built-in losses join the registry
    with ``@LOSSES.register(name, aliases...)``.
    """

    name = ""
    classification = False

    def __call__(self, out, y) -> tuple[float, np.ndarray]:
        out = np.asarray(out)
        dtype = out.dtype if out.dtype in (np.float32, np.float64) else np.float64
        out = as_matrix(out, "out", dtype)
        target = self.prepare_targets(y, out.shape[0], out.shape[1], dtype)
        dout = np.empty_like(out)
        return self.compute(out, target, dout), dout

    def prepare_targets(self, y, n: int, width: int, dtype: np.dtype) -> np.ndarray:
        """Targets for `n` outputs of `width` columns, validated and converted."""
        raise NotImplementedError

    def compute(self, out: np.ndarray, target: np.ndarray, dout: np.ndarray) -> float:
        """Mean loss; writes d(loss)/d(out) into dout. Inputs must be prepared already."""
        raise NotImplementedError

    def accuracy(self, out: np.ndarray, target: np.ndarray) -> float | None:
        """Fraction of correct predictions, or None for a regression loss."""
        return None

    def plan_kind(self, labels: bool) -> str | None:
        """The compiled plan's name of this loss (a key of `fastbp._core.LOSS_KINDS`) for
        class-label targets (`labels`) or targets of the output's shape; None: not compiled."""
        return None

    def config(self) -> dict | None:
        """The JSON description saved with a model; None: this loss is not saved."""
        return {"name": self.name}

    @staticmethod
    def from_function(fn: Callable) -> FunctionLoss:
        """A loss written with `fastbp.autograd`: ``fn(output, y) -> one-element Tensor``, its
        gradient with respect to the output taken from the tape (see `FunctionLoss`)."""
        return FunctionLoss(fn)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _probabilities(targets: np.ndarray) -> np.ndarray:
    """`targets` if each row is a probability distribution: entries in [0, 1] summing to 1,
    within 8 width eps of the dtype (the rounding of a row stored in that dtype)."""
    outside = (targets < 0) | (targets > 1)
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise ValueError(f"y: expected class probabilities in [0, 1], got {targets[row, col]} "
                         f"at row {row}, column {col}")
    sums = targets.sum(axis=1, dtype=np.float64)
    tolerance = 8 * targets.shape[1] * np.finfo(targets.dtype).eps
    off = np.abs(sums - 1) > tolerance
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(f"y: expected class probabilities whose rows sum to 1 (within "
                         f"{tolerance:.2g}), got row {row} summing to {float(sums[row])!r}")
    return targets


def _same_shape_targets(y, n: int, width: int, dtype: np.dtype, name: str = "y") -> np.ndarray:
    """Float targets of shape (n, width); a 1-D y is accepted for a single output column."""
    arr = _numeric(y, name)
    if arr.ndim == 1 and width == 1:
        arr = arr.reshape(-1, 1)
    if arr.shape != (n, width):
        raise ValueError(f"{name}: expected shape ({n}, {width}) to match the network output, "
                         f"got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(arr, name)
    return arr


@LOSSES.register("cross_entropy", "softmax_cross_entropy")
class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, fused and stable (log-sum-exp).

    Targets are integer class labels (n,) in [0, k), or probabilities / one-hot rows (n, k).
    loss = mean_i -sum_j t_ij log softmax(z_i)_j;  d/dz = (softmax(z) - t) / n.
    """

    name = "cross_entropy"
    classification = True

    def prepare_targets(self, y, n: int, width: int, dtype: np.dtype) -> np.ndarray:
        arr = _numeric(y, "y")
        if arr.ndim == 2 and arr.shape[1] == width and width > 1:
            return _probabilities(_same_shape_targets(arr, n, width, dtype))
        if arr.ndim != 1:
            raise ValueError(f"y: expected class labels of shape ({n},) or probabilities of "
                             f"shape ({n}, {width}), got shape {arr.shape}")
        if arr.shape[0] != n:
            raise ValueError(f"y: expected {n} labels to match X, got {arr.shape[0]}")
        if arr.dtype.kind == "f":
            check_finite(arr, "y")
            if not np.all(arr == np.round(arr)):
                bad = arr[arr != np.round(arr)][0]
                raise ValueError(f"y: expected integer class labels, got {bad}")
        outside = (arr < 0) | (arr >= width)    # before the cast, which would wrap or clip
        if outside.any():
            at = int(np.argmax(outside))
            raise ValueError(f"y: expected class labels in [0, {width}) for {width} outputs, "
                             f"got {arr[at].item()!r} at position {at}")
        return np.ascontiguousarray(arr, dtype=np.int64)

    def plan_kind(self, labels: bool) -> str:
        return "cross_entropy" if labels else "cross_entropy_probs"

    def compute(self, out, target, dout) -> float:
        if target.ndim == 1:
            return _core.softmax_cross_entropy(out, target, dout)
        return _core.softmax_cross_entropy_probs(out, target, dout)

    def accuracy(self, out, target) -> float:
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        return float(np.mean(out.argmax(axis=1) == labels))


@LOSSES.register("mse")
class MSE(Loss):
    """Mean squared error over all elements, as torch.nn.MSELoss: mean((out - y)^2).

    ``half=True`` gives the textbook 1/2 (y - out)^2 (same mean).
    """

    name = "mse"

    def __init__(self, half: bool = False) -> None:
        self.half = boolean(half, "half")

    def prepare_targets(self, y, n: int, width: int, dtype: np.dtype) -> np.ndarray:
        return _same_shape_targets(y, n, width, dtype)

    def plan_kind(self, labels: bool) -> str:
        return "mse_half" if self.half else "mse"

    def compute(self, out, target, dout) -> float:
        return _core.mse(out, target, dout, half=self.half)

    def config(self) -> dict:
        return {"name": self.name, "half": self.half}

    def __repr__(self) -> str:
        return f"MSE(half={self.half})"


@LOSSES.register("bce", "bce_with_logits")
class BCEWithLogits(Loss):
    """Binary cross-entropy on logits (sigmoid fused, stable), mean over all elements.

    Targets in [0, 1], of the output's shape (1-D accepted for one output).
    """

    name = "bce"
    classification = True

    def prepare_targets(self, y, n: int, width: int, dtype: np.dtype) -> np.ndarray:
        arr = _same_shape_targets(y, n, width, dtype)
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            bad = arr[(arr < 0) | (arr > 1)][0]
            raise ValueError(f"y: expected targets in [0, 1] for binary cross-entropy, got {bad}")
        return arr

    def plan_kind(self, labels: bool) -> str:
        return "bce_with_logits"

    def compute(self, out, target, dout) -> float:
        return _core.bce_with_logits(out, target, dout)

    def accuracy(self, out, target) -> float:
        return float(np.mean((out > 0) == (target > 0.5)))


class FunctionLoss(Loss):
    """A loss computed by a function of Tensors (`fastbp.autograd`): the network runs forward
    and backward through its own kernels; only the loss and d(loss)/d(output) come from
    ``fn(output, y)``, where output is a Tensor (batch, width) that requires a gradient and y
    the batch's targets as a NumPy array. fn returns a one-element Tensor, the batch's loss.

    Targets: integer labels (n,) are kept as int64; any other real targets of n rows become
    finite float arrays of the network's dtype (a 1-D float y a column (n, 1)). The compiled
    training step calls it between its forward and backward passes (plan kind "external"). The
    loss is not saved with a model (`config` is None): it is Python code, and loading a file
    never runs code.
    """

    name = "function"

    def __init__(self, fn: Callable) -> None:
        if not callable(fn) or isinstance(fn, type):
            raise TypeError(f"fn: expected a function fn(output, y) -> Tensor, got {fn!r}")
        self.fn = fn

    def prepare_targets(self, y, n: int, width: int, dtype: np.dtype) -> np.ndarray:
        arr = _numeric(y, "y")
        if arr.ndim not in (1, 2) or arr.shape[0] != n:
            raise ValueError(f"y: expected {n} targets, of shape ({n},) or ({n}, m), got "
                             f"shape {arr.shape}")
        if arr.dtype.kind in "iu":
            if arr.ndim != 1:
                raise ValueError(f"y: expected integer labels of shape ({n},), got shape "
                                 f"{arr.shape} (give float targets for 2-D ones)")
            return np.ascontiguousarray(arr, dtype=np.int64)
        arr = np.ascontiguousarray(arr.reshape(n, -1), dtype=dtype)
        check_finite(arr, "y")
        return arr

    def plan_kind(self, labels: bool) -> str:
        return "external"

    def compute(self, out, target, dout) -> float:
        output = Tensor(out, requires_grad=True)
        value = self.fn(output, target)
        if not isinstance(value, Tensor) or value.size != 1:
            got = f"shape {value.shape}" if isinstance(value, Tensor) else type(value).__name__
            raise TypeError(f"loss function {callable_name(self.fn)}: expected it to return a "
                            f"Tensor of one element, got {got}")
        if value.requires_grad:
            value.backward()
        dout[...] = 0 if output.grad is None else output.grad
        return value.item()

    def config(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"Loss.from_function({callable_name(self.fn)})"


def get_loss(loss) -> Loss:
    """A Loss object from a Loss, one of the names in LOSSES, or a function of Tensors
    ``fn(output, y) -> Tensor`` (`Loss.from_function`)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    if callable(loss) and not isinstance(loss, type):
        return FunctionLoss(loss)
    raise ValueError(f"loss: expected a fastbp Loss, one of {LOSSES.names()} or a function "
                     f"fn(output, y) -> Tensor, got {loss!r}")


def loss_from_config(config: dict) -> Loss:
    """Rebuild a loss from its `config()`."""
    kwargs = dict(config)
    loss = get_loss(kwargs.pop("name", None))
    return type(loss)(**kwargs)
