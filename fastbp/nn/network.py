"""The network core: layers in order over one flat parameter buffer, forward and backward.

`Network` owns the flat parameter, gradient and buffer arrays and the views its layers hold,
runs forward and backward over its stages (with gradient checkpointing), checks inputs and
predicts. It knows nothing of training: `fastbp.Sequential` adds fit, evaluate, train_step and
save on top, and `fastbp.train` drives it through the `run_*` methods.
"""
from __future__ import annotations

import copy
import math
import os
import threading

import numpy as np

from fastbp._validation import as_dtype, as_matrix, boolean, positive_int, seed_value
from fastbp.nn.activations import Activation
from fastbp.nn.layer import Layer, chain_widths, check_layers
from fastbp.nn.stages import FusedDense, check_segments, group_stages, segment_bounds
from fastbp.preprocessing import check_standardizer


class Network:
    """A feed-forward network: the layers applied in order.

    Parameters
    ----------
    *layers : Layer
        The layers, e.g. ``Dense(64, 128), ReLU(), Dense(128, 10)``.
    dtype : "float32" (default) or "float64"
        Type of parameters, gradients and computation.
    seed : int
        Seed of the parameter initialisation.
    initialize : bool
        False leaves every parameter and buffer at zero (`fastbp.load` fills them from a file).

    Attributes
    ----------
    params, grads : 1-D arrays holding every parameter / gradient; layers hold views into them.
    buffers : 1-D array of every layer's non-trainable state (BatchNorm running statistics),
        saved and converted with the parameters, never updated by optimizers.
    metadata : dict of JSON-serialisable values saved with the model.
    standardizer : a fitted `fastbp.Standardizer` or None (see `check_input`).
    target_standardizer : a fitted `fastbp.Standardizer` of the regression targets, or None:
        the network learns standardised targets, and `predict` returns its outputs in the
        targets' own units (forward, backward, fit and evaluate keep standardised units).
    """

    def __init__(self, *layers: Layer, dtype="float32", seed: int = 0,
                 initialize: bool = True) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        check_layers(layers)
        self.layers = list(layers)
        self.dtype = as_dtype(dtype)
        self.seed = seed_value(seed)
        self.metadata: dict = {}
        self._standardizer = None
        self._target_standardizer = None
        self.in_features, self.out_features = self._check_widths()
        self._allocate(self.dtype)
        if boolean(initialize, "initialize"):
            rng = np.random.default_rng(self.seed)
            for layer in self.layers:
                layer.initialize(rng)
        self._stages = group_stages(self.layers)
        self._reset_transient()

    # Attributes of one process and one run: not pickled or copied (`_reset_transient`).
    _transient = ("_busy", "_trained_forward", "_plan_outputs", "_batch", "_segment_inputs")

    def _reset_transient(self) -> None:
        self._busy = threading.Lock()   # held by the training call running on this network
        self._trained_forward = False
        self._plan_outputs = None  # the compiled step's stage outputs, when it ran the forward

    def __getstate__(self) -> dict:
        """Pickling and copying keep the layers, flat arrays, metadata and scalings; the layers'
        views are bound again on unpickling (`__setstate__`)."""
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()
        self._reset_transient()

    def claim(self, entry: str) -> None:
        """Hold this network for one training call (`entry` names it; release with
        ``self.release_claim()``): a training call from another thread meanwhile raises
        RuntimeError instead of corrupting the parameters."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(f"{entry}: this network is already in a training call (fit, "
                               f"train_step, forward(training=True) or backward) in another "
                               f"thread or below this one; train one network from one thread "
                               f"at a time")

    def release_claim(self) -> None:
        self._busy.release()

    def _check_widths(self) -> tuple[int, int]:
        """Propagate widths through the layers; a mismatch names the layer and both widths."""
        in_features, width = chain_widths(self.layers)
        if in_features is None or width is None:
            raise ValueError("layers: expected at least one layer with a fixed width (Dense)")
        return in_features, width

    def _entries(self, shapes: str) -> list[tuple[int, Layer, str, tuple, int]]:
        """(layer index, layer, name, shape, size) of every parameter ("parameter_shapes") or
        buffer ("buffer_shapes"), in flat-array order."""
        return [(i, layer, name, shape, math.prod(shape)) for i, layer in enumerate(self.layers)
                for name, shape in getattr(layer, shapes)()]

    def _allocate(self, dtype: np.dtype) -> None:
        """Create the flat arrays (zeros) and bind each layer's views into them."""
        n_params = sum(entry[-1] for entry in self._entries("parameter_shapes"))
        n_buffers = sum(entry[-1] for entry in self._entries("buffer_shapes"))
        need = (2 * n_params + n_buffers) * dtype.itemsize
        memory = _physical_memory()
        try:
            if need > memory:   # the system might promise the pages, then kill the process
                raise MemoryError
            self.params = np.zeros(n_params, dtype=dtype)
            self.grads = np.zeros(n_params, dtype=dtype)
            self.buffers = np.zeros(n_buffers, dtype=dtype)
        except (MemoryError, ValueError):   # ValueError: beyond what an array can index
            having = f" ({memory / 2**30:.1f} GiB of memory)" if math.isfinite(memory) else ""
            raise MemoryError(f"layers: {n_params:,} parameters need {need / 2**30:.1f} GiB "
                              f"(values and gradients, {dtype.name}), more than can be "
                              f"allocated{having}") from None
        self._bind()

    def _bind(self) -> None:
        """Give each layer its views into the flat params, grads and buffers."""
        self._names: list[tuple[str, Layer, str, slice, tuple]] = []
        offset = 0
        for i, layer, name, shape, size in self._entries("parameter_shapes"):
            region = slice(offset, offset + size)
            layer.bind_parameter(name, self.params[region].reshape(shape),
                                 self.grads[region].reshape(shape))
            self._names.append((f"{i}.{name}", layer, name, region, shape))
            offset += size
        self._buffer_names: list[tuple[str, Layer, str]] = []
        offset = 0
        for i, layer, name, shape, size in self._entries("buffer_shapes"):
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

    def astype(self, dtype) -> Network:
        """A copy of this network with parameters converted to `dtype`."""
        dtype = as_dtype(dtype)
        twin = type(self).__new__(type(self))       # a shallow copy whose views are bound
        twin.__dict__.update(self.__getstate__())   # below, to its own arrays
        twin.layers = [copy.deepcopy(layer) for layer in self.layers]
        twin.metadata = copy.deepcopy(self.metadata)
        twin.dtype = dtype
        twin._allocate(dtype)
        twin.params[...] = self.params
        twin.buffers[...] = self.buffers
        twin._stages = group_stages(twin.layers)
        twin._reset_transient()
        return twin

    # ------------------------------------------------------------------------ forward/backward
    @property
    def stages(self) -> list:
        """The execution stages: the layers, with each Dense + activation pair fused."""
        return self._stages

    def run_forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        """Forward pass over an array already through `check_input`; returns the last
        stage's output: in training a workspace view (read it before the next forward), else
        an array of this call's own (or X itself), so that inference is thread-safe. Either
        ends what the last training forward kept for `backward`."""
        out = X
        for stage in self._stages:
            out = stage.forward(out, training)
        if training:
            self._batch = X.shape[0]
        self._trained_forward, self._plan_outputs = training, None
        return out

    def run_backward(self, dout: np.ndarray, input_grad: bool, accumulate: bool):
        """Backward pass of the last `run_forward` over a checked array; writes `grads` and
        returns the input gradient's buffer (None unless `input_grad`)."""
        for k, stage in enumerate(reversed(self._stages)):
            first = k == len(self._stages) - 1
            dout = stage.backward(dout, input_grad or not first, accumulate)
        return dout

    def run_checkpointed_forward(self, X: np.ndarray, segments: int) -> np.ndarray:
        """Training forward for gradient checkpointing: the stages are split into `segments`
        runs (1 to len(stages)), each run's input is kept, and every run but the last releases
        what its stages kept once its output is computed (`run_checkpointed_backward`
        recomputes it)."""
        bounds = segment_bounds(len(self._stages), check_segments(segments, len(self._stages)))
        self._segment_inputs = []
        out = X
        for j, (start, stop) in enumerate(bounds):
            self._segment_inputs.append(out)
            for stage in self._stages[start:stop]:
                out = stage.forward(out, True)
            if j < len(bounds) - 1:
                for stage in self._stages[start:stop]:
                    stage.release()
        self._trained_forward, self._plan_outputs = False, None
        return out

    def run_checkpointed_backward(self, dout: np.ndarray) -> None:
        """Backward after `run_checkpointed_forward`, run by run from the last: each run but
        the last is first recomputed from its kept input; each run then releases its arrays."""
        bounds = segment_bounds(len(self._stages), len(self._segment_inputs))
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

    def use_plan_outputs(self, outputs) -> None:
        """Record that the compiled training step ran the last training forward: `outputs()`
        gives its stages' outputs (for `activation_outputs`); `backward` needs a forward of
        its own."""
        self._plan_outputs, self._trained_forward = outputs, False

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
        self._standardizer = check_standardizer(value, self.in_features)

    @property
    def target_standardizer(self):
        """The fitted Standardizer whose inverse `predict` applies to the outputs, or None."""
        return self._target_standardizer

    @target_standardizer.setter
    def target_standardizer(self, value) -> None:
        self._target_standardizer = check_standardizer(value, self.out_features,
                                                       "target_standardizer", "output")

    def forward(self, X, training: bool = True) -> np.ndarray:
        """Network output for X (n, in_features) -> (n, out_features).

        With ``training=True`` the layers keep what `backward` needs (a training call: see
        `claim`); with ``training=False`` any number of threads may call it at once.
        """
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training: expected True or False, got {training!r}")
        if not training:
            return self.run_forward(self.check_input(X), False).copy()
        self.claim("forward(training=True)")
        try:
            return self.run_forward(self.check_input(X), True).copy()
        finally:
            self.release_claim()

    def backward(self, dout, accumulate: bool = False, input_grad: bool = True):
        """Backpropagate d(loss)/d(output) of the last training forward.

        Writes this batch's parameter gradients into `grads` (adds to them when `accumulate`)
        and returns d(loss)/d(X), or None when ``input_grad=False`` (saves one gemm).
        """
        self.claim("backward")
        try:
            if not self._trained_forward:
                raise RuntimeError("backward: call forward(X, training=True) first")
            arr = as_matrix(dout, "dout", self.dtype, self.out_features)
            if arr.shape[0] != self._batch:
                raise ValueError(f"dout: expected shape ({self._batch}, {self.out_features}) "
                                 f"like the last forward output, got {arr.shape}")
            dX = self.run_backward(arr, input_grad, accumulate)
            if dX is None:
                return None
            if self._standardizer is not None:    # d/dx of (x - mean) / std is 1 / std
                return (dX / self._standardizer.std).astype(self.dtype)
            return dX.copy()
        finally:
            self.release_claim()

    def activation_outputs(self) -> list[tuple[int, str, np.ndarray]]:
        """[(layer index, activation name, output (batch, units))] of every activation layer
        in the last training forward (views into workspaces: read before the next forward)."""
        if self._plan_outputs is not None:       # the compiled step's own buffers
            stage_outputs = self._plan_outputs()
        elif self._trained_forward:
            stage_outputs = [stage.activation._A if isinstance(stage, FusedDense) else
                             getattr(stage, "_A", None) for stage in self._stages]
        else:
            raise RuntimeError("activation_outputs: call forward(X, training=True) first")
        outputs, index = [], 0
        for stage, A in zip(self._stages, stage_outputs, strict=True):
            if isinstance(stage, FusedDense):
                outputs.append((index + 1, stage.activation.kernel_name, A))
                index += 2
            else:
                if isinstance(stage, Activation):
                    outputs.append((index, stage.kernel_name, A))
                index += 1
        return outputs

    def predict(self, X, batch_size: int = 4096) -> np.ndarray:
        """Network outputs (n, out_features) for X (logits for classifiers), in batches; in
        the targets' units when a `target_standardizer` is attached."""
        X = self.check_input(X)
        batch_size = positive_int(batch_size, "batch_size")
        out = np.empty((X.shape[0], self.out_features), dtype=self.dtype)
        for start in range(0, X.shape[0], batch_size):
            out[start:start + batch_size] = self.run_forward(X[start:start + batch_size],
                                                             False)
        if self._target_standardizer is not None:
            out = self._target_standardizer.inverse_transform(out, "outputs")
        return out

    def config(self) -> dict:
        return {"layers": [layer.config() for layer in self.layers], "dtype": self.dtype.name,
                "seed": self.seed}

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"{type(self).__name__}(\n{inner},\n  dtype={self.dtype.name!r}, seed={self.seed})"


def _physical_memory() -> float:
    """Bytes of physical memory (inf where the system does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return math.inf
