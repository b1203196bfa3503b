"""Time one training epoch of the shipped digits data with 1 and 2 threads.

    python benchmarks/epoch_time.py [--epochs 30]

Trains fb.mlp([64, 128, 10], relu) with Adam, batch 64, on the 80% training split and prints the
median epoch time (fit's own per-epoch timing, validation included) per thread count.
"""
import argparse

import numpy as np

import fastbp as fb
from fastbp.datasets import load_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    X, y = load_digits()
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1437], order[1437:]
    for threads in (1, 2):
        fb.set_num_threads(threads)
        net = fb.mlp([64, 128, 10], activation="relu", seed=0)
        hist = net.fit(X[train], y[train], epochs=args.epochs, batch_size=64, lr=1e-3,
                       validation_data=(X[test], y[test]), verbose=0)
        print(f"{threads} thread(s): median epoch {np.median(hist['time']) * 1e3:.2f} ms, "
              f"test accuracy {hist['val_accuracy'][-1]:.4f}")


if __name__ == "__main__":
    main()
