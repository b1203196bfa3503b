"""Training curves of a History drawn with matplotlib into an image file (no screen needed)."""
from __future__ import annotations

import os

import numpy as np


def figure_class():
    """matplotlib's Figure and the Agg canvas, or a clear ImportError."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting training curves needs matplotlib: pip install matplotlib "
                          "(or pip install fastbp[plot])") from None
    return Figure, FigureCanvasAgg


def _panels(history) -> list[tuple[str, dict[str, np.ndarray], bool]]:
    """[(title, {label: values}, log scale)] of what the history holds."""
    data = dict(history)
    panels = [("loss", {k: data[k] for k in ("loss", "val_loss") if k in data}, False)]
    metrics = sorted(k for k in data if k not in ("loss", "val_loss", "time", "lr")
                     and not k.startswith("val_") and np.ndim(data[k][0]) == 0)
    for metric in metrics:
        panels.append((metric, {k: data[k] for k in (metric, f"val_{metric}") if k in data},
                       False))
    if "lr" in data:
        panels.append(("learning rate", {"lr": data["lr"]}, False))
    if "grad_norm" in data:
        norms = history["grad_norm"]
        panels.append(("gradient norm per layer",
                       {name: norms[:, k] for k, name in enumerate(history.layer_names)}, True))
    return panels


def plot_history(history, path) -> None:
    """Draw loss, metrics, lr (when scheduled) and per-layer gradient norms (when monitored)
    against the epoch, one panel each, and save the figure to `path` (format from its suffix:
    .png, .pdf, .svg)."""
    Figure, FigureCanvasAgg = figure_class()
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path: expected a file path, got {type(path).__name__}") from None
    if history.epochs == 0:
        raise ValueError("history: expected at least one completed epoch, got none")
    panels = _panels(history)
    fig = Figure(figsize=(6.0, 2.6 * len(panels)), layout="constrained")
    FigureCanvasAgg(fig)
    epochs = np.arange(1, history.epochs + 1)
    for ax, (title, series, log) in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0],
                                        panels, strict=True):
        for label, values in series.items():
            ax.plot(epochs, np.asarray(values, dtype=float), marker="." if len(epochs) < 30
                    else None, label=label)
        if log:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(path)
