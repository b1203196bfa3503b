"""Callbacks: code that `fit` runs at the start of training, after every epoch and at the end.

Protocol (subclass `Callback` and override what you need):

- ``on_train_begin(net)`` before the first epoch;
- ``on_epoch_end(epoch, logs)`` after each epoch (1-based `epoch`; `logs` holds that epoch's
  "loss", metrics, "val_*" entries, "time" and "lr" when scheduled); returning True stops
  training after this epoch (every callback still sees it);
- ``on_train_end(net)`` when training ends normally or is stopped by a callback (not when it
  raises, e.g. on a diverging loss).

In data-parallel training (``fit(comm=...)``) every rank runs its callbacks on the same,
global logs; training stops when a callback asks for it on any rank, and a callback writes
files only where its `writes_files` is True: on rank 0.
"""
from __future__ import annotations

import math
import os

import numpy as np

from fastbp._validation import choose, nonnegative_float, positive_int

MODES = ("auto", "min", "max")


class Callback:
    """Base class of fit callbacks: every hook does nothing.

    `writes_files` is set by fit before ``on_train_begin``: False on the ranks other than 0 of
    a data-parallel fit, where a callback must not write (the files are rank 0's).
    """

    writes_files = True

    def on_train_begin(self, net) -> None:
        """Called once before the first epoch with the network being trained."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after each epoch; return True to stop training."""
        return None

    def on_train_end(self, net) -> None:
        """Called once when training ends (normally or stopped by a callback)."""


class _Tracker:
    """The best value so far of one logged quantity, in the direction of its mode."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a log name like 'val_loss', got "
                            f"{type(monitor).__name__}")
        choose(mode, "mode", MODES)
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.owner, self.monitor, self.mode, self.min_delta = owner, monitor, mode, min_delta
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs: dict[str, float]) -> float:
        if self.monitor not in logs:
            hint = " (pass validation_data to fit)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"{self.owner}: monitor {self.monitor!r} is not in the epoch logs"
                             f"{hint}; available: {sorted(logs)}")
        return float(logs[self.monitor])

    def improved(self, value: float) -> bool:
        """True (and remember it) when `value` beats the best by more than min_delta."""
        if self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop training after `patience` consecutive epochs in which `monitor` did not improve.

    Parameters
    ----------
    monitor : name of a log entry, e.g. "val_loss", "val_accuracy", "loss".
    patience : how many epochs without improvement stop training (1: the first one does).
    min_delta : an improvement must exceed this.
    restore_best : at the end, copy back the parameters of the best epoch.
    mode : "min", "max", or "auto" (max when the name contains "acc", else min).

    Attributes
    ----------
    best, best_epoch : best value and its (1-based) epoch.
    stopped_epoch : the epoch after which training was stopped, or None.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best: bool = True, mode: str = "auto") -> None:
        min_delta = nonnegative_float(min_delta, "min_delta")
        self.patience = positive_int(patience, "patience")
        self.restore_best = bool(restore_best)
        self._tracker = _Tracker("EarlyStopping", monitor, mode, min_delta)
        self.monitor, self.mode = monitor, self._tracker.mode
        self._net = None
        self._best_params: np.ndarray | None = None

    @property
    def best(self) -> float:
        return self._tracker.best

    def on_train_begin(self, net) -> None:
        self._net = net
        self._tracker.reset()
        self.best_epoch, self.stopped_epoch, self._wait = None, None, 0
        self._best_params = net.params.copy() if self.restore_best else None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        if self._tracker.improved(self._tracker.value(logs)):
            self.best_epoch, self._wait = epoch, 0
            if self._best_params is not None:
                self._best_params[...] = self._net.params
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, net) -> None:
        if self._best_params is not None and self.best_epoch is not None:
            net.params[...] = self._best_params


class ModelCheckpoint(Callback):
    """Save the network with `net.save(path)` (atomic) after epochs where `monitor` improved,
    or after every epoch when ``save_best_only=False``.

    Parameters
    ----------
    path : file to write (overwritten by each save).
    monitor, mode : as in EarlyStopping.
    save_best_only : only save when `monitor` improved.
    include_optimizer : also save the optimizer state.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = True,
                 mode: str = "auto", include_optimizer: bool = False) -> None:
        try:
            self.path = os.fspath(path)
        except TypeError:
            raise TypeError(f"path: expected a file path, got {type(path).__name__}") from None
        self.save_best_only = bool(save_best_only)
        self.include_optimizer = bool(include_optimizer)
        self._tracker = _Tracker("ModelCheckpoint", monitor, mode)
        self.monitor, self.mode = monitor, self._tracker.mode
        self._net = None
        self.saved_epochs: list[int] = []

    def on_train_begin(self, net) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        if self.writes_files and not os.path.isdir(directory):
            raise ValueError(f"path: cannot write {self.path!r}: no such directory "
                             f"{directory!r}")
        self._net = net
        self._tracker.reset()
        self.saved_epochs = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            if not self._tracker.improved(self._tracker.value(logs)):
                return None
        if self.writes_files:
            self._net.save(self.path, include_optimizer=self.include_optimizer)
        self.saved_epochs.append(epoch)
        return None


class CallbackList:
    """The callbacks of one fit, validated, called in order (`writes_files`: see Callback)."""

    def __init__(self, callbacks, writes_files: bool = True) -> None:
        if callbacks is None:
            callbacks = []
        if not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks: expected a list of fb.Callback objects, got "
                            f"{type(callbacks).__name__}")
        for i, callback in enumerate(callbacks):
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks[{i}]: expected an fb.Callback, got "
                                f"{type(callback).__name__}")
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.writes_files = writes_files

    def on_train_begin(self, net) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(net)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        """True when any callback asks to stop (every callback is called)."""
        stop = False
        for callback in self.callbacks:
            stop = bool(callback.on_epoch_end(epoch, dict(logs))) or stop
        return stop

    def on_train_end(self, net) -> None:
        for callback in self.callbacks:
            callback.on_train_end(net)
