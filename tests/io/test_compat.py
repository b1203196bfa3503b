"""Model files written by fastbp 0.1.0 load and predict exactly as they did then."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastbp as fb

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "data", "v0.1.0")
with open(os.path.join(FIXTURES, "expected.json")) as f:
    EXPECTED = json.load(f)
with np.load(os.path.join(FIXTURES, "inputs.npz")) as data:
    X, Y = data["X"], data["y"]

MODELS = ["dense_activations", "elu_gelu_softplus", "batchnorm", "dropout", "residual"]
OPTIMIZERS = ["adam", "adamw", "sgd", "rmsprop"]


def expected(name, net):
    return np.array(EXPECTED[name], dtype=net.dtype)


@pytest.mark.parametrize("name", MODELS)
def test_each_layer_kind_loads_and_predicts_the_same_bits(name):
    net = fb.load(os.path.join(FIXTURES, f"{name}.npz"))
    assert net.metadata == {"case": name}
    assert np.array_equal(net.predict(X), expected(name, net))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_saved_optimizer_state_resumes_the_same_trajectory(optimizer):
    net = fb.load(os.path.join(FIXTURES, f"optimizer_{optimizer}.npz"))
    assert net.optimizer.step_count == 6
    assert np.array_equal(net.predict(X), expected(f"optimizer_{optimizer}", net))
    net.fit(X, Y, optimizer=net.optimizer, epochs=1, batch_size=16, seed=5, verbose=0)
    assert np.array_equal(net.predict(X), expected(f"optimizer_{optimizer}_resumed", net))


def test_standardizer_is_restored():
    net = fb.load(os.path.join(FIXTURES, "standardizer_mse.npz"))
    assert net.standardizer is not None
    assert np.array_equal(net.predict(X * 10 + 3), expected("standardizer_mse", net))


def test_command_line_model_predicts_the_same_labels(tmp_path):
    out = tmp_path / "predictions.csv"
    package_root = os.path.dirname(os.path.dirname(fb.__file__))   # the fastbp under test
    env = dict(os.environ, PYTHONPATH=package_root)
    subprocess.run([sys.executable, "-m", "fastbp", "predict",
                    os.path.join(FIXTURES, "cli_model.npz"),
                    os.path.join(FIXTURES, "cli_train.csv"), "--out", str(out)],
                   check=True, capture_output=True, cwd=tmp_path, env=env)
    with open(out) as got, open(os.path.join(FIXTURES, "cli_predictions.csv")) as want:
        assert list(csv.reader(got)) == list(csv.reader(want))
