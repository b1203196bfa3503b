"""Model files written by fastbp 0.1.0 load and predict as they did then.

The recorded outputs are matched bit for bit on a machine whose BLAS rounds as the recording
machine's did; elsewhere the products' kernels may round differently, by a few units in the
last place of the largest output (a misread file is off by far more).
"""
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


def assert_recorded(got, name, net):
    """`got` equals what 0.1.0 recorded for `name`, to a few ulps of its largest value."""
    want = expected(name, net)
    ulp = np.finfo(net.dtype).eps * np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=8 * ulp)


@pytest.mark.parametrize("name", MODELS)
def test_each_layer_kind_loads_and_predicts_the_same(name):
    net = fb.load(os.path.join(FIXTURES, f"{name}.npz"))
    assert net.metadata == {"case": name}
    assert_recorded(net.predict(X), name, net)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_saved_optimizer_state_resumes_the_same_trajectory(optimizer):
    net = fb.load(os.path.join(FIXTURES, f"optimizer_{optimizer}.npz"))
    assert net.optimizer.step_count == 6
    assert_recorded(net.predict(X), f"optimizer_{optimizer}", net)
    net.fit(X, Y, optimizer=net.optimizer, epochs=1, batch_size=16, seed=5, verbose=0)
    assert_recorded(net.predict(X), f"optimizer_{optimizer}_resumed", net)


def test_standardizer_is_restored():
    net = fb.load(os.path.join(FIXTURES, "standardizer_mse.npz"))
    assert net.standardizer is not None
    assert_recorded(net.predict(X * 10 + 3), "standardizer_mse", net)


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
