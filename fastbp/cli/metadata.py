"""What a saved model's metadata tells ``fastbp predict``, checked before it is used.

A model file is data from anywhere: its metadata may have been written by ``fastbp train``,
by a user's own ``net.metadata = ...`` or by hand. Every key that ``predict`` reads is checked
for its type and length against the network here, so that a malformed model gets one
`DataError` naming the model file and the key, never an exception from deep in decoding.
"""
from __future__ import annotations

import numpy as np

from fastbp.cli.tabular import DataError, output_names

TASKS = ("classification", "binary", "multilabel", "regression")
_LABEL_TYPES = (str, int, float)     # JSON scalars (bool is an int)


def _default_task(net) -> str:
    """The task of a model saved without CLI metadata (e.g. from Python), from its loss."""
    loss = getattr(getattr(net, "loss", None), "name", None)
    return {"cross_entropy": "classification", "bce": "multilabel"}.get(loss, "regression")


def prediction_meta(net, path: str) -> dict:
    """The metadata of the loaded model `net` (read from `path`), completed with defaults
    (the task from the loss, the output names from the target name), with every key that
    prediction reads checked."""
    meta = {"task": _default_task(net), **net.metadata}
    task = meta["task"]
    if not isinstance(task, str) or task not in TASKS:
        raise _bad(path, "task", f"one of {', '.join(TASKS)}", task)
    if meta.get("target_name") is not None and not isinstance(meta["target_name"], str):
        raise _bad(path, "target_name", "a column name", meta["target_name"])
    outputs = 1 if task in ("classification", "binary") else net.out_features
    if "output_names" not in meta:
        meta = {**meta, "output_names": output_names(meta.get("target_name"), outputs)}
    _check_list(meta, "output_names", path, str, outputs)
    if task in ("classification", "binary") and "classes" in meta:
        _check_list(meta, "classes", path, _LABEL_TYPES,
                    net.out_features if task == "classification" else 2)
    if task == "binary" and net.out_features != 1:
        raise DataError(f"{path}: metadata 'task' is 'binary' but the network has "
                        f"{net.out_features} outputs (expected 1)")
    if meta.get("feature_names") is not None:
        _check_list(meta, "feature_names", path, str, net.in_features)
        if len(set(meta["feature_names"])) != net.in_features:
            raise DataError(f"{path}: metadata 'feature_names' names a column twice")
    for key, width in (("feature_mean", net.in_features), ("feature_std", net.in_features),
                       ("target_mean", outputs), ("target_std", outputs)):
        if key in meta:
            _check_numbers(meta, key, path, width, positive=key.endswith("std"))
    return meta


def _check_list(meta: dict, key: str, path: str, kinds, length: int) -> None:
    """meta[key] is a list of `length` values of `kinds`."""
    value = meta.get(key)
    if not (isinstance(value, list) and len(value) == length
            and all(isinstance(v, kinds) for v in value)):
        kind = "names" if kinds is str else "labels (strings or numbers)"
        raise _bad(path, key, f"a list of {length} {kind}", value)


def _check_numbers(meta: dict, key: str, path: str, length: int, positive: bool) -> None:
    """meta[key] is a list of `length` finite numbers (> 0 when `positive`)."""
    value = meta[key]
    ok = isinstance(value, list) and len(value) == length and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if ok:
        numbers = np.array(value, dtype=np.float64)
        ok = bool(np.isfinite(numbers).all() and (not positive or (numbers > 0).all()))
    if not ok:
        what = "positive" if positive else "finite"
        raise _bad(path, key, f"a list of {length} {what} numbers", value)


def _bad(path: str, key: str, expected: str, got) -> DataError:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return DataError(f"{path}: metadata {key!r}: expected {expected}, got {shown}")
