"""The layer protocol: what every layer declares and does, and the buffers it works in.

A layer declares its parameter and buffer shapes; the network owns one flat parameter buffer,
one flat gradient buffer and one flat buffer of non-trainable state, and hands each layer views
into them (`self.params`, `self.grads`, `self.buffers`). Each layer keeps its own workspaces,
grown to the largest batch seen and reused, so a training step allocates nothing; inference
(``training=False``) writes into new arrays instead and keeps nothing, so any number of threads
can run it at once. All arithmetic runs in the C core (`fastbp._core`).
"""
from __future__ import annotations

import numpy as np

from fastbp.registry import LAYERS


class Workspace:
    """A reusable (rows, width) buffer: grows to the largest row count, returns row views."""

    def __init__(self) -> None:
        self._buffer: np.ndarray | None = None

    def get(self, rows: int, width: int, dtype: np.dtype, training: bool = True) -> np.ndarray:
        """A (rows, width) array: a view of this workspace in training, a new array otherwise
        (inference shares no buffer between the threads that run it)."""
        if not training:
            return np.empty((rows, width), dtype=dtype)
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


def check_layers(layers, owner: str = "", within: str = "") -> None:
    """Refuse an empty layer list, a non-Layer, or one layer object used twice; errors name the
    `owner` ("Residual ") and where the layers are (`within`, " in the Residual block")."""
    if not layers:
        raise ValueError(f"layers: expected at least one layer{within}, got none")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"{owner}layers[{i}]: expected a fastbp Layer, got "
                            f"{type(layer).__name__}")
    if len({id(layer) for layer in layers}) != len(layers):
        raise ValueError(f"layers: the same layer object appears twice{within}; create one "
                         f"per use")


class Layer:
    """Base class of layers, and the protocol every layer follows.

    A layer declares:

    - `parameter_shapes()` and `buffer_shapes()`: [(name, shape)] of its trainable parameters
      and of its non-trainable state (running statistics), bound to views of the network's
      flat arrays by `bind_parameter` / `bind_buffer` and filled by `initialize(rng)`;
    - `input_width()` / `output_width(in_width)`: the widths it takes and gives;
    - `config()` / `from_config(config)`: its JSON description, for saving and loading (a
      layer class joins the registry with ``@LAYERS.register()`` so that files name it);
    - `plan_stages(in_width)`: its stages in the compiled training plan (see
      `fastbp._core.TrainingPlan`), or None when it runs only layer by layer;
    - `export_onnx(builder, x)`: its inference-mode computation as ONNX nodes, emitted
      through the small builder interface of `fastbp.onnx_export.GraphBuilder`.

    It computes `forward(X, training)` -> output and `backward(dout, input_grad, accumulate)`
    -> input gradient (None when `input_grad` is False), writing this batch's parameter
    gradients into `self.grads` (adding to them when `accumulate`). With ``training=False``
    forward changes nothing in the layer (it returns a new array or X itself, keeps no
    reference), so that inference can run from several threads at once.

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

    def needs_initialization(self) -> bool:
        """True when the layer has state besides parameters and buffers that only
        `initialize` can give it (a seed drawn from the network's): a loaded network is then
        initialised before its arrays are read."""
        return False

    def check_state(self) -> None:
        """Raise ValueError if the bound parameters or buffers hold values this layer cannot
        have (a loaded file is not trusted); finiteness is checked by the caller."""

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

    def __getstate__(self) -> dict:
        """Pickled and copied without its views into a network's arrays (the network binds
        them again when it is unpickled) and without what its last forward kept."""
        state = {k: Workspace() if isinstance(v, Workspace) else v
                 for k, v in self.__dict__.items()}
        state.update(params={}, grads={}, buffers={}, **dict.fromkeys(self.forward_state))
        return state

    def plan_stages(self, in_width: int) -> list[dict] | None:
        """This layer's stage descriptions for the compiled plan, given its input width, or
        None: a layer without a compiled form makes the whole network train layer by layer."""
        return None

    def export_onnx(self, builder, x: str) -> str:
        """Emit this layer's inference-mode computation (``training=False``) on the tensor
        named `x` as ONNX nodes through `builder` (a `fastbp.onnx_export.GraphBuilder`:
        ``builder.op(op_type, *inputs, **attributes)``, ``builder.constant(array, name)``);
        returns the name of the output tensor. A layer without it cannot be exported."""
        raise TypeError(f"{type(self).__name__} has no ONNX export: a layer exports itself "
                        f"with an export_onnx(builder, x) method")

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


def layer_from_config(config: dict) -> Layer:
    """Rebuild a registered layer from its `config()`."""
    kwargs = dict(config)
    return LAYERS.lookup(kwargs.pop("type", None)).from_config(kwargs)
