"""Shared parts of the distributed tests: data, networks, and one process's fit beside the
data-parallel one."""
import numpy as np

import fastbp as fb

TOLERANCE = {"float64": 1e-12, "float32": 1e-6}


def data(rows=103, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    return X, rng.integers(0, classes, rows)


def dense(dtype="float64", seed=1):
    return fb.mlp([5, 16, 12, 3], dtype=dtype, seed=seed)


def batchnorm(dtype="float64", seed=1):
    """Dense layers before BatchNorm without bias: its gradient is 0 in exact arithmetic, so
    what is computed is rounding noise, which Adam scales up to steps of lr (the same in one
    process; such biases only agree to about 1e-10)."""
    return fb.Sequential(fb.Dense(5, 16, bias=False), fb.BatchNorm(16), fb.ReLU(),
                         fb.Dense(16, 12, bias=False), fb.BatchNorm(12), fb.Tanh(),
                         fb.Dense(12, 3), dtype=dtype, seed=seed)


def dropout(dtype="float64", seed=1):
    return fb.Sequential(fb.Dense(5, 16), fb.ReLU(), fb.Dropout(0.3), fb.Dense(16, 7),
                         fb.Dropout(0.5), fb.Dense(7, 3), dtype=dtype, seed=seed)


def residual(dtype="float64", seed=1):
    return fb.Sequential(fb.Dense(5, 16), fb.ReLU(),
                         fb.Residual(fb.Dense(16, 16, bias=False), fb.BatchNorm(16), fb.ReLU(),
                                     fb.Dropout(0.2), fb.Dense(16, 16)),
                         fb.Dense(16, 3), dtype=dtype, seed=seed)


NETWORKS = {"dense": dense, "batchnorm": batchnorm, "dropout": dropout, "residual": residual}


def relative(a, b):
    """Largest difference of a and b relative to the largest magnitude of a."""
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))) /
                 max(np.max(np.abs(np.asarray(a, float))), 1e-300))


def own_rows(rows, comm, weights=None):
    """Unequal shards: the ranks' rows of range(rows), in rank order (rank r's share grows
    with r unless `weights` says otherwise)."""
    size = comm.Get_size()
    weights = np.arange(1, size + 1) if weights is None else np.asarray(weights)
    bounds = np.concatenate([[0], np.cumsum(weights)]) * rows // weights.sum()
    return slice(int(bounds[comm.Get_rank()]), int(bounds[comm.Get_rank() + 1]))


def same_on_every_rank(comm, array) -> bool:
    """Whether `array` holds the same bits on every rank."""
    mine = np.ascontiguousarray(array).tobytes()
    return all(other == mine for other in comm.allgather(mine))
