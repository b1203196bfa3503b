"""Side-by-side speed of one training step: fastbp and its peers, each library in a fresh process.

    python benchmarks/compare.py [--threads 1 2] [--workloads tiny small mnist wide]
                                 [--peers ...] [--repeats 7] [--json compare.json]

Where OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE are set, run it under
`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`: users get their CPU's native kernels. The
harness leaves the environment as it finds it, records it and prints a warning for every
variable that makes a library run other kernels than the CPU's own.

What it times (benchmarks/peers.py): the same training step of each workload of
benchmarks/common.py (forward, loss, backward, Adam lr 1e-3 with PyTorch's default betas and
eps, float32, cycling through 8 batches) in fastbp, PyTorch eager (torch.optim.Adam default,
and fused=True), torch.compile (forward and loss compiled, fused Adam), JAX (jax.jit of the
whole step, Adam after torch.optim.Adam's formulas, state donated), scikit-learn's MLP (solver
adam) and a textbook NumPy step: compilation and warm-up first, then the median of timed
rounds, after idling so that spin-waiting threads have gone to sleep. Also the step's products
alone (in fastbp's worker), the Adam update alone on flat arrays (fastbp and PyTorch) and the
rate of SciPy's sgemm on 2048x2048 (fastbp's worker, through the BLAS fastbp uses). It prints
markdown tables (versions and kernels of each library, µs/step, samples/s, GFLOP/s of the
step's exact GEMM flops, each peer's time / fastbp's, the targets) and writes all to JSON.

Processes. Libraries in one process share BLAS libraries, OpenMP runtimes, thread settings and
caches, so the parent imports none of fastbp, PyTorch, JAX and scikit-learn: every measurement
is a worker, `compare.py --worker LIBRARY --job JOB --threads N`, that imports one library, runs
one job (a workload, "adam" or "sgemm") and prints one JSON line. One process per job rather
than per library: nothing of one workload (allocator state, thread pools, compiled code,
`wide`'s hundreds of MB) reaches the next, and a worker that crashes or runs out of time costs
one cell, reported with the last line of its stderr, not the run.

Threads. Every worker starts with OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS and
PJRT_NPROC set to N, JAX_PLATFORMS=cpu and TORCHINDUCTOR_COMPILE_THREADS=1 (torch.compile
compiles in the worker instead of starting a pool of compiler processes); it then sets fastbp
(fastbp.set_num_threads) and PyTorch (torch.set_num_threads, which torch.compile's generated
kernels follow) through their APIs; NumPy's and scikit-learn's OpenBLAS and OpenMP read the
environment. JAX (jaxlib 0.10) sizes its CPU thread pool from PJRT_NPROC (or NPROC), else from
the CPUs the process may use. XLA_FLAGS=--xla_cpu_multi_thread_eigen=false does not keep its
products on one thread (a 2048x2048 matmul kept 2 CPUs busy with it, 1 with PJRT_NPROC=1), and
intra_op_parallelism_threads is no XLA flag (with "--" XLA aborts on it, without it is
ignored). One-thread workers are pinned to one CPU (the last this process may use; Linux): the
worker calls os.sched_setaffinity before it imports NumPy or any library, so every thread it
starts stays there. Each worker reports the thread counts that took effect (threadpoolctl, torch).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time

PEERS = ["torch_default", "torch_fused", "torch_compile", "jax", "sklearn", "numpy"]
ADAM_LIBRARIES = ["fastbp", "torch_default", "torch_fused"]
ADAM_SIZES = [10**5, 10**6, 10**7]
# environment variables that choose the kernels or threads of BLAS, OpenMP, PyTorch or JAX
RECORDED = re.compile(r"(OMP|GOMP|KMP|MKL|OPENBLAS|GOTO|BLIS|XLA|PJRT|JAX|TORCHINDUCTOR|ATEN|DNNL"
                      r"|ONEDNN)_|NPROC$")
# ... and those of them that make a library run other kernels than the CPU's own
NOT_NATIVE = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_ENABLE_INSTRUCTIONS",
              "MKL_DEBUG_CPU_TYPE", "ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA"]


# ------------------------------------------------------------------------------ the workers
def worker_environment(threads: int) -> dict[str, str]:
    """What every worker of a `threads`-thread run gets in its environment, over the parent's."""
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "PJRT_NPROC": n, "JAX_PLATFORMS": "cpu", "TORCHINDUCTOR_COMPILE_THREADS": "1"}


def worker_command(library: str, job: str, threads: int, args, cpu: int | None) -> list[str]:
    command = [sys.executable, os.path.abspath(__file__), "--worker", library, "--job", job,
               "--threads", str(threads), "--repeats", str(args.repeats),
               "--settle", str(args.settle), "--sgemm-size", str(args.sgemm_size),
               "--adam-sizes", *[str(int(n)) for n in args.adam_sizes]]
    return command + ([] if cpu is None else ["--cpu", str(cpu)])


def run_worker(command: list[str], threads: int, timeout: float) -> dict:
    """Runs one worker: the dict of its JSON line, or {"failed": the last line of its stderr}."""
    try:
        done = subprocess.run(command, env={**os.environ, **worker_environment(threads)},
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout:g} s"}
    lines = done.stdout.strip().splitlines()
    try:  # a worker that printed its result and then crashed on exit still measured
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        pass
    errors = done.stderr.strip().splitlines()
    return {"failed": errors[-1] if errors else f"exit status {done.returncode}, no result"}


def work(args) -> None:
    """A worker's life: its CPU first (so that every thread it starts inherits it), then the
    one library and job, one JSON line out."""
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    import peers
    peers.SETTLE_S = args.settle
    (threads,) = args.threads
    print(json.dumps(peers.run(args.worker, args.job, threads, args.repeats,
                               [int(n) for n in args.adam_sizes], args.sgemm_size)))


# ------------------------------------------------------------------------------- the runs
def ratio(seconds: float, base: float | None) -> float | None:
    return seconds / base if base else None


def workload_rows(outs: dict[str, dict]) -> dict:
    """A workload's table from its workers' results: per library µs/step, samples/s, GFLOP/s
    and time / fastbp's (None where fastbp has no time)."""
    if not outs:
        return {"results": {}}
    meta = next(iter(outs.values()))["workload"]
    base = outs.get("fastbp", {}).get("seconds")
    gemm = outs.get("fastbp", {}).get("gemm_only_seconds")
    rows = {lib: {"us_per_step": out["seconds"] * 1e6,
                  "samples_per_s": meta["batch"] / out["seconds"],
                  "gflops": meta["flops_per_step"] / out["seconds"] / 1e9,
                  "ratio_to_fastbp": ratio(out["seconds"], base)} for lib, out in outs.items()}
    return {**meta, "gemm_only_us": gemm * 1e6 if gemm else None, "results": rows}


def adam_rows(seconds: dict[str, dict[str, float]]) -> dict:
    """Per size and library: ms, GB/s (28 bytes a parameter: p, g, m, v read, p, m, v
    written) and time / fastbp's."""
    base = seconds.get("fastbp", {})
    sizes = next(iter(seconds.values()), {})
    return {n: {lib: {"ms": s[n] * 1e3, "gb_per_s": 28 * int(n) / s[n] / 1e9,
                      "ratio_to_fastbp": ratio(s[n], base.get(n))} for lib, s in seconds.items()}
            for n in sizes}


def measure(threads: int, args) -> dict:
    """Every job of a `threads`-thread run, each in its own worker: the sgemm rate, each
    workload in fastbp then each peer, the Adam update alone."""
    cpu = max(usable_cpus()) if threads == 1 and hasattr(os, "sched_setaffinity") else None
    run = {"threads": threads, "pinned_cpu": cpu, "worker_environment":
           worker_environment(threads), "libraries": {}, "skipped": [], "failed": []}

    def call(library: str, job: str) -> dict | None:
        start = time.perf_counter()
        out = run_worker(worker_command(library, job, threads, args, cpu), threads, args.timeout)
        problem = out.get("skipped") or out.get("failed")
        print(f"{threads} thread(s): {library} {job}: {problem or 'done'} "
              f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
        for kind in ("skipped", "failed"):
            if kind in out:
                run[kind].append({"library": library, "job": job, "reason": out[kind]})
                return None
        run["libraries"].setdefault(library, out["library"])
        return out

    sgemm = call("fastbp", "sgemm")
    run["sgemm_gflops"] = sgemm["sgemm_gflops"] if sgemm else None
    libraries = ["fastbp", *args.peers]
    run["workloads"] = {}
    for name in args.workloads:
        outs = {lib: out for lib in libraries if (out := call(lib, name))}
        run["workloads"][name] = workload_rows(outs)
    adam_libraries = [lib for lib in ADAM_LIBRARIES if lib in libraries and args.adam_sizes]
    adam = {lib: out for lib in adam_libraries if (out := call(lib, "adam"))}
    run["adam"] = adam_rows({lib: out["adam_seconds"] for lib, out in adam.items()})
    return run


# ----------------------------------------------------------------------------- the targets
def targets(runs: dict[str, dict], workloads: list[str], peers: list[str],
            sgemm_size: int) -> list[dict]:
    """The targets, from the 2-thread and 1-thread runs: target, measured, unit, met, detail
    (the peer nearest to fastbp, and the peers asked for that have no time). A target that was
    not measured is not met."""
    checks = []

    def check(target, measured, need, unit="×", at_least=True, detail=None):
        met = measured is not None and (measured >= need if at_least else measured <= need)
        checks.append({"target": target, "measured": measured, "unit": unit, "met": met,
                       "detail": detail})

    def results(threads, name):
        return runs.get(str(threads), {}).get("workloads", {}).get(name, {}).get("results", {})

    def fastbp(threads, name, key):
        return results(threads, name).get("fastbp", {}).get(key)

    def nearest_peer(threads, name, exclude=()):
        rows = results(threads, name)
        ratios = {peer: rows[peer]["ratio_to_fastbp"] for peer in peers
                  if peer not in exclude and peer in rows and rows[peer]["ratio_to_fastbp"]}
        nearest = min(ratios, key=ratios.get, default=None)
        missing = [peer for peer in peers if peer not in exclude and peer not in ratios]
        detail = ", ".join(([nearest] if nearest else []) +
                           ([f"no time: {' '.join(missing)}"] if missing else []))
        return ratios.get(nearest), detail

    for name in ("small", "mnist", "wide"):
        check(f"{name}, 2 threads: JAX jit's time / fastbp's >= 1.3",
              results(2, name).get("jax", {}).get("ratio_to_fastbp"), 1.3)
    for name in workloads:
        got, peer = nearest_peer(2, name, exclude=("jax",))
        check(f"{name}, 2 threads: every other peer's time / fastbp's >= 1", got, 1.0,
              detail=peer)
    one, two = fastbp(1, "small", "us_per_step"), fastbp(2, "small", "us_per_step")
    check("small: fastbp 2 threads / 1 thread speed-up >= 1.6", one / two if one and two
          else None, 1.6)
    sgemm = runs.get("2", {}).get("sgemm_gflops")
    for name, share in (("mnist", 0.65), ("wide", 0.80)):
        gflops = fastbp(2, name, "gflops")
        check(f"{name}, 2 threads: fastbp GFLOP/s / sgemm {sgemm_size} GFLOP/s >= {share:.0%}",
              gflops / sgemm if gflops and sgemm else None, share, unit="%")
    check("tiny, 2 threads: fastbp µs per step <= 2", fastbp(2, "tiny", "us_per_step"), 2,
          unit=" µs", at_least=False)
    for name in workloads:
        got, peer = nearest_peer(1, name)
        check(f"{name}, 1 thread: every peer's time / fastbp's >= 1", got, 1.0, detail=peer)
    return checks


# ---------------------------------------------------------------------------------- output
def number(value: float | None, spec: str = ",.1f") -> str:
    return "—" if value is None else format(value, spec)


def table(header: list[str], rows: list[list[str]], align: str) -> None:
    """A markdown table; `align` has an "l" or "r" per column."""
    print("\n| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def variables(env: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in env.items()) or "none"


def kernels(info: dict) -> str:
    """One library's kernels and thread pools, in a line."""
    parts = []
    if "torch" in info:
        t = info["torch"]
        parts.append(f"ATen {t['cpu_capability']}, BLAS {t['blas']} (MKL {t['mkl']}), oneDNN "
                     f"{t['onednn']}, {t['parallel']} ×{t['num_threads']}")
    if "jax" in info:
        parts.append("devices " + ", ".join(info["jax"]["devices"]))
    for pool in info["threadpools"]:
        words = [pool[k] for k in ("internal_api", "version", "architecture") if pool[k]]
        parts.append(f"{' '.join(words)} ×{pool['num_threads']} ({pool['file']})")
    return "; ".join(parts)


def time_and_ratio(row: dict | None) -> str:
    if row is None:
        return "—"
    return f"{number(row['us_per_step'])} ({number(row['ratio_to_fastbp'], '.2f')}×)"


def print_run(run: dict, sgemm_size: int) -> None:
    """One thread count's tables: libraries, workloads (in full, then one row each), fastbp's
    products alone, the Adam update alone."""
    threads, workloads = run["threads"], run["workloads"]
    pinned = "not pinned" if run["pinned_cpu"] is None else f"pinned to CPU {run['pinned_cpu']}"
    print(f"\n## {threads} thread{'s' if threads > 1 else ''}\n")
    print(f"Each library in a fresh process, {pinned}, with "
          f"{variables(run['worker_environment'])}.  ")
    print(f"sgemm {sgemm_size}×{sgemm_size} (SciPy's BLAS, in fastbp's process): "
          f"{number(run['sgemm_gflops'])} GFLOP/s")
    table(["library", "versions", "CPUs", "kernels and thread pools"],
          [[lib, ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
            ",".join(map(str, info["cpus"])) if info["cpus"] else "—", kernels(info)]
           for lib, info in run["libraries"].items()], "llll")
    notes: dict[tuple, list[str]] = {}
    for kind in ("skipped", "failed"):
        for entry in run[kind]:
            notes.setdefault((kind, entry["library"], entry["reason"]), []).append(entry["job"])
    print("\n" * bool(notes), end="")
    for (kind, library, reason), jobs in notes.items():
        print(f"- {library} {kind} ({', '.join(jobs)}): {reason}")
    table(["workload", "library", "µs/step", "samples/s", "GFLOP/s", "time / fastbp"],
          [[name, lib, number(r["us_per_step"]), number(r["samples_per_s"], ",.0f"),
            number(r["gflops"], ".2f"), number(r["ratio_to_fastbp"], ".2f")]
           for name, w in workloads.items() for lib, r in w["results"].items()], "llrrrr")
    peers = [p for p in PEERS if any(p in w["results"] for w in workloads.values())]
    mine = {name: w["results"].get("fastbp", {}) for name, w in workloads.items()}
    table(["workload", "fastbp µs/step", "fastbp GFLOP/s", *peers],
          [[name, number(mine[name].get("us_per_step")), number(mine[name].get("gflops")),
            *[time_and_ratio(w["results"].get(p)) for p in peers]]
           for name, w in workloads.items()], "l" + "r" * (2 + len(peers)))
    shares = []
    for name, w in workloads.items():
        step, gemm = mine[name].get("us_per_step"), w.get("gemm_only_us")
        shares.append([name, number(step), number(gemm),
                       number(gemm / step if step and gemm else None, ".0%")])
    table(["workload", "fastbp µs/step", "its products alone, µs", "share"], shares, "lrrr")
    table(["Adam update", "library", "ms", "GB/s", "time / fastbp"],
          [[f"{int(n):.0e}", lib, number(r["ms"], ".3f"), number(r["gb_per_s"]),
            number(r["ratio_to_fastbp"], ".2f")]
           for n, libs in run["adam"].items() for lib, r in libs.items()], "llrrr")


def measured(target: dict) -> str:
    if target["measured"] is None:
        return "not measured"
    shown = (format(target["measured"], ".0%") if target["unit"] == "%"
             else f"{target['measured']:.2f}{target['unit']}")
    return shown + (f" ({target['detail']})" if target["detail"] else "")


def print_report(result: dict) -> None:
    m, s = result["machine"], result["settings"]
    print(f"# fastbp and its peers, {result['date']}\n")
    print(f"{m['cpu']}, {m['cpus']} CPUs, {m['os']}, Python {result['python']}; median of "
          f"{s['repeats']} repeats, {s['settle_s']:g} s idle before each measurement.  ")
    print(f"Environment (BLAS, OpenMP, threads): {variables(result['environment'])}")
    for warning in result["warnings"]:
        print(f"\n**WARNING**: {warning}")
    for run in result["runs"].values():
        print_run(run, s["sgemm_size"])
    print("\n## Targets")
    table(["target", "measured", "met"],
          [[t["target"], measured(t), "yes" if t["met"] else "NO"] for t in result["targets"]],
          "lrl")


def not_native_warnings() -> list[str]:
    found = [name for name in NOT_NATIVE if name in os.environ]
    unset = " ".join(f"-u {name}" for name in found)
    return [f"{name}={os.environ[name]} is set: the libraries that read it may run other kernels "
            f"than this CPU's own, which users get; for those, run `env {unset} python "
            f"benchmarks/compare.py ...`" for name in found]


def usable_cpus() -> list[int]:
    """The CPUs this process may use (all of them where the system cannot say, as on macOS,
    where one-thread runs are then not pinned)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpus": len(usable_cpus()), "os": platform.platform()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts, one run each (default: 1 2)")
    parser.add_argument("--workloads", nargs="+", help="default: all, tiny small mnist wide")
    parser.add_argument("--peers", nargs="+", default=PEERS, choices=PEERS)
    parser.add_argument("--adam-sizes", nargs="*", type=float, default=ADAM_SIZES,
                        help="parameter counts of the Adam update timed alone (none: skip it)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--settle", type=float, default=0.2,
                        help="seconds to idle before each measurement")
    parser.add_argument("--sgemm-size", type=int, default=2048,
                        help="size of the square sgemm whose rate the targets refer to")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a worker may take")
    parser.add_argument("--json", default="compare.json", help="where to write the results")
    parser.add_argument("--worker", choices=["fastbp", *PEERS], help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        work(args)
        return {}
    from benchmarks.common import WORKLOADS  # not above: a worker pins itself before NumPy loads
    args.workloads = args.workloads or list(WORKLOADS)
    if unknown := set(args.workloads) - set(WORKLOADS):
        parser.error(f"unknown workloads {sorted(unknown)}; known: {', '.join(WORKLOADS)}")
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": machine(), "python": platform.python_version(),
              "settings": {"repeats": args.repeats, "settle_s": args.settle,
                           "sgemm_size": args.sgemm_size, "timeout_s": args.timeout},
              "environment": {k: v for k, v in sorted(os.environ.items()) if RECORDED.match(k)},
              "warnings": not_native_warnings(), "runs": {}}
    for warning in result["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr)
    for threads in args.threads:
        result["runs"][str(threads)] = measure(threads, args)
    result["targets"] = targets(result["runs"], args.workloads, args.peers, args.sgemm_size)
    print_report(result)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
