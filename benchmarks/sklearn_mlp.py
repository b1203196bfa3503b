"""fastbp.sklearn against scikit-learn's own MLP: the same fit, timed, each in a fresh process.

    python benchmarks/sklearn_mlp.py [--threads 2] [--cases ...] [--repeats 3] [--json out.json]

Each (library, case) runs in an interpreter of its own, its threads set in the environment
before import (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS) and, for fastbp, by
`n_threads`; it fits the case's estimator `repeats` times from the same random_state and
prints the median wall time of a fit, the final loss_ and the BLAS kernel it ran on
(threadpoolctl). The table gives scikit-learn's time / fastbp's, and how far apart the two
final losses are (the two compute the same fit: equal to rounding in float64).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# case: (estimator, its parameters, data, dtype); every case runs all its epochs
CASES = {
    "digits-adam": ("MLPClassifier", {"hidden_layer_sizes": (100,), "max_iter": 50},
                    "digits", "float64"),
    "digits-sgd": ("MLPClassifier", {"hidden_layer_sizes": (100,), "solver": "sgd",
                                     "learning_rate_init": 0.01, "max_iter": 50},
                   "digits", "float64"),
    "digits-lbfgs": ("MLPClassifier", {"hidden_layer_sizes": (100,), "solver": "lbfgs",
                                       "max_iter": 100}, "digits", "float64"),
    "mnist-adam-f32": ("MLPClassifier", {"hidden_layer_sizes": (256, 128), "max_iter": 3},
                       "mnist-like", "float32"),
    "regression-adam": ("MLPRegressor", {"hidden_layer_sizes": (128, 64), "max_iter": 10},
                        "regression", "float64"),
}


def make_data(name: str, dtype: str):
    import numpy as np
    from sklearn.datasets import load_digits, make_classification, make_regression
    from sklearn.preprocessing import StandardScaler
    if name == "digits":
        X, y = load_digits(return_X_y=True)
    elif name == "mnist-like":
        X, y = make_classification(20000, 784, n_informative=60, n_classes=10,
                                   random_state=0)
    else:
        X, y = make_regression(20000, 100, n_informative=30, noise=5.0, random_state=0)
        y = (y - y.mean()) / y.std()
    return StandardScaler().fit_transform(X).astype(dtype), y.astype(np.float64
                                                                      if name == "regression"
                                                                      else np.int64)


def blas_kernel() -> str:
    from threadpoolctl import threadpool_info
    return ", ".join(f"{pool['internal_api']} {pool.get('architecture')}"
                     f" ({pool['num_threads']} threads)"
                     for pool in threadpool_info() if pool["user_api"] == "blas")


def work(library: str, case: str, threads: int, repeats: int) -> dict:
    """In this interpreter: `repeats` fits of the case with one library."""
    import warnings

    import sklearn.neural_network as reference
    from sklearn.exceptions import ConvergenceWarning
    estimator, params, data, dtype = CASES[case]
    X, y = make_data(data, dtype)
    params = {**params, "random_state": 0, "n_iter_no_change": params["max_iter"] + 1}
    if library == "fastbp":
        import fastbp.sklearn as ours
        cls, params = getattr(ours, estimator), {**params, "n_threads": threads}
    else:
        cls = getattr(reference, estimator)
    seconds, model = [], None
    for _ in range(repeats):
        model = cls(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(X, y)
            seconds.append(time.perf_counter() - start)
    return {"seconds": statistics.median(seconds), "loss": float(model.loss_),
            "n_iter": int(model.n_iter_), "blas": blas_kernel()}


def run_worker(library: str, case: str, threads: int, repeats: int) -> dict:
    n = str(threads)
    env = {**os.environ, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
           "MKL_NUM_THREADS": n}
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", library,
                           "--cases", case, "--threads", n, "--repeats", str(repeats)],
                          env=env, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        errors = done.stderr.strip().splitlines()
        return {"failed": errors[-1] if errors else f"exit status {done.returncode}"}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", choices=["fastbp", "sklearn"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(work(args.worker, args.cases[0], args.threads, args.repeats)))
        return
    results = {case: {library: run_worker(library, case, args.threads, args.repeats)
                      for library in ("sklearn", "fastbp")} for case in args.cases}
    print(f"{args.threads} threads, median of {args.repeats} fits, each library in its own "
          f"process")
    print(f"{'case':<18} {'scikit-learn s':>14} {'fastbp s':>9} {'ratio':>6} "
          f"{'epochs':>6} {'loss rel. diff':>14}")
    for case, result in results.items():
        ref, ours = result["sklearn"], result["fastbp"]
        if "failed" in ref or "failed" in ours:
            print(f"{case:<18} failed: {ref.get('failed') or ours.get('failed')}")
            continue
        diff = abs(ours["loss"] - ref["loss"]) / abs(ref["loss"])
        print(f"{case:<18} {ref['seconds']:>14.3f} {ours['seconds']:>9.3f} "
              f"{ref['seconds'] / ours['seconds']:>5.1f}x {ours['n_iter']:>6} {diff:>14.1e}")
    kernels = {result[lib]["blas"] for result in results.values() for lib in result
               if "blas" in result[lib]}
    print("BLAS:", "; ".join(sorted(kernels)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "repeats": args.repeats, "results": results},
                      f, indent=1)


if __name__ == "__main__":
    main()
