"""Layers: Dense and the activations.

A layer declares its parameter shapes; the network owns one flat parameter buffer and one flat
gradient buffer and hands each layer views into them (`self.params`, `self.grads`). Each layer
keeps its own workspaces, grown to the largest batch seen and reused, so a training step allocates
nothing. All arithmetic runs in the C core (`fastbp._kernels`).
"""
from __future__ import annotations

import numpy as np

from fastbp import _kernels
from fastbp._validation import choose, nonnegative_float, positive_float, positive_int
from fastbp.initializers import (
    bias_init_scheme,
    initial_bias,
    initial_weight,
    weight_init_scheme,
)


class Workspace:
    """A reusable (rows, width) buffer: grows to the largest row count, returns row views."""

    def __init__(self) -> None:
        self._buffer: np.ndarray | None = None

    def get(self, rows: int, width: int, dtype: np.dtype) -> np.ndarray:
        buf = self._buffer
        if buf is None or buf.shape[0] < rows or buf.shape[1] != width or buf.dtype != dtype:
            buf = self._buffer = np.empty((rows, width), dtype=dtype)
        return buf[:rows]

    def release(self) -> None:
        """Drop the buffer (its memory goes back once no view of it is left)."""
        self._buffer = None


def chain_widths(layers, width: int | None = None,
                 where: str = "layer") -> tuple[int | None, int | None]:
    """(input width the first fixed-width layer requires, width the chain outputs) for layers
    applied in order to an input of `width` (None: unknown); None where not fixed. A mismatch
    raises ValueError naming the layer (`where` and its index) and both widths."""
    first = None
    for i, layer in enumerate(layers):
        need = layer.input_width()
        if need is not None:
            if width is not None and need != width:
                raise ValueError(
                    f"{where} {i} ({type(layer).__name__}): expected input width {need}, "
                    f"but the layer before it outputs width {width}")
            if first is None and width is None:
                first = need
        width = layer.output_width(width if width is not None else need)
    return first, width


class Layer:
    """Base class of layers.

    Subclasses override `forward(X, training)` -> output and `backward(dout, input_grad,
    accumulate)` -> input gradient (or None when `input_grad` is False), and, when they have
    parameters, `parameter_shapes(in_width)` and `initialize(rng)`. `backward` writes the
    gradients of this batch into `self.grads` (adding to them when `accumulate`).

    Buffers (`buffer_shapes()`, `self.buffers`) are non-trainable state such as running
    statistics: the network keeps them in its flat `buffers` array, saves, loads and converts
    them with the parameters, and no optimizer touches them.

    Gradient checkpointing uses two more methods: `recompute(X)` repeats the last training
    forward on the same input without changing any state, and `release()` lets go of the
    arrays the layer keeps between forward and backward (its `Workspace` attributes and the
    attributes named in `forward_state`).
    """

    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    forward_state: tuple[str, ...] = ()  # attributes holding arrays of the last forward

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

    def recompute(self, X: np.ndarray) -> np.ndarray:
        """The last training forward again, on the same X, with no change of state (no new
        random mask, no running-statistics update). Layers with such state override it."""
        return self.forward(X, True)

    def release(self) -> None:
        """Let go of the arrays kept for backward (gradient checkpointing frees them between
        the forward pass and the recomputation)."""
        for value in vars(self).values():
            if isinstance(value, Workspace):
                value.release()
        for name in self.forward_state:
            setattr(self, name, None)

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
    """Elementwise activation f, computed by the fused C kernels.

    `kernel_name` names f in the C core and `kernel_params()` gives its parameters. Backward
    writes f' through the output f(z) where it can; where it cannot (`needs_preactivation`:
    GELU, Softplus) forward also keeps the input z, in a buffer of its own.
    """

    kernel_name = "identity"
    needs_preactivation = False
    forward_state = ("_A", "_Z")

    def __init__(self) -> None:
        super().__init__()
        self._input = Workspace()
        self._output = Workspace()
        self._dX = Workspace()
        self._A: np.ndarray | None = None
        self._Z: np.ndarray | None = None

    def kernel_params(self) -> dict[str, float]:
        """The parameters of f, as keyword arguments of the kernels."""
        return {}

    def apply(self, Z: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """A = f(Z + bias) for a (n, width) buffer Z that this call may overwrite.

        Keeps what `gradient` needs: A is Z itself, overwritten, unless `needs_preactivation`;
        then Z keeps Z + bias and A is a buffer of this layer.
        """
        params = self.kernel_params()
        if self.needs_preactivation:
            A = self._output.get(Z.shape[0], Z.shape[1], Z.dtype)
            _kernels.bias_activation_forward(Z, bias, self.kernel_name, A=A, **params)
            self._Z = Z
        else:
            _kernels.bias_activation_forward(Z, bias, self.kernel_name, **params)
            A = Z
        self._A = A
        return A

    def gradient(self, dA: np.ndarray, dZ: np.ndarray) -> np.ndarray:
        """dZ = dA * f'(z) at the z of the last `apply`, into dZ (which may be dA); returns dZ."""
        _kernels.activation_backward(dA, self._A, dZ, self.kernel_name, Z=self._Z,
                                     **self.kernel_params())
        return dZ

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        Z = self._input.get(X.shape[0], X.shape[1], X.dtype)
        Z[...] = X
        return self.apply(Z)

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        if not input_grad:
            return None
        return self.gradient(dout, self._dX.get(dout.shape[0], dout.shape[1], dout.dtype))

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

    def kernel_params(self) -> dict[str, float]:
        return {"slope": self.slope}

    def config(self) -> dict:
        return {"type": "LeakyReLU", "negative_slope": self.slope}


class ELU(Activation):
    """f(z) = z if z > 0 else alpha (exp(z) - 1), alpha >= 0, as torch.nn.ELU.

    f' = 1 if z > 0 else alpha exp(z) = f + alpha: written through the output.
    """

    kernel_name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = nonnegative_float(alpha, "alpha")

    def kernel_params(self) -> dict[str, float]:
        return {"alpha": self.alpha}

    def config(self) -> dict:
        return {"type": "ELU", "alpha": self.alpha}


class Softplus(Activation):
    """f(z) = log(1 + exp(beta z)) / beta, and f(z) = z where beta z > threshold, as
    torch.nn.Softplus (beta > 0, threshold > 0).

    f' = sigmoid(beta z), or 1 above the threshold. It needs z: just below the threshold
    f(z) > z, so the output alone does not tell on which side z was.
    """

    kernel_name = "softplus"
    needs_preactivation = True

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = positive_float(beta, "beta")
        self.threshold = positive_float(threshold, "threshold")

    def kernel_params(self) -> dict[str, float]:
        return {"beta": self.beta, "threshold": self.threshold}

    def config(self) -> dict:
        return {"type": "Softplus", "beta": self.beta, "threshold": self.threshold}


class GELU(Activation):
    """f(z) = z Phi(z), Phi the standard normal CDF, as torch.nn.GELU.

    approximate="tanh": f(z) = z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2.
    f' = Phi(z) + z phi(z) (phi the normal density) needs z: GELU is not monotonic, so its
    output does not determine z.
    """

    needs_preactivation = True

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = choose(approximate, "approximate", ("none", "tanh"))
        self.kernel_name = "gelu" if self.approximate == "none" else "gelu_tanh"

    def config(self) -> dict:
        return {"type": "GELU", "approximate": self.approximate}


ACTIVATIONS = {"identity": Identity, "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU,
               "leaky_relu": LeakyReLU, "elu": ELU, "softplus": Softplus, "gelu": GELU}


class Dense(Layer):
    """Fully connected layer: Z = X W^T + b, with W of shape (out_features, in_features).

    init (fan_in = in_features, fan_out = out_features; as torch.nn.init, gain 1 for xavier and
    sqrt(2) for he; N(0, s^2) has standard deviation s):

    - "xavier_uniform" (aliases "xavier", "glorot", "glorot_uniform"): U(-a, a),
      a = sqrt(6 / (fan_in + fan_out))
    - "xavier_normal" ("glorot_normal"): N(0, 2 / (fan_in + fan_out))
    - "he_uniform" ("kaiming_uniform"): U(-a, a), a = sqrt(6 / fan_in)
    - "he_normal" ("he", "kaiming", "kaiming_normal"): N(0, 2 / fan_in)
    - "lecun_normal" ("lecun"): N(0, 1 / fan_in)
    - "zeros"

    bias_init: "zeros" (default) or "uniform", U(-1/sqrt(fan_in), 1/sqrt(fan_in)) like
    torch.nn.Linear. `init` and `bias_init` keep the name given (an alias stays an alias).
    When a Sequential places an activation right after a Dense layer, the two run as one fused
    pass (bias-add and activation together); `forward`/`backward` here are the plain layer.
    """

    forward_state = ("_X",)

    def __init__(self, in_features: int, out_features: int, init: str = "xavier",
                 bias: bool = True, bias_init: str = "zeros") -> None:
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        weight_init_scheme(init)
        self.init = init
        self.use_bias = bool(bias)
        self.bias_init = bias_init_scheme(bias_init)
        if not self.use_bias and self.bias_init != "zeros":
            raise ValueError(f"bias_init: a layer with bias=False has no bias to initialise, "
                             f"got bias_init={bias_init!r}")
        self._Z = Workspace()
        self._dZ = Workspace()
        self._dX = Workspace()
        self._X: np.ndarray | None = None

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
        self.params["weight"][...] = initial_weight(self.init, self.out_features,
                                                    self.in_features, rng)
        if self.use_bias:
            self.params["bias"][...] = initial_bias(self.bias_init, self.out_features,
                                                    self.in_features, rng)

    def forward_fused(self, X: np.ndarray, activation: Activation | None = None) -> np.ndarray:
        """A = f(X W^T + b): one gemm, then one pass adding the bias and applying the
        activation f (None: identity). X (n, in_features) -> A (n, out_features)."""
        Z = self._Z.get(X.shape[0], self.out_features, X.dtype)
        _kernels.gemm(X, self.params["weight"], Z, trans_b=True)
        self._X = X
        if activation is None:
            _kernels.bias_activation_forward(Z, self.params.get("bias"), "identity")
            return Z
        return activation.apply(Z, self.params.get("bias"))

    def backward_fused(self, dA: np.ndarray, activation: Activation | None, input_grad: bool,
                       accumulate: bool, dX_into: np.ndarray | None = None) -> np.ndarray | None:
        """dZ = dA * f'; dW (+)= dZ^T X; db (+)= colsum dZ; returns dX = dZ W when asked.

        With `dX_into` (batch, in_features), dX is added to it (a beta=1 gemm, as a residual
        connection needs) and `dX_into` is returned.
        """
        if activation is None or activation.kernel_name == "identity":
            dZ = dA
        else:
            dZ = activation.gradient(dA, self._dZ.get(dA.shape[0], dA.shape[1], dA.dtype))
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
        return self.forward_fused(X)

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        return self.backward_fused(dout, None, input_grad, accumulate)

    def config(self) -> dict:
        return {"type": "Dense", "in_features": self.in_features,
                "out_features": self.out_features, "init": self.init, "bias": self.use_bias,
                "bias_init": self.bias_init}


LAYER_TYPES = {cls.__name__: cls for cls in (Dense, Identity, Sigmoid, Tanh, ReLU, LeakyReLU,
                                             ELU, Softplus, GELU)}


def layer_from_config(config: dict) -> Layer:
    """Rebuild a built-in layer from its `config()`."""
    kwargs = dict(config)
    kind = kwargs.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"layer type: expected one of {sorted(LAYER_TYPES)}, got {kind!r}")
    return LAYER_TYPES[kind].from_config(kwargs)
