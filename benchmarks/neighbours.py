"""Does importing fastbp next to PyTorch or scikit-learn change anyone's speed?

    python benchmarks/neighbours.py [--threads 2] [--rounds 3] [--cases ...] [--json out.json]

Each case runs in a fresh interpreter that imports the libraries in the case's order and runs a
few steps of the first before the second is imported (so the first library's OpenMP threads
exist), then times one library's training step, on the same thread count for both:
PyTorch's 64-128-128-10 step (batch 64, fused Adam) alone and with fastbp imported and run
first; fastbp's 784-256-128-10 step (batch 128, Adam) alone and with PyTorch or scikit-learn
imported and run first (the steps and timing of compare.py, benchmarks/peers.py). The cases
take turns over several rounds; each case's figure is the median over rounds of the median
step time, and a neighbour case is given as its ratio to the
library alone. A case whose neighbour is not installed is skipped with a note.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from functools import partial

import peers  # the steps and timing of compare.py (benchmarks/peers.py)
from benchmarks.common import WORKLOADS, make_data  # (benchmarks/benchmarks/)

# case: (library imported and run first, or None; library timed)
CASES = {
    "torch alone": (None, "torch"),
    "torch after fastbp": ("fastbp", "torch"),
    "fastbp alone": (None, "fastbp"),
    "fastbp after torch": ("torch", "fastbp"),
    "fastbp after sklearn": ("sklearn", "fastbp"),
}
# library: the workload of its step (benchmarks/common.py), and the step
STEPS = {"torch": ("small", partial(peers.torch_step, fused=True)),
         "fastbp": ("mnist", peers.fastbp_step), "sklearn": ("small", peers.sklearn_step)}


def step_of(library: str, threads: int):
    """One training step of `library` (scikit-learn: one epoch) as a function of no
    arguments; the library is imported here, and its thread count set."""
    peers.set_threads(library, threads)
    workload, make_step = STEPS[library]
    sizes, activation, batch, loss = WORKLOADS[workload]
    data = make_data(sizes, loss, peers.BATCHES * batch, "float32")
    return make_step(sizes, activation, loss, peers.batches_of(*data, batch))


def run_case(name: str, threads: int, seconds: float) -> None:
    """In this interpreter: the case's first library, a few of its steps, then the timing."""
    first, timed = CASES[name]
    if first is not None:
        warm = step_of(first, threads)
        for _ in range(20):
            warm()
    rounds = 9
    print(json.dumps(peers.median_time(step_of(timed, threads), min_repeat_s=seconds / rounds,
                                       repeats=rounds, warmup=20)))


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
