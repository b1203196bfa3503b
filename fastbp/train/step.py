"""Training steps: one batch of forward, loss, backward and update per call.

A network whose every layer has a compiled form (`Layer.plan_stages`: Dense, the activations,
BatchNorm, Dropout, Residual blocks of them), trained with a loss that has one
(`Loss.plan_kind`), runs on the compiled plan (`fastbp._core.TrainingPlan`): one C call per
step, the GIL released, no allocation. Any other network or loss runs layer by layer through
the same C kernels. `make_step` picks the path; both have the same interface.
"""
from __future__ import annotations

import numpy as np

from fastbp import _core
from fastbp.losses import Loss
from fastbp.nn.layer import Workspace
from fastbp.nn.stages import check_segments
from fastbp.registry import OPTIMIZERS


def plan_stages(net) -> tuple[list[dict], list[int]] | None:
    """C stage descriptions of the network (see `fastbp._core.TrainingPlan`), each layer's from
    its `plan_stages`, and for each of the network's own stages the index of the plan stage
    that computes its output; None when a stage has no compiled form (a custom layer)."""
    stages: list[dict] = []
    top = []
    for stage in net.stages:
        described = stage.plan_stages(stages[-1]["out_features"] if stages else net.in_features)
        if described is None:
            return None
        stages += described
        top.append(len(stages) - 1)
    return stages, top


def _fused(optimizer) -> bool:
    """True when the optimizer's update can run inside the compiled step."""
    kind = optimizer.fused_kind
    return kind is not None and type(optimizer).step is OPTIMIZERS[kind].step


class _Step:
    """Common part: the network, loss, optimizer, and the parameters kept before each update."""

    def __init__(self, net, loss: Loss, optimizer, clip_norm, clip_value) -> None:
        self.net, self.loss, self.optimizer = net, loss, optimizer
        self.params = net.params
        self.clip_norm, self.clip_value = clip_norm, clip_value

    def restore(self) -> None:
        """Put back the parameters from before the last update (needs keep_backup)."""
        self.net.params[...] = self.backup

    def close(self) -> None:
        """Release what the step holds besides memory: nothing in one process."""

    def _check_targets(self, X: np.ndarray, y) -> np.ndarray:
        return self.loss.prepare_targets(y, X.shape[0], self.net.out_features, self.net.dtype)


class CompiledStep(_Step):
    """The compiled path: one C call per step."""

    def __init__(self, net, loss: Loss, optimizer, stages: tuple[list[dict], list[int]],
                 labels: bool, keep_backup: bool = False, clip_norm: float | None = None,
                 clip_value: float | None = None, checkpoint_segments: int | None = None) -> None:
        super().__init__(net, loss, optimizer, clip_norm, clip_value)
        self.labels = labels
        stages, self._top = stages
        kind = loss.plan_kind(labels)
        self.plan = _core.TrainingPlan(net.params, net.grads, net.buffers, stages, kind,
                                       keep_backup, clip_norm, clip_value, checkpoint_segments,
                                       external=loss.compute if kind == "external" else None)
        self.backup = self.plan.backup
        self._fused = optimizer if _fused(optimizer) else None
        # the plan checks labels and targets itself, but not that probabilities sum to 1, nor
        # the targets of a loss of the caller's
        self._plan_checks_y = kind not in ("cross_entropy_probs", "external")
        self._outputs_of_last_step = self._stage_outputs      # bound once: steps are short

    def step(self, X, y) -> float:
        """One step on a user batch (checked; converted when needed). Returns the mean loss."""
        update = None if self._fused is None else self._fused.fused_update()
        value = None
        if self.net.standardizer is None and self._plan_checks_y:  # else convert first
            value = self.plan.train_step(X, y, update)
        if value is None:
            X = self.net.check_input(X)
            value = self.plan.train_step(X, self._check_targets(X, y), update)
        self._after_step(X.shape[0])
        return value

    def gathered(self, X: np.ndarray, y: np.ndarray, order: np.ndarray, start: int,
                 stop: int) -> float:
        """One step on rows order[start:stop] of validated data. Returns the mean loss."""
        update = None if self._fused is None else self._fused.fused_update()
        value = self.plan.train_gathered(X, y, order, start, stop, update)
        self._after_step(stop - start)
        return value

    def _after_step(self, rows: int) -> None:
        """Count the plan's update, or run an optimizer the plan cannot; point the network's
        activation outputs here."""
        if self._fused is not None:
            self._fused.fused_update_done()
        else:
            if self.backup is not None:
                self.backup[...] = self.net.params
            self.optimizer.step()
        self._rows = rows
        self.net.use_plan_outputs(self._outputs_of_last_step)

    def _stage_outputs(self) -> list[np.ndarray]:
        """The outputs of the network's own stages in the last step (views of the plan's)."""
        outputs = self.plan.outputs(self._rows)
        return [outputs[i] for i in self._top]

    def accuracy(self) -> float:
        """Accuracy of the last `gathered` batch (classification losses), counted in C."""
        return self.plan.accuracy


class LayerStep(_Step):
    """The layer-by-layer path, for networks with layers the plan does not compile."""

    def __init__(self, net, loss: Loss, optimizer, keep_backup: bool = False,
                 clip_norm: float | None = None, clip_value: float | None = None,
                 checkpoint_segments: int | None = None) -> None:
        super().__init__(net, loss, optimizer, clip_norm, clip_value)
        if checkpoint_segments is not None:
            check_segments(checkpoint_segments, len(net.stages))
        self.segments = checkpoint_segments
        self.backup = net.params.copy() if keep_backup else None
        self._x, self._y, self._dout = Workspace(), None, Workspace()
        self._out = self._target = None
        self._buffers = net.buffers.copy()

    def step(self, X, y) -> float:
        X = self.net.check_input(X)
        return self._step(X, self._check_targets(X, y))

    def gathered(self, X: np.ndarray, y: np.ndarray, order: np.ndarray, start: int,
                 stop: int) -> float:
        idx = order[start:stop]
        xb = self._x.get(idx.shape[0], X.shape[1], X.dtype)
        if self._y is None or self._y.shape[0] < idx.shape[0]:
            self._y = np.empty((idx.shape[0],) + y.shape[1:], dtype=y.dtype)
        yb = self._y[:idx.shape[0]]
        _core.gather_rows(X, idx, xb)
        if y.ndim == 1:
            _core.gather_labels(y, idx, yb)
        else:
            _core.gather_rows(y, idx, yb)
        return self._step(xb, yb)

    def _step(self, X: np.ndarray, y: np.ndarray) -> float:
        net = self.net
        if net.buffers.size:            # running statistics: a failed step must not move them
            self._buffers[...] = net.buffers
        if self.segments:
            out = net.run_checkpointed_forward(X, self.segments)
        else:
            out = net.run_forward(X, True)
        dout = self._dout.get(out.shape[0], out.shape[1], out.dtype)
        value = self.loss.compute(out, y, dout)
        if not np.isfinite(value):
            net.buffers[...] = self._buffers
            error = FloatingPointError(f"train_step: the loss is {value}; no update was made")
            error.loss = value
            raise error
        if self.segments:
            net.run_checkpointed_backward(dout)
        else:
            net.run_backward(dout, False, False)
        if self.clip_value is not None:
            _core.clip_grad_value(net.grads, self.clip_value)
        if self.clip_norm is not None:
            _core.clip_grad_norm(net.grads, self.clip_norm)
        if self.backup is not None:
            self.backup[...] = net.params
        self.optimizer.step()
        self._out, self._target = out, y
        return value

    def accuracy(self) -> float:
        """Accuracy of the last `gathered` batch (classification losses)."""
        return self.loss.accuracy(self._out, self._target)


def make_step(net, loss: Loss, optimizer, labels: bool, keep_backup: bool = False,
              clip_norm: float | None = None, clip_value: float | None = None,
              checkpoint_segments: int | None = None) -> CompiledStep | LayerStep:
    """The training step of `net` with `loss` and `optimizer`: compiled when it can be.

    `labels`: the targets are class labels (n,) rather than arrays of the output's shape.
    `keep_backup`: keep the parameters from before each update (`restore()` puts them back).
    `clip_value`, `clip_norm`: clamp each gradient, then clip their global norm, before updates.
    `checkpoint_segments`: gradient checkpointing over this many segments of stages.
    """
    stages = plan_stages(net)
    if stages is not None and loss.plan_kind(labels) is not None:
        return CompiledStep(net, loss, optimizer, stages, labels, keep_backup, clip_norm,
                            clip_value, checkpoint_segments)
    return LayerStep(net, loss, optimizer, keep_backup, clip_norm, clip_value,
                     checkpoint_segments)
