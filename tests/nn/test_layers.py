"""Layers against NumPy: Dense and every activation, forward and backward, alone and fused; the
flat parameter buffers and their views; mlp(); initialisation; dtype conversion."""
import math

import numpy as np
import pytest
from scipy.special import expit
from tolerance import assert_within, dense_bound, sum_bound

import fastbp as fb

DTYPES = ["float32", "float64"]


def tol(dtype):
    if np.dtype(dtype) == np.float32:
        return {"rtol": 2e-5, "atol": 2e-6}
    return {"rtol": 1e-12, "atol": 1e-13}


def rnd(shape, seed=0, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


# NumPy references, in float64: f(z) and f'(z)
def ref_forward(name, z, slope=0.01):
    if name == "identity":
        return z.copy()
    if name == "sigmoid":
        return expit(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    raise AssertionError(name)


def ref_derivative(name, z, slope=0.01):
    if name == "identity":
        return np.ones_like(z)
    if name == "sigmoid":
        s = expit(z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, slope)
    raise AssertionError(name)


ACTIVATION_CASES = [
    ("identity", fb.Identity, {}),
    ("sigmoid", fb.Sigmoid, {}),
    ("tanh", fb.Tanh, {}),
    ("relu", fb.ReLU, {}),
    ("leaky_relu", fb.LeakyReLU, {}),                     # default slope 0.01
    ("leaky_relu", fb.LeakyReLU, {"negative_slope": 0.1}),
    ("leaky_relu", fb.LeakyReLU, {"negative_slope": 0.0}),
]
ACT_IDS = ["identity", "sigmoid", "tanh", "relu", "leaky_default", "leaky_0.1", "leaky_0"]


def make_act(cls, kwargs):
    layer = cls(**kwargs)
    return layer, kwargs.get("negative_slope", 0.01)


def away_from_zero(z, margin=1e-3):
    """Move values off the kinks of relu-like functions (derivative undefined at 0)."""
    z = z.copy()
    z[np.abs(z) < margin] = margin
    return z


# ------------------------------------------------------------------------------------ Dense
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d_in,d_out", [(1, 1, 1), (7, 5, 3), (33, 17, 9), (4, 3, 1)])
def test_dense_forward_matches_numpy(dtype, n, d_in, d_out):
    net = fb.Sequential(fb.Dense(d_in, d_out), dtype=dtype, seed=1)
    W, b = net.layers[0].params["weight"], net.layers[0].params["bias"]
    b[...] = rnd(d_out, seed=2)                       # non-zero bias
    X = rnd((n, d_in), seed=3).astype(dtype)
    out = net.forward(X)
    assert out.dtype == np.dtype(dtype) and out.shape == (n, d_out)
    ref = X.astype(np.float64) @ W.astype(np.float64).T + b.astype(np.float64)
    assert_within(out, ref, dense_bound(dtype, X, W, b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_without_bias_forward_and_backward(dtype):
    net = fb.Sequential(fb.Dense(6, 4, bias=False), dtype=dtype, seed=4)
    layer = net.layers[0]
    assert list(layer.params) == ["weight"] and list(layer.grads) == ["weight"]
    assert net.params.size == 24
    X = rnd((5, 6), seed=5).astype(dtype)
    W = layer.params["weight"].astype(np.float64)
    assert_within(net.forward(X), X @ W.T, dense_bound(dtype, X, W))
    dout = rnd((5, 4), seed=6).astype(dtype)
    dX = net.backward(dout)
    assert_within(layer.grads["weight"], dout.T @ X.astype(np.float64),
                  dense_bound(dtype, dout.T, X.T))
    assert_within(dX, dout @ W, dense_bound(dtype, dout, W.T))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward_matches_numpy(dtype):
    net = fb.Sequential(fb.Dense(7, 5), dtype=dtype, seed=7)
    layer = net.layers[0]
    X = rnd((9, 7), seed=8).astype(dtype)
    net.forward(X)
    dout = rnd((9, 5), seed=9).astype(dtype)
    dX = net.backward(dout)
    X64, W64 = X.astype(np.float64), layer.params["weight"].astype(np.float64)
    assert_within(layer.grads["weight"], dout.T @ X64, dense_bound(dtype, dout.T, X64.T))
    assert_within(layer.grads["bias"], dout.sum(axis=0), sum_bound(dtype, 9, np.abs(dout).sum(0)))
    assert_within(dX, dout @ W64, dense_bound(dtype, dout, W64.T))
    assert dX.dtype == np.dtype(dtype) and dX.shape == X.shape


def test_dense_layer_attributes():
    layer = fb.Dense(3, 4, init="he", bias=True)
    assert layer.in_features == 3 and layer.out_features == 4 and layer.init == "he"
    assert layer.parameter_shapes() == [("weight", (4, 3)), ("bias", (4,))]
    assert fb.Dense(3, 4, bias=False).parameter_shapes() == [("weight", (4, 3))]
    assert fb.Dense(3, 4).init == "xavier"


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_dense_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="in_features"):
        fb.Dense(bad, 3)
    with pytest.raises(ValueError, match="out_features"):
        fb.Dense(3, bad)


def test_dense_rejects_unknown_init():
    with pytest.raises(ValueError, match="init") as info:
        fb.Dense(3, 4, init="glorot_magic")
    for known in ("he", "xavier"):
        assert known in str(info.value)


# ----------------------------------------------------------------------- activations alone
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,cls,kwargs", ACTIVATION_CASES, ids=ACT_IDS)
def test_activation_forward_matches_formula(dtype, name, cls, kwargs):
    layer, slope = make_act(cls, kwargs)
    Z = away_from_zero(rnd((11, 6), seed=10, scale=3.0)).astype(dtype)
    A = layer.forward(Z)
    assert A.dtype == np.dtype(dtype) and A.shape == Z.shape
    np.testing.assert_allclose(A, ref_forward(name, Z.astype(np.float64), slope), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,cls,kwargs", ACTIVATION_CASES, ids=ACT_IDS)
def test_activation_backward_matches_formula(dtype, name, cls, kwargs):
    layer, slope = make_act(cls, kwargs)
    Z = away_from_zero(rnd((11, 6), seed=11, scale=3.0)).astype(dtype)
    dA = rnd((11, 6), seed=12).astype(dtype)
    layer.forward(Z)
    dZ = layer.backward(dA)
    ref = dA.astype(np.float64) * ref_derivative(name, Z.astype(np.float64), slope)
    np.testing.assert_allclose(dZ, ref, **tol(dtype))
    assert layer.backward(dA, input_grad=False) is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_saturate_without_overflow(dtype):
    z = np.array([[-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0]], dtype=dtype)
    with np.errstate(all="raise"):
        s = fb.Sigmoid().forward(z)
        t = fb.Tanh().forward(z)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(t))
    np.testing.assert_allclose(s, expit(z.astype(np.float64)), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(t, np.tanh(z.astype(np.float64)), **tol(dtype))
    assert s[0, 0] >= 0.0 and s[0, -1] == 1.0 and s[0, 3] == 0.5


def test_activation_layers_have_no_parameters():
    for cls in (fb.Identity, fb.Sigmoid, fb.Tanh, fb.ReLU, fb.LeakyReLU):
        assert cls().parameter_shapes() == []


def test_leaky_relu_slope_validated():
    assert fb.LeakyReLU().slope == 0.01
    assert fb.LeakyReLU(0.2).slope == 0.2
    with pytest.raises(ValueError, match="negative_slope"):
        fb.LeakyReLU(-0.1)


# ------------------------------------------------------------------- Dense + activation fused
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,cls,kwargs", ACTIVATION_CASES, ids=ACT_IDS)
def test_fused_dense_activation_matches_numpy(dtype, name, cls, kwargs):
    act, slope = make_act(cls, kwargs)
    net = fb.Sequential(fb.Dense(5, 4), act, dtype=dtype, seed=13)
    assert len(net._stages) == 1                   # really fused
    dense = net.layers[0]
    dense.params["bias"][...] = rnd(4, seed=14)
    X = rnd((8, 5), seed=15).astype(dtype)
    X64, W64 = X.astype(np.float64), dense.params["weight"].astype(np.float64)
    Z = X64 @ W64.T + dense.params["bias"].astype(np.float64)
    assert np.min(np.abs(Z)) > 1e-4                  # no input on a kink
    A = net.forward(X)
    np.testing.assert_allclose(A, ref_forward(name, Z, slope), **tol(dtype))

    dA = rnd((8, 4), seed=16)
    dX = net.backward(dA)
    dZ = dA * ref_derivative(name, Z, slope)
    np.testing.assert_allclose(dense.grads["weight"], dZ.T @ X64, **tol(dtype))
    np.testing.assert_allclose(dense.grads["bias"], dZ.sum(axis=0), **tol(dtype))
    np.testing.assert_allclose(dX, dZ @ W64, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,cls,kwargs", ACTIVATION_CASES, ids=ACT_IDS)
def test_standalone_activation_in_network_matches_numpy(dtype, name, cls, kwargs):
    """Dense, Tanh, act, Dense: `act` follows an activation and runs alone."""
    act, slope = make_act(cls, kwargs)
    net = fb.Sequential(fb.Dense(4, 6), fb.Tanh(), act, fb.Dense(6, 3), dtype=dtype, seed=17)
    assert len(net._stages) == 3
    d0, d3 = net.layers[0], net.layers[3]
    d0.params["bias"][...] = rnd(6, seed=18, scale=0.3)
    d3.params["bias"][...] = rnd(3, seed=19)
    X = rnd((7, 4), seed=20).astype(dtype)
    X64 = X.astype(np.float64)
    W0, b0 = d0.params["weight"].astype(np.float64), d0.params["bias"].astype(np.float64)
    W3, b3 = d3.params["weight"].astype(np.float64), d3.params["bias"].astype(np.float64)
    Z0 = X64 @ W0.T + b0
    H = np.tanh(Z0)
    assert np.min(np.abs(H)) > 1e-4
    G = ref_forward(name, H, slope)
    out_ref = G @ W3.T + b3
    np.testing.assert_allclose(net.forward(X), out_ref, **tol(dtype))

    dout = rnd((7, 3), seed=21)
    dX = net.backward(dout)
    dG = dout @ W3
    dH = dG * ref_derivative(name, H, slope)
    dZ0 = dH * (1.0 - H ** 2)
    t = tol(dtype)
    np.testing.assert_allclose(d3.grads["weight"], dout.T @ G, **t)
    np.testing.assert_allclose(d3.grads["bias"], dout.sum(axis=0), **t)
    np.testing.assert_allclose(d0.grads["weight"], dZ0.T @ X64, **t)
    np.testing.assert_allclose(d0.grads["bias"], dZ0.sum(axis=0), **t)
    np.testing.assert_allclose(dX, dZ0 @ W0, **t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_two_hidden_layer_network_matches_numpy(dtype):
    net = fb.mlp([5, 8, 6, 3], activation="sigmoid", dtype=dtype, seed=22)
    Ws = [layer.params["weight"].astype(np.float64) for layer in net.layers[::2]]
    for layer in net.layers[::2]:
        layer.params["bias"][...] = rnd(layer.out_features, seed=layer.out_features, scale=0.1)
    bs = [layer.params["bias"].astype(np.float64) for layer in net.layers[::2]]
    X = rnd((10, 5), seed=23).astype(dtype)
    h0 = X.astype(np.float64)
    h1 = expit(h0 @ Ws[0].T + bs[0])
    h2 = expit(h1 @ Ws[1].T + bs[1])
    out = h2 @ Ws[2].T + bs[2]
    np.testing.assert_allclose(net.forward(X), out, **tol(dtype))
    dout = rnd((10, 3), seed=24)
    dX = net.backward(dout)
    d2 = (dout @ Ws[2]) * h2 * (1 - h2)
    d1 = (d2 @ Ws[1]) * h1 * (1 - h1)
    grads = dict((name, g) for name, _, g in net.named_parameters())
    t = tol(dtype)
    np.testing.assert_allclose(grads["4.weight"], dout.T @ h2, **t)
    np.testing.assert_allclose(grads["2.weight"], d2.T @ h1, **t)
    np.testing.assert_allclose(grads["2.bias"], d2.sum(0), **t)
    np.testing.assert_allclose(grads["0.weight"], d1.T @ h0, **t)
    np.testing.assert_allclose(grads["0.bias"], d1.sum(0), **t)
    np.testing.assert_allclose(dX, d1 @ Ws[0], **t)


def test_forward_output_is_not_overwritten_by_later_calls():
    net = fb.mlp([3, 4, 2], dtype="float64", seed=25)
    a = net.forward(rnd((5, 3), seed=1))
    a0 = a.copy()
    net.forward(rnd((5, 3), seed=2))
    np.testing.assert_array_equal(a, a0)


def test_backward_before_forward_raises():
    net = fb.mlp([3, 4, 2], dtype="float64", seed=26)
    with pytest.raises(RuntimeError, match="forward"):
        net.backward(np.ones((2, 2)))


def test_backward_shape_mismatch_raises():
    net = fb.mlp([3, 4, 2], dtype="float64", seed=27)
    net.forward(np.ones((5, 3)))
    with pytest.raises(ValueError, match="dout"):
        net.backward(np.ones((4, 2)))
    with pytest.raises(ValueError, match="dout"):
        net.backward(np.ones((5, 3)))


# ------------------------------------------------------------------------ named parameters
def test_named_parameters_names_shapes_and_order():
    net = fb.Sequential(fb.Dense(4, 6), fb.ReLU(), fb.Dense(6, 5, bias=False), fb.Tanh(),
                        fb.Dense(5, 3), dtype="float32", seed=28)
    named = net.named_parameters()
    assert [(n, v.shape, g.shape) for n, v, g in named] == [
        ("0.weight", (6, 4), (6, 4)), ("0.bias", (6,), (6,)),
        ("2.weight", (5, 6), (5, 6)),
        ("4.weight", (3, 5), (3, 5)), ("4.bias", (3,), (3,))]
    assert net.params.shape == net.grads.shape == (24 + 6 + 30 + 15 + 3,)
    assert net.params.ndim == 1 and net.params.dtype == np.float32
    # the views tile the flat buffer in order
    flat = np.concatenate([v.ravel() for _, v, _ in named])
    np.testing.assert_array_equal(flat, net.params)
    for _, v, g in named:
        assert v.dtype == np.float32 and g.dtype == np.float32
        assert np.shares_memory(v, net.params) and np.shares_memory(g, net.grads)
    # the layers hold the same views
    assert np.shares_memory(net.layers[0].params["weight"], named[0][1])
    assert net.layers[0].params["weight"].shape == (6, 4)


def test_writing_through_views_changes_flat_buffers():
    net = fb.mlp([3, 4, 2], dtype="float64", seed=29)
    named = dict((n, (v, g)) for n, v, g in net.named_parameters())
    W0, dW0 = named["0.weight"]
    W0[1, 2] = 7.5
    assert net.params[1 * 3 + 2] == 7.5
    b2, db2 = named["2.bias"]
    b2[...] = [-1.0, 2.0]
    np.testing.assert_array_equal(net.params[-2:], [-1.0, 2.0])
    # and the other way round: writing the flat buffer changes the views
    net.params[0] = 3.25
    assert W0[0, 0] == 3.25
    net.grads[...] = np.arange(net.grads.size)
    np.testing.assert_array_equal(dW0, np.arange(12).reshape(4, 3))
    np.testing.assert_array_equal(db2, net.grads[-2:])
    net.zero_grad()
    assert not dW0.any() and not db2.any()
    dW0[0, 1] = 5.0
    assert net.grads[1] == 5.0


def test_params_written_through_views_are_used_in_forward():
    net = fb.Sequential(fb.Dense(2, 1), dtype="float64", seed=30)
    (_, W, _), (_, b, _) = net.named_parameters()
    W[...] = [[2.0, -3.0]]
    b[...] = [0.5]
    np.testing.assert_array_equal(net.forward(np.array([[1.0, 1.0], [0.0, 2.0]])),
                                  [[-0.5], [-5.5]])
    net.params[...] = [1.0, 1.0, 0.0]
    np.testing.assert_array_equal(net.forward(np.array([[1.0, 1.0]])), [[2.0]])


def test_grad_views_receive_backward():
    net = fb.mlp([3, 5, 2], activation="tanh", dtype="float64", seed=31)
    X = rnd((4, 3), seed=32)
    net.forward(X)
    net.backward(rnd((4, 2), seed=33))
    for name, region, shape in net.parameter_slices():
        view = dict((n, g) for n, _, g in net.named_parameters())[name]
        np.testing.assert_array_equal(view, net.grads[region].reshape(shape))
    assert np.any(net.grads != 0)


# ---------------------------------------------------------------------------------- mlp()
@pytest.mark.parametrize("act,cls,init", [("relu", fb.ReLU, "he"),
                                          ("leaky_relu", fb.LeakyReLU, "he"),
                                          ("tanh", fb.Tanh, "xavier"),
                                          ("sigmoid", fb.Sigmoid, "xavier"),
                                          ("identity", fb.Identity, "xavier")])
def test_mlp_layer_list(act, cls, init):
    net = fb.mlp([6, 8, 7, 3], activation=act, dtype="float64", seed=0)
    types = [type(layer) for layer in net.layers]
    assert types == [fb.Dense, cls, fb.Dense, cls, fb.Dense]
    dense = net.layers[::2]
    assert [(d.in_features, d.out_features) for d in dense] == [(6, 8), (8, 7), (7, 3)]
    assert all(d.init == init for d in dense)
    assert all(d.use_bias for d in dense)
    assert net.in_features == 6 and net.out_features == 3
    assert net.dtype == np.float64
    for name, value, _ in net.named_parameters():
        if name.endswith("bias"):
            assert not value.any(), name
        else:
            assert np.all(value != 0), name


def test_mlp_equals_sequential_shorthand():
    a = fb.mlp([5, 9, 4], activation="relu", dtype="float32", seed=3)
    b = fb.Sequential(fb.Dense(5, 9, init="he"), fb.ReLU(), fb.Dense(9, 4, init="he"),
                      dtype="float32", seed=3)
    np.testing.assert_array_equal(a.params, b.params)
    X = rnd((6, 5), seed=1)
    np.testing.assert_array_equal(a.forward(X), b.forward(X))


def test_mlp_two_sizes_is_one_dense_layer():
    net = fb.mlp([4, 2])
    assert [type(layer) for layer in net.layers] == [fb.Dense]
    assert net.dtype == np.float32                 # default dtype


def test_mlp_init_override():
    net = fb.mlp([4, 5, 2], activation="relu", init="lecun", seed=1)
    assert [d.init for d in net.layers[::2]] == ["lecun", "lecun"]
    net = fb.mlp([4, 5, 2], activation="tanh", init="zeros", seed=1)
    assert not net.params.any()


def test_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        fb.mlp([3, 4, 2], activation="swish_unknown")
    with pytest.raises(ValueError, match="sizes"):
        fb.mlp([3])
    with pytest.raises(ValueError, match="sizes"):
        fb.mlp([3, 0, 2])
    with pytest.raises(ValueError, match="dtype"):
        fb.mlp([3, 2], dtype="float16")


# --------------------------------------------------------------------------- initialisation
def test_he_init_statistics():
    fan_in, fan_out = 400, 300
    net = fb.Sequential(fb.Dense(fan_in, fan_out, init="he"), dtype="float64", seed=5)
    W = net.layers[0].params["weight"]
    std = math.sqrt(2.0 / fan_in)
    assert abs(W.mean()) < 0.02 * std * 5
    assert W.std() == pytest.approx(std, rel=0.02)
    assert not net.layers[0].params["bias"].any()


def test_xavier_init_statistics():
    fan_in, fan_out = 400, 300
    net = fb.Sequential(fb.Dense(fan_in, fan_out, init="xavier"), dtype="float64", seed=6)
    W = net.layers[0].params["weight"]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > 0.99 * bound                 # uniform: reaches the bound
    assert W.std() == pytest.approx(bound / math.sqrt(3.0), rel=0.02)
    # uniform, not normal: a quarter of the values in each quarter of the range
    counts = np.histogram(W, bins=4, range=(-bound, bound))[0] / W.size
    np.testing.assert_allclose(counts, 0.25, atol=0.01)
    assert not net.layers[0].params["bias"].any()


def test_lecun_and_zeros_init():
    net = fb.Sequential(fb.Dense(400, 300, init="lecun"), fb.Tanh(),
                        fb.Dense(300, 2, init="zeros"), dtype="float64", seed=7)
    W = net.layers[0].params["weight"]
    assert W.std() == pytest.approx(math.sqrt(1.0 / 400), rel=0.02)
    assert not net.layers[2].params["weight"].any()


def test_mlp_relu_uses_he_and_tanh_uses_xavier_statistically():
    relu = fb.mlp([400, 300, 2], activation="relu", dtype="float64", seed=8)
    tanh = fb.mlp([400, 300, 2], activation="tanh", dtype="float64", seed=8)
    assert relu.layers[0].params["weight"].std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert tanh.layers[0].params["weight"].std() == pytest.approx(
        math.sqrt(6 / 700) / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_gives_reproducible_initialisation(dtype):
    a = fb.mlp([6, 10, 4], activation="relu", dtype=dtype, seed=42)
    b = fb.mlp([6, 10, 4], activation="relu", dtype=dtype, seed=42)
    c = fb.mlp([6, 10, 4], activation="relu", dtype=dtype, seed=43)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    assert a.seed == 42


def test_default_seed_is_reproducible():
    np.testing.assert_array_equal(fb.mlp([3, 5, 2]).params, fb.mlp([3, 5, 2]).params)


def test_float32_and_float64_start_from_the_same_weights():
    for act in ("relu", "tanh"):
        n32 = fb.mlp([7, 11, 5, 3], activation=act, dtype="float32", seed=9)
        n64 = fb.mlp([7, 11, 5, 3], activation=act, dtype="float64", seed=9)
        assert n32.params.dtype == np.float32 and n64.params.dtype == np.float64
        np.testing.assert_array_equal(n32.params, n64.params.astype(np.float32))
        np.testing.assert_allclose(n32.params, n64.params, rtol=6e-8, atol=0)


def test_dtype_spellings():
    assert fb.mlp([3, 2], dtype=np.float64).dtype == np.float64
    assert fb.mlp([3, 2], dtype="float32").params.dtype == np.float32


# ------------------------------------------------------------------------- width mismatches
def test_width_mismatch_raises_naming_layer_and_widths():
    with pytest.raises(ValueError) as info:
        fb.Sequential(fb.Dense(3, 4), fb.ReLU(), fb.Dense(5, 2))
    message = str(info.value)
    assert "2" in message and "Dense" in message
    assert "5" in message and "4" in message


def test_width_mismatch_directly_after_dense():
    with pytest.raises(ValueError, match="Dense"):
        fb.Sequential(fb.Dense(3, 4), fb.Dense(3, 2))


def test_input_of_wrong_width_raises():
    net = fb.mlp([3, 4, 2])
    with pytest.raises(ValueError, match="X"):
        net.forward(np.ones((5, 4)))


def test_sequential_rejects_bad_layer_lists():
    with pytest.raises(ValueError):
        fb.Sequential()
    with pytest.raises(TypeError):
        fb.Sequential(fb.Dense(3, 2), "relu")
    with pytest.raises(ValueError):
        fb.Sequential(fb.ReLU(), fb.Tanh())       # no layer fixes the width
    shared = fb.ReLU()
    with pytest.raises(ValueError):
        fb.Sequential(fb.Dense(3, 3), shared, fb.Dense(3, 3), shared)


def test_sequential_accepts_a_list():
    net = fb.Sequential([fb.Dense(3, 4), fb.Tanh(), fb.Dense(4, 2)], dtype="float64", seed=1)
    assert len(net.layers) == 3 and net.out_features == 2


# -------------------------------------------------------------------------------- astype
def test_astype_float64_copies():
    net = fb.mlp([4, 6, 3], activation="tanh", dtype="float32", seed=10)
    params0 = net.params.copy()
    twin = net.astype("float64")
    assert twin is not net
    assert twin.dtype == np.float64 and twin.params.dtype == np.float64
    assert twin.grads.dtype == np.float64
    assert net.dtype == np.float32 and net.params.dtype == np.float32
    np.testing.assert_array_equal(twin.params, params0.astype(np.float64))
    assert not np.shares_memory(twin.params, net.params)
    assert not np.shares_memory(twin.grads, net.grads)
    assert all(a is not b for a, b in zip(twin.layers, net.layers, strict=True))
    assert [type(a) for a in twin.layers] == [type(b) for b in net.layers]
    for (n1, v1, g1), (n2, v2, g2) in zip(twin.named_parameters(), net.named_parameters(),
                                          strict=True):
        assert n1 == n2 and v1.shape == v2.shape
        assert v1.dtype == np.float64 and np.shares_memory(v1, twin.params)
        assert np.shares_memory(g1, twin.grads) and not np.shares_memory(g1, g2)

    # changing the copy leaves the original alone, and vice versa
    twin.params[...] = 0.0
    np.testing.assert_array_equal(net.params, params0)
    X = rnd((5, 4), seed=11)
    twin2 = net.astype("float64")
    net.params[...] = 1.0
    assert not np.all(twin2.params == 1.0)
    # gradients computed in the copy do not leak into the original
    net.zero_grad()
    twin2.forward(X)
    twin2.backward(rnd((5, 3), seed=12))
    assert not net.grads.any()
    assert twin2.grads.any()


def test_astype_output_matches_original():
    net = fb.mlp([4, 6, 3], activation="relu", dtype="float32", seed=13)
    X = rnd((5, 4), seed=14).astype(np.float32)
    np.testing.assert_allclose(net.astype("float64").forward(X), net.forward(X),
                               rtol=1e-5, atol=1e-6)
    back = net.astype("float64").astype("float32")
    np.testing.assert_array_equal(back.params, net.params)
    same = net.astype("float32")
    assert same is not net and not np.shares_memory(same.params, net.params)
    np.testing.assert_array_equal(same.forward(X), net.forward(X))


def test_astype_keeps_layer_settings():
    net = fb.Sequential(fb.Dense(3, 4, bias=False), fb.LeakyReLU(0.2), fb.Dense(4, 2),
                        dtype="float32", seed=15)
    net.metadata["classes"] = ["a", "b"]
    twin = net.astype("float64")
    assert twin.layers[1].slope == 0.2
    assert twin.layers[0].use_bias is False
    assert twin.metadata == {"classes": ["a", "b"]}
    twin.metadata["classes"].append("c")
    assert net.metadata == {"classes": ["a", "b"]}


def test_repr_of_networks_with_custom_layers():
    class Doubler(fb.Layer):
        def forward(self, X, training=True):
            return 2 * X

        def backward(self, dout, input_grad=True, accumulate=False):
            return 2 * dout

    net = fb.Sequential(fb.Dense(2, 3), fb.LeakyReLU(0.2), Doubler())
    text = repr(net)
    assert "Dense(in_features=2, out_features=3" in text
    assert "LeakyReLU(negative_slope=0.2)" in text and "Doubler()" in text
