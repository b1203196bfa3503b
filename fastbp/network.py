"""Sequential networks: one flat parameter buffer, fused Dense+activation stages."""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from fastbp._validation import as_dtype, as_matrix, choose, positive_int
from fastbp.layers import ACTIVATIONS, Activation, Dense, Layer, chain_widths


class _FusedDense:
    """A Dense layer and the activation right after it, run as one stage."""

    def __init__(self, dense: Dense, activation: Activation) -> None:
        self.dense, self.activation = dense, activation

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        return self.dense.forward_fused(X, self.activation)

    def backward(self, dout: np.ndarray, input_grad: bool, accumulate: bool,
                 dX_into: np.ndarray | None = None):
        return self.dense.backward_fused(dout, self.activation, input_grad, accumulate,
                                         dX_into)

    def recompute(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X, True)

    def release(self) -> None:
        self.dense.release()
        self.activation.release()


def _segment_bounds(n: int, k: int) -> list[tuple[int, int]]:
    """[start, stop) of k consecutive runs of n stages, as equal as possible (1 <= k <= n)."""
    return [(j * n // k, (j + 1) * n // k) for j in range(k)]


def _stages(layers: Sequence[Layer]) -> list:
    """Group the layers into execution stages, fusing exact Dense + built-in activation pairs."""
    stages, i = [], 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if type(layer) is Dense and type(nxt) in ACTIVATIONS.values():
            stages.append(_FusedDense(layer, nxt))
            i += 2
        else:
            stages.append(layer)
            i += 1
    return stages


class Sequential:
    """A feed-forward network: the layers applied in order.

    Parameters
    ----------
    *layers : Layer
        The layers, e.g. ``Dense(64, 128), ReLU(), Dense(128, 10)``.
    dtype : "float32" (default) or "float64"
        Type of parameters, gradients and computation.
    seed : int
        Seed of the parameter initialisation.

    Attributes
    ----------
    params, grads : 1-D arrays holding every parameter / gradient; layers hold views into them.
    buffers : 1-D array of every layer's non-trainable state (BatchNorm running statistics),
        saved and converted with the parameters, never updated by optimizers.
    metadata : dict of JSON-serialisable values saved with the model.
    optimizer : the optimizer of the last `fit` (saved with ``save(..., include_optimizer=True)``).
    loss : the loss of the last `fit`, the default of `evaluate`.
    standardizer : a fitted `fastbp.Standardizer` or None (see `check_input`).
    """

    def __init__(self, *layers: Layer, dtype="float32", seed: int = 0) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("layers: expected at least one layer, got none")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}]: expected a fastbp Layer, got "
                                f"{type(layer).__name__}")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("layers: the same layer object appears twice; create one per use")
        self.layers = list(layers)
        self.dtype = as_dtype(dtype)
        self.seed = int(seed)
        self.metadata: dict = {}
        self.optimizer = None
        self.loss = None
        self._standardizer = None
        self.in_features, self.out_features = self._check_widths()
        self._allocate(self.dtype)
        rng = np.random.default_rng(self.seed)
        for layer in self.layers:
            layer.initialize(rng)
        self._stages = _stages(self.layers)
        self._trained_forward = False
        self._forward_outputs = None  # set by the compiled step: its stages' outputs
        self._train_step = None

    def _check_widths(self) -> tuple[int, int]:
        """Propagate widths through the layers; a mismatch names the layer and both widths."""
        in_features, width = chain_widths(self.layers)
        if in_features is None or width is None:
            raise ValueError("layers: expected at least one layer with a fixed width (Dense)")
        return in_features, width

    def _allocate(self, dtype: np.dtype) -> None:
        """Create the flat buffers and bind each layer's views into them."""
        entries = [(i, layer, name, shape) for i, layer in enumerate(self.layers)
                   for name, shape in layer.parameter_shapes()]
        total = sum(int(np.prod(shape)) for *_, shape in entries)
        self.params = np.zeros(total, dtype=dtype)
        self.grads = np.zeros(total, dtype=dtype)
        self._names: list[tuple[str, Layer, str, slice, tuple]] = []
        offset = 0
        for i, layer, name, shape in entries:
            size = int(np.prod(shape))
            region = slice(offset, offset + size)
            layer.bind_parameter(name, self.params[region].reshape(shape),
                                 self.grads[region].reshape(shape))
            self._names.append((f"{i}.{name}", layer, name, region, shape))
            offset += size
        self._allocate_buffers(dtype)

    def _allocate_buffers(self, dtype: np.dtype) -> None:
        """Create the flat `buffers` array (non-trainable state) and bind the layers' views."""
        entries = [(i, layer, name, shape) for i, layer in enumerate(self.layers)
                   for name, shape in layer.buffer_shapes()]
        self.buffers = np.zeros(sum(int(np.prod(shape)) for *_, shape in entries), dtype=dtype)
        self._buffer_names: list[tuple[str, Layer, str]] = []
        offset = 0
        for i, layer, name, shape in entries:
            size = int(np.prod(shape))
            layer.bind_buffer(name, self.buffers[offset:offset + size].reshape(shape))
            self._buffer_names.append((f"{i}.{name}", layer, name))
            offset += size

    # ----------------------------------------------------------------------------- parameters
    def named_parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """[(name, value view, gradient view)], names like "0.weight" (layer index, name)."""
        return [(full, layer.params[name], layer.grads[name])
                for full, layer, name, _, _ in self._names]

    def parameter_slices(self) -> list[tuple[str, slice, tuple]]:
        """[(name, slice of the flat buffer, shape)] for every parameter."""
        return [(full, region, shape) for full, _, _, region, shape in self._names]

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        """[(name, view)] of the non-trainable state, names like "1.running_mean"."""
        return [(full, layer.buffers[name]) for full, layer, name in self._buffer_names]

    def zero_grad(self) -> None:
        """Set every gradient to zero."""
        self.grads[...] = 0

    def astype(self, dtype) -> Sequential:
        """A copy of this network with parameters converted to `dtype`."""
        dtype = as_dtype(dtype)
        twin = copy.copy(self)
        twin.layers = [copy.deepcopy(layer) for layer in self.layers]
        twin.metadata = copy.deepcopy(self.metadata)
        twin.optimizer = None
        twin.dtype = dtype
        twin._allocate(dtype)
        twin.params[...] = self.params
        twin.buffers[...] = self.buffers
        twin._stages = _stages(twin.layers)
        twin._trained_forward = False
        twin._forward_outputs = None
        twin._train_step = None
        return twin

    # ------------------------------------------------------------------------ forward/backward
    def _forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        """Forward pass over a checked C-contiguous array; returns the last stage's buffer."""
        out = X
        for stage in self._stages:
            out = stage.forward(out, training)
        self._trained_forward = training
        self._forward_outputs = None
        self._batch = X.shape[0]
        return out

    def _backward(self, dout: np.ndarray, input_grad: bool, accumulate: bool):
        """Backward pass over a checked array; writes self.grads."""
        for k, stage in enumerate(reversed(self._stages)):
            first = k == len(self._stages) - 1
            dout = stage.backward(dout, input_grad or not first, accumulate)
        return dout

    def _checkpointed_forward(self, X: np.ndarray, segments: int) -> np.ndarray:
        """Training forward for gradient checkpointing: the stages are split into `segments`
        runs, each run's input is kept, and every run but the last releases what its stages
        kept once its output is computed (`_checkpointed_backward` recomputes it)."""
        if not 1 <= segments <= len(self._stages):
            raise ValueError(f"checkpoint_segments: expected 1 to {len(self._stages)} (the "
                             f"number of stages of this network), got {segments}")
        bounds = _segment_bounds(len(self._stages), segments)
        self._segment_inputs = []
        out = X
        for j, (start, stop) in enumerate(bounds):
            self._segment_inputs.append(out)
            for stage in self._stages[start:stop]:
                out = stage.forward(out, True)
            if j < len(bounds) - 1:
                for stage in self._stages[start:stop]:
                    stage.release()
        self._trained_forward, self._forward_outputs = False, None
        return out

    def _checkpointed_backward(self, dout: np.ndarray) -> None:
        """Backward after `_checkpointed_forward`, run by run from the last: each run but the
        last is first recomputed from its kept input; each run then releases its arrays."""
        bounds = _segment_bounds(len(self._stages), len(self._segment_inputs))
        for j in range(len(bounds) - 1, -1, -1):
            start, stop = bounds[j]
            if j < len(bounds) - 1:
                X = self._segment_inputs[j]
                for stage in self._stages[start:stop]:
                    X = stage.recompute(X)
            for i in range(stop - 1, start - 1, -1):
                dout = self._stages[i].backward(dout, i > 0, False)
            for stage in self._stages[start:stop]:
                stage.release()
        self._segment_inputs = []

    def check_input(self, X, name: str = "X") -> np.ndarray:
        """X validated and converted for this network: (n, in_features), finite, own dtype.

        With a `standardizer` attached, X holds raw features and is standardised here, so
        forward, predict, evaluate, fit and train_step all take raw features.
        """
        if self._standardizer is not None:
            X = self._standardizer.transform(X, name)
        return as_matrix(X, name, self.dtype, self.in_features,
                         layer=f"0 ({type(self.layers[0]).__name__})")

    @property
    def standardizer(self):
        """The fitted Standardizer applied to every input X, or None (saved with the model)."""
        return self._standardizer

    @standardizer.setter
    def standardizer(self, value) -> None:
        from fastbp.preprocessing import check_standardizer
        self._standardizer = check_standardizer(value, self.in_features)

    def forward(self, X, training: bool = True) -> np.ndarray:
        """Network output for X (n, in_features) -> (n, out_features).

        With ``training=True`` the layers keep what `backward` needs.
        """
        out = self._forward(self.check_input(X), training)
        return out.copy()

    def backward(self, dout, accumulate: bool = False, input_grad: bool = True):
        """Backpropagate d(loss)/d(output) of the last training forward.

        Writes this batch's parameter gradients into `grads` (adds to them when `accumulate`)
        and returns d(loss)/d(X), or None when ``input_grad=False`` (saves one gemm).
        """
        if not self._trained_forward:
            raise RuntimeError("backward: call forward(X, training=True) first")
        arr = as_matrix(dout, "dout", self.dtype, self.out_features)
        if arr.shape[0] != self._batch:
            raise ValueError(f"dout: expected shape ({self._batch}, {self.out_features}) like "
                             f"the last forward output, got {arr.shape}")
        dX = self._backward(arr, input_grad, accumulate)
        if dX is None:
            return None
        if self._standardizer is not None:    # d/dx of (x - mean) / std is 1 / std
            return (dX / self._standardizer.std).astype(self.dtype)
        return dX.copy()

    def activation_outputs(self) -> list[tuple[int, str, np.ndarray]]:
        """[(layer index, activation name, output (batch, units))] of every activation layer
        in the last training forward (views into workspaces: read before the next forward)."""
        if self._forward_outputs is not None:       # the compiled step's own buffers
            stage_outputs = self._forward_outputs()
        elif self._trained_forward:
            stage_outputs = [stage.activation._A if isinstance(stage, _FusedDense) else
                             getattr(stage, "_A", None) for stage in self._stages]
        else:
            raise RuntimeError("activation_outputs: call forward(X, training=True) first")
        outputs, index = [], 0
        for stage, A in zip(self._stages, stage_outputs, strict=True):
            if isinstance(stage, _FusedDense):
                outputs.append((index + 1, stage.activation.kernel_name, A))
                index += 2
            else:
                if isinstance(stage, Activation):
                    outputs.append((index, stage.kernel_name, A))
                index += 1
        return outputs

    def predict(self, X, batch_size: int = 4096) -> np.ndarray:
        """Raw network outputs (n, out_features) for X (logits for classifiers), in batches."""
        X = self.check_input(X)
        batch_size = positive_int(batch_size, "batch_size")
        out = np.empty((X.shape[0], self.out_features), dtype=self.dtype)
        for start in range(0, X.shape[0], batch_size):
            out[start:start + batch_size] = self._forward(X[start:start + batch_size], False)
        return out

    def evaluate(self, X, y, loss=None, batch_size: int = 4096) -> dict:
        """Mean loss over (X, y), and accuracy for classification losses.

        `loss` defaults to the loss of the last `fit`.
        """
        from fastbp.training import evaluate
        return evaluate(self, X, y, loss, batch_size)

    def fit(self, X, y, **kwargs):
        """Train with mini-batch backpropagation; see `fastbp.training.fit`."""
        from fastbp.training import fit
        return fit(self, X, y, **kwargs)

    def train_step(self, X, y, loss="cross_entropy", optimizer="adam",
                   checkpoint_segments: int | None = None) -> float:
        """One training step on the batch (X, y): forward, loss, backward, update.

        `optimizer` is an Optimizer for this net, or a name: that optimizer is then created once
        with its default lr and kept in `self.optimizer` for the next steps. Networks of Dense,
        BatchNorm, Dropout and built-in activation layers with a built-in loss run the whole
        step as one compiled call (see `fastbp.engine`). `checkpoint_segments` turns on
        gradient checkpointing (see `fit`). Returns the batch loss; a non-finite loss raises
        FloatingPointError before any update.
        """
        step = self._train_step
        if step is None or step.loss_arg is not loss or step.optimizer_arg is not optimizer \
                or step.optimizer is not self.optimizer or step.params is not self.params \
                or step.labels != (np.ndim(y) == 1) or step.segments != checkpoint_segments:
            step = self._compile_train_step(loss, optimizer, y, checkpoint_segments)
        return step.step(X, y)

    def _compile_train_step(self, loss, optimizer, y, checkpoint_segments):
        from fastbp.engine import make_step
        from fastbp.losses import get_loss
        from fastbp.optim import get_optimizer
        if isinstance(optimizer, str) and self.optimizer is not None and \
                type(self.optimizer).__name__.lower() == optimizer:
            opt = self.optimizer
        else:
            opt = get_optimizer(optimizer, self)
        self.optimizer = opt
        if checkpoint_segments is not None:
            checkpoint_segments = positive_int(checkpoint_segments, "checkpoint_segments")
        labels = np.ndim(y) == 1
        step = make_step(self, get_loss(loss), opt, labels,
                         checkpoint_segments=checkpoint_segments)
        step.loss_arg, step.optimizer_arg, step.labels = loss, optimizer, labels
        step.segments = checkpoint_segments
        self._train_step = step
        return step

    def save(self, path, include_optimizer: bool = False) -> None:
        """Save architecture, parameters and metadata (and optimizer state) to one .npz file."""
        from fastbp.io import save
        save(self, path, include_optimizer=include_optimizer)

    def config(self) -> dict:
        return {"layers": [layer.config() for layer in self.layers], "dtype": self.dtype.name,
                "seed": self.seed}

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential(\n{inner},\n  dtype={self.dtype.name!r}, seed={self.seed})"


def mlp(sizes: Sequence[int], activation: str = "relu", dtype="float32", seed: int = 0,
        init: str | None = None) -> Sequential:
    """A multilayer perceptron: Dense layers of `sizes` with `activation` between them.

    ``mlp([64, 128, 10], activation="relu")`` is ``Sequential(Dense(64, 128, init="he"),
    ReLU(), Dense(128, 10, init="he"))``. The last layer has no activation (logits). `init`
    defaults to "he" for the relu family (relu, leaky_relu, elu, gelu, softplus) and "xavier"
    otherwise.
    """
    choose(activation, "activation", ACTIVATIONS)
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least two widths (input, output), got {sizes}")
    sizes = [positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
    if init is None:
        init = "he" if activation in ("relu", "leaky_relu", "elu", "gelu", "softplus") else "xavier"
    layers: list[Layer] = []
    for i in range(len(sizes) - 1):
        layers.append(Dense(sizes[i], sizes[i + 1], init=init))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers, dtype=dtype, seed=seed)
