"""Execution stages: the layers of a network or block grouped for running, a Dense layer and
the built-in activation right after it fused into one stage."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fastbp.nn.activations import ACTIVATIONS, Activation
from fastbp.nn.dense import Dense
from fastbp.nn.layer import Layer


class FusedDense:
    """A Dense layer and the activation right after it, run as one stage."""

    def __init__(self, dense: Dense, activation: Activation) -> None:
        self.dense, self.activation = dense, activation

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        return self.dense.forward_fused(X, self.activation, training)

    def backward(self, dout: np.ndarray, input_grad: bool, accumulate: bool,
                 dX_into: np.ndarray | None = None):
        return self.dense.backward_fused(dout, self.activation, input_grad, accumulate,
                                         dX_into)

    def recompute(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X, True)

    def release(self) -> None:
        self.dense.release()
        self.activation.release()

    def plan_stages(self, in_width: int) -> list[dict]:
        return [self.dense.plan_stage(self.activation)]


def group_stages(layers: Sequence[Layer]) -> list:
    """Group the layers into execution stages, fusing exact Dense + built-in activation pairs."""
    activations = tuple(ACTIVATIONS.classes())
    stages, i = [], 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if type(layer) is Dense and type(nxt) in activations:
            stages.append(FusedDense(layer, nxt))
            i += 2
        else:
            stages.append(layer)
            i += 1
    return stages


def segment_bounds(n: int, k: int) -> list[tuple[int, int]]:
    """[start, stop) of k consecutive runs of n stages, as equal as possible (1 <= k <= n)."""
    return [(j * n // k, (j + 1) * n // k) for j in range(k)]


def check_segments(segments: int, n_stages: int) -> int:
    """`segments` if gradient checkpointing can split `n_stages` stages into that many runs."""
    if not 1 <= segments <= n_stages:
        raise ValueError(f"checkpoint_segments: expected 1 to {n_stages} (the number of "
                         f"stages of this network), got {segments}")
    return segments
