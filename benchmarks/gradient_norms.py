"""Per-layer gradient norms that fit(monitor=True) records: vanishing gradients in a deep
sigmoid network against the same depth with ReLU, He initialisation and BatchNorm.

    python benchmarks/gradient_norms.py [--depth 20] [--epochs 3]

Both networks are trained on the shipped digits data (Adam, lr 1e-3, batch 64); the table lists
hist["grad_norm"] of the last epoch (mean over its steps of each Dense layer's gradient L2 norm)
(BatchNorm's own columns left out) and the ratio of the first layer's norm to the last one's,
with the warnings fit gave.
"""
import argparse
import warnings

import numpy as np

import fastbp as fb
from fastbp.datasets import load_digits


def build(kind: str, depth: int) -> fb.Sequential:
    widths = [64] + [32] * (depth - 1) + [10]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        last = i == depth - 1
        if kind == "sigmoid":
            layers.append(fb.Dense(n_in, n_out, init="xavier"))
            if not last:
                layers.append(fb.Sigmoid())
        else:
            layers.append(fb.Dense(n_in, n_out, init="he"))
            if not last:
                layers += [fb.BatchNorm(n_out), fb.ReLU()]
    return fb.Sequential(*layers, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    X, y = load_digits()
    X = X / 16.0
    results = {}
    for kind in ("sigmoid", "relu_he_batchnorm"):
        net = build(kind, args.depth)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hist = net.fit(X, y, epochs=args.epochs, batch_size=64, verbose=0, monitor=True)
        dense = [i for i, name in enumerate(hist.layer_names) if name.endswith("Dense")]
        norms = np.asarray(hist["grad_norm"])[-1, dense]
        results[kind] = (norms, [str(w.message).split(":")[0] for w in caught], hist["loss"][-1])
    print(f"| Dense layer | {' | '.join(results)} |")
    print("|---:|" + "---:|" * len(results))
    for layer in range(args.depth):
        print(f"| {layer} | " + " | ".join(f"{r[0][layer]:.3e}" for r in results.values()) + " |")
    print("| first / last | " + " | ".join(f"{r[0][0] / r[0][-1]:.1e}" for r in results.values())
          + " |")
    print("| training loss | " + " | ".join(f"{r[2]:.3f}" for r in results.values()) + " |")
    for kind, (_, caught, _) in results.items():
        print(f"{kind}: warnings: {caught or 'none'}")


if __name__ == "__main__":
    main()
