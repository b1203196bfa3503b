"""How far float rounding can move a result: tolerances that follow from the magnitudes and the
reduction lengths of a computation, not from the machine a test was written on.

A sum of k products computed in any order, with or without fused multiply-adds, is within
k u sum |a_i b_i| of the exact value (u = eps / 2, Higham, Accuracy and Stability of Numerical
Algorithms, 3.1); storing it adds u |result|. The bounds below take 2 eps per term, so any
BLAS kernel on any machine stays inside them.
"""
import numpy as np


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def sum_bound(dtype, terms: int, magnitude):
    """Bound on the rounding of sums of `terms` terms whose absolute values add up to
    `magnitude` (an array of the result's shape, or a scalar)."""
    return 2 * (terms + 2) * eps(dtype) * np.asarray(magnitude, dtype=np.float64)


def dense_bound(dtype, X, W, b=None):
    """Bound on the rounding of X W^T + b: |X| |W|^T + |b| is the magnitude of each sum."""
    magnitude = np.abs(np.asarray(X, np.float64)) @ np.abs(np.asarray(W, np.float64)).T
    if b is not None:
        magnitude = magnitude + np.abs(np.asarray(b, np.float64))
    return sum_bound(dtype, np.shape(W)[1] + (b is not None), magnitude)


def assert_within(got, expected, bound, what: str = "result") -> None:
    """|got - expected| <= bound elementwise (bound broadcast to the result's shape)."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    error = np.abs(got - expected)
    excess = error - np.broadcast_to(bound, error.shape)
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    assert excess.size == 0 or excess[worst] <= 1e-300, (
        f"{what}: error {error[worst]:.3g} at {worst} above the rounding bound "
        f"{np.broadcast_to(bound, error.shape)[worst]:.3g}")
