"""The data-parallel training step: the compiled step of one process, over ranks.

Each rank runs forward, loss and backward on its rows of the global batch
(``TrainingPlan.forward_backward_ranked``: its gradients are its share of the global mean
loss's), the gradients are summed over the ranks (`GradientReducer`, partly during backward),
then every rank clips and updates alike (``TrainingPlan.finish``) and the parameters stay the
same on every rank. One small sum per step carries the global loss, the correct predictions
and whether any rank failed, so that every rank raises the same error at the same step.
"""
from __future__ import annotations

import numpy as np

from fastbp.distributed.reducer import GradientReducer
from fastbp.distributed.shard import Shard
from fastbp.train.step import CompiledStep


class DataParallelStep:
    """`step` (a CompiledStep) over `ranks` (a Ranks); `shard` maps the global batches of
    `gathered` to this rank's rows (None: only `step`, on batches of the ranks' own)."""

    def __init__(self, step, ranks, shard: Shard | None = None) -> None:
        if not isinstance(step, CompiledStep):
            raise ValueError("comm: data-parallel training runs on the compiled plan, and this "
                             "network or loss has none (a custom layer, or a loss without a "
                             "compiled form); use built-in layers and losses, or comm=None")
        self.inner, self.ranks, self.shard = step, ranks, shard
        self.net, self.plan = step.net, step.plan
        self.params, self.labels, self.backup = step.params, step.labels, step.backup
        self.optimizer = step.optimizer
        self.reducer = GradientReducer(ranks, step.net.grads)
        self._status = np.zeros(3)    # this rank's share of the loss, its hits, failed
        self._accuracy, self._steps = float("nan"), 0
        self._hit_units = step.net.out_features if step.plan.unit_targets else 1

    def start(self) -> None:
        """Give every rank rank 0's parameters, buffers and optimizer state."""
        net = self.net
        self.ranks.broadcast(net.params)
        if net.buffers.size:
            self.ranks.broadcast(net.buffers)
        for state in self.optimizer.state().values():
            self.ranks.broadcast(state)
        self.optimizer.step_count = self.ranks.share(self.optimizer.step_count)

    def gathered(self, X: np.ndarray, y: np.ndarray, order: np.ndarray, start: int,
                 stop: int) -> float:
        """One step on the global batch order[start:stop] (of validated data, this rank's
        rows of it by `shard`). Returns the global batch's mean loss."""
        idx, positions = self.shard.batch(order, start, stop)
        return self._step(X, y, idx, positions, stop - start)

    def step(self, X, y) -> float:
        """One step on a global batch of which (X, y) are this rank's rows (ranks in order).
        Returns the global batch's mean loss."""
        error = None
        try:
            X = self.net.check_input(X)
            y = self.inner._check_targets(X, y)
            rows = X.shape[0]
        except (ValueError, TypeError) as exc:
            error, rows = exc, 0
        counts = self.ranks.agree(error, rows)
        offset = sum(counts[:self.ranks.rank])
        idx = np.arange(rows, dtype=np.int64)
        return self._step(X, y, idx, idx + offset, sum(counts))

    def _step(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, positions: np.ndarray,
              global_rows: int) -> float:
        inner, plan, error = self.inner, self.plan, None
        update = None if inner._fused is None else inner._fused.fused_update()
        local = 0.0
        try:
            local = plan.forward_backward_ranked(X, y, idx, positions, global_rows,
                                                 self.reducer)
        except Exception as exc:   # raised on every rank below, after the step's sums
            error = exc
        self.reducer.finish()
        status = self._status
        rows = idx.shape[0]
        status[0] = local * rows / global_rows if rows else 0.0
        status[1], status[2] = plan.hits, error is not None
        self.ranks.sum(status)
        if status[2]:
            plan.restore_buffers()
            self.ranks.agree(error)
        value = float(status[0])
        if not np.isfinite(value):
            plan.restore_buffers()
            diverged = FloatingPointError(f"train_step: the loss is {value}; no update was made")
            diverged.loss = value
            raise diverged
        plan.finish(update)
        inner._after_step(rows)
        self._accuracy = status[1] / (global_rows * self._hit_units)
        self._steps += 1
        if self._steps % self.ranks.check_every == 0:
            self.check_identical()
        return value

    def check_identical(self) -> None:
        """Raise RuntimeError on every rank if the ranks' parameters or buffers differ."""
        self.ranks.check_identical(self.net.params, self.net.buffers)

    def accuracy(self) -> float:
        """Accuracy of the last global batch (classification losses)."""
        return self._accuracy

    def restore(self) -> None:
        """Put back the parameters from before the last update."""
        self.inner.restore()

    def close(self) -> None:
        """Stop the communication thread."""
        self.reducer.close()
