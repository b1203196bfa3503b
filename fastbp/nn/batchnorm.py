"""Batch normalization of the features of a (batch, features) input."""
from __future__ import annotations

import numpy as np

from fastbp import _core
from fastbp._validation import nonnegative_float, positive_float, positive_int
from fastbp.nn.layer import Layer, Workspace
from fastbp.registry import LAYERS


@LAYERS.register()
class BatchNorm(Layer):
    """Normalizes each feature over the batch, then scales and shifts it (as BatchNorm1d).

    y = weight * (x - mean) / sqrt(var + eps) + bias, per feature, on inputs (batch,
    num_features). In training (``net.forward(X, training=True)``, ``fit``, ``train_step``)
    mean and var are the batch's (biased variance), the backward pass goes through them, and
    the running statistics (buffers ``running_mean``, ``running_var``) move towards them:
    running = (1 - momentum) running + momentum batch, with the unbiased batch variance. In
    evaluation (``training=False``, ``predict``, ``evaluate``) the running statistics are used.

    Parameters ``weight`` (starts at 1) and ``bias`` (starts at 0), shape (num_features,).
    Training needs at least 2 samples per batch (the variance of one sample is undefined).
    """

    forward_state = ("_X",)

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        self.momentum = nonnegative_float(momentum, "momentum")
        if self.momentum > 1:
            raise ValueError(f"momentum: expected a number in [0, 1], got {momentum!r}")
        self.eps = positive_float(eps, "eps")
        self._out = Workspace()
        self._dX = Workspace()
        self._stats = Workspace()      # rows: mean, invstd of the last forward
        self._work = Workspace()       # rows: this batch's dbias / B, dweight / B
        self._X: np.ndarray | None = None
        self._trained = False

    def input_width(self) -> int:
        return self.num_features

    def output_width(self, in_width: int | None) -> int:
        return self.num_features

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("weight", (self.num_features,)), ("bias", (self.num_features,))]

    def buffer_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("running_mean", (self.num_features,)), ("running_var", (self.num_features,))]

    def initialize(self, rng: np.random.Generator) -> None:
        self.params["weight"][...] = 1.0
        self.params["bias"][...] = 0.0
        self.buffers["running_mean"][...] = 0.0
        self.buffers["running_var"][...] = 1.0

    def check_state(self) -> None:
        variance = self.buffers["running_var"]
        if (variance < 0).any():
            raise ValueError(f"BatchNorm running_var: expected values >= 0, got "
                             f"{variance[variance < 0][0]}")

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        if training:
            _core.check_batchnorm_batch(X.shape)
        Y = self._out.get(X.shape[0], self.num_features, X.dtype, training)
        stats = self._stats.get(2, self.num_features, X.dtype, training)
        _core.batchnorm_forward(X, self.params["weight"], self.params["bias"],
                                self.buffers["running_mean"], self.buffers["running_var"],
                                stats[0], stats[1], Y, training, self.momentum, self.eps)
        if training:
            self._X = X
        self._trained = training    # backward follows a training forward only
        return Y

    def recompute(self, X: np.ndarray) -> np.ndarray:
        """The training forward again (same batch statistics), running statistics untouched."""
        running = {name: buf.copy() for name, buf in self.buffers.items()}
        Y = self.forward(X, True)
        for name, buf in self.buffers.items():
            buf[...] = running[name]
        return Y

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        if not self._trained:
            raise RuntimeError("BatchNorm.backward: call forward(X, training=True) first")
        stats = self._stats.get(2, self.num_features, dout.dtype)
        work = self._work.get(2, self.num_features, dout.dtype)
        dX = self._dX.get(dout.shape[0], self.num_features, dout.dtype) if input_grad else None
        _core.batchnorm_backward(self._X, dout, self.params["weight"], stats[0], stats[1],
                                 self.grads["weight"], self.grads["bias"], work, dX,
                                 accumulate)
        return dX

    def plan_stages(self, in_width: int) -> list[dict]:
        return [{"kind": "batchnorm", "in_features": in_width, "out_features": in_width,
                 "weight": self.params["weight"], "bias": self.params["bias"],
                 "weight_grad": self.grads["weight"], "bias_grad": self.grads["bias"],
                 "momentum": self.momentum, "eps": self.eps, **self.buffers}]

    def export_onnx(self, builder, x: str) -> str:
        """Inference-mode BatchNormalization with the running statistics (`to_onnx` folds it
        into the Gemm before it when asked).

        ONNX keeps epsilon as a 32-bit float; where that would round eps (float64 models), the
        variance input holds running_var + eps and epsilon is 0, which computes the same
        1 / sqrt(running_var + eps) as the C core.
        """
        variance, eps = self.buffers["running_var"], self.eps
        if builder.dtype != np.float32 and float(np.float32(eps)) != eps:
            variance, eps = variance + eps, 0.0
        return builder.op("BatchNormalization", x,
                          builder.constant(self.params["weight"], "weight"),
                          builder.constant(self.params["bias"], "bias"),
                          builder.constant(self.buffers["running_mean"], "running_mean"),
                          builder.constant(variance, "running_var"), epsilon=eps)

    def config(self) -> dict:
        return {"type": "BatchNorm", "num_features": self.num_features,
                "momentum": self.momentum, "eps": self.eps}

