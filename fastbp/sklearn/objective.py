"""scikit-learn's MLP, built as a fastbp network, and its objective from fastbp's C core.

The objective of scikit-learn's MLP over a batch of rows i with sample weights w_i (1 when none
are given) and their sum W is the weighted data loss plus an L2 term on the weight matrices
(biases excluded):

    loss = 1/W sum_i w_i loss_i  +  alpha / (2 W) sum ||coefs||^2

where loss_i is summed over a row's outputs (log loss, or half the squared error: scikit-learn
reports the latter divided by the number of outputs, while its gradient is the summed one's).
The network outputs logits (log means for Poisson); the output activation is applied only to
predict, and the losses are computed from the logits (not from probabilities clipped at the
dtype's eps, as scikit-learn does: the two differ only where a probability is within eps of 0
or 1).
"""
from __future__ import annotations

import numpy as np

from fastbp import _core
from fastbp.nn.activations import ACTIVATIONS
from fastbp.nn.batchnorm import BatchNorm
from fastbp.nn.dense import Dense
from fastbp.nn.dropout import Dropout
from fastbp.nn.layer import Workspace
from fastbp.sequential import Sequential
from fastbp.train.step import plan_stages

# scikit-learn's hidden activation names, with fastbp's own names besides.
SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh",
                       "relu": "relu"}
HIDDEN_ACTIVATIONS = {**SKLEARN_ACTIVATIONS,
                      **{name: name for name in ACTIVATIONS.names()}}

# out_activation_ -> the weighted loss of the C core (`fastbp._core.WEIGHTED_LOSSES`).
OUTPUT_LOSSES = {"softmax": "softmax_cross_entropy", "logistic": "bce_with_logits",
                 "identity": "half_squared_error", "exp": "poisson_log_link"}


def build_network(layer_units: list[int], activation: str, dtype, batch_norm: bool,
                  dropout: float, seed: int) -> Sequential:
    """Dense layers of `layer_units`, each hidden one followed by [BatchNorm,] the activation
    [and Dropout]; the last one outputs logits."""
    hidden = ACTIVATIONS[HIDDEN_ACTIVATIONS[activation]]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(layer_units[:-1], layer_units[1:], strict=True)):
        layers.append(Dense(fan_in, fan_out))
        if i < len(layer_units) - 2:
            if batch_norm:
                layers.append(BatchNorm(fan_out))
            layers.append(hidden())
            if dropout:
                layers.append(Dropout(dropout))
    return Sequential(*layers, dtype=dtype, seed=seed)


def dense_layers(net: Sequential) -> list[Dense]:
    return [layer for layer in net.layers if isinstance(layer, Dense)]


def glorot_initialize(net: Sequential, activation: str, random_state) -> None:
    """scikit-learn's initialisation, from the same draws of `random_state` (a RandomState):
    per layer, coefs then intercepts ~ U(-b, b), b = sqrt(factor / (fan_in + fan_out)),
    factor 2 for the logistic activation and 6 otherwise."""
    factor = 2.0 if HIDDEN_ACTIVATIONS[activation] == "sigmoid" else 6.0
    for layer in dense_layers(net):
        fan_in, fan_out = layer.in_features, layer.out_features
        bound = np.sqrt(factor / (fan_in + fan_out))
        layer.params["weight"][...] = random_state.uniform(-bound, bound, (fan_in, fan_out)).T
        layer.params["bias"][...] = random_state.uniform(-bound, bound, fan_out)


def apply_output_activation(out: np.ndarray, out_activation: str) -> np.ndarray:
    """The predictions from the network's outputs, in place: probabilities or means."""
    if out_activation == "logistic":
        _core.bias_activation_forward(out, None, "sigmoid")
    elif out_activation == "softmax":
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
    elif out_activation == "exp":
        np.exp(out, out=out)
    return out


# The compiled training step's losses that are scikit-learn's when there are no sample weights,
# and for the logistic and identity outputs a single output column (the step takes means over
# all outputs).
PLAN_LOSSES = {"softmax_cross_entropy": "cross_entropy", "bce_with_logits": "bce_with_logits",
               "half_squared_error": "mse_half"}


class Objective:
    """scikit-learn's MLP loss (see the module's docstring) over training data: `batch` and
    `whole` run forward, the loss and backward and leave the gradient in `net.grads`.

    Without sample weights, and with softmax outputs or a single output, the compiled
    training step (`fastbp._core.TrainingPlan`, without its update) computes forward, loss and
    backward in one C call; otherwise the network runs layer by layer into the weighted
    losses. Targets: int64 class indices for softmax outputs, else floats of the output's
    shape.
    """

    def __init__(self, net: Sequential, out_activation: str, alpha: float, X: np.ndarray,
                 target: np.ndarray, sample_weight: np.ndarray | None) -> None:
        self.net, self.alpha = net, float(alpha)
        self.X, self.target, self.sample_weight = X, target, sample_weight
        self.kind = OUTPUT_LOSSES[out_activation]
        # [start, stop) of each weight matrix in the flat buffers (names "layer index.weight"):
        # the L2 term is one C call over them
        self.coef_ranges = np.array(
            [[region.start, region.stop] for name, region, _ in net.parameter_slices()
             if name.endswith(".weight") and isinstance(net.layers[int(name.split(".")[0])],
                                                         Dense)], dtype=np.int64)
        stages = plan_stages(net)
        compiled = (sample_weight is None and stages is not None and self.kind in PLAN_LOSSES
                    and (self.kind == "softmax_cross_entropy" or net.out_features == 1))
        self._plan = (_core.TrainingPlan(net.params, net.grads, net.buffers, stages[0],
                                         PLAN_LOSSES[self.kind]) if compiled else None)
        self._batches = _Batches(X, target, sample_weight)
        self._dout = Workspace()

    def batch(self, order: np.ndarray, start: int, stop: int) -> float | None:
        """The objective of rows order[start:stop] (int64 indices), and its gradient; None
        (and no gradient) when their weights sum to 0."""
        if self._plan is not None:
            return self._penalized(self._compiled(self._plan.train_gathered, self.X,
                                                  self.target, order, start, stop, None),
                                   stop - start)
        Xb, tb, wb = self._batches.take(order[start:stop])
        weight_sum = weight_sum_of(Xb, wb)
        return self._layer_by_layer(Xb, tb, wb, weight_sum) if weight_sum > 0 else None

    def whole(self) -> float:
        """The objective of all rows, and its gradient (L-BFGS-B's function)."""
        if self._plan is not None:
            return self._penalized(self._compiled(self._plan.train_step, self.X, self.target,
                                                  None), self.X.shape[0])
        return self._layer_by_layer(self.X, self.target, self.sample_weight,
                                    weight_sum_of(self.X, self.sample_weight))

    @staticmethod
    def _compiled(run, *args) -> float:
        try:
            return run(*args)
        except FloatingPointError as error:   # the step's non-finite loss, for the caller
            return error.loss

    def _layer_by_layer(self, X: np.ndarray, target: np.ndarray,
                        sample_weight: np.ndarray | None, weight_sum: float) -> float:
        out = self.net.run_forward(X, True)
        dout = self._dout.get(out.shape[0], out.shape[1], out.dtype)
        value = _core.weighted_loss(self.kind, out, target, sample_weight, weight_sum, dout)
        if self.kind == "half_squared_error":
            value /= out.shape[1]
        self.net.run_backward(dout, False, False)
        return self._penalized(value, weight_sum)

    def _penalized(self, value: float, weight_sum: float) -> float:
        """value + the L2 term, whose gradient is added to the weights' gradients."""
        if self.alpha:
            squares = _core.add_l2_gradient(self.net.params, self.net.grads,
                                            self.alpha / weight_sum, self.coef_ranges)
            value += 0.5 * self.alpha * squares / weight_sum
        return value

    def evaluate(self, X: np.ndarray, target: np.ndarray,
                 sample_weight: np.ndarray | None) -> float:
        """The objective's value on other rows (a validation split), in evaluation mode."""
        out = self.net.run_forward(X, False)
        weight_sum = weight_sum_of(X, sample_weight)
        value = _core.weighted_loss(self.kind, out, target, sample_weight, weight_sum,
                                    np.empty_like(out))
        if self.kind == "half_squared_error":
            value /= out.shape[1]
        if self.alpha:
            squares = sum(float(np.dot(p, p)) for p in
                          (self.net.params[start:stop] for start, stop in self.coef_ranges))
            value += 0.5 * self.alpha * squares / weight_sum
        return value


def weight_sum_of(X: np.ndarray, sample_weight: np.ndarray | None) -> float:
    return float(X.shape[0]) if sample_weight is None else float(sample_weight.sum())


class _Batches:
    """Rows of the training data by batch, gathered (C kernels) into reused buffers."""

    def __init__(self, X: np.ndarray, target: np.ndarray, sample_weight) -> None:
        self.X, self.target, self.sample_weight = X, target, sample_weight
        self._X = Workspace()
        self._target = np.empty_like(target)
        self._weights = None if sample_weight is None else np.empty_like(sample_weight)

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        n = rows.shape[0]
        Xb = self._X.get(n, self.X.shape[1], self.X.dtype)
        _core.gather_rows(self.X, rows, Xb)
        tb = self._target[:n]
        if self.target.ndim == 1:
            _core.gather_labels(self.target, rows, tb)
        else:
            _core.gather_rows(self.target, rows, tb)
        wb = None
        if self.sample_weight is not None:
            wb = np.take(self.sample_weight, rows, out=self._weights[:n])
        return Xb, tb, wb
