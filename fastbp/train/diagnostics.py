"""Training diagnostics for `fit(monitor=True)`: per-layer gradient and weight norms, update
ratios, dead ReLU units, and warnings when training goes wrong.

Recorded per epoch, for each layer with parameters (columns named by ``history.layer_names``,
e.g. "0:Dense"), with p a layer's parameters (weights and biases together):

- ``grad_norm``: mean over the epoch's steps of ||g|| (L2), g the gradient the optimizer applied
  (after clip_value/clip_norm);
- ``weight_norm``: ||p|| at the end of the epoch;
- ``update_ratio``: ||p_end - p_start|| / ||p_start|| over the epoch (NaN when p_start = 0);

and for each ReLU-family activation (relu, leaky_relu; columns named by
``history.unit_layer_names``, e.g. "1:ReLU"):

- ``dead_fraction``: share of the units whose output was <= 0 for every sample of the epoch.

Warnings (`TrainingWarning`, each kind at most once per fit): vanishing gradients (the first
layer's grad_norm below `vanishing_ratio` times the last layer's), exploding gradients (the
global gradient norm of a step above `explode_norm`, or an epoch's mean global gradient norm
`growth` times the previous epoch's), dead units (a layer with more than `dead_fraction` of its
units dead).
"""
from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np

from fastbp import _core
from fastbp._validation import nonnegative_float, positive_float

RELU_FAMILY = ("relu", "leaky_relu")
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # fastbp/


class TrainingWarning(RuntimeWarning):
    """A problem seen while monitoring training: vanishing or exploding gradients, dead units."""


class Monitor:
    """Thresholds of the training warnings; ``fit(monitor=Monitor(...))``.

    Parameters
    ----------
    explode_norm : warn when a step's global gradient L2 norm exceeds it.
    growth : warn when an epoch's mean global gradient norm is this many times the previous one.
    vanishing_ratio : warn when the first layer's grad_norm is below this times the last layer's.
    dead_fraction : warn when more than this share of a ReLU layer's units are dead.
    """

    def __init__(self, explode_norm: float = 1e3, growth: float = 10.0,
                 vanishing_ratio: float = 1e-3, dead_fraction: float = 0.5) -> None:
        self.explode_norm = positive_float(explode_norm, "explode_norm")
        self.growth = positive_float(growth, "growth")
        self.vanishing_ratio = positive_float(vanishing_ratio, "vanishing_ratio")
        self.dead_fraction = nonnegative_float(dead_fraction, "dead_fraction", upper=1.0)

    # --------------------------------------------------------------------- called by fit
    def start(self, net) -> None:
        """Prepare for a fit of `net`: the layers to watch and their parameter regions."""
        regions: dict[int, slice] = {}
        for name, region, _ in net.parameter_slices():
            index = int(name.split(".", 1)[0])
            old = regions.get(index, region)
            regions[index] = slice(min(old.start, region.start), max(old.stop, region.stop))
        self.net = net
        self.layer_names = [f"{i}:{type(net.layers[i]).__name__}" for i in regions]
        self._regions = list(regions.values())
        self._grad_views = [net.grads[r] for r in self._regions]
        self.unit_layer_names: list[str] = []
        self._active: list[np.ndarray] | None = None
        self._params_start = np.empty_like(net.params)
        self._previous_mean = None
        self._warned: set[str] = set()

    def start_epoch(self) -> None:
        self._params_start[...] = self.net.params
        self._norm_sums = [0.0] * len(self._regions)
        self._global_sum = 0.0
        self._steps = 0
        if self._active is not None:
            for flags in self._active:
                flags[...] = False

    def after_step(self, epoch: int, step: int) -> None:
        """Read the step's gradients and activations (after backward, before the next forward)."""
        total = 0.0
        for k, view in enumerate(self._grad_views):
            norm = _core.grad_norm(view)
            self._norm_sums[k] += norm
            total += norm * norm
        norm = math.sqrt(total)
        self._global_sum += norm
        self._steps += 1
        if not norm <= self.explode_norm:
            self._warn("explode", f"exploding gradients at epoch {epoch}, step {step}: the "
                       f"global gradient norm {norm:.3g} exceeds explode_norm="
                       f"{self.explode_norm:g}. Hint: lower the lr, pass clip_norm or clip_value "
                       "to fit, and check the scale of inputs and targets.")
        self._mark_active_units()

    def end_epoch(self, epoch: int, history) -> None:
        """Append the epoch's diagnostics (arrays, one entry per watched layer) to `history`
        and warn when needed."""
        steps = max(self._steps, 1)
        grad_norm = np.array(self._norm_sums) / steps
        params, start = self.net.params, self._params_start
        weight_norm = np.array([_core.grad_norm(params[r]) for r in self._regions])
        delta = params - start
        moved = np.array([_core.grad_norm(delta[r]) for r in self._regions])
        initial = np.array([_core.grad_norm(start[r]) for r in self._regions])
        with np.errstate(divide="ignore", invalid="ignore"):
            update_ratio = np.where(initial > 0, moved / initial, np.nan)
        result = {"grad_norm": grad_norm, "weight_norm": weight_norm,
                  "update_ratio": update_ratio}
        if self._active is not None:
            result["dead_fraction"] = np.array([1.0 - flags.mean() for flags in self._active])
        history.append(result)
        history.layer_names, history.unit_layer_names = self.layer_names, self.unit_layer_names
        self._check_epoch(epoch, result, self._global_sum / steps)

    # ---------------------------------------------------------------------------- helpers
    def _mark_active_units(self) -> None:
        outputs = [(i, A) for i, name, A in self.net.activation_outputs() if name in RELU_FAMILY]
        if self._active is None:     # first step: now the activation widths are known
            self.unit_layer_names = [f"{i}:{type(self.net.layers[i]).__name__}"
                                     for i, _ in outputs]
            self._active = [np.zeros(A.shape[1], dtype=bool) for _, A in outputs]
        for (_, A), flags in zip(outputs, self._active, strict=True):
            _core.mark_active_units(A, flags)

    def _check_epoch(self, epoch: int, result: dict[str, np.ndarray], mean_norm: float) -> None:
        grad_norm = result["grad_norm"]
        if len(grad_norm) >= 2 and grad_norm[0] < self.vanishing_ratio * grad_norm[-1]:
            names = self.layer_names
            self._warn("vanish", f"vanishing gradients at epoch {epoch}: the gradient norm of "
                       f"the first layer ({names[0]}: {grad_norm[0]:.3g}) is below "
                       f"{self.vanishing_ratio:g} x that of the last layer ({names[-1]}: "
                       f"{grad_norm[-1]:.3g}), so the first layers barely learn. Hint: use "
                       "relu or leaky_relu with init='he', fewer layers, or standardised inputs.")
        previous, self._previous_mean = self._previous_mean, mean_norm
        if previous is not None and previous > 0 and mean_norm >= self.growth * previous:
            self._warn("explode", f"exploding gradients at epoch {epoch}: the mean global "
                       f"gradient norm grew {mean_norm / previous:.3g}x in one epoch "
                       f"({previous:.3g} -> {mean_norm:.3g}). Hint: lower the lr, or pass "
                       "clip_norm or clip_value to fit.")
        for name, dead, flags in zip(self.unit_layer_names, result.get("dead_fraction", ()),
                                     self._active or (), strict=True):
            if dead > self.dead_fraction:
                self._warn("dead", f"dead units at epoch {epoch}: {dead:.0%} of the "
                           f"{flags.shape[0]} units of layer {name} gave no positive output "
                           "for any sample of the epoch, so they no longer learn. Hint: lower "
                           "the lr, use LeakyReLU or init='he', standardise the inputs.")

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            frame, level = sys._getframe(), 1      # point the warning at the caller of fit
            while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
                frame, level = frame.f_back, level + 1
            warnings.warn(message, TrainingWarning, stacklevel=level)


def make_monitor(monitor) -> Monitor | None:
    """`fit`'s monitor argument (False, True or a Monitor) as a Monitor or None."""
    if monitor is None or monitor is False:
        return None
    if monitor is True:
        return Monitor()
    if isinstance(monitor, Monitor):
        return monitor
    raise TypeError(f"monitor: expected True, False or an fb.Monitor, got "
                    f"{type(monitor).__name__}")
