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


class Objective:
    """scikit-learn's MLP loss over batches of a network (see the module's docstring): calling
    it runs forward, the weighted loss and backward, and leaves the gradient in `net.grads`."""

    def __init__(self, net: Sequential, out_activation: str, alpha: float) -> None:
        self.net, self.alpha = net, float(alpha)
        self.kind = OUTPUT_LOSSES[out_activation]
        self.coefs = [(layer.params["weight"].reshape(-1), layer.grads["weight"].reshape(-1))
                      for layer in dense_layers(net)]
        self._dout = Workspace()

    def __call__(self, X: np.ndarray, target: np.ndarray, sample_weight: np.ndarray | None,
                 weight_sum: float) -> float:
        """The loss of rows X (their targets: int64 labels for softmax outputs, else floats of
        the output's shape) with their weights and weight sum, and its gradient."""
        net = self.net
        out = net.run_forward(X, True)
        dout = self._dout.get(out.shape[0], out.shape[1], out.dtype)
        value = _core.weighted_loss(self.kind, out, target, sample_weight, weight_sum, dout)
        if self.kind == "half_squared_error":
            value /= out.shape[1]
        net.run_backward(dout, False, False)
        if self.alpha:
            squares = sum(_core.add_l2_gradient(w, g, self.alpha / weight_sum)
                          for w, g in self.coefs)
            value += 0.5 * self.alpha * squares / weight_sum
        return value

    def data_loss(self, X: np.ndarray, target: np.ndarray, sample_weight: np.ndarray | None,
                  weight_sum: float) -> float:
        """The objective's value on rows X in evaluation mode (no gradient kept)."""
        out = self.net.run_forward(X, False)
        dout = np.empty_like(out)
        value = _core.weighted_loss(self.kind, out, target, sample_weight, weight_sum, dout)
        if self.kind == "half_squared_error":
            value /= out.shape[1]
        if self.alpha:
            value += 0.5 * self.alpha * sum(float(np.dot(w, w)) for w, _ in self.coefs) \
                / weight_sum
        return value
