"""FunctionLayer: a layer whose forward is a function of Tensors, its backward the tape's."""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping

import numpy as np

from fastbp._validation import callable_name, positive_int
from fastbp.autograd import Tensor, no_grad
from fastbp.nn.layer import Layer


class FunctionLayer(Layer):
    """``y = fn(x, **params)``, written with `fastbp.autograd`, trained layer by layer.

    Parameters
    ----------
    fn : function ``fn(x, **params) -> Tensor``: x a Tensor (batch, in_features), each
        parameter a Tensor of its declared shape, keyword-named; returns (batch, out_features).
    parameter_shapes : {name: shape} of the parameters (names usable as keywords).
    in_features, out_features : the widths it takes and gives (None: any input width; an
        output as wide as the input).
    init : {name: number or function(rng, shape) -> array} of initial values. A parameter not
        named gets U(-a, a), a = 1/sqrt(fan_in), fan_in = prod(shape[1:]), when it has two or
        more dimensions (torch.nn.Linear's weights), and zeros otherwise.

    Forward in training keeps the tape; backward runs it, writing (or adding) each parameter's
    gradient and returning the input's. A FunctionLayer cannot be saved: its function is Python
    code, and loading a model never runs code.
    """

    forward_state = ("_tape",)

    def __init__(self, fn: Callable, parameter_shapes: Mapping[str, tuple[int, ...]] | None = None,
                 in_features: int | None = None, out_features: int | None = None,
                 init: Mapping | None = None) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn: expected a function fn(x, **params) -> Tensor, got {fn!r}")
        self.fn = fn
        self.shapes = _checked_shapes(parameter_shapes or {})
        self.in_features = None if in_features is None else positive_int(in_features,
                                                                         "in_features")
        self.out_features = None if out_features is None else positive_int(out_features,
                                                                           "out_features")
        self.init = dict(init or {})
        for name, value in self.init.items():
            if name not in self.shapes:
                raise ValueError(f"init: {name!r} is not a parameter; expected one of "
                                 f"{sorted(self.shapes)}")
            if not (callable(value) or isinstance(value, numbers.Real)):
                raise TypeError(f"init[{name!r}]: expected a number or a function(rng, shape), "
                                f"got {value!r}")
        self._tape = None

    def input_width(self) -> int | None:
        return self.in_features

    def output_width(self, in_width: int | None) -> int | None:
        return in_width if self.out_features is None else self.out_features

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return list(self.shapes.items())

    def initialize(self, rng: np.random.Generator) -> None:
        for name, shape in self.shapes.items():
            value = self.init.get(name)
            if callable(value):
                value = value(rng, shape)
            elif value is None:
                bound = 1 / math.sqrt(math.prod(shape[1:])) if len(shape) >= 2 else 0.0
                value = rng.uniform(-bound, bound, shape)
            self.params[name][...] = value

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        if not training:
            with no_grad():
                return self._output(self.fn(Tensor(X), **self._tensors(False)), X)
        x, params = Tensor(X, requires_grad=True), self._tensors(True)
        out = self.fn(x, **params)
        self._tape = (x, params, out)
        return self._output(out, X)

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        x, params, out = self._tape
        for leaf in (x, *params.values()):
            leaf.grad = None
        if out.requires_grad:
            out.backward(dout)
        for name, leaf in params.items():
            grad = 0 if leaf.grad is None else leaf.grad
            if accumulate:
                self.grads[name] += grad
            else:
                self.grads[name][...] = grad
        if not input_grad:
            return None
        return np.zeros_like(x.data) if x.grad is None else x.grad

    def _tensors(self, requires_grad: bool) -> dict[str, Tensor]:
        return {name: Tensor(value, requires_grad=requires_grad)
                for name, value in self.params.items()}

    def _output(self, out, X: np.ndarray) -> np.ndarray:
        """The function's result as the layer's output: (batch, width) of X's dtype."""
        width = self.output_width(X.shape[1])
        if not isinstance(out, Tensor) or out.shape != (X.shape[0], width):
            got = f"shape {out.shape}" if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"FunctionLayer({callable_name(self.fn)}): expected fn to return a "
                             f"Tensor of shape ({X.shape[0]}, {width}), got {got}")
        return np.ascontiguousarray(out.data, dtype=X.dtype)

    def config(self) -> dict:
        raise TypeError(f"FunctionLayer({callable_name(self.fn)}) cannot be saved: its function is "
                        f"Python code, and loading a model never runs code")

    def __repr__(self) -> str:
        return f"FunctionLayer({callable_name(self.fn)}, {self.shapes})"


def _checked_shapes(shapes: Mapping) -> dict[str, tuple[int, ...]]:
    """{name: shape} with identifier names and shapes of positive ints."""
    if not isinstance(shapes, Mapping):
        raise TypeError(f"parameter_shapes: expected a dict {{name: shape}}, got "
                        f"{type(shapes).__name__}")
    checked = {}
    for name, shape in shapes.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"parameter_shapes: expected names usable as keywords, got "
                             f"{name!r}")
        shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
        checked[name] = tuple(positive_int(n, f"parameter_shapes[{name!r}]") for n in shape)
    return checked
