"""Initial values of Dense weights and biases, chosen by name.

The schemes are those of torch.nn.init, with gain 1 for xavier and sqrt(2) for he, computed from
fan_in = in_features and fan_out = out_features of a weight of shape (out_features, in_features).
"""
from __future__ import annotations

import math

import numpy as np

from fastbp._validation import choose

WEIGHT_INITS = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal",
                "zeros")
WEIGHT_INIT_ALIASES = {
    "xavier": "xavier_uniform", "glorot": "xavier_uniform", "glorot_uniform": "xavier_uniform",
    "glorot_normal": "xavier_normal", "he": "he_normal", "kaiming": "he_normal",
    "kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform", "lecun": "lecun_normal",
}
BIAS_INITS = ("zeros", "uniform")


def weight_init_scheme(name: str) -> str:
    """The scheme in WEIGHT_INITS that `name` (a scheme or an alias) stands for."""
    choose(name, "init", (*WEIGHT_INITS, *WEIGHT_INIT_ALIASES))
    return WEIGHT_INIT_ALIASES.get(name, name)


def bias_init_scheme(name: str) -> str:
    """`name` if it is one of BIAS_INITS."""
    return choose(name, "bias_init", BIAS_INITS)


def initial_weight(name: str, out_features: int, in_features: int,
                   rng: np.random.Generator) -> np.ndarray:
    """A float64 weight of shape (out_features, in_features) drawn by the scheme `name`.

    xavier_uniform U(-a, a), a = sqrt(6 / (fan_in + fan_out));  xavier_normal N(0, 2 / (fan_in +
    fan_out));  he_uniform U(-a, a), a = sqrt(6 / fan_in);  he_normal N(0, 2 / fan_in);
    lecun_normal N(0, 1 / fan_in);  zeros.  N(0, s^2) has standard deviation s.
    """
    scheme = weight_init_scheme(name)
    fan_in, fan_out = in_features, out_features
    shape = (out_features, in_features)
    if scheme == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape)
    if scheme == "xavier_normal":
        return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape)
    if scheme == "he_uniform":
        bound = math.sqrt(6.0 / fan_in)
        return rng.uniform(-bound, bound, shape)
    if scheme == "he_normal":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    if scheme == "lecun_normal":
        return rng.normal(0.0, math.sqrt(1.0 / fan_in), shape)
    return np.zeros(shape)


def initial_bias(name: str, out_features: int, in_features: int,
                 rng: np.random.Generator) -> np.ndarray:
    """A float64 bias of shape (out_features,): zeros, or uniform U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) (torch.nn.Linear's default bias)."""
    if bias_init_scheme(name) == "uniform":
        bound = 1.0 / math.sqrt(in_features)
        return rng.uniform(-bound, bound, out_features)
    return np.zeros(out_features)
