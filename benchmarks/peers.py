"""The training steps that compare.py times, one library per fresh process, and what it times.

`run(library, job, threads, ...)` is all a worker process of compare.py calls: it imports the
one library asked for (fastbp, PyTorch, JAX or scikit-learn: never two of them), sets its thread
count through the library's own API, times the job, and returns a dict for compare.py to print
as one JSON line. A job is a workload of benchmarks/common.py (one training step: forward,
loss, backward, Adam update, float32, lr 1e-3 with PyTorch's default betas and eps), "adam"
(the update alone on flat arrays) or "sgemm" (SciPy's sgemm on squares, in fastbp's process).
"""
from __future__ import annotations

import importlib
import os
import re
import statistics
import time
import warnings
from functools import partial
from itertools import pairwise

import numpy as np
from benchmarks.common import WORKLOADS, make_data  # (benchmarks/benchmarks/)

SETTLE_S = 0.2  # longer than OpenBLAS's default spin-wait (2^28 cycles) after a call
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, but lr
# Every library steps through the same BATCHES batches in turn: one batch over and over is
# memorised within a few steps, after which gradients underflow to subnormal floats, whose
# arithmetic is many times slower on x86 CPUs and would be timed instead of the step.
BATCHES = 8


class Skipped(Exception):
    """A peer that cannot run here (not installed, or torch.compile failed); the message says
    why."""


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
    per_product = [2 * batch * n_in * n_out for n_in, n_out in pairwise(sizes)]
    return 2 * sum(per_product) + sum(per_product[1:])


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


def he_init(sizes: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights (out, in) drawn from N(0, 2/in) and zero biases, float32, from a fixed seed."""
    rng = np.random.default_rng(0)
    Ws = [(rng.standard_normal((o, i)) * np.sqrt(2 / i)).astype(np.float32)
          for i, o in pairwise(sizes)]
    return Ws, [np.zeros(o, np.float32) for o in sizes[1:]]


# ------------------------------------------------------------------------------ the steps
# Each returns a function of no arguments that runs one step (scikit-learn: one epoch).
def fastbp_step(sizes, activation, loss, batches):
    import fastbp as fb
    net = fb.mlp(sizes, activation=activation, seed=0)
    opt = fb.Adam(net, lr=LR)
    take = cycling(batches)

    def step():
        X, y = take()
        net.train_step(X, y, loss, opt)
    return step


def torch_step(sizes, activation, loss, batches, fused: bool = False, compiled: bool = False):
    """PyTorch eager with torch.optim.Adam (default: its per-tensor loop, or fused=True); with
    `compiled`, torch.compile of the forward and loss (backward through AOTAutograd), fused
    Adam, compiled here by two warm-up steps so that compilation is not timed."""
    import torch
    act = torch.nn.ReLU if activation == "relu" else torch.nn.Sigmoid
    layers = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(act())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True if fused else None)
    loss_fn = torch.nn.CrossEntropyLoss() if loss == "cross_entropy" else torch.nn.MSELoss()

    def forward_loss(X, y):
        return loss_fn(model(X), y)
    if compiled:
        forward_loss = torch.compile(forward_loss)
    take = cycling([(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches])

    def step():
        X, y = take()
        opt.zero_grad(set_to_none=True)
        forward_loss(X, y).backward()
        opt.step()
    if compiled:
        try:
            step()
            step()
        except Exception as error:  # whatever the compiler raised: reported, not fatal
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise Skipped(f"torch.compile failed: {first}") from error
    return step


def jax_step(sizes, activation, loss, batches):
    """jax.jit of the whole step: forward, loss, grad, and Adam written with jax.numpy after
    torch.optim.Adam's formulas; the state (parameters, moments, step count) is donated, and
    each call waits for its result. Compiled here by two warm-up steps."""
    import jax
    import jax.numpy as jnp
    b1, b2 = BETAS
    act = jax.nn.relu if activation == "relu" else jax.nn.sigmoid

    def loss_of(params, X, y):
        for k, (W, b) in enumerate(params):
            X = X @ W.T + b
            if k < len(params) - 1:
                X = act(X)
        if loss == "cross_entropy":
            picked = jnp.take_along_axis(X, y[:, None], axis=1)[:, 0]
            return jnp.mean(jax.nn.logsumexp(X, axis=1) - picked)
        return jnp.mean((X - y) ** 2)

    @partial(jax.jit, donate_argnums=0)
    def train(state, X, y):
        params, m, v, t = state
        grads = jax.grad(loss_of)(params, X, y)
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        step_size, root = LR / (1 - b1 ** t), jnp.sqrt(1 - b2 ** t)
        params = jax.tree.map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / root + EPS),
                              params, m, v)
        return params, m, v, t

    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(*he_init(sizes), strict=True)]
    zeros = jax.tree.map(jnp.zeros_like, params)
    box = [(params, zeros, jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.float32))]
    take = cycling([(jnp.asarray(X), jnp.asarray(y)) for X, y in batches])

    def step():
        box[0] = train(box[0], *take())
        jax.block_until_ready(box[0])
    step()
    step()
    return step


def sklearn_step(sizes, activation, loss, batches):
    """One warm-started epoch of scikit-learn's MLP (solver adam) over the batches."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    batch = batches[0][0].shape[0]
    Xs = np.concatenate([X for X, _ in batches])
    ys = np.concatenate([y for _, y in batches])
    if ys.ndim == 2 and ys.shape[1] == 1:
        ys = ys.ravel()  # scikit-learn wants one regression target as a 1-D array
    cls = MLPClassifier if loss == "cross_entropy" else MLPRegressor
    model = cls(hidden_layer_sizes=tuple(sizes[1:-1]),
                activation="logistic" if activation == "sigmoid" else activation,
                solver="adam", alpha=0.0, batch_size=batch, learning_rate_init=LR,
                max_iter=1, shuffle=False, tol=0.0, warm_start=True, random_state=0)

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xs, ys)
    return epoch


def numpy_step(sizes, activation, loss, batches, with_loss: bool = False):
    """The textbook step in NumPy: explicit forward, backward and Adam per parameter array.
    With `with_loss`, also returns a function giving the current loss on the first batch."""
    Ws, bs = he_init(sizes)
    params = Ws + bs
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]
    b1, b2 = BETAS
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
            mi *= b1
            mi += (1 - b1) * g
            vi *= b2
            vi += (1 - b2) * g * g
            p -= (LR / (1 - b1 ** t[0])) * mi / (np.sqrt(vi / (1 - b2 ** t[0])) + EPS)
    if with_loss:
        return step, lambda: forward(*batches[0])[1]
    return step


STEPS = {
    "fastbp": fastbp_step,
    "torch_default": torch_step,
    "torch_fused": partial(torch_step, fused=True),
    "torch_compile": partial(torch_step, fused=True, compiled=True),
    "jax": jax_step,
    "sklearn": sklearn_step,
    "numpy": numpy_step,
}


# ------------------------------------------------------------------------------- the jobs
def time_step(library: str, name: str, repeats: int) -> dict:
    """Seconds per step of `library` on workload `name`; fastbp's worker also times the step's
    products alone."""
    sizes, activation, batch, loss = WORKLOADS[name]
    batches = batches_of(*make_data(sizes, loss, BATCHES * batch, "float32"), batch)
    flops = step_flops(sizes, batch)
    call = STEPS[library](sizes, activation, loss, batches)
    if library == "sklearn":  # one call is an epoch of BATCHES steps, and slow
        seconds = median_time(call, repeats=min(repeats, 3), warmup=1, min_repeat_s=0.0) / BATCHES
    elif flops > 10**9:
        seconds = median_time(call, repeats=min(repeats, 3), warmup=1, min_repeat_s=0.0)
    else:
        seconds = median_time(call, repeats=repeats)
    out = {"workload": {"sizes": sizes, "activation": activation, "batch": batch, "loss": loss,
                        "flops_per_step": flops}, "seconds": seconds}
    if library == "fastbp":
        out["gemm_only_seconds"] = gemm_seconds(sizes, batch)
    return out


def gemm_seconds(sizes: list[int], batch: int) -> float:
    """Seconds the step's products alone take (each timed on its own, through fastbp's gemm
    binding with the same shapes and transposes): about the floor of a step that does nothing
    else, plus about 1 µs of Python call per product (which dominates for `tiny`)."""
    from fastbp import _core
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


def adam_update(library: str, p: np.ndarray, g: np.ndarray):
    """One Adam update of the flat float32 parameters p with gradient g, as a function of no
    arguments: fastbp's fused kernel, or torch.optim.Adam (default or fused) on one tensor."""
    if library == "fastbp":
        from fastbp import _core
        m, v, state = np.zeros_like(p), np.zeros_like(p), {"t": 0}

        def update():
            state["t"] += 1
            _core.adam_step(p, g, m, v, state["t"], LR, *BETAS, EPS, 0.0, False)
        return update
    import torch
    param = torch.nn.Parameter(torch.from_numpy(p))
    param.grad = torch.from_numpy(g)
    return torch.optim.Adam([param], lr=LR, fused=True if library == "torch_fused" else None).step


def adam_seconds(library: str, sizes: list[int]) -> dict:
    """Seconds of one Adam update of n float32 parameters, for each n in `sizes`."""
    seconds = {}
    for n in sizes:
        rng = np.random.default_rng(0)
        p = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        seconds[str(n)] = median_time(adam_update(library, p, g), min_repeat_s=0.05)
    return {"adam_seconds": seconds}


def sgemm_gflops(n: int) -> dict:
    """GFLOP/s of SciPy's sgemm (through fastbp's binding) on n x n float32 matrices: the
    ceiling the targets refer to."""
    from fastbp import _core
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(np.float32)
    B = rng.standard_normal((n, n)).astype(np.float32)
    C = np.empty((n, n), np.float32)
    seconds = median_time(lambda: _core.gemm(A, B, C), repeats=5, min_repeat_s=0.2)
    return {"sgemm_gflops": 2 * n**3 / seconds / 1e9}


# ------------------------------------------------------------------- threads and kernels
def set_threads(library: str, threads: int) -> None:
    """Import `library` and set its thread count through its API (compare.py set the
    environment before this process started: OMP_NUM_THREADS, MKL_NUM_THREADS,
    OPENBLAS_NUM_THREADS, which NumPy's and scikit-learn's OpenBLAS read, and PJRT_NPROC, the
    size of JAX's CPU thread pool). Raises Skipped when the library cannot be imported."""
    try:
        if library == "fastbp":
            import fastbp
            fastbp.set_num_threads(threads)
        elif library.startswith("torch"):
            import torch
            torch.set_num_threads(threads)
        elif library == "jax":
            import jax  # noqa: F401
        elif library == "sklearn":
            import sklearn  # noqa: F401
    except ImportError as error:
        raise Skipped(f"cannot import it: {error}") from error


def torch_kernels() -> dict:
    """PyTorch's CPU kernels: ATen's vector ISA, its BLAS, MKL's and oneDNN's versions, its
    parallel backend and thread count (from torch.__config__)."""
    import torch
    config = torch.__config__.show() + torch.__config__.parallel_info()
    patterns = {"blas": r"BLAS_INFO=(\w+)", "mkl": r"Math Kernel Library Version ([\d.]+)",
                "onednn": r"MKL-DNN (v[\d.]+)", "parallel": r"ATen parallel backend: (\w+)"}
    found = {key: re.search(pattern, config) for key, pattern in patterns.items()}
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **{key: match[1] if match else None for key, match in found.items()},
            "num_threads": torch.get_num_threads()}


def library_info(library: str) -> dict:
    """Versions, the CPUs this process may use, and the thread pools and kernels it has loaded:
    threadpoolctl's view of every BLAS and OpenMP runtime, PyTorch's configuration, JAX's
    devices."""
    from threadpoolctl import threadpool_info
    names = {"fastbp": ["fastbp", "scipy"], "jax": ["jax", "jaxlib"], "numpy": [],
             "sklearn": ["sklearn", "scipy"]}.get(library, ["torch"])
    modules = {name: importlib.import_module(name) for name in ["numpy", *names]}
    pools = sorted(threadpool_info(), key=lambda pool: (pool["user_api"], pool["filepath"]))
    info = {"versions": {name: module.__version__ for name, module in modules.items()},
            "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "threadpools": [{"user_api": pool["user_api"], "internal_api": pool["internal_api"],
                             "version": pool.get("version"),
                             "architecture": pool.get("architecture"),
                             "threading_layer": pool.get("threading_layer"),
                             "num_threads": pool["num_threads"],
                             "file": os.path.basename(pool["filepath"])}
                            for pool in pools]}
    if library.startswith("torch"):
        info["torch"] = torch_kernels()
    elif library == "jax":
        info["jax"] = {"devices": [str(d) for d in modules["jax"].devices()]}
    return info


def run(library: str, job: str, threads: int, repeats: int = 7,
        adam_sizes: tuple[int, ...] = (10**5, 10**6, 10**7), sgemm_size: int = 2048) -> dict:
    """What one worker process does: `job` ("sgemm", "adam" or a workload name) in `library`
    on `threads` threads. Returns the measurements with the library's versions, kernels and
    this process's CPUs, or {"skipped": why}."""
    try:
        set_threads(library, threads)
        if job == "sgemm":
            out = sgemm_gflops(sgemm_size)
        elif job == "adam":
            out = adam_seconds(library, adam_sizes)
        else:
            out = time_step(library, job, repeats)
    except Skipped as why:
        return {"skipped": str(why)}
    return {**out, "library": library_info(library)}
