"""ONNX export: a trained network as an ONNX model that runs where fastbp is not installed.

`to_onnx(net, path)` (``net.to_onnx(path)``, ``fastbp export``) writes what ``net.predict``
computes as one ONNX graph with a dynamic batch dimension::

    input (batch, in_features)
      -> Sub, Div                  the attached Standardizer, if any
      -> each layer's nodes        its `export_onnx(builder, x)`
      -> Mul, Add                  the target_standardizer (regression), if any
      -> output (batch, out_features)
    classifiers also:  output -> Softmax (or Sigmoid) -> probabilities
                       output -> ArgMax (or > 0) [-> the class names] -> label

This is the only module that imports onnx, and only when an export runs (it is the optional
extra ``pip install "fastbp[onnx]"``). Layers emit their nodes through `GraphBuilder`, which
keeps nodes and constants as plain Python and NumPy values; the protobuf is made at the end,
checked with ``onnx.checker.check_model(full_check=True)`` and written atomically
(`fastbp.archive.write_file`).

onnxruntime's CPU provider has no double kernel for LeakyRelu, Elu, Softplus and Erf (hence
Gelu): float64 graphs compute those from operators it has (Where, Exp, Log, a polynomial for
erfc), never through a cast to float32.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from fastbp import archive
from fastbp._validation import boolean
from fastbp._version import __version__
from fastbp.nn.layer import Layer

DEFAULT_OPSET = 21          # onnx >= 1.16 and onnxruntime >= 1.18 (the extra's minimums) know it
MIN_OPSET = 13
OUTPUTS = ("auto", "raw", "softmax", "sigmoid")
INPUT, OUTPUT, PROBABILITIES, LABEL = "input", "output", "probabilities", "label"
BATCH = "batch"             # the name of the dynamic batch dimension
INSTALL = 'pip install "fastbp[onnx]"'
# Operators younger than MIN_OPSET: the opset that introduced them.
FIRST_OPSET = {"Gelu": 20}
# Operators that onnxruntime's CPU provider runs in float32 only (checked with onnxruntime
# 1.32; Gelu's approximate="none" form needs Erf).
NO_DOUBLE_KERNEL = frozenset({"Elu", "Erf", "Gelu", "LeakyRelu", "Softplus"})
TASK_OUTPUTS = {"classification": "softmax", "binary": "sigmoid", "multilabel": "sigmoid",
                "regression": "raw"}
LOSS_OUTPUTS = {"cross_entropy": "softmax", "bce": "sigmoid"}
MAX_MODEL_BYTES = 2**31 - 1  # the most one protobuf message (an .onnx file) can hold
# erfc(x) = e^(-x^2) P(t) / (K + x) for x >= 0, t = (x - K) / (x + K) (see erfc_polynomial).
ERFC_K = 3.0
ERFC_DEGREE = 22


def import_onnx():
    """The onnx module; an ImportError saying how to install it when it is missing."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the onnx package, which is not installed: "
                          f"{INSTALL}") from exc
    return onnx


@lru_cache(maxsize=1)
def erfc_polynomial() -> tuple[float, ...]:
    """Coefficients (highest degree first) of the polynomial P with
    ``(K + x) erfcx(x) = P((x - K) / (x + K))`` for x >= 0 (erfcx(x) = e^(x^2) erfc(x)).

    The map t = (x - K) / (x + K) takes [0, inf) to [-1, 1), where (K + x) erfcx(x) is smooth
    (it tends to 1/sqrt(pi)): Chebyshev interpolation of SciPy's erfcx at degree 22 gives
    e^(-x^2) P(t) / (K + x) within 1e-14 relative of erfc(x) for every x >= 0, and the
    monomial coefficients are all below 1.1 in magnitude, so Horner's rule is stable.
    """
    from scipy.special import erfcx

    def scaled_erfcx(t: np.ndarray) -> np.ndarray:   # Chebyshev points: -1 < t < 1
        x = ERFC_K * (1 + t) / (1 - t)
        return (ERFC_K + x) * erfcx(x)

    chebyshev = np.polynomial.chebyshev
    coefficients = chebyshev.cheb2poly(chebyshev.chebinterpolate(scaled_erfcx, ERFC_DEGREE))
    return tuple(float(c) for c in coefficients[::-1])


# ------------------------------------------------------------------------------- the builder
@dataclass
class Node:
    """One ONNX node with one output: operator, input tensor names, attributes."""

    op_type: str
    inputs: list[str]
    output: str
    attributes: dict = field(default_factory=dict)


class GraphBuilder:
    """What a layer's ``export_onnx(builder, x)`` emits its nodes through.

    - ``op(op_type, *inputs, **attributes)``: a node of the ONNX operator `op_type` on the
      tensors named `inputs` (a type attribute, as Cast's ``to``, is a NumPy dtype); returns
      the name of its output;
    - ``constant(value, name=None)``: a constant tensor in the model's dtype (an initializer);
      a layer names its parameters ("weight": the tensor is "<layer index>.weight", like
      ``net.named_parameters()``), unnamed constants (scalars) are shared;
    - ``supports(op_type)``: whether the operator exists at this opset and onnxruntime runs
      it in this dtype (otherwise emit a decomposition);
    - ``erfc(x)``: the complementary error function, which ONNX lacks;
    - ``layer(layer, x, name)``: the export of a layer inside this one (a block's layers);
    - ``dtype`` (the model's), ``opset``.

    Nodes and constants stay Python and NumPy values (`nodes`, `initializers`) until
    `to_onnx` builds the protobuf: nothing a layer calls needs onnx.
    """

    def __init__(self, dtype, opset: int) -> None:
        self.dtype = np.dtype(dtype)
        self.opset = opset
        self.nodes: list[Node] = []
        self.initializers: dict[str, np.ndarray] = {}
        self._shared: dict[tuple, str] = {}
        self._scope: list[str] = []
        self._layers: list[str] = []        # "layer 2.0 (Dense)" of the layers being exported
        self._tensors: set[str] = {INPUT}
        self._taken: set[str] = {INPUT, OUTPUT, PROBABILITIES, LABEL}

    def _name(self, hint: str, scoped: bool = True) -> str:
        base = ".".join([*self._scope, hint]) if scoped else hint
        name, k = base, 1
        while name in self._taken:
            name, k = f"{base}_{k}", k + 1
        self._taken.add(name)
        return name

    def supports(self, op_type: str) -> bool:
        """True when `op_type` exists at this opset and onnxruntime has a kernel for it in
        this model's dtype."""
        if self.opset < FIRST_OPSET.get(op_type, MIN_OPSET):
            return False
        return self.dtype == np.float32 or op_type not in NO_DOUBLE_KERNEL

    def require_opset(self, version: int, what: str) -> None:
        """Refuse an opset older than `version`, which `what` needs (ValueError naming the
        layer being exported)."""
        if self.opset < version:
            where = f" in {self._layers[-1]}" if self._layers else ""
            raise ValueError(f"opset: {what}{where} needs opset {version} or later, got "
                             f"opset {self.opset}")

    def constant(self, value, name: str | None = None, dtype=None) -> str:
        """A constant tensor holding a copy of `value` (in the model's dtype unless `dtype`
        is given); returns its name."""
        array = np.array(value, dtype=self.dtype if dtype is None else dtype)
        if name is None:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._shared:
                return self._shared[key]
            name = self._shared[key] = self._name("const", scoped=False)
        else:
            name = self._name(name)
        self.initializers[name] = array
        self._tensors.add(name)
        return name

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        """A node of the ONNX operator `op_type` on the tensors `inputs`; returns the name of
        its output tensor."""
        for name in inputs:
            if name not in self._tensors:
                raise ValueError(f"{op_type}: no tensor named {name!r} in the graph")
        output = self._name(op_type)
        self.nodes.append(Node(op_type, list(inputs), output, attributes))
        self._tensors.add(output)
        return output

    @contextmanager
    def scope(self, name: str):
        """Tensors made inside are named "<scope>.<name>" (nested scopes joined by dots)."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def layer(self, layer: Layer, x: str, name: str) -> str:
        """The output of `layer` (named `name` within the current scope) applied to `x`."""
        with self.scope(name):
            where = f"layer {'.'.join(self._scope)} ({type(layer).__name__})"
            if not isinstance(layer, Layer):
                raise TypeError(f"{where}: expected a fastbp Layer")
            self._layers.append(where)
            try:
                out = layer.export_onnx(self, x)
            except ExportError:
                raise
            except TypeError as exc:
                raise ExportError(f"{where}: {exc}") from exc
            finally:
                self._layers.pop()
        if not isinstance(out, str) or out not in self._tensors:
            raise ExportError(f"{where}: export_onnx returned {out!r}, expected the name of "
                              f"a tensor of the graph")
        return out

    def erfc(self, x: str) -> str:
        """erfc(x): 1 - Erf(x) where the runtime has Erf; otherwise (float64)
        e^(-a^2) P(t) / (K + a) with a = |x|, t = (a - K) / (a + K) (`erfc_polynomial`,
        within 1e-14 relative), and 2 minus that for x < 0."""
        if self.supports("Erf"):
            return self.op("Sub", self.constant(1.0), self.op("Erf", x))
        a = self.op("Abs", x)
        a_plus_k = self.op("Add", a, self.constant(ERFC_K))
        t = self.op("Div", self.op("Sub", a, self.constant(ERFC_K)), a_plus_k)
        coefficients = erfc_polynomial()
        p = self.constant(coefficients[0])
        for c in coefficients[1:]:                      # Horner's rule
            p = self.op("Add", self.op("Mul", p, t), self.constant(c))
        gauss = self.op("Exp", self.op("Neg", self.op("Mul", a, a)))
        upper = self.op("Mul", gauss, self.op("Div", p, a_plus_k))       # erfc(|x|)
        return self.op("Where", self.op("Less", x, self.constant(0.0)),
                       self.op("Sub", self.constant(2.0), upper), upper)

    def rename(self, old: str, new: str) -> None:
        """Give the tensor `old` (made by a node) the name `new` (a graph output's)."""
        if old not in {node.output for node in self.nodes}:    # the input, or a constant
            old = self.op("Identity", old)
        for node in self.nodes:
            node.inputs = [new if name == old else name for name in node.inputs]
            if node.output == old:
                node.output = new
        self._tensors.add(new)


class ExportError(TypeError):
    """A layer that cannot be exported (the message names it)."""


# ------------------------------------------------------------------------------ the network
def to_onnx(net, path=None, opset: int | None = None, outputs: str = "auto",
            fold_batchnorm: bool = False):
    """Export `net` (its inference: what ``net.predict`` computes) as an ONNX model.

    Parameters
    ----------
    net : fastbp.Sequential (or any fastbp Network)
    path : str or os.PathLike, optional
        Where to write the .onnx file (atomically: an existing file is replaced only once
        the new one is complete); None writes nothing.
    opset : int, optional
        The ONNX opset (default 21; from 13 to the newest the installed onnx knows). GELU
        is ONNX's Gelu from opset 20 on, its formula before.
    outputs : {"auto", "raw", "softmax", "sigmoid"}
        "raw": the network's outputs only (``output``). "softmax" / "sigmoid": also
        ``probabilities`` (Softmax over the outputs, or Sigmoid of each) and ``label``
        (ArgMax, or 0/1 per output where the output is > 0; a binary model's one label per
        row), mapped to the class names ``net.metadata["classes"]`` when the model carries
        them. "auto": "softmax" for a cross-entropy classifier, "sigmoid" for a binary
        cross-entropy model, "raw" otherwise (``net.metadata["task"]`` when set, else
        ``net.loss``).
    fold_batchnorm : bool
        Fold each BatchNorm that follows a Dense layer into that layer's Gemm (W' = s W,
        b' = s (b - mean) + bias, s = weight / sqrt(running_var + eps), in float64); other
        BatchNorm layers stay BatchNormalization.

    Returns
    -------
    onnx.ModelProto
        The model, checked by ``onnx.checker.check_model(full_check=True)``. Its input is
        ``input`` (batch, in_features) in the network's dtype (raw features when a
        Standardizer is attached); ``metadata_props`` hold the fastbp version, the layer
        summary, the architecture, the loss and ``net.metadata`` (JSON).
    """
    onnx = import_onnx()
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or os.PathLike) or None, got "
                        f"{type(path).__name__}")
    opset = _check_opset(opset, onnx)
    kind = _output_kind(net, outputs)
    fold = boolean(fold_batchnorm, "fold_batchnorm")
    classes = _class_labels(net, kind)

    builder = GraphBuilder(net.dtype, opset)
    x = INPUT
    if net.standardizer is not None:
        with builder.scope("standardizer"):
            x = _standardize(builder, x, net.standardizer.mean, net.standardizer.std)
    for i, layer in enumerate(net.layers):
        x = builder.layer(layer, x, str(i))
    if net.target_standardizer is not None:           # outputs in the targets' units
        with builder.scope("target_standardizer"):
            scaler = net.target_standardizer
            x = builder.op("Add", builder.op("Mul", x, builder.constant(scaler.std, "std")),
                           builder.constant(scaler.mean, "mean"))
    builder.rename(x, OUTPUT)
    graph_outputs = [(OUTPUT, net.dtype, [BATCH, net.out_features])]
    if kind != "raw":
        graph_outputs += _classifier_outputs(builder, kind, classes, net.out_features)
    if fold:
        fold_batchnorms(builder, {name for name, _, _ in graph_outputs})
    model = _model(onnx, builder, net, graph_outputs)
    if model.ByteSize() > MAX_MODEL_BYTES:
        raise ValueError(f"net: its ONNX model takes {model.ByteSize() / 2**30:.1f} GiB, more "
                         f"than the 2 GiB one .onnx file can hold")
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        data = model.SerializeToString()
        archive.write_file(path, lambda f: f.write(data))
    return model


def _check_opset(opset, onnx) -> int:
    newest = int(onnx.defs.onnx_opset_version())
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, (bool, np.bool_)) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset: expected an int or None, got {type(opset).__name__}")
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset: expected an opset from {MIN_OPSET} to {newest} (the newest "
                         f"the installed onnx {onnx.__version__} knows), got {opset}")
    return int(opset)


def _output_kind(net, outputs) -> str:
    """"raw", "softmax" or "sigmoid": the outputs `outputs` asks for on `net`."""
    if not isinstance(outputs, str) or outputs not in OUTPUTS:
        raise ValueError(f"outputs: expected one of {', '.join(map(repr, OUTPUTS))}, got "
                         f"{outputs!r}")
    if outputs != "auto":
        return outputs
    task = net.metadata.get("task") if isinstance(net.metadata, dict) else None
    if isinstance(task, str) and task in TASK_OUTPUTS:
        return TASK_OUTPUTS[task]
    return LOSS_OUTPUTS.get(getattr(getattr(net, "loss", None), "name", None), "raw")


def _class_labels(net, kind: str) -> np.ndarray | None:
    """The class names of `net.metadata["classes"]` as an array (int64, float64 or strings),
    or None: no names, or no label they name (raw outputs; a multi-label model)."""
    classes = net.metadata.get("classes") if isinstance(net.metadata, dict) else None
    if classes is None or kind == "raw" or (kind == "sigmoid" and net.out_features != 1):
        return None
    expected = net.out_features if kind == "softmax" else 2
    what = "one per output" if kind == "softmax" else "the two classes of a binary model"
    if not isinstance(classes, (list, tuple)) or len(classes) != expected:
        raise ValueError(f"metadata['classes']: expected a list of {expected} class labels "
                         f"({what}), got {classes!r:.80}")
    if all(isinstance(c, str) for c in classes):
        return np.array(classes, dtype=object)
    numbers = [c for c in classes if isinstance(c, (int, float)) and not isinstance(c, bool)]
    if len(numbers) == len(classes):
        try:
            if all(isinstance(c, int) for c in classes):
                return np.array(classes, dtype=np.int64)
            return np.array(classes, dtype=np.float64)
        except OverflowError:
            pass
    raise ValueError(f"metadata['classes']: expected class labels of one kind (all strings, "
                     f"all integers of 64 bits or all numbers), got {classes!r:.80}")


def _standardize(builder: GraphBuilder, x: str, mean: np.ndarray, std: np.ndarray) -> str:
    """(x - mean) / std. fastbp standardises in float64; in a float32 graph the mean is
    subtracted in two parts (its float32 rounding, then the rest), so that features far from
    zero compared with their spread keep the precision fastbp gives them."""
    high = mean.astype(builder.dtype)
    x = builder.op("Sub", x, builder.constant(high, "mean"))
    low = (mean - high.astype(np.float64)).astype(builder.dtype)
    if low.any():
        x = builder.op("Sub", x, builder.constant(low, "mean_rest"))
    return builder.op("Div", x, builder.constant(std, "std"))


def _classifier_outputs(builder: GraphBuilder, kind: str, classes: np.ndarray | None,
                        width: int) -> list[tuple[str, np.dtype, list]]:
    """Add probabilities and labels computed from `output`; returns their descriptions."""
    with builder.scope(PROBABILITIES):
        if kind == "softmax":
            builder.rename(builder.op("Softmax", OUTPUT, axis=-1), PROBABILITIES)
        else:
            builder.rename(builder.op("Sigmoid", OUTPUT), PROBABILITIES)
    with builder.scope(LABEL):
        shape = [BATCH]
        if kind == "softmax":                   # on the outputs, as fastbp: ties and all
            index = builder.op("ArgMax", OUTPUT, axis=1, keepdims=0)
        else:                                   # sigmoid(z) > 1/2 <=> z > 0, as fastbp
            positive = builder.op("Greater", OUTPUT, builder.constant(0.0))
            index = builder.op("Cast", positive, to=np.dtype(np.int64))
            if width == 1:
                index = builder.op("Reshape", index,
                                   builder.constant([-1], "shape", dtype=np.int64))
            else:
                shape = [BATCH, width]
        if classes is not None:
            index = builder.op("Gather", builder.constant(classes, "classes",
                                                          dtype=classes.dtype), index)
        builder.rename(index, LABEL)
    label_dtype = np.dtype(np.int64) if classes is None else classes.dtype
    return [(PROBABILITIES, builder.dtype, [BATCH, width]), (LABEL, label_dtype, shape)]


def fold_batchnorms(builder: GraphBuilder, graph_outputs: set[str]) -> None:
    """Fold every BatchNormalization whose input only a Gemm of constant weight and bias
    makes (and nothing else reads) into that Gemm: W' = s W, b' = s (b - mean) + bias with
    s = weight / sqrt(var + epsilon), computed in float64."""
    uses = Counter(name for node in builder.nodes for name in node.inputs)
    uses.update(graph_outputs)
    made_by = {node.output: node for node in builder.nodes}
    constants = builder.initializers
    for norm in [node for node in builder.nodes if node.op_type == "BatchNormalization"]:
        gemm = made_by.get(norm.inputs[0])
        if gemm is None or gemm.op_type != "Gemm" or gemm.attributes != {"transB": 1} \
                or uses[gemm.output] != 1 \
                or any(uses[name] != 1 or name not in constants for name in gemm.inputs[1:]) \
                or any(name not in constants for name in norm.inputs[1:]):
            continue
        weight = constants[gemm.inputs[1]].astype(np.float64)
        bias = constants[gemm.inputs[2]].astype(np.float64) if len(gemm.inputs) > 2 else \
            np.zeros(weight.shape[0])
        gamma, beta, mean, var = (constants[name].astype(np.float64) for name in norm.inputs[1:])
        scale = gamma / np.sqrt(var + norm.attributes.get("epsilon", 1e-5))
        prefix = gemm.inputs[1].rsplit(".", 1)[0]
        with builder.scope(prefix):
            folded_weight = builder.constant(weight * scale[:, None], "weight_folded")
            folded_bias = builder.constant((bias - mean) * scale + beta, "bias_folded")
        gemm.inputs = [gemm.inputs[0], folded_weight, folded_bias]
        gemm.output = norm.output
        builder.nodes.remove(norm)
    used = {name for node in builder.nodes for name in node.inputs}
    for name in [name for name in constants if name not in used]:
        del constants[name]


def _model(onnx, builder: GraphBuilder, net, graph_outputs):
    """The ModelProto of the builder's graph, with fastbp's metadata."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper

    def tensor_type(dtype: np.dtype) -> int:
        if np.dtype(dtype).kind == "O":        # class names
            return onnx.TensorProto.STRING
        return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def attribute(value):
        return tensor_type(value) if isinstance(value, np.dtype) else value

    nodes = [helper.make_node(node.op_type, node.inputs, [node.output], name=node.output,
                              **{k: attribute(v) for k, v in node.attributes.items()})
             for node in builder.nodes]
    initializers = [numpy_helper.from_array(array, name)
                    for name, array in builder.initializers.items()]
    features = "raw features, standardised in the graph" if net.standardizer is not None \
        else "features"
    graph_input = helper.make_tensor_value_info(INPUT, tensor_type(net.dtype),
                                                [BATCH, net.in_features], doc_string=features)
    outputs = [helper.make_tensor_value_info(name, tensor_type(dtype), shape)
               for name, dtype, shape in graph_outputs]
    graph = helper.make_graph(nodes, "fastbp", [graph_input], outputs, initializers,
                              doc_string=repr(net))
    opsets = [helper.make_opsetid("", builder.opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="fastbp",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              doc_string=f"{type(net).__name__} exported by fastbp "
                                         f"{__version__}")
    props = {"fastbp_version": __version__, "summary": repr(net),
             "architecture": json.dumps(net.config()),
             "outputs": ", ".join(name for name, _, _ in graph_outputs)}
    loss = getattr(net, "loss", None)
    if loss is not None:
        props["loss"] = loss.name
    scalings = [name for name in ("standardizer", "target_standardizer")
                if getattr(net, name) is not None]
    if scalings:
        props["scalings"] = ", ".join(scalings)
    if net.metadata:
        try:
            props["metadata"] = json.dumps(net.metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metadata: expected JSON-serialisable values: {exc}") from None
    helper.set_model_props(model, props)
    return model

