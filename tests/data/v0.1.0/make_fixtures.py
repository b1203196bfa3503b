"""How the model files beside this script were written, with fastbp 0.1.0 (kept as a record;
the files must never be regenerated with a later version): python make_fixtures.py DIR."""
import csv
import json
import os
import subprocess
import sys

import numpy as np

import fastbp as fb

out = sys.argv[1]
rng = np.random.default_rng(7)
X = rng.normal(size=(40, 6))
y = rng.integers(0, 3, 40)

def dense_acts():
    return fb.Sequential(fb.Dense(6, 8, init="he"), fb.ReLU(), fb.Dense(8, 8, bias=False),
                         fb.Sigmoid(), fb.Dense(8, 8, init="lecun", bias_init="uniform"),
                         fb.Tanh(), fb.Identity(), fb.Dense(8, 8), fb.LeakyReLU(0.2),
                         fb.Dense(8, 3), seed=1)

cases = {
    "dense_activations": (dense_acts, {}),
    "elu_gelu_softplus": (lambda: fb.Sequential(fb.Dense(6, 8), fb.ELU(0.7), fb.Dense(8, 8),
                          fb.GELU(), fb.Dense(8, 8), fb.GELU("tanh"), fb.Dense(8, 8),
                          fb.Softplus(2.0, 5.0), fb.Dense(8, 3), dtype="float64", seed=2), {}),
    "batchnorm": (lambda: fb.Sequential(fb.Dense(6, 8), fb.BatchNorm(8, momentum=0.2),
                  fb.ReLU(), fb.Dense(8, 3), seed=3), {}),
    "dropout": (lambda: fb.Sequential(fb.Dense(6, 8), fb.ReLU(), fb.Dropout(0.3),
                fb.Dense(8, 3), seed=4), {}),
    "residual": (lambda: fb.Sequential(fb.Dense(6, 8), fb.Residual(fb.Dense(8, 8), fb.ReLU(),
                 fb.Residual(fb.BatchNorm(8), fb.Dense(8, 8))), fb.Dense(8, 3), seed=5), {}),
}
optimizers = {"adam": lambda n: fb.Adam(n, lr=0.01), "adamw": lambda n: fb.AdamW(n, lr=0.01),
              "sgd": lambda n: fb.SGD(n, lr=0.05, momentum=0.9, nesterov=True),
              "rmsprop": lambda n: fb.RMSprop(n, lr=0.01, momentum=0.5, centered=True)}
expected = {}
for name, (make, _) in cases.items():
    net = make()
    net.fit(X, y, epochs=2, batch_size=16, verbose=0)
    net.metadata = {"case": name}
    net.save(os.path.join(out, f"{name}.npz"))
    expected[name] = net.predict(X).tolist()
for name, make in optimizers.items():
    net = fb.mlp([6, 8, 3], seed=6)
    net.fit(X, y, optimizer=make(net), epochs=2, batch_size=16, verbose=0)
    net.save(os.path.join(out, f"optimizer_{name}.npz"), include_optimizer=True)
    expected[f"optimizer_{name}"] = net.predict(X).tolist()
    net.fit(X, y, optimizer=net.optimizer, epochs=1, batch_size=16, seed=5, verbose=0)
    expected[f"optimizer_{name}_resumed"] = net.predict(X).tolist()
net = fb.mlp([6, 8, 1], activation="tanh", seed=8)
net.standardizer = fb.Standardizer().fit(X * 10 + 3)
net.fit(X * 10 + 3, X[:, :1], loss="mse", epochs=2, batch_size=16, verbose=0)
net.save(os.path.join(out, "standardizer_mse.npz"))
expected["standardizer_mse"] = net.predict(X * 10 + 3).tolist()
np.savez(os.path.join(out, "inputs.npz"), X=X, y=y)
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f)
# a model trained by the command line, and what `fastbp predict` writes for it
with open(os.path.join(out, "cli_train.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([f"f{i}" for i in range(6)] + ["label"])
    for row, label in zip(X, y, strict=True):
        w.writerow([f"{v:.6f}" for v in row] + [["cat", "dog", "emu"][label]])
subprocess.run([sys.executable, "-m", "fastbp", "train", os.path.join(out, "cli_train.csv"),
                "--target", "label", "--layers", "8", "--epochs", "3", "--quiet",
                "--out", os.path.join(out, "cli_model.npz")], check=True)
subprocess.run([sys.executable, "-m", "fastbp", "predict", os.path.join(out, "cli_model.npz"),
                os.path.join(out, "cli_train.csv"), "--out",
                os.path.join(out, "cli_predictions.csv")], check=True)
