"""The record of a fit, epoch by epoch."""
from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from fastbp.plotting import plot_history


class History(Mapping):
    """Per-epoch record of a fit, a read-only mapping from names to per-epoch values:
    ``history["loss"]``, ``"val_loss"``, ``"accuracy"``, ``"val_accuracy"`` (classification),
    ``"time"`` (seconds per epoch), ``"lr"`` (with an lr_schedule). With ``monitor=True``:
    ``"grad_norm"``, ``"weight_norm"``, ``"update_ratio"`` (arrays (epochs,
    len(layer_names))) and ``"dead_fraction"`` ((epochs, len(unit_layer_names))); see
    fastbp.diagnostics. ``"val_loss" in history``, ``list(history)`` (the names),
    ``dict(history)`` and ``len(history)`` (the number of names) work as for any mapping."""

    def __init__(self) -> None:
        self._logs: dict[str, list] = {}
        self.layer_names: list[str] = []
        self.unit_layer_names: list[str] = []

    def append(self, logs: dict[str, float]) -> None:
        """Record one epoch's values (the training loop calls this)."""
        for key, value in logs.items():
            self._logs.setdefault(key, []).append(value)

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self._logs.get("loss", []))

    @property
    def history(self) -> dict:
        """The whole record as a new dict {name: per-epoch values}, as Keras's History has."""
        return dict(self)

    def __getitem__(self, key: str):
        """A copy of the per-epoch values: a list; per-layer diagnostics an array (epochs,
        layers)."""
        if key not in self._logs:
            raise KeyError(f"{key!r}: this history records {sorted(self._logs)}")
        values = self._logs[key]
        if values and isinstance(values[0], np.ndarray):
            return np.stack(values)
        return list(values)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._logs))

    def __len__(self) -> int:
        return len(self._logs)

    def plot(self, path) -> None:
        """Save loss, metrics, lr and per-layer gradient norms per epoch as an image (matplotlib;
        an ImportError says how to install it when missing)."""
        plot_history(self, path)

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self._logs.items()
                if v and not isinstance(v[-1], np.ndarray)}
        return f"History(epochs={self.epochs}, last={last})"
