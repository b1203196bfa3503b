"""Tabular data for the command line: reading CSV/NPZ files, encoding targets, decoding
predictions.

CSV files have a header row, comma-separated numeric feature columns and a target column of
numbers or strings; NPZ files hold arrays ``X`` (n, features) and ``y``.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fastbp.preprocessing import Standardizer


class DataError(ValueError):
    """A problem with the user's data file or its columns."""


@dataclass
class Table:
    """Data read from a file: features, optional target and their names."""

    X: np.ndarray                       # (n, features) float64
    y: np.ndarray | None                # (n,) or (n, outputs); numbers or strings
    feature_names: list[str] | None     # None for NPZ files
    target_name: str | None
    source: str
    lines: list[int] | None = None      # each row's line in a CSV file (None: NPZ rows)


@dataclass
class Target:
    """The target as the network is trained on it, and how to decode its outputs."""

    y: np.ndarray      # labels (n,) int64 for cross-entropy, else (n, width) float64
    width: int         # outputs of the network
    meta: dict         # "task", "output_names", and "classes" for classifiers
    scaler: Standardizer | None = None   # regression: the network learns standardised y
    warning: str | None = None           # a likely mistake worth telling the user about


def _open_text(path: str):
    """A text handle on `path` (gzip-decompressed when it ends with .gz)."""
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_csv_rows(path: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (stripped cells) and their line numbers; blank lines skipped."""
    try:
        with _open_text(path) as f:
            reader = csv.reader(f)
            records = [([cell.strip() for cell in row], reader.line_num) for row in reader
                       if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read it as CSV text: {exc}") from None
    if not records:
        raise DataError(f"{path}: the file is empty (expected a header row and data rows)")
    header = records[0][0]
    if len(set(header)) != len(header) or "" in header:
        raise DataError(f"{path}: the header row must name every column once, got {header}")
    rows, lines = [r for r, _ in records[1:]], [n for _, n in records[1:]]
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields, the header has "
                           f"{len(header)}")
    return header, rows, lines


def _numeric_column(values: Sequence[str], name: str, lines: list[int], path: str,
                    hint: str = "") -> np.ndarray:
    """The cells of column `name` as finite float64, or a DataError naming the first bad cell."""
    try:
        column = np.array(values, dtype=np.float64)
    except ValueError:
        column = None
    if column is None or not np.isfinite(column).all():
        for value, line in zip(values, lines, strict=True):
            try:
                ok = np.isfinite(float(value))
            except ValueError:
                ok = False
            if not ok:
                what = "a missing value" if value == "" else f"{value!r}"
                raise DataError(f"{path}: feature column {name!r} must be numeric, got {what} "
                               f"on line {line}{hint}")
    return column


def _target_column(values: Sequence[str]) -> np.ndarray:
    """Target cells as float64 when they are all finite numbers, else as strings."""
    try:
        column = np.array(values, dtype=np.float64)
        if np.isfinite(column).all():
            return column
    except ValueError:
        pass
    return np.array(values, dtype=str)


@dataclass
class CSVFile:
    """The cells of a CSV file with a header row, as strings, column by column."""

    path: str
    header: list[str]
    columns: dict[str, tuple[str, ...]]
    lines: list[int]   # line number of each data row, for error messages

    @classmethod
    def read(cls, path: str) -> CSVFile:
        header, rows, lines = _read_csv_rows(path)
        return cls(path, header, dict(zip(header, zip(*rows, strict=True), strict=True)), lines)

    def column(self, name: str, option: str) -> tuple[str, ...]:
        """The cells of column `name`; a DataError blaming `option` when there is none."""
        if name not in self.columns:
            raise DataError(f"{option}: no column {name!r} in {self.path} (columns: "
                           f"{', '.join(self.header)})")
        return self.columns[name]

    def features(self, names: Sequence[str], hint: str = "") -> np.ndarray:
        """The existing columns `names` as a finite float64 matrix (rows, len(names))."""
        X = np.empty((len(self.lines), len(names)))
        for j, name in enumerate(names):
            X[:, j] = _numeric_column(self.columns[name], name, self.lines, self.path, hint)
        return X


def read_npz(path: str, need_target: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Arrays ``X`` (n, features) as float64 and ``y`` ((n,) or (n, outputs), or None)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read it as an .npz file of arrays: {exc}") from None
    if "X" not in arrays or (need_target and "y" not in arrays):
        want = "arrays 'X' and 'y'" if need_target else "an array 'X'"
        raise DataError(f"{path}: expected {want}, found {sorted(arrays) or 'none'}")
    X, y = arrays["X"], arrays.get("y")
    if X.ndim != 2 or X.dtype.kind not in "biuf" or X.shape[0] == 0:
        raise DataError(f"{path}: X must be a non-empty 2-D numeric array (samples, features), "
                       f"got shape {X.shape} and dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise DataError(f"{path}: X must hold finite numbers, it has NaN or infinity")
    if y is not None:
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise DataError(f"{path}: y must have shape ({X.shape[0]},) or ({X.shape[0]}, k) "
                           f"to match X, got {y.shape}")
        if y.dtype.kind not in "biufUS":
            raise DataError(f"{path}: y must hold numbers or strings, got dtype {y.dtype}")
        if y.dtype.kind in "US" and (y == y.dtype.type()).any():
            row = int(np.argwhere(y == y.dtype.type())[0, 0])
            raise DataError(f"{path}: y is empty in row {row} (every sample needs a target)")
    return X.astype(np.float64), y


def _is_npz(path: str) -> bool:
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    return path.lower().endswith(".npz")


def read_training_data(path: str, target: str | None, drop: Sequence[str]) -> Table:
    """Training data from a CSV (any extension but .npz) or NPZ file.

    CSV: the target is the column named `target` (default: the last column); every other
    column not in `drop` is a feature. NPZ: the arrays X and y.
    """
    if _is_npz(path):
        if target is not None or drop:
            option = "--target" if target is not None else "--drop"
            raise DataError(f"{option}: only for CSV files (an NPZ file holds arrays X and y)")
        X, y = read_npz(path)
        return Table(X, y, None, "y", path)
    data = CSVFile.read(path)
    target = data.header[-1] if target is None else target
    cells = data.column(target, "--target")
    if "" in cells:
        line = data.lines[cells.index("")]
        raise DataError(f"{path}: the target {target!r} is empty on line {line} (every row "
                        f"needs a target value)")
    y = _target_column(cells)
    for name in drop:
        data.column(name, "--drop")
    features = [name for name in data.header if name != target and name not in drop]
    if not features:
        raise DataError(f"{path}: expected at least one feature column besides the target "
                       f"{target!r}")
    hint = f" (the target is {target!r}: choose it with --target, leave columns out with --drop)"
    return Table(data.features(features, hint), y, features, target, path, data.lines)


def read_prediction_features(path: str, meta: dict) -> np.ndarray:
    """The features of a CSV/NPZ file that a model described by `meta` was trained on.

    CSV: the columns named in ``meta["feature_names"]`` in that order; without names, every
    column but the target. NPZ: the array X.
    """
    if _is_npz(path):
        return read_npz(path, need_target=False)[0]
    data = CSVFile.read(path)
    names = meta.get("feature_names")
    if names is None:
        names = [name for name in data.header if name != meta.get("target_name")]
    missing = [name for name in names if name not in data.columns]
    if missing:
        raise DataError(f"{path}: missing the feature column(s) "
                       f"{', '.join(map(repr, missing))} the model was trained on")
    return data.features(names)


# ------------------------------------------------------------------------- encoding the target
def _json_labels(classes: np.ndarray) -> list:
    """Class labels as JSON values: ints for integral numbers, else floats or strings."""
    if classes.dtype.kind in "iub":
        return [int(c) for c in classes]
    if classes.dtype.kind == "f":
        if np.all(classes == np.round(classes)):
            return [int(c) for c in classes]
        return [float(c) for c in classes]
    return [str(c) for c in classes]


def output_names(target_name: str | None, width: int) -> list[str]:
    """Column names of the predictions: the target name, numbered when there are several."""
    name = target_name or "prediction"
    return [name] if width == 1 else [f"{name}{i}" for i in range(width)]


def _first_non_number(y: np.ndarray) -> int:
    """Index (row) of the first cell of `y` that is not a finite number."""
    for i, value in enumerate(y.reshape(y.shape[0], -1)):
        try:
            if not np.isfinite(value.astype(np.float64)).all():
                return i
        except ValueError:
            return i
    return 0


def _where(row: int, lines: list[int] | None) -> str:
    return f"row {row}" if lines is None else f"line {lines[row]}"


def encode_target(y: np.ndarray, loss: str, target_name: str | None,
                  lines: list[int] | None = None) -> Target:
    """Turn the raw target into what the network is trained on, for `loss`.

    Parameters
    ----------
    y : ndarray (n,) or (n, m)
        The target as read: numbers or strings.
    loss : {"cross_entropy", "mse", "bce"}
        cross_entropy: labels of any kind -> indices 0..k-1 (k outputs).
        bce: two classes -> 0/1 (one output), or a 2-D target in [0, 1] (multi-label).
        mse: numbers, standardised per column (one output per column).
    target_name : str or None
        Name of the target, used for the prediction columns.
    lines : list of int, optional
        Each sample's line in a CSV file, for messages (None: rows of an NPZ file).

    Returns
    -------
    Target
        The encoded target, the network's output width and the decoding metadata.
    """
    numeric = y.dtype.kind in "biuf"
    if loss == "mse":
        if not numeric:
            row = _first_non_number(y)
            cell = y[row] if y.ndim == 1 else list(y[row])
            raise DataError(f"--loss mse: the target {target_name!r} must be numeric, got "
                           f"{str(cell)!r} on {_where(row, lines)}")
        values = y.astype(np.float64).reshape(y.shape[0], -1)
        scaler = Standardizer().fit(values)
        meta = {"task": "regression", "output_names": output_names(target_name,
                                                                    values.shape[1])}
        return Target(scaler.transform(values), values.shape[1], meta, scaler)
    if loss == "bce" and y.ndim == 2:
        if not numeric or y.min() < 0 or y.max() > 1:
            raise DataError("--loss bce: a 2-D target must hold values in [0, 1] (multi-label)")
        meta = {"task": "multilabel", "output_names": output_names(target_name, y.shape[1])}
        return Target(y.astype(np.float64), y.shape[1], meta)
    if y.ndim != 1:
        raise DataError(f"--loss {loss}: expected one label per sample (a 1-D target), "
                       f"got shape {y.shape}")
    classes, codes = np.unique(y, return_inverse=True)
    meta = {"classes": _json_labels(classes), "output_names": output_names(target_name, 1)}
    if loss == "bce":
        if len(classes) != 2:
            raise DataError(f"--loss bce: expected a target with exactly 2 classes, got "
                           f"{len(classes)} (use --loss cross_entropy for more)")
        return Target(codes.astype(np.float64).reshape(-1, 1), 1, {"task": "binary", **meta})
    if len(classes) < 2:
        raise DataError(f"the target {target_name!r} has a single class {meta['classes']}: "
                       "nothing to learn")
    warning = None
    if numeric and len(classes) > max(2, y.shape[0] / 2):
        warning = (f"the target {target_name!r} has {len(classes)} distinct numeric values in "
                   f"{y.shape[0]} rows, each trained as a class of its own; for a continuous "
                   f"target use --loss mse")
    return Target(codes.astype(np.int64), len(classes), {"task": "classification", **meta},
                  warning=warning)


def decode_predictions(out: np.ndarray, meta: dict) -> list[list]:
    """Network outputs in the user's terms.

    Parameters
    ----------
    out : ndarray (n, width)
        Network outputs from `predict` (logits for classifiers; regression values in the
        target's units, or standardised for models saved by 0.1.0).
    meta : dict
        The model's metadata: "task", and "classes", or 0.1.0's "target_mean"/"target_std".

    Returns
    -------
    list of n rows
        The original class label (classification, binary), 0/1 per output (multi-label) or
        the values in the target's units (regression).
    """
    task = meta["task"]
    if task in ("classification", "binary"):
        index = out.argmax(axis=1) if task == "classification" else (out[:, 0] > 0).astype(int)
        classes = meta.get("classes")
        return [[classes[i]] if classes is not None else [int(i)] for i in index]
    if task == "multilabel":
        return (out > 0).astype(int).tolist()
    values = out.astype(np.float64)
    if "target_mean" in meta:   # 0.1.0 kept the target scaling in the metadata
        values = values * np.asarray(meta["target_std"]) + np.asarray(meta["target_mean"])
    return values.tolist()
