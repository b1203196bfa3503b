"""The command line against malformed models, hostile metadata and awkward CSV files: every
failure is one ``fastbp: error: ...`` line with exit status 2 (run in-process, for speed)."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest

import fastbp as fb
from fastbp.cli.commands import main


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A directory holding blobs.csv (3 features, labels 0..2) and model.npz trained on it."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(60, 3)), rng.integers(0, 3, size=60)
    rows = [[*x, k] for x, k in zip(X, labels, strict=True)]
    write_rows("blobs.csv", ["a", "b", "c", "label"], rows)
    assert main(["train", "blobs.csv", "--epochs", "1", "--quiet", "--out", "model.npz"]) == 0
    return tmp_path


def write_rows(path, header, rows) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def one_error_line(capsys, status: int) -> str:
    """The single stderr line of a failed command whose exit status was `status`."""
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("fastbp: error: "), err
    return err[0]


@pytest.mark.parametrize("metadata, message", [
    ({"task": ["x"]}, "metadata 'task': expected one of classification"),
    ({"task": "ranking"}, "metadata 'task': expected one of"),
    ({"task": "classification", "output_names": 5}, "'output_names': expected a list of 1 names"),
    ({"task": "classification", "output_names": ["a", "b"]}, "'output_names'"),
    ({"task": "classification", "classes": [1]}, "'classes': expected a list of 3 labels"),
    ({"task": "classification", "classes": [[1], {"a": 1}, 3]}, "'classes'"),
    ({"task": "classification", "classes": "abc"}, "'classes'"),
    ({"task": "binary"}, "'task' is 'binary' but the network has 3 outputs"),
    ({"task": "regression", "target_mean": "x", "target_std": [1, 1, 1]}, "'target_mean'"),
    ({"task": "regression", "target_mean": [0, 0, 0], "target_std": [1, 0, 1]}, "'target_std'"),
    ({"task": "classification", "feature_names": "abc"}, "'feature_names': expected a list"),
    ({"task": "classification", "feature_names": [1, 2, 3]}, "'feature_names'"),
    ({"task": "classification", "feature_names": ["a", "a", "b"]}, "names a column twice"),
    ({"task": "classification", "target_name": {"x": 1}}, "'target_name'"),
    ({"task": "classification", "feature_mean": [0, 0], "feature_std": [1, 1]},
     "'feature_mean': expected a list of 3 finite numbers"),
])
def test_hostile_metadata_is_one_error_line(workdir, capsys, metadata, message):
    net = fb.load("model.npz")
    net.metadata = metadata
    net.save("hostile.npz")
    capsys.readouterr()
    line = one_error_line(capsys, main(["predict", "hostile.npz", "blobs.csv"]))
    assert line.startswith("fastbp: error: hostile.npz: metadata ") and message in line


def test_metadata_without_output_names_takes_them_from_the_target_name(workdir, capsys):
    net = fb.load("model.npz")
    net.metadata = {"task": "classification", "target_name": "kind", "classes": [5, 6, 7],
                    "feature_names": ["a", "b", "c"]}
    net.save("bare.npz")
    assert main(["predict", "bare.npz", "blobs.csv", "--out", "out.csv"]) == 0
    with open("out.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["kind"] and {row[0] for row in rows[1:]} <= {"5", "6", "7"}


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"\x00" * 100,
                                     b"not a model at all\n"])
def test_malformed_model_files_are_one_error_line(workdir, capsys, content):
    with open("bad.npz", "wb") as f:
        f.write(content)
    line = one_error_line(capsys, main(["predict", "bad.npz", "blobs.csv"]))
    assert "bad.npz" in line


def test_a_truncated_model_file_is_one_error_line(workdir, capsys):
    with open("model.npz", "rb") as f:
        data = f.read()
    with open("cut.npz", "wb") as f:
        f.write(data[: len(data) // 2])
    assert "cut.npz" in one_error_line(capsys, main(["predict", "cut.npz", "blobs.csv"]))


def test_a_directory_as_model_is_one_error_line(workdir, capsys):
    os.mkdir("dir.npz")
    assert "dir.npz" in one_error_line(capsys, main(["predict", "dir.npz", "blobs.csv"]))


def test_a_network_beyond_memory_is_one_error_line(workdir, capsys):
    status = main(["train", "blobs.csv", "--layers", "1000000,1000000", "--out", "big.npz"])
    line = one_error_line(capsys, status)
    assert "out of memory: layers: 1,000,008,000,003 parameters need" in line
    assert not os.path.exists("big.npz")


def test_an_unexpected_exception_is_still_one_line(workdir, capsys, monkeypatch):
    from fastbp.cli import commands

    def broken(args):
        raise KeyError("inner")
    monkeypatch.setattr(commands, "run_gradcheck", broken)
    line = one_error_line(capsys, main(["gradcheck"]))
    assert "internal error (KeyError: 'inner'); please report it" in line


# ----------------------------------------------------------------------------------- targets
def test_an_empty_target_cell_is_refused_with_its_line(workdir, capsys):
    write_rows("holes.csv", ["a", "b", "y"], [[1, 2, "x"], [3, 4, "y"], [5, 6, ""],
                                              [7, 8, "x"]])
    line = one_error_line(capsys, main(["train", "holes.csv"]))
    assert "holes.csv: the target 'y' is empty on line 4" in line


def test_an_empty_npz_target_is_refused_with_its_row(workdir, capsys):
    np.savez("holes.npz", X=np.zeros((3, 2)), y=np.array(["a", "", "b"]))
    line = one_error_line(capsys, main(["train", "holes.npz"]))
    assert "holes.npz: y is empty in row 1" in line


def test_a_bad_regression_cell_is_quoted_with_its_line(workdir, capsys):
    write_rows("prices.csv", ["a", "price"], [[1, "2.5"], [2, "3.5"], [3, "n/a"], [4, "1"]])
    line = one_error_line(capsys, main(["train", "prices.csv", "--loss", "mse"]))
    assert "--loss mse: the target 'price' must be numeric, got 'n/a' on line 4" in line


def test_a_continuous_target_trained_as_classes_gets_a_warning(workdir, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    write_rows("cont.csv", ["a", "b", "y"], [[*x, x @ [1.0, 2.0]] for x in X])
    assert main(["train", "cont.csv", "--epochs", "1", "--quiet", "--out", "c.npz"]) == 0
    err = capsys.readouterr().err
    assert ("fastbp: warning: the target 'y' has 50 distinct numeric values in 50 rows" in err
            and "use --loss mse" in err)
    assert main(["train", "blobs.csv", "--epochs", "1", "--quiet", "--out", "c.npz"]) == 0
    assert "warning" not in capsys.readouterr().err           # 3 classes in 60 rows


# ------------------------------------------------------------------------- formula injection
def test_text_cells_that_spreadsheets_run_as_formulas_are_neutralised(workdir, capsys):
    net = fb.load("model.npz")
    names = ["=HYPERLINK(\"http://x\",\"y\")", "+1", "@SUM(A1)"]
    net.metadata = {**net.metadata, "classes": names, "target_name": "-cmd"}
    del net.metadata["output_names"]
    net.save("names.npz")
    assert main(["predict", "names.npz", "blobs.csv", "--out", "out.csv"]) == 0
    with open("out.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["'-cmd"]
    assert {row[0] for row in rows[1:]} <= {"'" + name for name in names}


def test_numbers_are_not_prefixed(workdir):
    net = fb.load("model.npz")
    net.metadata = {**net.metadata, "classes": [-1, -2.5, "\tx"]}
    net.save("numbers.npz")
    assert main(["predict", "numbers.npz", "blobs.csv", "--out", "out.csv"]) == 0
    with open("out.csv", newline="") as f:
        cells = {row[0] for row in list(csv.reader(f))[1:]}
    assert cells <= {"-1", "-2.5", "'\tx"} and cells
