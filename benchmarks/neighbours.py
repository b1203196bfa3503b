"""Does importing fastbp next to PyTorch or scikit-learn change anyone's speed?

    python benchmarks/neighbours.py [--threads 2] [--rounds 3] [--cases ...] [--json out.json]

Each case runs in a fresh interpreter that imports the libraries in the case's order and runs a
few steps of the first before the second is imported (so the first library's OpenMP threads
exist), then times one library's training step, on the same thread count for both:
PyTorch's 64-128-128-10 step (batch 64, fused Adam) alone and with fastbp imported and run
first; fastbp's 784-256-128-10 step (batch 128, Adam) alone and with PyTorch or scikit-learn
imported and run first. The cases take turns over several rounds; each case's figure is the
median over rounds of the median step time, and a neighbour case is given as its ratio to the
library alone. A case whose neighbour is not installed is skipped with a note.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from itertools import pairwise

# case: (library imported and run first, or None; library timed)
CASES = {
    "torch alone": (None, "torch"),
    "torch after fastbp": ("fastbp", "torch"),
    "fastbp alone": (None, "fastbp"),
    "fastbp after torch": ("torch", "fastbp"),
    "fastbp after sklearn": ("sklearn", "fastbp"),
}
# library: (layer widths, batch size) of its timed step
STEPS = {"torch": ([64, 128, 128, 10], 64), "fastbp": ([784, 256, 128, 10], 128),
         "sklearn": ([64, 32, 10], 64)}


def data(sizes: list[int], batch: int, batches: int = 8):
    """`batches` float32 batches with class labels, from a fixed seed."""
    import numpy as np
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((batch, sizes[0])).astype(np.float32),
             rng.integers(0, sizes[-1], batch)) for _ in range(batches)]


def step_of(library: str, threads: int):
    """One training step of `library`'s network as a function of no arguments; the library is
    imported here, and its thread count set."""
    sizes, batch = STEPS[library]
    batches = data(sizes, batch)
    turn = iter(range(1 << 62))
    if library == "fastbp":
        import fastbp
        fastbp.set_num_threads(threads)
        net = fastbp.mlp(sizes, seed=0)
        opt = fastbp.Adam(net, lr=1e-3)
        return lambda: net.train_step(*batches[next(turn) % len(batches)], "cross_entropy", opt)
    if library == "torch":
        import torch
        torch.set_num_threads(threads)
        layers = []
        for n_in, n_out in pairwise(sizes):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        loss = torch.nn.CrossEntropyLoss()
        tensors = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches]

        def torch_step():
            X, y = tensors[next(turn) % len(tensors)]
            opt.zero_grad(set_to_none=True)
            loss(model(X), y).backward()
            opt.step()
        return torch_step
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    warnings.simplefilter("ignore", ConvergenceWarning)
    model = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), batch_size=batch, max_iter=1)
    return lambda: model.partial_fit(*batches[0], classes=list(range(sizes[-1])))


def median_step_seconds(step, seconds: float = 1.0, rounds: int = 9) -> float:
    """Median over `rounds` rounds (of about seconds/rounds each) of the seconds per step."""
    for _ in range(20):
        step()
    start = time.perf_counter()
    for _ in range(20):
        step()
    number = max(1, int(seconds / rounds / ((time.perf_counter() - start) / 20)))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            step()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def run_case(name: str, threads: int, seconds: float) -> None:
    """In this interpreter: the case's first library, a few of its steps, then the timing."""
    first, timed = CASES[name]
    if first is not None:
        warm = step_of(first, threads)
        for _ in range(20):
            warm()
    print(json.dumps(median_step_seconds(step_of(timed, threads), seconds)))


def installed(library: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {library}"],
                          capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time spent timing each case in each round")
    parser.add_argument("--json", default=None, help="where to write the results")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        run_case(args.case, args.threads, args.seconds)
        return {}
    missing = [lib for lib in ("torch", "sklearn") if not installed(lib)]
    cases = [c for c in args.cases if not set(CASES[c]) & set(missing)]
    for lib in missing:
        print(f"note: {lib} is not installed; its cases are skipped")
    times: dict[str, list[float]] = {c: [] for c in cases}
    for _ in range(args.rounds):
        for case in cases:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", case,
                                  "--threads", str(args.threads), "--seconds", str(args.seconds)],
                                 capture_output=True, text=True, check=True)
            times[case].append(json.loads(out.stdout.splitlines()[-1]))
    medians = {c: statistics.median(t) for c, t in times.items()}
    print(f"{'case':<24}{'us/step':>10}{'vs alone':>10}   ({args.threads} threads, "
          f"median of {args.rounds} fresh processes)")
    result = {"threads": args.threads, "rounds": args.rounds, "cases": {}}
    for case, seconds in medians.items():
        alone = medians.get(f"{CASES[case][1]} alone")
        ratio = seconds / alone if CASES[case][0] and alone else None
        shown = f"{ratio:10.2f}" if ratio else f"{'':>10}"
        print(f"{case:<24}{seconds * 1e6:10.1f}{shown}")
        result["cases"][case] = {"us_per_step": seconds * 1e6, "per_round_us":
                                 [t * 1e6 for t in times[case]], "ratio_to_alone": ratio}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
