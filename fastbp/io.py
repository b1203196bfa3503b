"""Saving and loading: one .npz holding a JSON description and every array.

Loading never unpickles (allow_pickle=False), so a model file cannot run code. Saving writes a
temporary file next to the target and renames it over the target: a crash mid-save leaves the
previous file intact.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from fastbp.losses import loss_from_config
from fastbp.nn import layer_from_config  # the package: every built-in layer is registered
from fastbp.optim import optimizer_from_config
from fastbp.preprocessing import Standardizer

FORMAT = "fastbp"
VERSION = 1
STANDARDIZERS = ("standardizer", "target_standardizer")   # network attributes saved as arrays


def save(net, path, include_optimizer: bool = False) -> None:
    """Write `net` (architecture, parameters, metadata; optimizer state if asked) to `path`."""
    description = {"format": FORMAT, "version": VERSION, **net.config(),
                   "metadata": net.metadata}
    if net.loss is not None:
        description["loss"] = net.loss.config()
    arrays = {"params": net.params}
    if net.buffers.size:                 # non-trainable state (BatchNorm running statistics)
        arrays["buffers"] = net.buffers
    for name in STANDARDIZERS:
        scaler = getattr(net, name)
        if scaler is not None:
            description[name] = {"n_features": scaler.n_features}
            arrays.update({f"{name}.mean": scaler.mean, f"{name}.std": scaler.std})
    if include_optimizer:
        if net.optimizer is None:
            raise ValueError("include_optimizer: the network has no optimizer yet (fit it "
                             "first), got include_optimizer=True")
        description["optimizer"] = net.optimizer.config()
        arrays.update({f"optimizer.{k}": v for k, v in net.optimizer.state().items()})
    try:
        header = json.dumps(description)
    except TypeError as exc:
        raise TypeError(f"metadata: expected JSON-serialisable values: {exc}") from None
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, fastbp=np.array(header), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON description and the arrays of a fastbp file, or a clear ValueError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such file: {path!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"path: {path!r} is not a fastbp model file (expected an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise ValueError(f"path: {path!r} is not a readable fastbp model file "
                         f"(.npz expected): {exc}") from None
    if not isinstance(arrays, dict) or "fastbp" not in arrays or "params" not in arrays:
        raise ValueError(f"path: {path!r} is not a fastbp model file (no fastbp description)")
    try:
        description = json.loads(str(arrays.pop("fastbp")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"path: {path!r} has a malformed description: {exc}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ValueError(f"path: {path!r} is not a fastbp model file")
    if description.get("version") != VERSION:
        raise ValueError(f"path: {path!r} has format version {description.get('version')}, "
                         f"this fastbp reads version {VERSION}")
    return description, arrays


def load(path, network_class):
    """The network saved at `path` by `save`, built as a `network_class` (fastbp.Sequential),
    with its optimizer when it was saved."""
    description, arrays = _read(path)
    try:
        layers = [layer_from_config(c) for c in description["layers"]]
        net = network_class(*layers, dtype=description["dtype"], seed=description["seed"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"path: {path!r} has a malformed architecture: {exc}") from None
    params = arrays["params"]
    if params.shape != net.params.shape or params.dtype != net.params.dtype:
        raise ValueError(f"path: {path!r} holds params of shape {params.shape} and dtype "
                         f"{params.dtype}, the architecture needs {net.params.shape} "
                         f"{net.params.dtype}")
    net.params[...] = params
    buffers = arrays.get("buffers", np.zeros(0, net.buffers.dtype))   # files without buffers
    if buffers.shape != net.buffers.shape or buffers.dtype != net.buffers.dtype:
        raise ValueError(f"path: {path!r} holds buffers of shape {buffers.shape} and dtype "
                         f"{buffers.dtype}, the architecture needs {net.buffers.shape} "
                         f"{net.buffers.dtype}")
    net.buffers[...] = buffers
    net.metadata = description.get("metadata", {})
    if "loss" in description:
        net.loss = loss_from_config(description["loss"])
    for name in STANDARDIZERS:
        if name in description:
            try:
                setattr(net, name, Standardizer.from_arrays(arrays[f"{name}.mean"],
                                                            arrays[f"{name}.std"]))
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"path: {path!r} has a malformed {name}: {exc}") from None
    if "optimizer" in description:
        state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        net.optimizer = optimizer_from_config(description["optimizer"], net, state)
    return net
