"""Residual blocks: y = x + f(x) for a block of layers that keeps the width."""
from __future__ import annotations

import numpy as np

from fastbp import _core
from fastbp.nn.activations import Identity
from fastbp.nn.dense import Dense
from fastbp.nn.layer import Layer, Workspace, chain_widths, check_layers, layer_from_config
from fastbp.nn.stages import FusedDense, group_stages
from fastbp.registry import LAYERS


@LAYERS.register()
class Residual(Layer):
    """y = x + f(x), f the layers of the block applied in order (a skip connection).

    x and y are (batch, width): the block must output the width it takes. Its layers'
    parameters (and buffers) live in the network's flat arrays like any other, named
    "<block index>.<layer index>.<name>" (e.g. "2.0.weight"); they are initialised from the
    network's generator, saved and loaded (the config nests the layers' configs). Dense +
    activation pairs inside the block run fused, as in a Sequential.
    Backward: dx = dy + J_f(x)^T dy. When the block starts with a Dense layer, its input
    gradient dF W is added by a beta=1 gemm to a buffer holding dy; otherwise one C pass adds
    the block's input gradient to dy.
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        check_layers(layers, "Residual ", " in the Residual block")
        self.layers = list(layers)
        self._in_width, out_width = chain_widths(self.layers, where='Residual layer')
        if self._in_width is not None and out_width is not None and out_width != self._in_width:
            raise ValueError(f"Residual: y = x + f(x) needs a block that keeps the width, but "
                             f"it takes width {self._in_width} and outputs width {out_width}")
        self._stages = group_stages(self.layers)
        if type(self._stages[0]) is Dense:     # a stage whose backward can add dX to dy
            self._stages[0] = FusedDense(self._stages[0], Identity())
        self._out = Workspace()
        self._dX = Workspace()

    def input_width(self) -> int | None:
        return self._in_width

    def output_width(self, in_width: int | None) -> int | None:
        _, out_width = chain_widths(self.layers, in_width, where='Residual layer')
        if in_width is not None and out_width != in_width:
            raise ValueError(f"Residual: y = x + f(x) needs a block that keeps the width, but "
                             f"it takes width {in_width} and outputs width {out_width}")
        return in_width

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(f"{k}.{name}", shape) for k, layer in enumerate(self.layers)
                for name, shape in layer.parameter_shapes()]

    def buffer_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(f"{k}.{name}", shape) for k, layer in enumerate(self.layers)
                for name, shape in layer.buffer_shapes()]

    def bind_parameter(self, name: str, value: np.ndarray, grad: np.ndarray) -> None:
        super().bind_parameter(name, value, grad)
        k, inner = name.split(".", 1)
        self.layers[int(k)].bind_parameter(inner, value, grad)

    def bind_buffer(self, name: str, value: np.ndarray) -> None:
        super().bind_buffer(name, value)
        k, inner = name.split(".", 1)
        self.layers[int(k)].bind_buffer(inner, value)

    def initialize(self, rng: np.random.Generator) -> None:
        for layer in self.layers:
            layer.initialize(rng)

    def needs_initialization(self) -> bool:
        return any(layer.needs_initialization() for layer in self.layers)

    def check_state(self) -> None:
        for layer in self.layers:
            layer.check_state()

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        F = X
        for stage in self._stages:
            F = stage.forward(F, training)
        Y = self._out.get(X.shape[0], X.shape[1], X.dtype, training)
        _core.residual_add(X, F, Y)
        return Y

    def recompute(self, X: np.ndarray) -> np.ndarray:
        F = X
        for stage in self._stages:
            F = stage.recompute(F)
        Y = self._out.get(X.shape[0], X.shape[1], X.dtype)
        _core.residual_add(X, F, Y)
        return Y

    def release(self) -> None:
        super().release()
        for stage in self._stages:
            stage.release()

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        grad = dout
        for stage in reversed(self._stages[1:]):
            grad = stage.backward(grad, True, accumulate)
        first = self._stages[0]
        if not input_grad:
            first.backward(grad, False, accumulate)
            return None
        dX = self._dX.get(dout.shape[0], dout.shape[1], dout.dtype)
        if type(first) is FusedDense:
            dX[...] = dout                                   # skip path, then dX += dF W
            return first.backward(grad, True, accumulate, dX_into=dX)
        _core.residual_add(dout, first.backward(grad, True, accumulate), dX)
        return dX

    def plan_stages(self, in_width: int) -> list[dict] | None:
        """The block's stages, then its end: y = x + f(x), where x is the output of the stage
        before the block's `block_stages` stages."""
        stages, width = [], in_width
        for stage in self._stages:
            inner = stage.plan_stages(width)
            if inner is None:
                return None
            stages += inner
            width = inner[-1]["out_features"]
        return stages + [{"kind": "residual", "in_features": in_width,
                          "out_features": in_width, "block_stages": len(stages)}]

    def export_onnx(self, builder, x: str) -> str:
        """The block's layers (their tensors named "<block>.<layer>.*"), then Add(x, f(x))."""
        out = x
        for k, layer in enumerate(self.layers):
            out = builder.layer(layer, out, str(k))
        return builder.op("Add", x, out)

    def config(self) -> dict:
        return {"type": "Residual", "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict) -> Residual:
        layers = config["layers"]
        if not isinstance(layers, list) or not all(isinstance(c, dict) for c in layers):
            raise TypeError(f"Residual config: expected 'layers' to be a list of layer "
                            f"configs, got {layers!r}")
        return cls(*[layer_from_config(c) for c in layers])

    def __repr__(self) -> str:
        return f"Residual({', '.join(repr(layer) for layer in self.layers)})"

