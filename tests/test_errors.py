"""Bad input gets a clear ValueError/TypeError naming the argument, never a crash."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastbp as fb
from fastbp import _core


@pytest.fixture
def net():
    return fb.mlp([4, 6, 3], seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 4)), rng.integers(0, 3, 20)


# ---------------------------------------------------------------------------- shapes and widths
def test_wrong_input_width_names_layer_and_shapes(net):
    X = np.zeros((5, 7))
    for call in (lambda: net.forward(X), lambda: net.predict(X),
                 lambda: net.fit(X, np.zeros(5, int), verbose=0)):
        with pytest.raises(ValueError, match=r"X: expected 4 features .*layer 0 \(Dense\).*"
                                             r"shape \(n, 4\).*\(5, 7\)"):
            call()


def test_mismatched_dense_widths():
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\): expected input width 5.*width 6"):
        fb.Sequential(fb.Dense(4, 6), fb.ReLU(), fb.Dense(5, 2))


@pytest.mark.parametrize("X", [np.zeros(4), np.zeros((2, 3, 4)), np.zeros(())])
def test_x_must_be_2d(net, X):
    with pytest.raises(ValueError, match=r"X: expected a 2-D array \(samples, features\)"):
        net.forward(X)


def test_empty_x(net):
    with pytest.raises(ValueError, match="at least one sample"):
        net.predict(np.zeros((0, 4)))


def test_x_y_length_mismatch(net, data):
    X, y = data
    with pytest.raises(ValueError, match="y: expected 20 labels to match X, got 19"):
        net.fit(X, y[:19], verbose=0)
    with pytest.raises(ValueError, match=r"y: expected shape \(20, 3\)"):
        net.fit(X, np.zeros((19, 3)), loss="mse", verbose=0)


# ------------------------------------------------------------------------------------- labels
@pytest.mark.parametrize("labels, message", [
    ([0, 1, 3], r"y: expected class labels in \[0, 3\).*got 3"),
    ([0, -1, 2], r"y: expected class labels in \[0, 3\).*got -1"),
    ([0.0, 1.5, 2.0], "y: expected integer class labels, got 1.5"),
    ([[0], [1], [2]], r"y: expected class labels of shape \(3,\)"),
])
def test_bad_class_labels(net, labels, message):
    with pytest.raises(ValueError, match=message):
        net.fit(np.zeros((3, 4)), np.array(labels), verbose=0)
    with pytest.raises(ValueError, match=message):
        fb.SoftmaxCrossEntropy()(np.zeros((3, 3)), np.array(labels))


def test_integral_float_labels_are_accepted(net):
    net.fit(np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), epochs=1, verbose=0)


def test_bce_targets_outside_unit_interval():
    with pytest.raises(ValueError, match=r"y: expected targets in \[0, 1\].*got 2"):
        fb.BCEWithLogits()(np.zeros((2, 1)), np.array([0.0, 2.0]))


def test_mse_target_shape():
    with pytest.raises(ValueError, match=r"y: expected shape \(2, 3\).*got \(2, 2\)"):
        fb.MSE()(np.zeros((2, 3)), np.zeros((2, 2)))


# --------------------------------------------------------------------------------- non-finite
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_and_targets(net, data, bad):
    X, y = data
    Xb = X.copy()
    Xb[3, 2] = bad
    with pytest.raises(ValueError, match=r"X: expected finite values.*index \(3, 2\)"):
        net.fit(Xb, y, verbose=0)
    with pytest.raises(ValueError, match="X: expected finite values"):
        net.predict(Xb)
    yb = np.zeros((20, 3))
    yb[0, 0] = bad
    with pytest.raises(ValueError, match="y: expected finite values"):
        net.fit(X, yb, loss="mse", verbose=0)
    with pytest.raises(ValueError, match="validation_data"):
        net.fit(X, y, validation_data=(Xb, y), verbose=0)
    with pytest.raises(ValueError, match="y: expected finite values"):
        net.fit(X, np.where(np.arange(20) == 4, bad, y), verbose=0)


# ------------------------------------------------------------------------- hyper-parameters
@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size: expected a positive integer, got 0"),
    ({"batch_size": -3}, "batch_size: expected a positive integer"),
    ({"batch_size": 2.5}, "batch_size: expected a positive integer"),
    ({"lr": 0.0}, r"lr: expected a finite number > 0, got 0.0"),
    ({"lr": -1e-3}, "lr: expected a finite number > 0"),
    ({"lr": float("nan")}, "lr: expected a finite number > 0"),
    ({"epochs": 0}, "epochs: expected a positive integer"),
    ({"clip_norm": 0.0}, "clip_norm: expected a finite number > 0"),
    ({"loss": "hinge"}, r"loss: expected a fastbp Loss, one of \['bce', .*'mse'.*got 'hinge'"),
    ({"optimizer": "lbfgs"}, r"optimizer: expected a fastbp Optimizer or one of .*'adam'.*"
                             r"got 'lbfgs'"),
    ({"validation_data": np.zeros((2, 4))}, "validation_data: expected a pair"),
])
def test_bad_fit_arguments(net, data, kwargs, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        net.fit(X, y, verbose=0, **kwargs)


def test_unknown_names():
    with pytest.raises(ValueError, match=r"activation: expected one of \[.*'relu'.*got 'swish'"):
        fb.mlp([2, 3], activation="swish")
    with pytest.raises(ValueError, match=r"init: expected one of \[.*'he'.*got 'orthogonal'"):
        fb.Dense(2, 3, init="orthogonal")
    with pytest.raises(ValueError, match=r"dtype: expected one of \['float32', 'float64'\]"):
        fb.mlp([2, 3], dtype="float16")
    with pytest.raises(ValueError, match="negative_slope"):
        fb.LeakyReLU(-0.1)
    with pytest.raises(ValueError, match="in_features: expected a positive integer"):
        fb.Dense(0, 3)


def test_optimizer_arguments(net):
    with pytest.raises(ValueError, match="lr: expected a finite number > 0"):
        fb.Adam(net, lr=0)
    with pytest.raises(ValueError, match=r"betas\[1\]: expected a finite number >= 0 and < 1"):
        fb.Adam(net, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov"):
        fb.SGD(net, lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="net: expected a fastbp Sequential"):
        fb.SGD(object(), lr=0.1)
    with pytest.raises(ValueError, match="built for this network"):
        net.fit(np.zeros((2, 4)), [0, 1], optimizer=fb.Adam(fb.mlp([4, 6, 3])), verbose=0)


def test_backward_before_forward(net):
    with pytest.raises(RuntimeError, match="forward"):
        net.backward(np.zeros((2, 3)))
    net.forward(np.zeros((2, 4)), training=False)
    with pytest.raises(RuntimeError, match="forward"):
        net.backward(np.zeros((2, 3)))


def test_backward_shape(net):
    net.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3\)"):
        net.backward(np.zeros((5, 3)))


# ---------------------------------------------------------------------- dtypes and layouts
@pytest.mark.parametrize("X, kind", [
    (np.zeros((2, 4), dtype=object), "object"),
    (np.zeros((2, 4), dtype=complex), "complex"),
    (np.array([["a", "b", "c", "d"]] * 2), "<U1"),
])
def test_refused_dtypes(net, X, kind):
    with pytest.raises(TypeError, match=f"X: expected a real numeric array, got dtype {kind}"):
        net.forward(X)


def test_ragged_list(net):
    with pytest.raises(TypeError, match="X: expected a numeric array"):
        net.forward([[1, 2, 3, 4], [1, 2]])


def test_other_dtypes_and_layouts_are_converted(net):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 4))
    reference = net.predict(X.astype(np.float32))
    variants = [X, X.astype(np.float16).astype(np.float64), np.asfortranarray(X),
                np.repeat(X, 2, axis=0)[::2], X.tolist()]
    for variant in variants[:1] + variants[2:]:
        np.testing.assert_array_equal(net.predict(variant), reference)
    half = net.predict(X.astype(np.float16))
    np.testing.assert_array_equal(half, net.predict(X.astype(np.float16).astype(np.float32)))
    ints = np.arange(24).reshape(6, 4)
    np.testing.assert_array_equal(net.predict(ints), net.predict(ints.astype(np.float32)))
    labels = np.array([0, 1, 2, 0, 1, 2], dtype=np.int32)
    net.fit(X, labels, epochs=1, verbose=0)


# -------------------------------------------------------------------------------- divergence
def test_divergence_stops_with_last_finite_parameters():
    X = np.array([[1.0], [2.0]])
    y = np.array([[1e3], [2e3]])
    net = fb.Sequential(fb.Dense(1, 1), dtype="float64", seed=0)
    history = []

    class Recorder(fb.SGD):
        def step(self):
            history.append(self.net.params.copy())
            super().step()

    with pytest.raises(FloatingPointError, match=r"epoch \d+, step \d+") as info:
        net.fit(X, y, loss="mse", optimizer=Recorder(net, lr=10.0), epochs=500, batch_size=2,
                shuffle=False, verbose=0)
    assert np.isfinite(net.params).all()
    # the parameters before the last update: the ones whose loss was the last finite one
    np.testing.assert_array_equal(net.params, history[-1])
    assert "loss became" in str(info.value)
    assert isinstance(info.value.history, fb.History)


# ------------------------------------------------------------------------- low-level kernels
def test_kernels_refuse_bad_arrays():
    a32 = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match="B: expected dtype float32 like A, got float64"):
        _core.gemm(a32, np.zeros((4, 2)), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="C: expected shape"):
        _core.gemm(a32, np.zeros((4, 2), np.float32), np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="B: expected op"):
        _core.gemm(a32, np.zeros((5, 2), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.bias_activation_forward(np.zeros((4, 3)).T, None, "relu")
    readonly = np.zeros((2, 2))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.bias_activation_forward(readonly, None, "relu")
    with pytest.raises(ValueError, match="activation: expected one of"):
        _core.bias_activation_forward(np.zeros((2, 2)), None, "softsign")
    with pytest.raises(TypeError, match="expected a numpy.ndarray"):
        _core.grad_norm([1.0, 2.0])
    with pytest.raises(TypeError, match="int64"):
        _core.softmax_cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int32), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 3\), got 7"):
        _core.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 7]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"indices: expected values in \[0, 2\), got -1"):
        _core.gather_rows(np.zeros((2, 3)), np.array([0, -1]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="step"):
        p = np.zeros(3)
        _core.adam_step(p, p.copy(), p.copy(), p.copy(), 0, 1e-3, 0.9, 0.999, 1e-8, 0, False)
    with pytest.raises(ValueError, match="max_norm"):
        _core.clip_grad_norm(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="at least one element"):
        _core.mse(np.zeros(0), np.zeros(0), np.zeros(0))


# --------------------------------------------------------------------- property-based checks
any_array = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.float16, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    elements=None)


@settings(max_examples=60, deadline=None)
@given(X=any_array)
def test_forward_gives_a_result_or_a_clear_error(X):
    net = fb.mlp([4, 5, 2], dtype="float64")
    try:
        out = net.forward(X)
    except (ValueError, TypeError):
        return
    assert out.shape == (X.shape[0], 2)
    assert np.isfinite(out).all()


@settings(max_examples=60, deadline=None)
@given(out=any_array, y=any_array,
       loss=st.sampled_from([fb.SoftmaxCrossEntropy(), fb.MSE(), fb.BCEWithLogits()]))
def test_losses_give_a_result_or_a_clear_error(out, y, loss):
    try:
        value, dout = loss(out, y)
    except (ValueError, TypeError):
        return
    assert dout.shape == np.shape(out)


small_floats = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
    elements=None)
floats_or_labels = st.one_of(
    small_floats,
    hnp.arrays(np.int64, hnp.array_shapes(min_dims=1, max_dims=1, min_side=0, max_side=3),
               elements=st.integers(-5, 5)))


@settings(max_examples=150, deadline=None)
@given(a=small_floats, b=floats_or_labels, c=small_floats,
       trans_a=st.booleans(), trans_b=st.booleans(),
       name=st.sampled_from(["gemm", "bias_activation_forward", "activation_backward",
                             "bias_grad", "mse", "bce_with_logits", "softmax_cross_entropy",
                             "softmax_cross_entropy_probs", "gather_rows", "grad_norm",
                             "clip_grad_norm"]))
def test_kernels_give_a_result_or_a_clear_error(a, b, c, trans_a, trans_b, name):
    calls = {
        "gemm": lambda: _core.gemm(a, b, c, trans_a, trans_b),
        "bias_activation_forward": lambda: _core.bias_activation_forward(a, b, "tanh"),
        "activation_backward": lambda: _core.activation_backward(a, b, c, "sigmoid"),
        "bias_grad": lambda: _core.bias_grad(a, b),
        "mse": lambda: _core.mse(a, b, c),
        "bce_with_logits": lambda: _core.bce_with_logits(a, b, c),
        "softmax_cross_entropy": lambda: _core.softmax_cross_entropy(a, b, c),
        "softmax_cross_entropy_probs": lambda: _core.softmax_cross_entropy_probs(a, b, c),
        "gather_rows": lambda: _core.gather_rows(a, b, c),
        "grad_norm": lambda: _core.grad_norm(a),
        "clip_grad_norm": lambda: _core.clip_grad_norm(a, 1.0),
    }
    try:
        calls[name]()
    except (ValueError, TypeError):
        pass
