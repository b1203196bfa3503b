"""``fastbp export MODEL ONNX``: models from ``fastbp train`` (and from 0.1.0) run in
onnxruntime as ``fastbp predict`` and ``net.predict`` compute them. Run in-process (for speed)
but for one end-to-end run; tests that need onnx or onnxruntime skip without them."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbp as fb
from fastbp.cli.commands import main

PACKAGE_ROOT = str(Path(fb.__file__).resolve().parent.parent)
FIXTURES = Path(__file__).resolve().parent.parent / "data" / "v0.1.0"


def run_onnx(path, X) -> dict[str, np.ndarray]:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": X}), strict=True))


def write_rows(path, header, rows) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def predicted(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))[1:]


def relative_difference(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture
def data(tmp_path, monkeypatch):
    """Features far from zero (the standardisation matters) and targets of every kind."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    n = 120
    X = rng.normal(size=(n, 3)) * [2.0, 0.5, 40.0] + [10.0, -3.0, 900.0]
    labels = np.array(["ant", "bee", "cat"])[rng.integers(0, 3, size=n)]
    binary = np.array(["no", "yes"])[rng.integers(0, 2, size=n)]
    value = X @ [1.0, -2.0, 0.05] + rng.normal(size=n)
    write_rows("train.csv", ["a", "b", "c", "species", "answer", "value"],
               [[*x, s, b, v] for x, s, b, v in zip(X, labels, binary, value, strict=True)])
    write_rows("new.csv", ["a", "b", "c"], X[:40])
    return X[:40]


def train_and_export(args, *export_args) -> fb.Sequential:
    assert main(["train", "train.csv", "--epochs", "3", "--quiet", "--out", "m.npz",
                 *args]) == 0
    assert main(["export", "m.npz", "m.onnx", *export_args]) == 0
    assert main(["predict", "m.npz", "new.csv", "--out", "p.csv"]) == 0
    return fb.load("m.npz")


def test_a_classifier_exports_with_its_class_names(data, capsys):
    pytest.importorskip("onnx")
    net = train_and_export(["--drop", "answer,value", "--target", "species"])
    assert "exported m.npz to" in capsys.readouterr().out
    got = run_onnx("m.onnx", data.astype(np.float32))
    assert relative_difference(got["output"], net.predict(data)) <= 1e-5
    z = net.predict(data).astype(np.float64)
    softmax = np.exp(z - z.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    assert relative_difference(got["probabilities"], softmax) <= 1e-5
    assert got["label"].tolist() == [row[0] for row in predicted("p.csv")]


def test_a_binary_model_exports_sigmoid_probabilities_and_its_labels(data):
    pytest.importorskip("onnx")
    net = train_and_export(["--drop", "species,value", "--target", "answer", "--loss", "bce"])
    got = run_onnx("m.onnx", data.astype(np.float32))
    z = net.predict(data)
    assert relative_difference(got["probabilities"], 1 / (1 + np.exp(-z.astype(float)))) <= 1e-5
    assert got["label"].tolist() == [row[0] for row in predicted("p.csv")]


def test_a_regression_model_exports_in_the_targets_units(data):
    pytest.importorskip("onnx")
    net = train_and_export(["--drop", "species,answer", "--target", "value", "--loss", "mse"])
    got = run_onnx("m.onnx", data.astype(np.float32))
    assert list(got) == ["output"]
    assert relative_difference(got["output"], net.predict(data)) <= 1e-5
    written = np.array([float(row[0]) for row in predicted("p.csv")])
    assert relative_difference(got["output"][:, 0], written) <= 1e-5


def test_export_options_reach_the_graph(data):
    onnx = pytest.importorskip("onnx")
    train_and_export(["--drop", "answer,value", "--target", "species"], "--opset", "17",
                     "--outputs", "raw")
    model = onnx.load("m.onnx")
    assert model.opset_import[0].version == 17
    assert [output.name for output in model.graph.output] == ["output"]
    net = fb.Sequential(fb.Dense(3, 4), fb.BatchNorm(4), fb.ReLU(), fb.Dense(4, 2))
    net.save("bn.npz")
    assert main(["export", "bn.npz", "bn.onnx", "--fold-batchnorm"]) == 0
    assert "BatchNormalization" not in [node.op_type for node in onnx.load("bn.onnx").graph.node]


def test_a_model_of_0_1_0_exports_its_recorded_scaling(tmp_path):
    """0.1.0 kept the feature statistics in the metadata: the export standardises with them,
    as ``fastbp predict`` does."""
    pytest.importorskip("onnx")
    out = tmp_path / "old.onnx"
    assert main(["export", str(FIXTURES / "cli_model.npz"), str(out)]) == 0
    with open(FIXTURES / "cli_train.csv", newline="") as f:
        rows = list(csv.reader(f))
    features = rows[0].index("label")
    X = np.array([[float(v) for i, v in enumerate(row) if i != features] for row in rows[1:]],
                 dtype=np.float32)
    labels = run_onnx(out, X)["label"].tolist()
    assert labels == [row[0] for row in predicted(FIXTURES / "cli_predictions.csv")]


@pytest.mark.parametrize("args, message", [
    (["missing.npz", "m.onnx"], "missing.npz: no such model file"),
    (["m.npz", "nowhere/m.onnx"], "ONNX: cannot write 'nowhere/m.onnx': no such directory"),
    (["m.npz", "m.onnx", "--opset", "7"], "--opset: expected an opset from 13"),
])
def test_bad_export_arguments_are_one_error_line(data, capsys, args, message):
    pytest.importorskip("onnx")
    fb.mlp([3, 2]).save("m.npz")
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fastbp: error: {message}"), err


def test_export_without_onnx_says_how_to_install_it(data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    fb.mlp([3, 2]).save("m.npz")
    assert main(["export", "m.npz", "m.onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['fastbp: error: ONNX export needs the onnx package, which is not installed: '
                   'pip install "fastbp[onnx]"']
    assert not os.path.exists("m.onnx")


def test_export_end_to_end(data, tmp_path):
    """``python -m fastbp export`` in a subprocess, as a user runs it."""
    pytest.importorskip("onnx")
    assert main(["train", "train.csv", "--drop", "answer,value", "--target", "species",
                 "--epochs", "2", "--quiet", "--out", "m.npz"]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", "fastbp", "export", "m.npz", "m.onnx"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"exported m.npz to {tmp_path / 'm.onnx'}: ONNX opset 21, input 'input' (3 features, "
        f"float32), outputs output, probabilities, label")
    assert run_onnx(tmp_path / "m.onnx", data.astype(np.float32))["label"].shape == (40,)
