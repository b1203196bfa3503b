"""Elementwise activations, run by the C core's fused kernels.

Each activation class names its C kernel (`kernel_name`, one of the C core's activation names,
`fastbp._core.ACTIVATIONS`) and joins two registries: the layers (for model files) and the
activations by kernel name (the names `mlp` and the command line take).
"""
from __future__ import annotations

import math

import numpy as np

from fastbp import _core
from fastbp._validation import choose, nonnegative_float, positive_float
from fastbp.nn.layer import Layer, Workspace
from fastbp.registry import LAYERS, Registry

ACTIVATIONS = Registry("activation")


def activation(cls: type[Activation]) -> type[Activation]:
    """Class decorator: register an activation under its class name (a layer type) and its
    kernel name (an activation name); its kernel must exist in the C core."""
    if cls.kernel_name not in _core.ACTIVATIONS:
        raise ValueError(f"{cls.__name__}.kernel_name: expected one of "
                         f"{sorted(_core.ACTIVATIONS)}, got {cls.kernel_name!r}")
    ACTIVATIONS.register(cls.kernel_name)(cls)
    return LAYERS.register()(cls)


class Activation(Layer):
    """Elementwise activation f, computed by the fused C kernels.

    `kernel_name` names f in the C core and `kernel_params()` gives its parameters. Backward
    writes f' through the output f(z) where it can; where it cannot (`needs_preactivation`:
    GELU, Softplus) forward also keeps the input z, in a buffer of its own.
    """

    kernel_name = "identity"
    onnx_operator: str | None = None    # the ONNX operator computing f exactly, if one does
    forward_state = ("_A", "_Z")

    def __init__(self) -> None:
        super().__init__()
        self._input = Workspace()
        self._output = Workspace()
        self._dX = Workspace()
        self._A: np.ndarray | None = None
        self._Z: np.ndarray | None = None

    @property
    def needs_preactivation(self) -> bool:
        """True when f' cannot be read off the output f(z) (the C core says which)."""
        return _core.needs_preactivation(self.kernel_name)

    def kernel_params(self) -> dict[str, float]:
        """The parameters of f, as keyword arguments of the kernels."""
        return {}

    def kernel_description(self) -> dict:
        """f in a compiled plan stage: its C code and parameters."""
        return {"activation": _core.ACTIVATIONS[self.kernel_name],
                "params": self.kernel_params()}

    def apply(self, Z: np.ndarray, bias: np.ndarray | None = None,
              training: bool = True) -> np.ndarray:
        """A = f(Z + bias) for a (n, width) buffer Z that this call may overwrite.

        In training, keeps what `gradient` needs: A is Z itself, overwritten, unless
        `needs_preactivation`; then Z keeps Z + bias and A is a buffer of this layer.
        """
        params = self.kernel_params()
        if self.needs_preactivation:
            A = self._output.get(Z.shape[0], Z.shape[1], Z.dtype, training)
            _core.bias_activation_forward(Z, bias, self.kernel_name, A=A, **params)
        else:
            _core.bias_activation_forward(Z, bias, self.kernel_name, **params)
            A = Z
        if training:
            self._A, self._Z = A, Z if self.needs_preactivation else None
        return A

    def gradient(self, dA: np.ndarray, dZ: np.ndarray) -> np.ndarray:
        """dZ = dA * f'(z) at the z of the last `apply`, into dZ (which may be dA); returns dZ."""
        _core.activation_backward(dA, self._A, dZ, self.kernel_name, Z=self._Z,
                                  **self.kernel_params())
        return dZ

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        Z = self._input.get(X.shape[0], X.shape[1], X.dtype, training)
        Z[...] = X
        return self.apply(Z, None, training)

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        if not input_grad:
            return None
        return self.gradient(dout, self._dX.get(dout.shape[0], dout.shape[1], dout.dtype))

    def plan_stages(self, in_width: int) -> list[dict]:
        return [{"kind": "activation", "in_features": in_width, "out_features": in_width,
                 **self.kernel_description()}]

    def export_onnx(self, builder, x: str) -> str:
        """f as its ONNX operator (`onnx_operator`, with `onnx_attributes()`)."""
        if self.onnx_operator is None:
            return super().export_onnx(builder, x)
        return builder.op(self.onnx_operator, x, **self.onnx_attributes())

    def onnx_attributes(self) -> dict:
        """The attributes of `onnx_operator` that give f's parameters."""
        return {}

    def config(self) -> dict:
        return {"type": type(self).__name__}


@activation
class Identity(Activation):
    """f(z) = z"""

    kernel_name = "identity"

    def export_onnx(self, builder, x: str) -> str:
        return x                                  # no operator: the tensor passes through


@activation
class Sigmoid(Activation):
    """f(z) = 1 / (1 + exp(-z)), evaluated without overflow; f' = f (1 - f)."""

    kernel_name = "sigmoid"
    onnx_operator = "Sigmoid"


@activation
class Tanh(Activation):
    """f(z) = tanh(z); f' = 1 - f^2."""

    kernel_name = "tanh"
    onnx_operator = "Tanh"


@activation
class ReLU(Activation):
    """f(z) = max(z, 0); f' = [z > 0]."""

    kernel_name = "relu"
    onnx_operator = "Relu"


@activation
class LeakyReLU(Activation):
    """f(z) = z if z > 0 else negative_slope * z (negative_slope >= 0)."""

    kernel_name = "leaky_relu"
    onnx_operator = "LeakyRelu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.slope = nonnegative_float(negative_slope, "negative_slope")

    def kernel_params(self) -> dict[str, float]:
        return {"slope": self.slope}

    def onnx_attributes(self) -> dict:
        return {"alpha": self.slope}

    def export_onnx(self, builder, x: str) -> str:
        if builder.supports("LeakyRelu"):
            return super().export_onnx(builder, x)
        # z < 0 ? slope z : z, as the C kernel
        negative = builder.op("Less", x, builder.constant(0.0))
        return builder.op("Where", negative, builder.op("Mul", x, builder.constant(self.slope)),
                          x)

    def config(self) -> dict:
        return {"type": "LeakyReLU", "negative_slope": self.slope}


@activation
class ELU(Activation):
    """f(z) = z if z > 0 else alpha (exp(z) - 1), alpha >= 0, as torch.nn.ELU.

    f' = 1 if z > 0 else alpha exp(z) = f + alpha: written through the output.
    """

    kernel_name = "elu"
    onnx_operator = "Elu"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = nonnegative_float(alpha, "alpha")

    def kernel_params(self) -> dict[str, float]:
        return {"alpha": self.alpha}

    def onnx_attributes(self) -> dict:
        return {"alpha": self.alpha}

    def export_onnx(self, builder, x: str) -> str:
        if builder.supports("Elu"):
            return super().export_onnx(builder, x)
        # z > 0 ? z : alpha (e^z - 1)  (the C kernel's expm1 as Exp - 1: ONNX has no Expm1)
        expm1 = builder.op("Sub", builder.op("Exp", x), builder.constant(1.0))
        return builder.op("Where", builder.op("Greater", x, builder.constant(0.0)), x,
                          builder.op("Mul", expm1, builder.constant(self.alpha)))

    def config(self) -> dict:
        return {"type": "ELU", "alpha": self.alpha}


@activation
class Softplus(Activation):
    """f(z) = log(1 + exp(beta z)) / beta, and f(z) = z where beta z > threshold, as
    torch.nn.Softplus (beta > 0, threshold > 0).

    f' = sigmoid(beta z), or 1 above the threshold. It needs z: just below the threshold
    f(z) > z, so the output alone does not tell on which side z was.
    """

    kernel_name = "softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = positive_float(beta, "beta")
        self.threshold = positive_float(threshold, "threshold")

    def kernel_params(self) -> dict[str, float]:
        return {"beta": self.beta, "threshold": self.threshold}

    def export_onnx(self, builder, x: str) -> str:
        """ONNX's Softplus is log(1 + e^y) with neither beta nor threshold:
        beta z > threshold ? z : Softplus(beta z) / beta."""
        y = x if self.beta == 1 else builder.op("Mul", x, builder.constant(self.beta))
        if builder.supports("Softplus"):
            soft = builder.op("Softplus", y)
        else:   # max(y, 0) + log(1 + e^-|y|), the C kernel's form (its log1p as Log(1 + .))
            tail = builder.op("Exp", builder.op("Neg", builder.op("Abs", y)))
            soft = builder.op("Add", builder.op("Max", y, builder.constant(0.0)),
                              builder.op("Log", builder.op("Add", tail, builder.constant(1.0))))
        if self.beta != 1:
            soft = builder.op("Div", soft, builder.constant(self.beta))
        above = builder.op("Greater", y, builder.constant(self.threshold))
        return builder.op("Where", above, x, soft)

    def config(self) -> dict:
        return {"type": "Softplus", "beta": self.beta, "threshold": self.threshold}


@activation
class GELU(Activation):
    """f(z) = z Phi(z), Phi the standard normal CDF, as torch.nn.GELU.

    approximate="tanh": f(z) = z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2.
    f' = Phi(z) + z phi(z) (phi the normal density) needs z: GELU is not monotonic, so its
    output does not determine z.
    """

    kernel_name = "gelu"        # "gelu_tanh" for an instance with approximate="tanh"

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = choose(approximate, "approximate", ("none", "tanh"))
        self.kernel_name = "gelu" if self.approximate == "none" else "gelu_tanh"

    def export_onnx(self, builder, x: str) -> str:
        """ONNX's Gelu (opset 20) where the runtime has it, else the C kernel's formula."""
        if builder.supports("Gelu"):
            return builder.op("Gelu", x, approximate=self.approximate)
        if self.approximate == "none":          # z erfc(-z / sqrt 2) / 2
            half_z = builder.op("Mul", x, builder.constant(0.5))
            scaled = builder.op("Mul", x, builder.constant(-math.sqrt(0.5)))
            return builder.op("Mul", half_z, builder.erfc(scaled))
        # z sigma(2u), u = sqrt(2/pi) (z + 0.044715 z^3)
        cube = builder.op("Mul", builder.op("Mul", x, x), x)
        inner = builder.op("Add", x, builder.op("Mul", cube, builder.constant(0.044715)))
        two_u = builder.op("Mul", inner, builder.constant(2 * math.sqrt(2 / math.pi)))
        return builder.op("Mul", x, builder.op("Sigmoid", two_u))

    def config(self) -> dict:
        return {"type": "GELU", "approximate": self.approximate}
