"""The record of a fit, epoch by epoch."""
from __future__ import annotations

import numpy as np

from fastbp.plotting import plot_history


class History:
    """Per-epoch record of a fit: ``history["loss"]``, ``"val_loss"``, ``"accuracy"``,
    ``"val_accuracy"`` (classification), ``"time"`` (seconds per epoch), ``"lr"`` (with an
    lr_schedule). With ``monitor=True``: ``"grad_norm"``, ``"weight_norm"``, ``"update_ratio"``
    (arrays (epochs, len(layer_names))) and ``"dead_fraction"`` ((epochs,
    len(unit_layer_names))); see fastbp.diagnostics."""

    def __init__(self) -> None:
        self.history: dict[str, list] = {}
        self.layer_names: list[str] = []
        self.unit_layer_names: list[str] = []

    def append(self, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.history.get("loss", []))

    def __getitem__(self, key: str):
        """The list of per-epoch values; per-layer diagnostics as an array (epochs, layers)."""
        values = self.history[key]
        if values and isinstance(values[0], np.ndarray):
            return np.stack(values)
        return values

    def plot(self, path) -> None:
        """Save loss, metrics, lr and per-layer gradient norms per epoch as an image (matplotlib;
        an ImportError says how to install it when missing)."""
        plot_history(self, path)

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.history.items()
                if v and not isinstance(v[-1], np.ndarray)}
        return f"History(epochs={self.epochs}, last={last})"
