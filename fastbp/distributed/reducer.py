"""Summing the gradients over the ranks while backward still runs.

The gradients live in one flat buffer in layer order, so the backward pass finishes them from
the end: when the compiled plan reports that grads[offset:] are final, the part not yet sent is
a tail slice, summed in place (no copy) by a blocking Allreduce on a communication thread once
it holds a bucket's worth of bytes. Open MPI makes no progress on non-blocking collectives in
the background; a thread running blocking ones is what its developers recommend.

Every sum of a step (the gradient buckets, and BatchNorm's statistics, which the plan needs at
once) goes through the one thread in the order the step asks for them: the same order on every
rank, as MPI requires of collectives on one communicator.
"""
from __future__ import annotations

import queue
import threading

import numpy as np


class GradientReducer:
    """The sums over `ranks` of one training step: the `ranks` argument of
    ``TrainingPlan.forward_backward_ranked`` (its `sum` and `grads_ready`), then `finish`."""

    def __init__(self, ranks, grads: np.ndarray) -> None:
        self.ranks, self.grads = ranks, grads
        self._bucket = max(1, ranks.bucket_bytes() // grads.itemsize)
        # gradients of one bucket or less are summed in one piece after backward anyway
        self.overlap = ranks.overlap and grads.shape[0] > self._bucket
        self._unsent = grads.shape[0]   # grads[:_unsent] are not summed (or queued) yet
        self._error: BaseException | None = None
        self._jobs: queue.Queue = queue.Queue()
        self._thread = None
        if self.overlap:
            self._thread = threading.Thread(target=self._work, name="fastbp-allreduce",
                                            daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            array = self._jobs.get()
            try:
                if array is None:
                    return
                if self._error is None:
                    self.ranks.sum(array)
            except BaseException as error:  # kept for the step's thread to raise
                self._error = error
            finally:
                self._jobs.task_done()

    def _send(self, array: np.ndarray) -> None:
        if self.overlap:
            self._jobs.put(array)
        else:
            self.ranks.sum(array)

    def _drain(self) -> None:
        """Wait for every queued sum; raise the error of one that failed."""
        if self.overlap:
            self._jobs.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def sum(self, array: np.ndarray) -> None:
        """Sum `array` over the ranks now (after the sums queued before it)."""
        self._send(array)
        self._drain()

    def grads_ready(self, offset: int) -> None:
        """grads[offset:] are final: queue the unsent part when it fills a bucket."""
        if self.overlap and self._unsent - offset >= self._bucket:
            self._jobs.put(self.grads[offset:self._unsent])
            self._unsent = offset

    def finish(self) -> None:
        """After backward: sum what is left and wait until every sum of the step is done."""
        if self._unsent > 0:
            self._send(self.grads[:self._unsent])
        self._unsent = self.grads.shape[0]
        self._drain()

    def close(self) -> None:
        """Stop the communication thread."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
