"""Inverted dropout with reproducible, thread-count independent masks."""
from __future__ import annotations

import numpy as np

from fastbp import _core
from fastbp._validation import nonnegative_float, seed_value
from fastbp.nn.layer import Layer, Workspace
from fastbp.registry import LAYERS


@LAYERS.register()
class Dropout(Layer):
    """Zeroes each input element with probability p in training, scaling the kept ones.

    Training: y = x * keep / (1 - p), keep ~ Bernoulli(1 - p); backward multiplies by the
    same mask. Evaluation (``training=False``): y = x. 0 <= p < 1.

    Masks come from a counter-based generator in the C core: the mask of the k-th training
    forward is a function of (seed, k, element index) only, so runs repeat exactly and do not
    depend on the thread count. The seed is drawn from the network's seed unless given (a saved
    model records it).
    ``freeze_mask()`` makes every training forward reuse the mask of the latest one (element
    by element, for any batch size), which turns the layer into a fixed linear map: that is
    how `fastbp.gradcheck` checks a network holding Dropout in training mode.
    """

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        super().__init__()
        self.p = nonnegative_float(p, "p", upper=1.0)
        self._given_seed = None if seed is None else seed_value(seed)
        self.seed = 0 if self._given_seed is None else self._given_seed
        self.mask_frozen = False
        self._draws = 0                   # masks drawn so far
        self._draw: int | None = None     # index of the latest mask (None: no mask yet)
        self._identity = True             # the latest forward was the identity
        self._out = Workspace()
        self._dX = Workspace()

    def initialize(self, rng: np.random.Generator) -> None:
        drawn = int(rng.integers(0, 2**63))      # drawn either way: later layers see one stream
        self.seed = drawn if self._given_seed is None else self._given_seed
        self._draws, self._draw = 0, None

    def needs_initialization(self) -> bool:
        return self._given_seed is None

    def freeze_mask(self, frozen: bool = True) -> Dropout:
        """Reuse the latest mask in every training forward (``frozen=False``: draw again).

        Frozen before any training forward, the layer draws one mask at its first and keeps it.
        Returns the layer, so that ``Dropout(0.3).freeze_mask()`` can go in a Sequential.
        """
        self.mask_frozen = bool(frozen)
        return self

    def next_training_mask(self) -> int | None:
        """Take the mask of the next training forward and return its counter (the latest
        mask's when frozen); None when p == 0: the layer is the identity and draws no mask."""
        if self.p == 0:
            return None
        if not (self.mask_frozen and self._draw is not None):
            self._draw = self._draws
            self._draws += 1
        self._identity = False
        return self._draw

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        if not training:
            return X
        if self.p == 0:
            self._identity = True
            return X
        self.next_training_mask()
        Y = self._out.get(X.shape[0], X.shape[1], X.dtype)
        _core.dropout(X, Y, self.p, self.seed, self._draw)
        return Y

    def recompute(self, X: np.ndarray) -> np.ndarray:
        """The training forward again with the same mask."""
        frozen, self.mask_frozen = self.mask_frozen, True
        try:
            return self.forward(X, True)
        finally:
            self.mask_frozen = frozen

    def backward(self, dout: np.ndarray, input_grad: bool = True,
                 accumulate: bool = False) -> np.ndarray | None:
        if not input_grad:
            return None
        if self._identity:
            return dout
        dX = self._dX.get(dout.shape[0], dout.shape[1], dout.dtype)
        _core.dropout(dout, dX, self.p, self.seed, self._draw)
        return dX

    def plan_stages(self, in_width: int) -> list[dict]:
        return [{"kind": "dropout", "in_features": in_width, "out_features": in_width,
                 "p": self.p, "seed": self.seed, "next_mask": self.next_training_mask}]

    def export_onnx(self, builder, x: str) -> str:
        return x                    # the identity in evaluation: no node

    def config(self) -> dict:
        return {"type": "Dropout", "p": self.p, "seed": self.seed}

