"""ONNX export (`net.to_onnx`, fastbp.onnx_export): each layer type, random architectures,
scalings, classifier outputs, float32 and float64, checked by onnx's checker and against
onnxruntime. Tests that need onnx or onnxruntime skip without them
(``pip install "fastbp[onnx]"``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastbp as fb
from fastbp import archive, onnx_export
from fastbp.nn.layer import Layer
from fastbp.registry import LAYERS

PACKAGE_ROOT = str(Path(fb.__file__).resolve().parent.parent)
RTOL = {"float32": 1e-5, "float64": 1e-12}     # relative to the largest output


def onnx_module():
    return pytest.importorskip("onnx")


def run(model, X) -> dict[str, np.ndarray]:
    """{output name: value} of `model` (a ModelProto or a path) in onnxruntime on X, after
    checking that every node's output is read (by a node, or as a graph output)."""
    ort = pytest.importorskip("onnxruntime")
    graph = (onnx_module().load(os.fspath(model)) if isinstance(model, (str, os.PathLike))
             else model).graph
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    assert all(node.output[0] in read for node in graph.node), "a node nobody reads"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = model if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    session = ort.InferenceSession(os.fspath(source) if isinstance(source, os.PathLike)
                                   else source, options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": X}), strict=True))


def relative_difference(got, want) -> float:
    """max |got - want| / max |want|: the difference relative to the largest output."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), np.finfo(float).tiny))


def assert_same(got, want, dtype, what="output", magnitude=None) -> None:
    """got equals want to RTOL of dtype relative to the largest output, or to the largest
    `magnitude` where given (the terms the outputs are computed from, see `magnitudes`)."""
    assert got.dtype == np.dtype(dtype), (what, got.dtype)
    if magnitude is None:
        difference = relative_difference(got, want)
    else:
        difference = float(np.abs(np.asarray(got, np.float64) - want).max() /
                           max(np.max(magnitude), np.finfo(float).tiny))
    assert difference <= RTOL[np.dtype(dtype).name], f"{what}: relative difference {difference:.3g}"


def magnitudes(net, X) -> np.ndarray:
    """The magnitudes that rounding in a float computation of ``net.predict(X)`` is relative
    to, per output: the absolute values of the terms of each sum (|W| |x| + |b| for a Dense
    layer, |x| + |mean| for a BatchNorm), carried through the layers by their Lipschitz
    constants. A float32 result computed in any order of operations is within a small multiple
    of eps times this (an output that cancels to near zero is not known better than that)."""
    net = net.astype("float64")
    h = np.asarray(X, np.float64)
    m = np.abs(h)
    if net.standardizer is not None:
        mean, std = net.standardizer.mean, net.standardizer.std
        h, m = (h - mean) / std, (m + np.abs(mean)) / std
    for layer in net.layers:
        h, m = propagate(layer, h, m)
    if net.target_standardizer is not None:
        mean, std = net.target_standardizer.mean, net.target_standardizer.std
        h, m = h * std + mean, m * std + np.abs(mean)
    return m


def propagate(layer, h, m):
    """(layer output, its magnitudes) for input h of magnitudes m (see `magnitudes`)."""
    out = layer.forward(h, training=False)
    if isinstance(layer, fb.Dense):
        m = np.maximum(m, np.abs(h)) @ np.abs(layer.params["weight"]).T + \
            np.abs(layer.params.get("bias", 0.0))
    elif isinstance(layer, fb.BatchNorm):
        var, eps = layer.buffers["running_var"], layer.eps
        m = np.abs(layer.params["weight"]) / np.sqrt(var + eps) * (
            np.maximum(m, np.abs(h)) + np.abs(layer.buffers["running_mean"])) + \
            np.abs(layer.params["bias"])
    elif isinstance(layer, fb.Residual):
        inner, block = h, m
        for sublayer in layer.layers:
            inner, block = propagate(sublayer, inner, block)
        m = m + block
    elif isinstance(layer, fb.nn.Activation):
        m = m * max(1.2, getattr(layer, "alpha", 0), getattr(layer, "slope", 0))
    return out, np.maximum(m, np.abs(out))


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, np.float64)))


def op_types(model) -> list[str]:
    return [node.op_type for node in model.graph.node]


def randomize(net, seed: int = 0, scale: float = 0.5):
    """Random parameters and running statistics (variances in [0.25, 2])."""
    rng = np.random.default_rng(seed)
    net.params[...] = rng.normal(scale=scale, size=net.params.size)
    for name, buffer in net.named_buffers():
        buffer[...] = rng.uniform(0.25, 2.0, buffer.shape) if name.endswith("running_var") \
            else rng.normal(scale=0.5, size=buffer.shape)
    return net


def inputs(net, n: int = 33, seed: int = 1):
    return np.random.default_rng(seed).normal(scale=1.5, size=(n, net.in_features)).astype(
        net.dtype)


# A network for every layer type (the layer under test between two Dense layers).
LAYER_CASES = {
    "Dense": lambda: [fb.Dense(5, 4)],
    "Dense_no_bias": lambda: [fb.Dense(5, 4, bias=False)],
    "Identity": lambda: [fb.Dense(5, 6), fb.Identity(), fb.Dense(6, 4)],
    "ReLU": lambda: [fb.Dense(5, 6), fb.ReLU(), fb.Dense(6, 4)],
    "LeakyReLU": lambda: [fb.Dense(5, 6), fb.LeakyReLU(0.2), fb.Dense(6, 4)],
    "ELU": lambda: [fb.Dense(5, 6), fb.ELU(0.7), fb.Dense(6, 4)],
    "Sigmoid": lambda: [fb.Dense(5, 6), fb.Sigmoid(), fb.Dense(6, 4)],
    "Tanh": lambda: [fb.Dense(5, 6), fb.Tanh(), fb.Dense(6, 4)],
    "GELU": lambda: [fb.Dense(5, 6), fb.GELU(), fb.Dense(6, 4)],
    "GELU_tanh": lambda: [fb.Dense(5, 6), fb.GELU(approximate="tanh"), fb.Dense(6, 4)],
    "Softplus": lambda: [fb.Dense(5, 6), fb.Softplus(), fb.Dense(6, 4)],
    "Softplus_beta_threshold": lambda: [fb.Dense(5, 6), fb.Softplus(2.5, 1.5), fb.Dense(6, 4)],
    "BatchNorm": lambda: [fb.Dense(5, 6), fb.BatchNorm(6, eps=1e-3), fb.Dense(6, 4)],
    "BatchNorm_first": lambda: [fb.BatchNorm(5), fb.Dense(5, 4)],
    "Dropout": lambda: [fb.Dense(5, 6), fb.Dropout(0.3), fb.Dense(6, 4)],
    "Residual": lambda: [fb.Dense(5, 6), fb.Residual(fb.Dense(6, 6), fb.Tanh(),
                                                      fb.BatchNorm(6)), fb.Dense(6, 4)],
    "Residual_nested": lambda: [fb.Dense(5, 6), fb.Residual(fb.ReLU(), fb.Residual(
        fb.Dense(6, 6), fb.BatchNorm(6)), fb.Dropout(0.5)), fb.Dense(6, 4)],
}


@pytest.mark.parametrize("opset", [13, 19, 21])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_every_layer_type_runs_in_onnxruntime_as_in_fastbp(case, dtype, opset):
    onnx = onnx_module()
    net = randomize(fb.Sequential(*LAYER_CASES[case](), dtype=dtype, seed=3))
    X = inputs(net)
    want = net.predict(X)
    for fold in (False, True):
        model = net.to_onnx(opset=opset, outputs="raw", fold_batchnorm=fold)
        onnx.checker.check_model(model, full_check=True)
        got = run(model, X)
        assert list(got) == ["output"]
        assert_same(got["output"], want, dtype, f"{case} fold={fold}")


def test_activations_become_their_exact_operators():
    net = fb.Sequential(fb.Dense(3, 4), fb.ReLU(), fb.Dense(4, 4), fb.LeakyReLU(0.25),
                        fb.ELU(0.5), fb.Sigmoid(), fb.Tanh(), fb.GELU(),
                        fb.GELU(approximate="tanh"), fb.Identity(), fb.Dropout(0.5),
                        fb.BatchNorm(4), fb.Residual(fb.Dense(4, 4)), fb.Dense(4, 2))
    helper = onnx_module().helper
    model = net.to_onnx(opset=21, outputs="raw")
    assert op_types(model) == ["Gemm", "Relu", "Gemm", "LeakyRelu", "Elu", "Sigmoid", "Tanh",
                               "Gelu", "Gelu", "BatchNormalization", "Gemm", "Add", "Gemm"]
    nodes = {node.name: node for node in model.graph.node}

    def attributes(name):
        return {a.name: helper.get_attribute_value(a) for a in nodes[name].attribute}

    assert attributes("0.Gemm") == {"transB": 1}
    assert attributes("3.LeakyRelu")["alpha"] == pytest.approx(0.25)
    assert attributes("4.Elu")["alpha"] == pytest.approx(0.5)
    assert attributes("7.Gelu")["approximate"] == b"none"
    assert attributes("8.Gelu")["approximate"] == b"tanh"
    assert attributes("11.BatchNormalization")["epsilon"] == pytest.approx(1e-5)
    names = {init.name for init in model.graph.initializer}
    assert {"0.weight", "0.bias", "11.weight", "11.running_var", "12.0.weight"} <= names


def test_softplus_keeps_beta_and_threshold():
    onnx_module()
    net = randomize(fb.Sequential(fb.Dense(2, 3), fb.Softplus(beta=2.0, threshold=3.0),
                                  dtype="float32"))
    assert op_types(net.to_onnx(outputs="raw")) == ["Gemm", "Mul", "Softplus", "Div",
                                                    "Greater", "Where"]
    X = np.linspace(-4, 4, 200, dtype=np.float32).reshape(100, 2)
    assert_same(run(net.to_onnx(outputs="raw"), X)["output"], net.predict(X), "float32")


def test_float64_graphs_decompose_what_onnxruntime_lacks_and_never_cast():
    """onnxruntime has no double LeakyRelu, Elu, Softplus, Erf (Gelu): float64 graphs compute
    them from operators it has, in float64 throughout."""
    onnx_module()
    net = randomize(fb.Sequential(fb.Dense(3, 4), fb.LeakyReLU(0.1), fb.ELU(), fb.Softplus(),
                                  fb.GELU(), fb.GELU(approximate="tanh"), fb.Dense(4, 2),
                                  dtype="float64"))
    model = net.to_onnx(outputs="raw")
    assert not {"LeakyRelu", "Elu", "Softplus", "Erf", "Gelu", "Cast"} & set(op_types(model))
    double = onnx_module().TensorProto.DOUBLE
    assert {init.data_type for init in model.graph.initializer} == {double}
    X = inputs(net, 200)
    assert_same(run(model, X)["output"], net.predict(X), "float64")


def test_gelu_before_opset_20_is_its_formula():
    onnx_module()
    for approximate in ("none", "tanh"):
        net = fb.Sequential(fb.Dense(2, 3), fb.GELU(approximate=approximate), dtype="float32")
        types = op_types(net.to_onnx(opset=19, outputs="raw"))
        assert "Gelu" not in types
        assert ("Erf" in types) == (approximate == "none")
        assert "Gelu" in op_types(net.to_onnx(opset=20, outputs="raw"))


def test_the_float64_erfc_is_within_1e_13_of_scipys():
    from scipy.special import erfc
    builder = onnx_export.GraphBuilder("float64", 21)
    out = builder.erfc(onnx_export.INPUT)
    builder.rename(out, onnx_export.OUTPUT)
    onnx = onnx_module()
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node(n.op_type, n.inputs, [n.output], **n.attributes) for n in builder.nodes],
        "erfc", [helper.make_tensor_value_info("input", onnx.TensorProto.DOUBLE, ["n", 1])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.DOUBLE, ["n", 1])],
        [onnx.numpy_helper.from_array(a, name) for name, a in builder.initializers.items()])
    opsets = [helper.make_opsetid("", 21)]
    model = helper.make_model(graph, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets))
    x = np.concatenate([np.linspace(-26, 26, 20001), [-1e-300, 0.0, 1e-300, 1e-8]])[:, None]
    got = run(model, x)["output"]
    want = erfc(x)
    assert np.max(np.abs(got - want) / want) < 1e-13


# --------------------------------------------------------------------------- BatchNorm fold
def test_fold_batchnorm_folds_into_the_gemm_before_it_only():
    onnx_module()
    net = randomize(fb.Sequential(
        fb.Dense(4, 5), fb.BatchNorm(5), fb.ReLU(),          # folded
        fb.BatchNorm(5),                                     # after an activation: kept
        fb.Dense(5, 5, bias=False), fb.Dropout(0.2), fb.BatchNorm(5),   # folded (adds a bias)
        fb.Residual(fb.Dense(5, 5), fb.BatchNorm(5)),        # folded inside the block
        fb.Dense(5, 3), dtype="float32"))
    plain = net.to_onnx(outputs="raw")
    folded = net.to_onnx(outputs="raw", fold_batchnorm=True)
    assert op_types(plain).count("BatchNormalization") == 4
    assert op_types(folded) == ["Gemm", "Relu", "BatchNormalization", "Gemm", "Gemm", "Add",
                                "Gemm"]
    names = {init.name for init in folded.graph.initializer}
    assert {"0.weight_folded", "0.bias_folded", "4.weight_folded", "4.bias_folded",
            "7.0.weight_folded"} <= names and "0.weight" not in names
    X = inputs(net)
    for model in (plain, folded):
        assert_same(run(model, X)["output"], net.predict(X), "float32")


def test_float64_batchnorm_keeps_eps_exact():
    """ONNX's epsilon is a 32-bit float: a float64 graph puts eps into the variance."""
    onnx_module()
    net = fb.Sequential(fb.Dense(2, 3), fb.BatchNorm(3), dtype="float64")
    randomize(net)
    net.named_buffers()[1][1][...] = 0.0                  # zero variance: 1 / sqrt(eps)
    X = inputs(net)
    for fold in (False, True):
        got = run(net.to_onnx(outputs="raw", fold_batchnorm=fold), X)["output"]
        assert_same(got, net.predict(X), "float64")


# ----------------------------------------------------------------------------- the outputs
def classifier(dtype="float32", outputs=4, loss=None, seed=0):
    net = randomize(fb.Sequential(fb.Dense(3, 8), fb.Tanh(), fb.Dense(8, outputs),
                                  dtype=dtype), seed, scale=1.5)
    net.loss = loss
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_classifier_gives_probabilities_and_labels(dtype):
    onnx_module()
    net = classifier(dtype, loss=fb.SoftmaxCrossEntropy())
    X = inputs(net, 200)
    got = run(net.to_onnx(), X)
    assert list(got) == ["output", "probabilities", "label"]
    logits = net.predict(X)
    assert_same(got["output"], logits, dtype)
    assert_same(got["probabilities"], softmax(logits), dtype, "probabilities")
    assert got["label"].dtype == np.int64 and np.array_equal(got["label"], logits.argmax(1))


@pytest.mark.parametrize("classes", [["ant", "bee", "cat", "dog"], [3, 5, 7, 11],
                                     [0.5, 1.5, 2.5, 4.0]])
def test_labels_are_the_class_names_the_model_carries(classes):
    onnx_module()
    net = classifier(loss=fb.SoftmaxCrossEntropy())
    net.metadata = {"classes": classes}
    X = inputs(net, 50)
    label = run(net.to_onnx(), X)["label"]
    assert label.shape == (50,)
    assert label.tolist() == [classes[i] for i in net.predict(X).argmax(1)]


def test_a_binary_cross_entropy_model_gives_sigmoid_probabilities():
    onnx_module()
    net = classifier("float64", outputs=1, loss=fb.BCEWithLogits())
    net.metadata = {"task": "binary", "classes": ["no", "yes"]}
    X = inputs(net, 100)
    got = run(net.to_onnx(), X)
    z = net.predict(X)
    assert got["probabilities"].shape == (100, 1)
    assert_same(got["probabilities"], sigmoid(z), "float64", "probabilities")
    assert got["label"].tolist() == [["no", "yes"][int(v > 0)] for v in z[:, 0]]


def test_a_multilabel_model_gives_a_label_per_output():
    onnx_module()
    net = classifier(outputs=3, loss=fb.BCEWithLogits())
    X = inputs(net, 100)
    got = run(net.to_onnx(), X)
    z = net.predict(X)
    assert_same(got["probabilities"], sigmoid(z), "float32", "probabilities")
    assert got["label"].shape == (100, 3)
    assert np.array_equal(got["label"], (z > 0).astype(np.int64))


def test_outputs_choose_what_the_graph_gives():
    onnx_module()
    net = classifier(loss=fb.SoftmaxCrossEntropy())
    outputs = {kind: [o.name for o in net.to_onnx(outputs=kind).graph.output]
               for kind in ("auto", "raw", "softmax", "sigmoid")}
    assert outputs == {"auto": ["output", "probabilities", "label"], "raw": ["output"],
                       "softmax": ["output", "probabilities", "label"],
                       "sigmoid": ["output", "probabilities", "label"]}
    plain = classifier(loss=None)                     # no loss: raw unless asked
    assert [o.name for o in plain.to_onnx().graph.output] == ["output"]
    plain.metadata = {"task": "classification"}
    assert [o.name for o in plain.to_onnx().graph.output][-1] == "label"
    regression = classifier(loss=fb.MSE())
    assert [o.name for o in regression.to_onnx().graph.output] == ["output"]


def test_standardizers_go_into_the_graph():
    """Raw features in, the targets' units out, in float32 too when the features sit far from
    zero compared with their spread."""
    onnx_module()
    rng = np.random.default_rng(4)
    for dtype in ("float32", "float64"):
        net = randomize(fb.Sequential(fb.Dense(3, 6), fb.ELU(), fb.Dense(6, 2), dtype=dtype))
        X = rng.normal(size=(80, 3)) * [1.0, 0.01, 30.0] + [5e3, 1e-2, -7e4]
        net.standardizer = fb.Standardizer().fit(X)
        net.target_standardizer = fb.Standardizer().fit(rng.normal(size=(9, 2)) * 50 + 1e3)
        model = net.to_onnx()
        start = ["Sub", "Sub", "Div"] if dtype == "float32" else ["Sub", "Div"]
        assert op_types(model)[:len(start) + 1] == [*start, "Gemm"]
        assert op_types(model)[-2:] == ["Mul", "Add"]
        assert_same(run(model, X.astype(dtype))["output"], net.predict(X.astype(dtype)), dtype)


def test_the_batch_dimension_is_dynamic(tmp_path):
    onnx_module()
    net = classifier(loss=fb.SoftmaxCrossEntropy())
    path = tmp_path / "m.onnx"
    model = net.to_onnx(path)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for n in (1, 7, 500):
        X = inputs(net, n)
        got = run(path, X)
        assert got["output"].shape == (n, 4) and got["label"].shape == (n,)
        assert_same(got["output"], net.predict(X), "float32")


def test_the_model_carries_fastbp_metadata(tmp_path):
    onnx = onnx_module()
    net = classifier(loss=fb.SoftmaxCrossEntropy())
    net.metadata = {"classes": [1, 2, 3, 4], "note": "digits"}
    net.to_onnx(tmp_path / "m.onnx")
    model = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["fastbp_version"] == fb.__version__ == model.producer_version
    assert model.producer_name == "fastbp"
    assert props["summary"] == repr(net)
    assert json.loads(props["architecture"]) == net.config()
    assert props["loss"] == "cross_entropy"
    assert json.loads(props["metadata"]) == net.metadata
    assert props["outputs"] == "output, probabilities, label"


# ------------------------------------------------------------------- random architectures
ACTIVATIONS = [
    st.just(fb.ReLU), st.just(fb.Sigmoid), st.just(fb.Tanh), st.just(fb.Identity),
    st.builds(lambda a: lambda: fb.LeakyReLU(a), st.floats(0, 1)),
    st.builds(lambda a: lambda: fb.ELU(a), st.floats(0, 2)),
    st.builds(lambda a: lambda: fb.GELU(approximate=a), st.sampled_from(["none", "tanh"])),
    st.builds(lambda b, t: lambda: fb.Softplus(b, t), st.floats(0.25, 4), st.floats(0.5, 20)),
]


@st.composite
def architectures(draw):
    """Layers of random kinds and widths, as a list of (kind, width) choices made into a
    network: Dense, activations, BatchNorm, Dropout and Residual blocks (nested once)."""
    def block(width: int, depth: int) -> tuple[list, int]:
        layers = []
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(st.sampled_from(["dense", "activation", "batchnorm", "dropout",
                                         "residual"] if depth < 2 else ["dense",
                                                                        "activation"]))
            if kind == "dense":
                out = width if depth else draw(st.integers(1, 6))
                layers.append(fb.Dense(width, out, bias=draw(st.booleans())))
                width = out
            elif kind == "activation":
                layers.append(draw(st.one_of(ACTIVATIONS))())
            elif kind == "batchnorm":
                layers.append(fb.BatchNorm(width, eps=draw(st.sampled_from([1e-5, 1e-3]))))
            elif kind == "dropout":
                layers.append(fb.Dropout(0.5))
            else:
                inner, _ = block(width, depth + 1)
                layers.append(fb.Residual(*inner))
        return layers, width

    width = draw(st.integers(1, 6))
    layers, out = block(width, 0)
    return [fb.Dense(draw(st.integers(1, 5)), width), *layers,
            fb.Dense(out, draw(st.integers(1, 4)))]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=architectures(), dtype=st.sampled_from(["float32", "float64"]),
       opset=st.sampled_from([13, 17, 19, 20, 21]), fold=st.booleans(),
       outputs=st.sampled_from(["raw", "softmax", "sigmoid"]), scaled=st.booleans(),
       rows=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_random_architectures_run_in_onnxruntime_as_in_fastbp(layers, dtype, opset, fold,
                                                              outputs, scaled, rows, seed):
    onnx_module()
    net = randomize(fb.Sequential(*layers, dtype=dtype, seed=seed), seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, net.in_features))
    if scaled:
        net.standardizer = fb.Standardizer().fit(rng.normal(size=(6, net.in_features)) * 3 + 2)
        X = X * 3 + 2
    X = X.astype(dtype)
    got = run(net.to_onnx(opset=opset, outputs=outputs, fold_batchnorm=fold), X)
    z = net.predict(X)
    magnitude = magnitudes(net, X).max()
    assert_same(got["output"], z, dtype, magnitude=magnitude)
    if outputs == "raw":
        return
    probabilities = softmax(z) if outputs == "softmax" else sigmoid(z)
    # Softmax and sigmoid move by at most half of what moves their inputs.
    assert_same(got["probabilities"], probabilities, dtype, "probabilities",
                magnitude=max(probabilities.max(), magnitude / 2))
    # Labels as fastbp's wherever fastbp's outputs are not within rounding of a tie.
    margin = 10 * RTOL[dtype] * magnitude
    if outputs == "softmax":
        top2 = np.sort(z, axis=1)[:, -2:] if z.shape[1] > 1 else np.zeros((rows, 2))
        clear = (top2[:, 1] - top2[:, 0] > margin) | (z.shape[1] == 1)
        assert np.array_equal(got["label"][clear], z.argmax(1)[clear])
    else:
        clear = np.abs(z) > margin
        label = got["label"].reshape(z.shape)
        assert np.array_equal(label[clear], (z > 0).astype(np.int64)[clear])


# ----------------------------------------------------------------- errors and the protocol
@LAYERS.register()
class Doubler(Layer):
    """y = 2 x: a custom layer with an ONNX export of its own."""

    def forward(self, X, training=True):
        return 2 * X

    def export_onnx(self, builder, x):
        return builder.op("Mul", x, builder.constant(2.0))

    def config(self):
        return {"type": "Doubler"}


class Halver(Layer):
    """y = x / 2: a custom layer without an ONNX export."""

    def forward(self, X, training=True):
        return X / 2


class Future(Doubler):
    """A layer whose operator needs a newer opset."""

    def export_onnx(self, builder, x):
        builder.require_opset(99, "the Future operator")
        return x


def test_a_custom_layer_exports_itself_through_the_builder():
    onnx_module()
    net = randomize(fb.Sequential(fb.Dense(3, 4), Doubler(), fb.Dense(4, 2)))
    X = inputs(net)
    assert op_types(net.to_onnx())[1] == "Mul"
    assert_same(run(net.to_onnx(), X)["output"], net.predict(X), "float32")


@pytest.mark.parametrize("layers, error, message", [
    ([fb.Dense(3, 4), Halver()], TypeError, r"layer 1 \(Halver\): Halver has no ONNX export"),
    ([fb.Dense(3, 4), fb.Residual(fb.Tanh(), Halver())], TypeError,
     r"layer 1\.1 \(Halver\): Halver has no ONNX export"),
    ([fb.Dense(3, 4), fb.Residual(Future())], ValueError,
     r"opset: the Future operator in layer 1\.0 \(Future\) needs opset 99 or later, got "
     r"opset 21"),
])
def test_a_layer_that_cannot_be_exported_is_named(layers, error, message):
    onnx_module()
    with pytest.raises(error, match=message):
        fb.Sequential(*layers).to_onnx()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"outputs": "probs"}, ValueError,
     r"outputs: expected one of 'auto', 'raw', 'softmax', 'sigmoid', got 'probs'"),
    ({"outputs": None}, ValueError, "outputs: expected one of"),
    ({"opset": 12}, ValueError, r"opset: expected an opset from 13 to \d+ .* got 12"),
    ({"opset": 10_000}, ValueError, r"opset: expected an opset from 13"),
    ({"opset": "21"}, TypeError, "opset: expected an int or None, got str"),
    ({"opset": 21.0}, TypeError, "opset: expected an int or None, got float"),
    ({"fold_batchnorm": "yes"}, TypeError, "fold_batchnorm"),
    ({"path": 3}, TypeError, "path: expected a file path"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    onnx_module()
    with pytest.raises(error, match=message):
        classifier().to_onnx(**kwargs)


@pytest.mark.parametrize("classes, message", [
    (["a", "b"], r"metadata\['classes'\]: expected a list of 4 class labels \(one per output"),
    ("abcd", r"metadata\['classes'\]: expected a list of 4"),
    (["a", 1, "c", "d"], "expected class labels of one kind"),
    ([True, False, True, False], "expected class labels of one kind"),
    ([2**70, 1, 2, 3], "expected class labels of one kind"),
])
def test_malformed_class_names_are_refused(classes, message):
    onnx_module()
    net = classifier(loss=fb.SoftmaxCrossEntropy())
    net.metadata = {"classes": classes}
    with pytest.raises(ValueError, match=message):
        net.to_onnx()


def test_saving_is_atomic(tmp_path, monkeypatch):
    """A failed write leaves the previous file and no temporary behind."""
    onnx = onnx_module()
    path = tmp_path / "m.onnx"
    first = classifier(seed=1)
    first.to_onnx(path)
    before = path.read_bytes()

    def fail(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(archive.os, "fsync", fail)
    with pytest.raises(OSError, match="No space left on device"):
        classifier(seed=2).to_onnx(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.onnx"]
    monkeypatch.undo()
    classifier(seed=2).to_onnx(path)
    assert path.read_bytes() != before
    onnx.checker.check_model(str(path), full_check=True)


def test_a_missing_onnx_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)          # import onnx raises ImportError
    with pytest.raises(ImportError, match=r'pip install "fastbp\[onnx\]"'):
        classifier().to_onnx()


def test_the_core_never_imports_onnx(tmp_path):
    code = ("import sys, fastbp as fb\n"
            "net = fb.mlp([3, 4, 2])\n"
            "net.fit([[0, 1, 2]] * 4, [0, 1, 0, 1], epochs=1, verbose=0)\n"
            "net.save('m.npz'); fb.load('m.npz').predict([[1, 2, 3]])\n"
            "assert not {'onnx', 'onnxruntime'} & set(sys.modules), 'onnx imported'\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
