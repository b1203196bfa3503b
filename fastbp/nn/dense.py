"""The fully connected layer: one gemm forward, two backward, bias and activation fused."""
from __future__ import annotations

import numpy as np

from fastbp import _core
from fastbp._validation import positive_int
from fastbp.nn.activations import Activation, Identity
from fastbp.nn.initializers import (
    bias_init_scheme,
    initial_bias,
    initial_weight,
    weight_init_scheme,
)
from fastbp.nn.layer import Layer, Workspace
from fastbp.registry import LAYERS

MAX_WIDTH = 2**31 - 1   # BLAS takes matrix dimensions as 32-bit ints


@LAYERS.register()
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
        for name, width in (("in_features", self.in_features),
                            ("out_features", self.out_features)):
            if width > MAX_WIDTH:
                raise ValueError(f"{name}: expected at most {MAX_WIDTH} (the largest matrix "
                                 f"dimension BLAS takes), got {width}")
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

    def forward_fused(self, X: np.ndarray, activation: Activation | None = None,
                      training: bool = True) -> np.ndarray:
        """A = f(X W^T + b): one gemm, then one pass adding the bias and applying the
        activation f (None: identity). X (n, in_features) -> A (n, out_features); training
        keeps X and A for backward."""
        Z = self._Z.get(X.shape[0], self.out_features, X.dtype, training)
        _core.gemm(X, self.params["weight"], Z, trans_b=True)
        if training:
            self._X = X
        if activation is None:
            _core.bias_activation_forward(Z, self.params.get("bias"), "identity")
            return Z
        return activation.apply(Z, self.params.get("bias"), training)

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
        _core.gemm(dZ, self._X, self.grads["weight"], trans_a=True, beta=beta)
        if self.use_bias:
            _core.bias_grad(dZ, self.grads["bias"], accumulate=accumulate)
        if not input_grad:
            return None
        if dX_into is not None:
            _core.gemm(dZ, self.params["weight"], dX_into, beta=1.0)
            return dX_into
        dX = self._dX.get(dZ.shape[0], self.in_features, dZ.dtype)
        _core.gemm(dZ, self.params["weight"], dX)
        return dX

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        return self.forward_fused(X, None, training)

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        return self.backward_fused(dout, None, input_grad, accumulate)

    def plan_stage(self, activation: Activation | None = None) -> dict:
        """The compiled stage of this layer followed by `activation` (None: identity)."""
        return {"kind": "dense", "in_features": self.in_features,
                "out_features": self.out_features, "weight": self.params["weight"],
                "bias": self.params.get("bias"), "weight_grad": self.grads["weight"],
                "bias_grad": self.grads.get("bias"),
                **(activation or Identity()).kernel_description()}

    def plan_stages(self, in_width: int) -> list[dict]:
        return [self.plan_stage()]

    def export_onnx(self, builder, x: str) -> str:
        """Gemm(X, W, b) with transB=1: X W^T + b."""
        inputs = [x, builder.constant(self.params["weight"], "weight")]
        if self.use_bias:
            inputs.append(builder.constant(self.params["bias"], "bias"))
        return builder.op("Gemm", *inputs, transB=1)

    def config(self) -> dict:
        return {"type": "Dense", "in_features": self.in_features,
                "out_features": self.out_features, "init": self.init, "bias": self.use_bias,
                "bias_init": self.bias_init}
