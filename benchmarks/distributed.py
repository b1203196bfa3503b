"""Data-parallel training over MPI on this machine, and a model of it on more.

    python benchmarks/distributed.py [--ranks 1 2 4] [--workloads mnist wide] [--json PATH]

Each rank count runs in its own ``mpirun -n N`` (unbound, oversubscribed where N exceeds the
cores; each rank gets the default threads, cores / ranks). Per workload (benchmarks/common.py) it
times, on the slowest rank:

- the data-parallel step: ``fit(comm=..., shard="auto")`` epochs of 8 global batches of the
  workload's batch size, with the gradient sums overlapping backward and without (seconds per
  step: the median epoch, the first left out, / 8);
- one process's fit on one rank's rows of the same batches (the compute of a rank, nothing
  summed);
- the sum of the gradient buffer alone (one in-place Allreduce, median of 5), its share of
  the step without overlap, and the bus bandwidth it reached: 2 (N - 1) / N x gradient bytes
  / time, what a ring allreduce moves per rank.

Then a model of N = 2 ... 64 nodes like this machine over 10 and 100 Gbit/s links, from the
measured one-process step time per sample c (all cores, the whole batch) and the ring
allreduce time A = 2 (N - 1) / N x gradient bytes / link bandwidth (latency left out):
strong scaling (global batch B fixed): time c B / N + A, speed-up c B / (c B / N + A);
weak scaling (B per node): efficiency c B / (c B + A). With overlap, the sums can hide behind
backward (about 2/3 of a step): time c b / 3 + max(2 c b / 3, A), b the rows per node.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import WORKLOADS, make_data  # noqa: E402  (benchmarks/benchmarks/)

LINKS = {"10 Gbit/s": 10e9 / 8, "100 Gbit/s": 100e9 / 8}   # bytes per second
NODES = (2, 4, 8, 16, 32, 64)
BATCHES, EPOCHS = 8, 3    # steps per epoch; epochs of each fit timed (the first a warm-up)


def median_seconds(run, comm, steps: int) -> float:
    """Median over `steps` of the slowest rank's time of run(), after one warm-up run."""
    run()
    times = []
    for _ in range(steps):
        comm.Barrier()
        start = time.perf_counter()
        run()
        times.append(max(comm.allgather(time.perf_counter() - start)))
    return float(np.median(times))


def step_seconds(world, net, X, y, **kwargs) -> float:
    """Seconds per step of net.fit(X, y, ...) over EPOCHS epochs of BATCHES steps: the median
    of the slowest rank's epoch times, the first epoch (warm-up) left out, / BATCHES."""
    world.Barrier()
    times = net.fit(X, y, epochs=EPOCHS, batch_size=X.shape[0] // BATCHES, shuffle=False,
                    verbose=0, **kwargs)["time"][1:]
    slowest = [max(t) for t in zip(*world.allgather(times), strict=True)]
    return float(np.median(slowest)) / BATCHES


def measure(name: str, comm) -> dict:
    """The timings of workload `name` on the ranks of `comm` (see the module docstring)."""
    import fastbp as fb
    size, rank = comm.Get_size(), comm.Get_rank()
    sizes, activation, batch, loss = WORKLOADS[name]
    X, y = make_data(sizes, loss, BATCHES * batch, "float32")
    mine = slice(batch * rank // size, batch * (rank + 1) // size)
    result = {}
    with fb.threads(fb.distributed.Ranks(comm).threads):   # the default threads of a rank
        alone = fb.mlp(sizes, activation=activation, seed=0)   # a rank's compute: its rows
        part = np.concatenate([np.arange(b * batch, (b + 1) * batch)[mine]
                               for b in range(BATCHES)])
        result["rank_compute_s"] = step_seconds(comm, alone, X[part], y[part], loss=loss)
        del alone
    for overlap in (True, False):
        ranks = fb.distributed.Ranks(comm, overlap=overlap)
        net = fb.mlp(sizes, activation=activation, seed=0)
        result["step_s" if overlap else "step_no_overlap_s"] = step_seconds(
            comm, net, X, y, loss=loss, comm=ranks, shard="auto")
    result["threads_per_rank"], result["bucket_bytes"] = ranks.threads, ranks.bucket_bytes()
    grads = net.grads
    result["grad_bytes"] = grads.nbytes
    result["allreduce_s"] = median_seconds(lambda: ranks.sum(grads), comm, 5)
    result["allreduce_share"] = result["allreduce_s"] / result["step_no_overlap_s"]
    if size > 1:
        result["bus_gb_per_s"] = (2 * (size - 1) / size * grads.nbytes /
                                  result["allreduce_s"] / 1e9)
    if size == 1:
        result["seconds_per_sample"] = result["rank_compute_s"] / batch
    return result


def worker(workloads: list[str]) -> None:
    """Under mpirun: time every workload, print rank 0's results as one JSON line."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    out = {"ranks": comm.Get_size(),
           "workloads": {name: measure(name, comm) for name in workloads}}
    if comm.Get_rank() == 0:
        print(json.dumps(out), flush=True)


def launch(ranks: int, workloads: list[str]) -> dict:
    """Run the worker under `mpirun -n ranks`; its JSON result."""
    command = [shutil.which("mpirun") or "mpirun", "--oversubscribe", "--bind-to", "none",
               "-n", str(ranks)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.insert(1, "--allow-run-as-root")
    command += [sys.executable, os.path.abspath(__file__), "--worker", "--workloads",
                *workloads]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ring_seconds(nodes: int, grad_bytes: int, bandwidth: float) -> float:
    """A ring allreduce of `grad_bytes` over `nodes` at `bandwidth` bytes/s (no latency)."""
    return 2 * (nodes - 1) / nodes * grad_bytes / bandwidth


def model(per_sample: float, batch: int, grad_bytes: int) -> list[dict]:
    """Strong and weak scaling of a workload (see the module docstring), per link and N."""
    rows = []
    for link, bandwidth in LINKS.items():
        for n in NODES:
            a = ring_seconds(n, grad_bytes, bandwidth)
            strong, weak = per_sample * batch / n, per_sample * batch

            def overlapped(compute, a=a):
                return compute / 3 + max(2 * compute / 3, a)

            rows.append({"link": link, "nodes": n, "allreduce_ms": a * 1e3,
                         "strong_speedup": per_sample * batch / (strong + a),
                         "strong_speedup_overlap": per_sample * batch / overlapped(strong),
                         "weak_efficiency": weak / (weak + a),
                         "weak_efficiency_overlap": weak / overlapped(weak)})
    return rows


def report(runs: list[dict], workloads: list[str]) -> dict:
    """Print the measured table and the model; return both."""
    print("measured on this machine (medians; N ranks share its cores)")
    print("workload  ranks  threads/rank  step ms  no-overlap ms  allreduce ms  share  "
          "bus GB/s  rank compute ms")
    for run in runs:
        for name in workloads:
            r = run["workloads"][name]
            bus = f"{r['bus_gb_per_s']:8.2f}" if "bus_gb_per_s" in r else "       -"
            print(f"{name:8}  {run['ranks']:5}  {r['threads_per_rank']:12}  "
                  f"{r['step_s'] * 1e3:7.2f}  {r['step_no_overlap_s'] * 1e3:13.2f}  "
                  f"{r['allreduce_s'] * 1e3:12.2f}  {r['allreduce_share']:5.0%}  {bus}  "
                  f"{r['rank_compute_s'] * 1e3:15.2f}")
    models = {}
    single = next((run for run in runs if run["ranks"] == 1), None)
    if single is not None:
        print("\nmodel: N nodes like this one (c from 1 rank, ring allreduce, no latency)")
        print("workload  link        N  allreduce ms  strong x (overlap)  weak eff (overlap)")
        for name in workloads:
            r = single["workloads"][name]
            batch = WORKLOADS[name][2]
            models[name] = model(r["seconds_per_sample"], batch, r["grad_bytes"])
            for m in models[name]:
                print(f"{name:8}  {m['link']:10}  {m['nodes']:2}  {m['allreduce_ms']:12.2f}  "
                      f"{m['strong_speedup']:6.2f} ({m['strong_speedup_overlap']:5.2f})     "
                      f"{m['weak_efficiency']:6.0%} ({m['weak_efficiency_overlap']:4.0%})")
    return {"runs": runs, "model": models}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--workloads", nargs="+", default=["mnist", "wide"],
                        choices=sorted(WORKLOADS))
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.workloads)
        return
    results = report([launch(n, args.workloads) for n in args.ranks], args.workloads)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
