"""Sequential: the network core with training, evaluation and saving added on top."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fastbp import io, onnx_export
from fastbp._validation import positive_int
from fastbp.distributed.ranks import as_ranks
from fastbp.distributed.step import DataParallelStep
from fastbp.losses import get_loss
from fastbp.nn.activations import ACTIVATIONS
from fastbp.nn.dense import Dense
from fastbp.nn.layer import Layer
from fastbp.nn.network import Network
from fastbp.optim import get_optimizer
from fastbp.registry import OPTIMIZERS
from fastbp.train.fit import evaluate, fit
from fastbp.train.step import make_step


class Sequential(Network):
    """A feed-forward network: the layers applied in order (see `fastbp.nn.network.Network`),
    trained by `fit` or `train_step`, measured by `evaluate`, saved by `save`.

    Parameters (``*layers``, ``dtype``, ``seed``) as `Network`.

    Attributes
    ----------
    params, grads, buffers, metadata, standardizer : as `Network`.
    optimizer : the optimizer of the last `fit` (saved with ``save(..., include_optimizer=True)``).
    loss : the loss of the last `fit`, the default of `evaluate`.
    """

    _transient = Network._transient + ("_train_step",)   # the compiled step of train_step

    def __init__(self, *layers: Layer, dtype="float32", seed: int = 0,
                 initialize: bool = True) -> None:
        super().__init__(*layers, dtype=dtype, seed=seed, initialize=initialize)
        self.optimizer = None
        self.loss = None

    def _reset_transient(self) -> None:
        super()._reset_transient()
        self._train_step = None

    def astype(self, dtype) -> Sequential:
        """A copy of this network with parameters converted to `dtype` (no optimizer)."""
        twin = super().astype(dtype)
        twin.optimizer = None
        return twin

    def evaluate(self, X, y, loss=None, batch_size: int = 4096) -> dict:
        """Mean loss over (X, y), and accuracy for classification losses.

        `loss` defaults to the loss of the last `fit`.
        """
        return evaluate(self, X, y, loss, batch_size)

    def fit(self, X, y, **kwargs):
        """Train with mini-batch backpropagation; see `fastbp.train.fit.fit`."""
        self.claim("fit")
        try:
            return fit(self, X, y, **kwargs)
        finally:
            self.release_claim()

    def train_step(self, X, y, loss="cross_entropy", optimizer="adam",
                   checkpoint_segments: int | None = None, comm=None) -> float:
        """One training step on the batch (X, y): forward, loss, backward, update.

        `optimizer` is an Optimizer for this net, or a name: that optimizer is then created once
        with its default lr and kept in `self.optimizer` for the next steps. Networks of Dense,
        BatchNorm, Dropout, Residual blocks and built-in activation layers with a built-in
        loss run the whole step as one compiled call (see `fastbp.train.step`).
        `checkpoint_segments` turns on gradient checkpointing (see `fit`). Returns the batch
        loss; a non-finite loss raises FloatingPointError before any update.
        `comm` (see `fit`): a data-parallel step, every rank calling it with its rows of one
        global batch (X, y), in rank order; returns the global batch's loss. The first step
        with a communicator gives every rank rank 0's parameters.
        """
        if not self._busy.acquire(blocking=False):   # self.claim, inlined: steps are short
            self.claim("train_step")
        try:
            step = self._train_step
            labels = (y.ndim if type(y) is np.ndarray else np.ndim(y)) == 1   # ndim: 0.1 us
            if step is None or step.loss_arg is not loss or step.optimizer_arg is not optimizer \
                    or step.optimizer is not self.optimizer or step.params is not self.params \
                    or step.labels != labels or step.segments != checkpoint_segments \
                    or step.comm_arg is not comm:
                step = self._compile_train_step(loss, optimizer, y, checkpoint_segments, comm)
            return step.step(X, y)
        finally:
            self._busy.release()

    def _compile_train_step(self, loss, optimizer, y, checkpoint_segments, comm):
        if isinstance(optimizer, str) and optimizer in OPTIMIZERS and \
                type(self.optimizer) is OPTIMIZERS[optimizer]:
            opt = self.optimizer
        else:
            opt = get_optimizer(optimizer, self)
        self.optimizer = opt
        if checkpoint_segments is not None:
            checkpoint_segments = positive_int(checkpoint_segments, "checkpoint_segments")
        labels = np.ndim(y) == 1
        step = make_step(self, get_loss(loss), opt, labels,
                         checkpoint_segments=checkpoint_segments)
        if self._train_step is not None:
            self._train_step.close()      # a data-parallel step's communication thread
        ranks = as_ranks(comm)
        if ranks is not None:
            step = DataParallelStep(step, ranks)
            step.start()
        step.loss_arg, step.optimizer_arg, step.labels = loss, optimizer, labels
        step.segments, step.comm_arg = checkpoint_segments, comm
        self._train_step = step
        return step

    def save(self, path, include_optimizer: bool = False) -> None:
        """Save architecture, parameters and metadata (and optimizer state) to one .npz file."""
        io.save(self, path, include_optimizer=include_optimizer)

    def to_onnx(self, path=None, opset: int | None = None, outputs: str = "auto",
                fold_batchnorm: bool = False):
        """Export the network's inference (what `predict` computes) as an ONNX model, written
        atomically to `path` (None: not written) and returned as an ``onnx.ModelProto``.

        `outputs`: "auto" (default: the raw outputs, and for classifiers probabilities and
        labels), "raw", "softmax" or "sigmoid"; `opset` defaults to 21; `fold_batchnorm`
        folds BatchNorm into the Dense layer before it. Needs ``pip install "fastbp[onnx]"``;
        see `fastbp.onnx_export.to_onnx`.
        """
        return onnx_export.to_onnx(self, path, opset=opset, outputs=outputs,
                                   fold_batchnorm=fold_batchnorm)


def mlp(sizes: Sequence[int], activation: str = "relu", dtype="float32", seed: int = 0,
        init: str | None = None) -> Sequential:
    """A multilayer perceptron: Dense layers of `sizes` with `activation` between them.

    ``mlp([64, 128, 10], activation="relu")`` is ``Sequential(Dense(64, 128, init="he"),
    ReLU(), Dense(128, 10, init="he"))``. The last layer has no activation (logits). `init`
    defaults to "he" for the relu family (relu, leaky_relu, elu, gelu, softplus) and "xavier"
    otherwise.
    """
    activation_class = ACTIVATIONS.lookup(activation)
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
            layers.append(activation_class())
    return Sequential(*layers, dtype=dtype, seed=seed)


def load(path) -> Sequential:
    """Load a network saved by `Sequential.save` (with its optimizer when it was saved)."""
    return io.load(path, Sequential)
