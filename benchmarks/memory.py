"""Peak memory of one fit epoch of the `mnist` workload above the process's baseline.

    python benchmarks/memory.py [--samples 8192] [--threads 2]

Each library runs in a fresh process that imports it alone: it builds the data set, then
records its resident set size (the baseline) and resets the kernel's peak counter; after one
epoch of Adam training (batch 128, shuffled) it reads the peak (VmHWM). The budget is the memory
the training needs in principle: parameters + optimizer state (Adam: two moments) + activations
of one batch + one batch of inputs. Linux only (/proc/self/status, /proc/self/clear_refs).
"""
import argparse
import json
import os
import subprocess
import sys

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys
lib, samples, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if lib == "torch":
    import torch
else:
    import fastbp as fb
from benchmarks.common import WORKLOADS, make_data

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

sizes, activation, batch, loss = WORKLOADS["mnist"]
X, y = make_data(sizes, loss, samples, "float32")
if lib == "fastbp":
    fb.set_num_threads(threads)
else:
    torch.set_num_threads(threads)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
baseline = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
if lib == "fastbp":
    net = fb.mlp(sizes, activation=activation, seed=0)
    net.fit(X, y, loss=loss, optimizer="adam", lr=1e-3, epochs=1, batch_size=batch, verbose=0)
else:
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(samples)
    for start in range(0, samples, batch):
        idx = order[start:start + batch]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(Xt[idx]), yt[idx]).backward()
        opt.step()
print(json.dumps({"baseline": baseline, "peak": status("VmHWM")}))
"""


def budget_bytes(sizes: list[int], batch: int) -> dict:
    """What one Adam epoch needs in principle, in bytes (float32)."""
    params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:], strict=False))
    parts = {"parameters": 4 * params, "optimizer state": 8 * params,
             "activations": 4 * batch * sum(sizes[1:]), "batch": 4 * batch * sizes[0]}
    parts["total"] = sum(parts.values())
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, BENCHMARKS)
    from benchmarks.common import WORKLOADS
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (BENCHMARKS, os.environ.get("PYTHONPATH")) if p))
    sizes, _, batch, _ = WORKLOADS["mnist"]
    budget = budget_bytes(sizes, batch)
    print("budget: " + ", ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in budget.items()))
    results = {}
    for lib in ("fastbp", "torch"):
        proc = subprocess.run([sys.executable, "-c", CHILD, lib, str(args.samples),
                               str(args.threads)], capture_output=True, text=True,
                              env=env)
        if proc.returncode != 0:
            print(f"{lib}: skipped ({proc.stderr.strip().splitlines()[-1]})")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        above = r["peak"] - r["baseline"]
        results[lib] = above
        print(f"{lib}: peak {above / 2**20:.2f} MiB above a baseline of "
              f"{r['baseline'] / 2**20:.1f} MiB = {above / budget['total']:.2f} x budget")
    if "torch" in results:
        print(f"fastbp / torch: {results['fastbp'] / results['torch']:.2f}")


if __name__ == "__main__":
    main()
