"""The ``fastbp`` command line, end to end in a subprocess (``python -m fastbp``)."""
from __future__ import annotations

import csv
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbp as fb
from fastbp.datasets import load_digits, train_test_split

PACKAGE_ROOT = str(Path(fb.__file__).resolve().parent.parent)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m fastbp ARGS`` in `cwd` with the fastbp under test importable."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "fastbp", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def metric(stdout: str, name: str) -> float:
    """The value printed on the line ``<name>: <value>``."""
    match = re.search(rf"^{re.escape(name)}: ([-+0-9.eE]+)", stdout, re.MULTILINE)
    assert match, f"no '{name}:' line in output:\n{stdout}"
    return float(match.group(1))


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def write_csv(path: Path, header: list[str], columns: list) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(zip(*columns, strict=True))


def blobs(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian blobs in 3-D: features (n, 3), labels 0..2."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    centres = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])
    return centres[labels] + rng.normal(scale=0.5, size=(n, 3)), labels


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """``fastbp train`` with no arguments, run once for the module."""
    cwd = tmp_path_factory.mktemp("digits")
    return cwd, run_cli("train", cwd=cwd)


# ----------------------------------------------------------------------------- shipped dataset
def test_load_digits_shapes_and_values():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and np.all(X == np.round(X))
    assert np.array_equal(np.unique(y), np.arange(10))
    assert np.bincount(y).min() >= 170


def test_train_test_split_is_seeded_and_disjoint():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_fraction=0.3, seed=1)
    assert X_tr.shape == (7, 2) and X_te.shape == (3, 2)
    assert sorted(np.concatenate([y_tr, y_te])) == list(range(10))
    assert np.array_equal(X_tr[:, 0] / 2, y_tr)
    again = train_test_split(X, y, test_fraction=0.3, seed=1)
    assert np.array_equal(again[3], y_te)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(X, y, test_fraction=1.0)


# ------------------------------------------------------------------------------------- train
def test_train_without_arguments_reaches_95_percent(digits_run):
    cwd, result = digits_run
    assert result.returncode == 0, result.stderr
    assert "epoch 30/30" in result.stdout          # progress per epoch
    assert metric(result.stdout, "test accuracy") >= 0.95
    assert metric(result.stdout, "wall time") > 0
    net = fb.load(cwd / "digits_model.npz")
    assert net.metadata["classes"] == list(range(10))
    assert net.standardizer.n_features == 64 and net.target_standardizer is None


def test_train_says_where_the_default_model_went(digits_run):
    """Without --out the model is DATA_model.npz in the current folder, its absolute path the
    last line, readable as any file the user makes (the umask's mode, not 0600)."""
    cwd, result = digits_run
    path = cwd / "digits_model.npz"
    assert result.stdout.splitlines()[-1] == f"saved model to {path}"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_default_model_never_replaces_an_earlier_one(small_csv):
    """A second run without --out numbers its model; --out names (and replaces) a file."""
    for expected in ("d_model.npz", "d_model-2.npz", "d_model-3.npz"):
        result = run_cli("train", "d.csv", "--epochs", "1", "--quiet", cwd=small_csv)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == f"saved model to {small_csv / expected}"
    before = (small_csv / "d_model.npz").read_bytes()
    result = run_cli("train", "d.csv", "--epochs", "2", "--quiet", "--out", "d_model.npz",
                     cwd=small_csv)
    assert result.returncode == 0, result.stderr
    assert (small_csv / "d_model.npz").read_bytes() != before
    assert not (small_csv / "d_model-4.npz").exists()


def test_predict_digits_csv_with_original_labels(digits_run, tmp_path):
    cwd, _ = digits_run
    X, y = load_digits()
    header = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    write_csv(tmp_path / "digits.csv", header, list(X[:100].T.astype(int)))
    result = run_cli("predict", str(cwd / "digits_model.npz"), "digits.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(result.stdout.splitlines()))
    assert rows[0] == ["digit"] and len(rows) == 101
    predicted = np.array([int(row[0]) for row in rows[1:]])
    assert np.mean(predicted == y[:100]) >= 0.9


def test_train_and_predict_csv_with_string_labels(tmp_path):
    X, labels = blobs()
    names = np.array(["setosa", "versicolor", "virginica"])[labels]
    ids = [f"id{i}" for i in range(len(labels))]
    write_csv(tmp_path / "train.csv", ["id", "x1", "species", "x2", "x3"],
              [ids, X[:, 0], names, X[:, 1], X[:, 2]])
    result = run_cli("train", "--data", "train.csv", "--target", "species", "--drop", "id",
                     "--layers", "16", "--lr", "0.01", "--epochs", "15", "--threads", "2",
                     "--quiet", "--out", "species.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epoch 1/" not in result.stdout             # --quiet
    assert metric(result.stdout, "test accuracy") >= 0.9
    meta = fb.load(tmp_path / "species.npz").metadata
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    assert meta["feature_names"] == ["x1", "x2", "x3"] and meta["target_name"] == "species"

    # new data: other column order, no target, no id; predictions go to --out
    write_csv(tmp_path / "new.csv", ["x3", "x2", "x1"], [X[:50, 2], X[:50, 1], X[:50, 0]])
    result = run_cli("predict", "species.npz", "new.csv", "--out", "preds.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_rows(tmp_path / "preds.csv")
    assert rows[0] == ["species"] and len(rows) == 51
    assert {row[0] for row in rows[1:]} <= set(meta["classes"])
    assert np.mean(np.array([row[0] for row in rows[1:]]) == names[:50]) >= 0.9


def test_train_csv_numeric_labels_default_target_and_bce(tmp_path):
    X, labels = blobs()
    keep = labels < 2
    digit = np.where(labels[keep] == 0, 3, 7)         # labels 3 and 7, target = last column
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "digit"], [*X[keep].T, digit])
    for loss in ("cross_entropy", "bce"):
        result = run_cli("train", "--data", "d.csv", "--loss", loss, "--layers", "8,8",
                         "--activation", "tanh", "--optimizer", "sgd", "--lr", "0.1",
                         "--epochs", "10", "--batch-size", "16", "--quiet",
                         "--out", f"{loss}.npz", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        result = run_cli("predict", f"{loss}.npz", "d.csv", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        rows = result.stdout.splitlines()
        assert rows[0] == "digit" and len(rows) == keep.sum() + 1
        assert set(rows[1:]) <= {"3", "7"}
        assert np.mean(np.array(rows[1:], dtype=int) == digit) >= 0.9


def test_train_and_predict_npz(tmp_path):
    X, labels = blobs()
    np.savez(tmp_path / "train.npz", X=X, y=labels)
    result = run_cli("train", "--data", "train.npz", "--epochs", "10", "--layers", "16",
                     "--lr", "0.01", "--batch-size", "32", "--out", "m.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epoch 10/10" in result.stdout
    assert metric(result.stdout, "test accuracy") >= 0.9
    np.savez(tmp_path / "new.npz", X=X[:30])
    result = run_cli("predict", "m.npz", "new.npz", "--out", "p.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_rows(tmp_path / "p.csv")
    assert rows[0] == ["y"] and len(rows) == 31
    assert {row[0] for row in rows[1:]} <= {"0", "1", "2"}


def test_data_file_as_positional_argument(tmp_path):
    X, labels = blobs(n=60)
    np.savez(tmp_path / "train.npz", X=X, y=labels)
    result = run_cli("train", "train.npz", "--epochs", "2", "--quiet", "--out", "m.npz",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.npz").exists()
    both = run_cli("train", "train.npz", "--data", "train.npz", cwd=tmp_path)
    assert both.returncode == 2 and "--data" in both.stderr


@pytest.mark.skipif(shutil.which("fastbp") is None, reason="console script not installed")
def test_console_script_is_installed(tmp_path):
    result = subprocess.run(["fastbp", "--version"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("fastbp ")


def test_regression_predictions_are_in_target_units(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    price = 1000.0 + 50.0 * X[:, 0] - 20.0 * X[:, 1]
    write_csv(tmp_path / "houses.csv", ["size", "age", "price"], [X[:, 0], X[:, 1], price])
    result = run_cli("train", "--data", "houses.csv", "--loss", "mse", "--layers", "16",
                     "--epochs", "30", "--lr", "0.01", "--quiet", "--out", "m.npz",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert metric(result.stdout, "test rmse") < 25.0
    result = run_cli("predict", "m.npz", "houses.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0] == "price" and len(rows) == 301
    predicted = np.array(rows[1:], dtype=float)
    assert np.sqrt(np.mean((predicted - price) ** 2)) < 25.0
    in_python = fb.load(tmp_path / "m.npz").predict(X)      # raw features in, prices out
    assert np.array_equal(in_python[:, 0], np.array(rows[1:], dtype=np.float32))


def test_regression_model_with_0_1_0_metadata_scaling_still_predicts(tmp_path):
    """0.1.0 kept both scalings in the metadata; predict applies them as it did."""
    rng = np.random.default_rng(3)
    X = rng.normal(loc=5.0, scale=2.0, size=(20, 2))
    net = fb.mlp([2, 4, 1], dtype="float64")
    net.metadata = {"fastbp_cli": 1, "loss": "mse", "feature_names": ["a", "b"],
                    "target_name": "price", "feature_mean": [5.0, 4.0],
                    "feature_std": [2.0, 0.5], "task": "regression", "target_mean": [100.0],
                    "target_std": [10.0], "output_names": ["price"]}
    net.save(tmp_path / "old.npz")
    write_csv(tmp_path / "x.csv", ["a", "b"], [X[:, 0], X[:, 1]])
    result = run_cli("predict", "old.npz", "x.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    want = net.predict((X - [5.0, 4.0]) / [2.0, 0.5])[:, 0] * 10.0 + 100.0
    np.testing.assert_array_equal(np.array(result.stdout.splitlines()[1:], dtype=float), want)


def test_model_from_cli_predicts_raw_features_in_python(digits_run, tmp_path):
    cwd, _ = digits_run
    X, _ = load_digits()
    header = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    write_csv(tmp_path / "digits.csv", header, list(X[:200].T.astype(int)))
    result = run_cli("predict", str(cwd / "digits_model.npz"), "digits.csv", cwd=tmp_path)
    written = np.array([int(row) for row in result.stdout.splitlines()[1:]])
    net = fb.load(cwd / "digits_model.npz")
    assert np.array_equal(net.predict(X[:200]).argmax(axis=1), written)


# --------------------------------------------------------------------------------- gradcheck
def test_gradcheck_command_passes(tmp_path):
    result = run_cli("gradcheck", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("Dense", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "Softplus", "GELU",
                 "Identity"):
        assert f"{name}(" in result.stdout
    for loss in ("cross_entropy", "mse", "bce"):
        assert f"loss {loss}:" in result.stdout
    assert result.stdout.count("gradcheck passed:") == 3
    assert "FAIL" not in result.stdout


# ---------------------------------------------------------------------------------- bad input
@pytest.fixture
def small_csv(tmp_path):
    X, labels = blobs(n=40)
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], [*X.T, labels])
    write_csv(tmp_path / "text.csv", ["a", "b", "label"], [X[:, 0], ["x"] * 40, labels])
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "missing.csv"], "missing.csv: no such file"),
    (["train", "--data", "d.csv", "--target", "nope"], "no column 'nope'"),
    (["train", "--data", "d.csv", "--drop", "nope"], "no column 'nope'"),
    (["train", "--data", "d.csv", "--layers", "12,a"], "--layers"),
    (["train", "--data", "d.csv", "--layers", "-4"], "--layers"),
    (["train", "--data", "d.csv", "--lr", "0"], "--lr"),
    (["train", "--data", "d.csv", "--epochs", "x"], "--epochs"),
    (["train", "--data", "d.csv", "--loss", "hinge"], "--loss"),
    (["train", "--data", "text.csv"], "feature column 'b' must be numeric, got 'x' on line 2"),
    (["train", "--data", "d.csv", "--out", "no/such/dir/m.npz"], "no such directory"),
    (["predict", "missing.npz", "d.csv"], "missing.npz: no such model file"),
    (["predict", "d.csv", "d.csv"], "d.csv"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_exits_2_with_one_line(small_csv, args, message):
    result = run_cli(*args, cwd=small_csv)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastbp: error: "), result.stderr
    assert message in lines[0]


def test_predict_with_missing_feature_column(small_csv):
    result = run_cli("train", "--data", "d.csv", "--epochs", "1", "--quiet", cwd=small_csv)
    assert result.returncode == 0, result.stderr
    write_csv(small_csv / "partial.csv", ["a", "b"], [[1.0], [2.0]])
    result = run_cli("predict", "d_model.npz", "partial.csv", cwd=small_csv)
    assert result.returncode == 2
    assert result.stderr.startswith("fastbp: error: partial.csv: missing the feature column")
    assert "'c'" in result.stderr


def test_choices_and_defaults_come_from_the_registries():
    from fastbp.cli import commands
    from fastbp.nn.activations import ACTIVATIONS
    from fastbp.registry import LOSSES, OPTIMIZERS
    train = commands.build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: a.choices for a in train._actions if a.choices}
    assert choices["activation"] == ACTIVATIONS.names()
    assert choices["optimizer"] == OPTIMIZERS.names() == ["adam", "adamw", "rmsprop", "sgd"]
    assert set(choices["loss"]) <= set(LOSSES)
    assert [commands.default_lr(name) for name in ("adam", "adamw", "sgd", "rmsprop")] == [
        1e-3, 1e-3, 1e-2, 1e-2]
