"""Shared set-up of the benchmarks: the named workloads and synthetic data from a fixed seed.

fastbp is imported only by `make_net`, so that compare.py's processes for the other libraries
can use the workloads without loading it.
"""
import numpy as np

# name: (layer widths, activation, batch size, loss)
WORKLOADS = {
    "tiny": ([2, 8, 1], "sigmoid", 4, "mse"),
    "small": ([64, 128, 128, 10], "relu", 64, "cross_entropy"),
    "mnist": ([784, 256, 128, 10], "relu", 128, "cross_entropy"),
    "wide": ([1024, 4096, 4096, 1024], "relu", 256, "cross_entropy"),
}


def make_data(sizes, loss, n, dtype, seed=0):
    """Random inputs and targets for a network of `sizes` trained with `loss`."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], n)
    else:
        y = rng.standard_normal((n, sizes[-1])).astype(dtype)
    return X, y


def make_net(workload, dtype, threads):
    """Network, loss name and one batch of the workload, with `threads` threads."""
    import fastbp as fb
    sizes, activation, batch, loss = WORKLOADS[workload]
    fb.set_num_threads(threads)
    net = fb.mlp(sizes, activation=activation, dtype=dtype, seed=0)
    X, y = make_data(sizes, loss, batch, dtype)
    return net, loss, X, y
