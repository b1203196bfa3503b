"""Saving and loading: one .npz holding a JSON description and every array.

Loading never unpickles, so a model file cannot run code, and it trusts nothing in the file:
the description is checked (its structure, its size: at most MAX_LAYERS layers nested at most
MAX_DEPTH deep) and the arrays' declared shapes are checked against it before the network is
built; the arrays are then read straight into the network, so that loading a model takes
little more memory than the model. Whatever is wrong gives a ValueError naming the path (a
missing or unreadable file an OSError); nothing else escapes. Saving is atomic (see
`fastbp.archive.write`).
"""
from __future__ import annotations

import json
import math

import numpy as np

from fastbp import archive
from fastbp._validation import as_dtype, check_finite
from fastbp.losses import loss_from_config
from fastbp.nn import layer_from_config  # the package: every built-in layer is registered
from fastbp.optim import optimizer_from_config
from fastbp.preprocessing import Standardizer

FORMAT = "fastbp"
VERSION = 1
STANDARDIZERS = ("standardizer", "target_standardizer")   # network attributes saved as arrays
MAX_LAYERS = 10_000            # layers in a description, counting those inside blocks
MAX_DEPTH = 32                 # blocks (Residual) nested in blocks
MAX_DESCRIPTION_CHARS = 1 << 24
# What building a network from a hostile description can raise besides ValueError.
_BUILD_ERRORS = (TypeError, KeyError, IndexError, AttributeError, RuntimeError,
                 NotImplementedError, RecursionError, OverflowError, MemoryError)


def save(net, path, include_optimizer: bool = False) -> None:
    """Write `net` (architecture, parameters, metadata; optimizer state if asked) to `path`."""
    description = {"format": FORMAT, "version": VERSION, **net.config(),
                   "metadata": net.metadata}
    if net.loss is not None and net.loss.config() is not None:   # a FunctionLoss is not saved
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
        header = json.dumps(description, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata: expected JSON-serialisable values: {exc}") from None
    archive.write(path, {"fastbp": np.array(header), **arrays})


def _member_allowed(name: str) -> bool:
    """The members a save writes: the description, params, buffers, scalings, optimizer."""
    return name in ("fastbp", "params", "buffers") or name.startswith("optimizer.") or \
        name in {f"{s}.{stat}" for s in STANDARDIZERS for stat in ("mean", "std")}


def _refuse_constant(name: str):
    raise ValueError(f"expected finite numbers, got {name}")


def _description(model: archive.Archive) -> dict:
    """The checked JSON description of an open model file."""
    if "fastbp" not in model.headers or "params" not in model.headers:
        raise ValueError(f"path: {model.path!r} is not a fastbp model file (no fastbp "
                         f"description)")
    dtype, shape = model.headers["fastbp"]
    if dtype.kind != "U" or shape != () or dtype.itemsize // 4 > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"path: {model.path!r} has a malformed description (expected a text "
                         f"of at most {MAX_DESCRIPTION_CHARS} characters)")
    try:
        description = json.loads(str(model.read("fastbp")), parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"path: {model.path!r} has a malformed description: nested too deeply "
                         f"to read (blocks may be nested {MAX_DEPTH} deep)") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"path: {model.path!r} has a malformed description: {exc}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ValueError(f"path: {model.path!r} is not a fastbp model file")
    if description.get("version") != VERSION:
        raise ValueError(f"path: {model.path!r} has format version "
                         f"{description.get('version')!r}, this fastbp reads version {VERSION}")
    try:
        _check_layers(description.get("layers"), "layers", 0, [0])
        for key in ("metadata", "loss", "optimizer", *STANDARDIZERS):
            if key in description and not isinstance(description[key], dict):
                raise ValueError(f"{key}: expected a JSON object, got "
                                 f"{type(description[key]).__name__}")
    except ValueError as exc:
        raise ValueError(f"path: {model.path!r} has a malformed architecture: {exc}") from None
    return description


def _check_layers(layers, where: str, depth: int, count: list[int]) -> None:
    """Refuse anything but a non-empty list of layer objects, more than MAX_LAYERS layers in
    all (`count`) and blocks nested deeper than MAX_DEPTH, before any layer is built."""
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{where}: expected a non-empty list of layers, got {layers!r:.80}")
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: blocks nested more than {MAX_DEPTH} deep")
    for i, config in enumerate(layers):
        count[0] += 1
        if count[0] > MAX_LAYERS:
            raise ValueError(f"more than {MAX_LAYERS} layers")
        if not isinstance(config, dict):
            raise ValueError(f"{where}[{i}]: expected a layer object, got {config!r:.80}")
        if "layers" in config:
            _check_layers(config["layers"], f"{where}[{i}].layers", depth + 1, count)


def _parameter_count(layers) -> tuple[int, int]:
    """(parameters, buffer elements) the layers declare, without building a network."""
    def total(method: str) -> int:
        return sum(math.prod(shape) for layer in layers for _, shape in getattr(layer, method)())
    return total("parameter_shapes"), total("buffer_shapes")


def load(path, network_class):
    """The network saved at `path` by `save`, built as a `network_class` (fastbp.Sequential),
    with its optimizer when it was saved."""
    with archive.Archive(path, _member_allowed) as model:
        description = _description(model)
        try:
            return _build(model, description, network_class)
        except ValueError as exc:
            if str(exc).startswith("path: "):
                raise
            raise ValueError(f"path: {model.path!r} holds a malformed model: {exc}") from None
        except _BUILD_ERRORS as exc:
            detail = "it needs more memory than can be allocated" if isinstance(
                exc, MemoryError) else f"{type(exc).__name__}: {exc}"
            raise ValueError(f"path: {model.path!r} has a malformed architecture: "
                             f"{detail}") from None


def _build(model: archive.Archive, description: dict, network_class):
    """The network of a checked description, its arrays read from `model`."""
    where = f"path: {model.path!r}"
    try:
        layers = [layer_from_config(c) for c in description["layers"]]
        n_params, n_buffers = _parameter_count(layers)
        dtype = as_dtype(description["dtype"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{where} has a malformed architecture: {exc}") from None
    for name, size in (("params", n_params), ("buffers", n_buffers)):
        declared = model.headers.get(name, (dtype, (0,)))
        if declared != (dtype, (size,)):
            raise ValueError(f"{where} holds {name} of shape {declared[1]} and dtype "
                             f"{declared[0]}, the architecture needs ({size},) {dtype}")
    initialize = any(layer.needs_initialization() for layer in layers)   # e.g. 0.1.0 files
    net = network_class(*layers, dtype=dtype, seed=description["seed"], initialize=initialize)
    for name in ("params", "buffers"):      # a file without buffers: layers without state
        if name in model.headers:
            model.read_into(name, getattr(net, name))
            check_finite(getattr(net, name), name)
    for layer in net.layers:
        layer.check_state()
    metadata = description.get("metadata", {})
    net.metadata = metadata
    if "loss" in description:
        net.loss = loss_from_config(description["loss"])
    for name in STANDARDIZERS:
        if name in description:
            try:
                setattr(net, name, Standardizer.from_arrays(model.read(f"{name}.mean"),
                                                            model.read(f"{name}.std")))
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{where} has a malformed {name}: {exc}") from None
    if "optimizer" in description:
        state = {}
        for member, (state_dtype, shape) in model.headers.items():
            if member.startswith("optimizer."):
                if state_dtype != dtype or shape != (n_params,):
                    raise ValueError(f"{where} holds {member} of shape {shape} and dtype "
                                     f"{state_dtype}, the optimizer needs ({n_params},) {dtype}")
                state[member.split(".", 1)[1]] = model.read(member)
        net.optimizer = optimizer_from_config(description["optimizer"], net, state)
    return net
