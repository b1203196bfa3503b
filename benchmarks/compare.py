"""Side-by-side speed of one training step: fastbp, PyTorch eager, scikit-learn, textbook NumPy.

    python benchmarks/compare.py --threads 2 [--workloads tiny small mnist wide] [--json out.json]

Each workload (benchmarks/benchmarks/common.py: float32, Adam lr 1e-3, synthetic data from a
fixed seed) runs the same step (forward, loss, backward, Adam update) in every library with the
same thread count: warm-up first, then the median of several timed repeats. Peers that are not
installed are skipped with a note. It prints µs/step, samples/s, GFLOP/s (exact GEMM flops of the
step) and each peer's time divided by fastbp's, how much of fastbp's step its matrix products
take when timed alone, then the Adam update alone on flat float32 arrays against PyTorch, the
sgemm 2048x2048 rate of this run, and the targets; the same goes to JSON.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import platform
import statistics
import time
import warnings
from functools import partial
from itertools import pairwise

import numpy as np
from benchmarks.common import WORKLOADS, make_data  # (benchmarks/benchmarks/)

import fastbp as fb
from fastbp import _core

PEERS = ["torch_default", "torch_fused", "sklearn", "numpy"]
SETTLE_S = 0.2  # longer than OpenBLAS's default spin-wait (2^28 cycles) after a call
ADAM_SIZES = [10**5, 10**6, 10**7]
torch = sklearn = None


def import_peers(peers: list[str]) -> list[str]:
    """Import the peer libraries asked for; returns the peers that are installed."""
    global torch, sklearn, MLPClassifier, MLPRegressor, ConvergenceWarning
    if any(p.startswith("torch") for p in peers):
        try:
            torch = importlib.import_module("torch")
        except ImportError:
            pass
    if "sklearn" in peers:
        try:
            sklearn = importlib.import_module("sklearn")
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.neural_network import MLPClassifier, MLPRegressor
        except ImportError:
            sklearn = None
    return [p for p in peers
            if not ((p.startswith("torch") and torch is None) or (p == "sklearn" and not sklearn))]


# ------------------------------------------------------------------------------------ timing
def median_time(fn, min_repeat_s: float = 0.05, repeats: int = 7, warmup: int = 3) -> float:
    """Median seconds per call of fn(): warm-up calls, then `repeats` timed rounds of enough
    calls to last about `min_repeat_s` each. It first waits SETTLE_S, so that threads the
    previous measurement left spin-waiting (OpenMP, OpenBLAS) have gone to sleep; it waits
    busily, as sleeping would let the core slow down before the measurement."""
    start = time.perf_counter()
    while time.perf_counter() - start < SETTLE_S:
        pass
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
    per_call = (time.perf_counter() - start) / warmup
    number = max(1, int(min_repeat_s / max(per_call, 1e-9)))
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


def step_flops(sizes: list[int], batch: int) -> int:
    """Exact GEMM flops of one step: forward X W^T and backward dW = dZ^T X per layer, and
    dX = dZ W for every layer but the first."""
    layers = list(pairwise(sizes))
    per_product = [2 * batch * n_in * n_out for n_in, n_out in layers]
    return 2 * sum(per_product) + sum(per_product[1:])


# ------------------------------------------------------------------------------ the steps
# Every library steps through the same BATCHES batches in turn: one batch over and over is
# memorised within a few steps, after which gradients underflow to subnormal floats, whose
# arithmetic is many times slower on x86 CPUs and would be timed instead of the step.
BATCHES = 8


def batches_of(X: np.ndarray, y: np.ndarray, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(X[i:i + batch], y[i:i + batch]) for i in range(0, X.shape[0], batch)]


def cycling(items: list):
    """A function returning the items in turn, forever."""
    state = {"next": 0}

    def take():
        item = items[state["next"] % len(items)]
        state["next"] += 1
        return item
    return take


def fastbp_step(sizes, activation, loss, batches):
    net = fb.mlp(sizes, activation=activation, seed=0)
    opt = fb.Adam(net, lr=1e-3)
    take = cycling(batches)

    def step():
        X, y = take()
        net.train_step(X, y, loss, opt)
    return step


def torch_step(sizes, activation, loss, batches, fused: bool):
    layers = []
    acts = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(acts[activation]())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True if fused else None)
    loss_fn = torch.nn.CrossEntropyLoss() if loss == "cross_entropy" else torch.nn.MSELoss()
    take = cycling([(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches])

    def step():
        Xt, yt = take()
        opt.zero_grad(set_to_none=True)
        value = loss_fn(model(Xt), yt)
        value.backward()
        opt.step()
    return step


def sklearn_step(sizes, activation, loss, batches):
    """Per-step time of scikit-learn: one warm-started epoch over the batches, divided."""
    steps, batch = len(batches), batches[0][0].shape[0]
    Xs = np.concatenate([X for X, _ in batches])
    ys = np.concatenate([y for _, y in batches])
    if ys.ndim == 2 and ys.shape[1] == 1:
        ys = ys.ravel()  # scikit-learn wants one regression target as a 1-D array
    cls = MLPClassifier if loss == "cross_entropy" else MLPRegressor
    model = cls(hidden_layer_sizes=tuple(sizes[1:-1]),
                activation="logistic" if activation == "sigmoid" else activation,
                solver="adam", alpha=0.0, batch_size=batch, learning_rate_init=1e-3,
                max_iter=1, shuffle=False, tol=0.0, warm_start=True, random_state=0)

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xs, ys)
    return epoch, steps


def numpy_step(sizes, activation, loss, batches, with_loss: bool = False):
    """The textbook step in NumPy: explicit forward, backward and Adam per parameter array.
    With `with_loss`, also returns a function giving the current loss on the first batch."""
    rng = np.random.default_rng(0)
    Ws = [(rng.standard_normal((o, i)) * np.sqrt(2 / i)).astype(np.float32)
          for i, o in pairwise(sizes)]
    bs = [np.zeros(o, np.float32) for o in sizes[1:]]
    params = Ws + bs
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]
    if loss == "cross_entropy":  # the targets as one-hot rows
        batches = [(X, np.eye(sizes[-1], dtype=np.float32)[y]) for X, y in batches]
    take = cycling(batches)

    def f(z):
        return np.maximum(z, 0) if activation == "relu" else 1 / (1 + np.exp(-z))

    def df(a):
        return (a > 0).astype(a.dtype) if activation == "relu" else a * (1 - a)

    def forward(X, y):
        acts = [X]
        for k, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = acts[-1] @ W.T + b
            acts.append(z if k == len(Ws) - 1 else f(z))
        out = acts[-1]
        if loss != "cross_entropy":
            return acts, float(np.mean((out - y) ** 2)), 2 * (out - y) / out.size
        e = np.exp(out - out.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        return acts, float(-np.mean(np.log(p[y > 0]))), (p - y) / X.shape[0]

    def step():
        acts, _, delta = forward(*take())
        grads_W, grads_b = [None] * len(Ws), [None] * len(Ws)
        for k in range(len(Ws) - 1, -1, -1):
            grads_W[k] = delta.T @ acts[k]
            grads_b[k] = delta.sum(axis=0)
            if k > 0:
                delta = (delta @ Ws[k]) * df(acts[k])
        t[0] += 1
        for p, g, mi, vi in zip(params, grads_W + grads_b, m, v, strict=True):
            mi *= 0.9
            mi += 0.1 * g
            vi *= 0.999
            vi += 0.001 * g * g
            p -= (1e-3 / (1 - 0.9 ** t[0])) * mi / (np.sqrt(vi / (1 - 0.999 ** t[0])) + 1e-8)
    if with_loss:
        return step, lambda: forward(*batches[0])[1]
    return step


def gemm_seconds(sizes: list[int], batch: int) -> float:
    """Seconds the step's products alone take (each timed on its own, through fastbp's gemm
    binding with the same shapes and transposes): about the floor of a step that does nothing
    else, plus about 1 µs of Python call per product (which dominates for `tiny`)."""
    rng = np.random.default_rng(0)
    total = 0.0
    for layer, (n_in, n_out) in enumerate(pairwise(sizes)):
        X = rng.standard_normal((batch, n_in)).astype(np.float32)
        W = rng.standard_normal((n_out, n_in)).astype(np.float32)
        dZ = rng.standard_normal((batch, n_out)).astype(np.float32)
        Z, dW, dX = np.empty_like(dZ), np.empty_like(W), np.empty_like(X)
        products = [partial(_core.gemm, X, W, Z, trans_b=True),
                    partial(_core.gemm, dZ, X, dW, trans_a=True)]
        if layer > 0:
            products.append(partial(_core.gemm, dZ, W, dX))
        total += sum(median_time(p, min_repeat_s=0.02, repeats=5) for p in products)
    return total


# ------------------------------------------------------------------------------- the runs
def run_workload(name: str, peers: list[str], repeats: int) -> dict:
    sizes, activation, batch, loss = WORKLOADS[name]
    batches = batches_of(*make_data(sizes, loss, BATCHES * batch, "float32"), batch)
    flops = step_flops(sizes, batch)
    heavy = flops > 10**9
    timing = dict(repeats=3 if heavy else repeats, warmup=1 if heavy else 3,
                  min_repeat_s=0.0 if heavy else 0.05)
    seconds = {"fastbp": median_time(fastbp_step(sizes, activation, loss, batches), **timing)}
    for peer in peers:
        if peer.startswith("torch"):
            seconds[peer] = median_time(
                torch_step(sizes, activation, loss, batches, peer == "torch_fused"), **timing)
        elif peer == "sklearn":
            epoch, steps = sklearn_step(sizes, activation, loss, batches)
            seconds[peer] = median_time(epoch, repeats=3, warmup=1, min_repeat_s=0.0) / steps
        elif peer == "numpy":
            seconds[peer] = median_time(numpy_step(sizes, activation, loss, batches), **timing)
    rows = {}
    for lib, s in seconds.items():
        rows[lib] = {"us_per_step": s * 1e6, "samples_per_s": batch / s,
                     "gflops": flops / s / 1e9, "ratio_to_fastbp": s / seconds["fastbp"]}
    return {"sizes": sizes, "activation": activation, "batch": batch, "loss": loss,
            "flops_per_step": flops, "gemm_only_us": gemm_seconds(sizes, batch) * 1e6,
            "results": rows}


def fastbp_adam(p, g, m, v):
    """fastbp's fused Adam update of the flat arrays p (with gradient g, moments m, v)."""
    state = {"t": 0}

    def update():
        state["t"] += 1
        _core.adam_step(p, g, m, v, state["t"], 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    return update


def run_adam(sizes: list[int], peers: list[str]) -> dict:
    """The Adam update alone on flat float32 arrays: fastbp's kernel vs torch.optim.Adam."""
    out = {}
    for n in sizes:
        rng = np.random.default_rng(0)
        p = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        update = fastbp_adam(p, g, np.zeros_like(p), np.zeros_like(p))
        seconds = {"fastbp": median_time(update, min_repeat_s=0.05)}
        for label, fused in (("torch_default", None), ("torch_fused", True)):
            if label in peers:
                param = torch.nn.Parameter(torch.from_numpy(p.copy()))
                param.grad = torch.from_numpy(g.copy())
                opt = torch.optim.Adam([param], lr=1e-3, fused=fused)
                seconds[label] = median_time(opt.step, min_repeat_s=0.05)
        out[str(n)] = {lib: {"ms": s * 1e3, "gb_per_s": 28 * n / s / 1e9,
                             "ratio_to_fastbp": s / seconds["fastbp"]}
                       for lib, s in seconds.items()}
    return out


def sgemm_gflops(n: int) -> float:
    """GFLOP/s of SciPy's sgemm on n x n float32 matrices (the ceiling the targets refer to)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(np.float32)
    B = rng.standard_normal((n, n)).astype(np.float32)
    C = np.empty((n, n), np.float32)
    return 2 * n**3 / median_time(lambda: _core.gemm(A, B, C), repeats=5, min_repeat_s=0.2) / 1e9


# ----------------------------------------------------------------------------- the targets
def targets(result: dict) -> list[dict]:
    """The issue's targets for a --threads 2 run: (what, measured, required, met)."""
    w, sgemm = result["workloads"], result["sgemm_2048_gflops"]
    checks = []

    def ratio(name, peer, need):
        if name in w and peer in w[name]["results"]:
            got = w[name]["results"][peer]["ratio_to_fastbp"]
            checks.append({"target": f"{name}: {peer} / fastbp >= {need}", "measured": got,
                           "met": got >= need})

    def value(label, got, need, at_least=True):
        checks.append({"target": label, "measured": got,
                       "met": got >= need if at_least else got <= need})

    ratio("tiny", "torch_fused", 50)
    if "tiny" in w:
        value("tiny: fastbp µs per step <= 10", w["tiny"]["results"]["fastbp"]["us_per_step"],
              10, at_least=False)
    ratio("small", "torch_fused", 6)
    ratio("small", "numpy", 5)
    ratio("mnist", "torch_fused", 2.5)
    ratio("mnist", "sklearn", 3)
    for name, share in (("mnist", 0.65), ("wide", 0.85)):
        if name in w:
            value(f"{name}: fastbp GFLOP/s >= {share:.0%} of sgemm 2048",
                  w[name]["results"]["fastbp"]["gflops"] / sgemm, share)
    ratio("wide", "torch_fused", 1.3)
    ratio("wide", "sklearn", 2)
    adam = result["adam"].get(str(10**7), {})
    for peer, need in (("torch_fused", 1.0), ("torch_default", 7.0)):
        if peer in adam:
            got = adam[peer]["ratio_to_fastbp"]
            checks.append({"target": f"Adam 1e7: {peer} / fastbp >= {need}", "measured": got,
                           "met": got >= need})
    return checks


# ---------------------------------------------------------------------------------- output
def print_report(result: dict) -> None:
    print(f"# fastbp {result['versions']['fastbp']}, {result['date']}, {result['machine']}, "
          f"threads {result['threads']}")
    for peer in result["skipped"]:
        print(f"# note: {peer} skipped: its library is not installed")
    print(f"# sgemm 2048x2048: {result['sgemm_2048_gflops']:.1f} GFLOP/s\n")
    print("| workload | library | µs/step | samples/s | GFLOP/s | time / fastbp |")
    print("|---|---|---:|---:|---:|---:|")
    for name, w in result["workloads"].items():
        for lib, r in w["results"].items():
            print(f"| {name} | {lib} | {r['us_per_step']:.1f} | {r['samples_per_s']:,.0f} | "
                  f"{r['gflops']:.2f} | {r['ratio_to_fastbp']:.2f} |")
    print("\n| workload | fastbp µs/step | its products alone, µs | share |")
    print("|---|---:|---:|---:|")
    for name, w in result["workloads"].items():
        step = w["results"]["fastbp"]["us_per_step"]
        print(f"| {name} | {step:.1f} | {w['gemm_only_us']:.1f} | {w['gemm_only_us'] / step:.0%} |")
    print("\n| Adam update | library | ms | GB/s | time / fastbp |")
    print("|---|---|---:|---:|---:|")
    for n, libs in result["adam"].items():
        for lib, r in libs.items():
            print(f"| {int(n):.0e} | {lib} | {r['ms']:.3f} | {r['gb_per_s']:.1f} | "
                  f"{r['ratio_to_fastbp']:.2f} |")
    if result.get("targets"):
        print("\n| target | measured | met |")
        print("|---|---:|---|")
        for t in result["targets"]:
            print(f"| {t['target']} | {t['measured']:.2f} | {'yes' if t['met'] else 'NO'} |")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {fb.parallel.available_cpus()} CPUs"


def main(argv: list[str] | None = None) -> dict:
    global SETTLE_S
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--peers", nargs="+", default=PEERS, choices=PEERS)
    parser.add_argument("--adam-sizes", nargs="*", type=float, default=ADAM_SIZES)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--settle", type=float, default=SETTLE_S,
                        help="seconds to idle before each measurement")
    parser.add_argument("--sgemm-size", type=int, default=2048,
                        help="size of the square sgemm whose rate the targets refer to")
    parser.add_argument("--json", default=None, help="where to write the results "
                        "(default: compare-threads<N>.json in the current folder)")
    args = parser.parse_args(argv)
    SETTLE_S = args.settle
    peers = import_peers(args.peers)
    fb.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "threads": args.threads,
        "versions": {"fastbp": fb.__version__, "numpy": np.__version__,
                     "torch": torch.__version__ if torch is not None else None,
                     "sklearn": sklearn.__version__ if sklearn else None},
        "skipped": [p for p in args.peers if p not in peers],
        "sgemm_2048_gflops": sgemm_gflops(args.sgemm_size),
        "workloads": {name: run_workload(name, peers, args.repeats) for name in args.workloads},
        "adam": run_adam([int(n) for n in args.adam_sizes], peers),
    }
    if args.threads == 2:
        result["targets"] = targets(result)
    print_report(result)
    path = args.json or f"compare-threads{args.threads}.json"
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
