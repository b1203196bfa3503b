"""Layers: Dense and the activations.

A layer declares its parameter shapes; the network owns one flat parameter buffer and one flat
gradient buffer and hands each layer views into them (`self.params`, `self.grads`). Each layer
keeps its own workspaces, grown to the largest batch seen and reused, so a training step allocates
nothing. All arithmetic runs in the C core (`fastbp._kernels`).
"""
from __future__ import annotations

import math

import numpy as np

from fastbp import _kernels
from fastbp._validation import choose, nonnegative_float, positive_int

INITS = ("he", "xavier", "lecun", "zeros")


class Workspace:
    """A reusable (rows, width) buffer: grows to the largest row count, returns row views."""

    def __init__(self) -> None:
        self._buffer: np.ndarray | None = None

    def get(self, rows: int, width: int, dtype: np.dtype) -> np.ndarray:
        buf = self._buffer
        if buf is None or buf.shape[0] < rows or buf.shape[1] != width or buf.dtype != dtype:
            buf = self._buffer = np.empty((rows, width), dtype=dtype)
        return buf[:rows]


class Layer:
    """Base class of layers.

    Subclasses override `forward(X, training)` -> output and `backward(dout, input_grad,
    accumulate)` -> input gradient (or None when `input_grad` is False), and, when they have
    parameters, `parameter_shapes(in_width)` and `initialize(rng)`. `backward` writes the
    gradients of this batch into `self.grads` (adding to them when `accumulate`).

    Buffers (`buffer_shapes()`, `self.buffers`) are non-trainable state such as running
    statistics: the network keeps them in its flat `buffers` array, saves, loads and converts
    them with the parameters, and no optimizer touches them.
    """

    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}
        self.buffers = {}

    def output_width(self, in_width: int | None) -> int | None:
        """Width of the output for an input of `in_width` features (None: unknown yet)."""
        return in_width

    def input_width(self) -> int | None:
        """The input width this layer requires, or None if it takes any."""
        return None

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """[(name, shape)] of this layer's parameters, in buffer order."""
        return []

    def buffer_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """[(name, shape)] of this layer's buffers (non-trainable state), in buffer order."""
        return []

    def bind_parameter(self, name: str, value: np.ndarray, grad: np.ndarray) -> None:
        """Take the views of parameter `name` and of its gradient in the network's buffers."""
        self.params[name] = value
        self.grads[name] = grad

    def bind_buffer(self, name: str, value: np.ndarray) -> None:
        """Take the view of buffer `name` in the network's flat `buffers` array."""
        self.buffers[name] = value

    def initialize(self, rng: np.random.Generator) -> None:
        """Fill `self.params` (and `self.buffers`) with initial values drawn from `rng`."""

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        raise NotImplementedError

    def config(self) -> dict:
        """JSON-serialisable description from which the layer can be rebuilt."""
        raise TypeError(f"{type(self).__name__} cannot be saved: only built-in layers can")

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        """The layer described by `config()` without its "type" entry."""
        return cls(**config)

    def __repr__(self) -> str:
        try:
            config = self.config()
        except TypeError:  # a custom layer without config()
            config = {}
        args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "type")
        return f"{type(self).__name__}({args})"


class Activation(Layer):
    """Elementwise activation f, computed by the fused C kernels."""

    kernel_name = "identity"

    def __init__(self) -> None:
        super().__init__()
        self.slope = 0.0
        self._out = Workspace()
        self._dX = Workspace()
        self._A: np.ndarray | None = None

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        A = self._out.get(X.shape[0], X.shape[1], X.dtype)
        A[...] = X
        _kernels.bias_activation_forward(A, None, self.kernel_name, self.slope)
        self._A = A
        return A

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        if not input_grad:
            return None
        dX = self._dX.get(dout.shape[0], dout.shape[1], dout.dtype)
        _kernels.activation_backward(dout, self._A, dX, self.kernel_name, self.slope)
        return dX

    def config(self) -> dict:
        return {"type": type(self).__name__}


class Identity(Activation):
    """f(z) = z"""

    kernel_name = "identity"


class Sigmoid(Activation):
    """f(z) = 1 / (1 + exp(-z)), evaluated without overflow; f' = f (1 - f)."""

    kernel_name = "sigmoid"


class Tanh(Activation):
    """f(z) = tanh(z); f' = 1 - f^2."""

    kernel_name = "tanh"


class ReLU(Activation):
    """f(z) = max(z, 0); f' = [z > 0]."""

    kernel_name = "relu"


class LeakyReLU(Activation):
    """f(z) = z if z > 0 else negative_slope * z (negative_slope >= 0)."""

    kernel_name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.slope = nonnegative_float(negative_slope, "negative_slope")

    def config(self) -> dict:
        return {"type": "LeakyReLU", "negative_slope": self.slope}


ACTIVATIONS = {"identity": Identity, "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU,
               "leaky_relu": LeakyReLU}


class Dense(Layer):
    """Fully connected layer: Z = X W^T + b, with W of shape (out_features, in_features).

    init: "he" (normal, std sqrt(2 / in)), "xavier" (uniform, bound sqrt(6 / (in + out))),
    "lecun" (normal, std sqrt(1 / in)) or "zeros". Biases start at zero.
    When a Sequential places an activation right after a Dense layer, the two run as one fused
    pass (bias-add and activation together); `forward`/`backward` here are the plain layer.
    """

    def __init__(self, in_features: int, out_features: int, init: str = "xavier",
                 bias: bool = True) -> None:
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.init = choose(init, "init", INITS)
        self.use_bias = bool(bias)
        self._Z = Workspace()
        self._dZ = Workspace()
        self._dX = Workspace()
        self._X: np.ndarray | None = None
        self._A: np.ndarray | None = None

    def input_width(self) -> int:
        return self.in_features

    def output_width(self, in_width: int | None) -> int:
        return self.out_features

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        shapes = [("weight", (self.out_features, self.in_features))]
        if self.use_bias:
            shapes.append(("bias", (self.out_features,)))
        return shapes

    def initialize(self, rng: np.random.Generator) -> None:
        fan_in, fan_out = self.in_features, self.out_features
        shape = (fan_out, fan_in)
        if self.init == "he":
            values = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
        elif self.init == "xavier":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-bound, bound, shape)
        elif self.init == "lecun":
            values = rng.normal(0.0, math.sqrt(1.0 / fan_in), shape)
        else:
            values = np.zeros(shape)
        self.params["weight"][...] = values
        if self.use_bias:
            self.params["bias"][...] = 0.0

    def forward_fused(self, X: np.ndarray, activation: str, slope: float) -> np.ndarray:
        """A = f(X W^T + b): one gemm, then one pass adding the bias and applying f."""
        A = self._Z.get(X.shape[0], self.out_features, X.dtype)
        _kernels.gemm(X, self.params["weight"], A, trans_b=True)
        _kernels.bias_activation_forward(A, self.params.get("bias"), activation, slope)
        self._X, self._A = X, A
        return A

    def backward_fused(self, dA: np.ndarray, activation: str, slope: float, input_grad: bool,
                       accumulate: bool, dX_into: np.ndarray | None = None) -> np.ndarray | None:
        """dZ = dA * f'; dW (+)= dZ^T X; db (+)= colsum dZ; returns dX = dZ W when asked.

        With `dX_into` (batch, in_features), dX is added to it (a beta=1 gemm, as a residual
        connection needs) and `dX_into` is returned.
        """
        if activation == "identity":
            dZ = dA
        else:
            dZ = self._dZ.get(dA.shape[0], dA.shape[1], dA.dtype)
            _kernels.activation_backward(dA, self._A, dZ, activation, slope)
        beta = 1.0 if accumulate else 0.0
        _kernels.gemm(dZ, self._X, self.grads["weight"], trans_a=True, beta=beta)
        if self.use_bias:
            _kernels.bias_grad(dZ, self.grads["bias"], accumulate=accumulate)
        if not input_grad:
            return None
        if dX_into is not None:
            _kernels.gemm(dZ, self.params["weight"], dX_into, beta=1.0)
            return dX_into
        dX = self._dX.get(dZ.shape[0], self.in_features, dZ.dtype)
        _kernels.gemm(dZ, self.params["weight"], dX)
        return dX

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        return self.forward_fused(X, "identity", 0.0)

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        return self.backward_fused(dout, "identity", 0.0, input_grad, accumulate)

    def config(self) -> dict:
        return {"type": "Dense", "in_features": self.in_features,
                "out_features": self.out_features, "init": self.init, "bias": self.use_bias}


LAYER_TYPES = {cls.__name__: cls for cls in (Dense, Identity, Sigmoid, Tanh, ReLU, LeakyReLU)}


def layer_from_config(config: dict) -> Layer:
    """Rebuild a built-in layer from its `config()`."""
    kwargs = dict(config)
    kind = kwargs.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"layer type: expected one of {sorted(LAYER_TYPES)}, got {kind!r}")
    return LAYER_TYPES[kind].from_config(kwargs)
