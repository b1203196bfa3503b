"""GELU (exact and tanh), Softplus and ELU: kernels against NumPy references (float32 and float64,
large |z|, thresholds), against PyTorch, through finite differences (alone and fused after Dense),
and through config, save and load."""
import math

import numpy as np
import pytest
from scipy.special import erfc, expit

import fastbp as fb
from fastbp import _core as K
from fastbp.nn import ACTIVATIONS, layer_from_config
from fastbp.registry import LAYERS

DTYPES = [np.float32, np.float64]
SPECIAL = np.array([-1e4, -1000.0, -30.0, -20.0, -8.0, -5.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 5.0,
                    8.0, 20.0, 30.0, 1000.0, 1e4])


# ------------------------------------------------------------------------- NumPy references
def ref_forward(name, z, p):
    """f(z) in float64 for the kernel `name` with parameters p (slope, alpha, beta, threshold)."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "elu":
            return np.where(z > 0, z, p["alpha"] * np.expm1(np.minimum(z, 0.0)))
        if name == "softplus":
            y = p["beta"] * z
            return np.where(y > p["threshold"], z, np.logaddexp(0.0, y) / p["beta"])
        if name == "gelu":
            return 0.5 * z * erfc(-z / math.sqrt(2.0))
        if name == "gelu_tanh":   # 0.5 z (1 + tanh u) = z sigmoid(2u), without cancellation
            return z * expit(2.0 * gelu_tanh_u(z))
    raise AssertionError(name)


def gelu_tanh_u(z):
    return math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)


def ref_derivative(name, z, p):
    """f'(z) in float64."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "elu":
            return np.where(z > 0, 1.0, p["alpha"] * np.exp(np.minimum(z, 0.0)))
        if name == "softplus":
            y = p["beta"] * z
            return np.where(y > p["threshold"], 1.0, expit(y))
        if name == "gelu":
            return (0.5 * erfc(-z / math.sqrt(2.0))
                    + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))
        if name == "gelu_tanh":   # (1 + tanh u) / 2 = sigmoid(2u), sech^2(u) / 4 = s (1 - s)
            u = gelu_tanh_u(z)
            s, s_rest = expit(2.0 * u), expit(-2.0 * u)
            du = math.sqrt(2.0 / math.pi) * (1.0 + 3.0 * 0.044715 * z * z)
            return s + np.where(s * s_rest == 0.0, 0.0, 2.0 * z * s * s_rest * du)
    raise AssertionError(name)


DEFAULTS = {"slope": 0.01, "alpha": 1.0, "beta": 1.0, "threshold": 20.0}

# (kernel name, kernel parameters, layer factory, torch factory)
CASES = [
    ("elu", {}, lambda: fb.ELU(), lambda nn: nn.ELU()),
    ("elu", {"alpha": 0.3}, lambda: fb.ELU(0.3), lambda nn: nn.ELU(alpha=0.3)),
    ("elu", {"alpha": 2.0}, lambda: fb.ELU(alpha=2.0), lambda nn: nn.ELU(alpha=2.0)),
    ("softplus", {}, lambda: fb.Softplus(), lambda nn: nn.Softplus()),
    ("softplus", {"beta": 2.0, "threshold": 1.0}, lambda: fb.Softplus(beta=2.0, threshold=1.0),
     lambda nn: nn.Softplus(beta=2.0, threshold=1.0)),
    ("softplus", {"beta": 0.5, "threshold": 3.0}, lambda: fb.Softplus(0.5, 3.0),
     lambda nn: nn.Softplus(beta=0.5, threshold=3.0)),
    ("gelu", {}, lambda: fb.GELU(), lambda nn: nn.GELU()),
    ("gelu_tanh", {}, lambda: fb.GELU(approximate="tanh"), lambda nn: nn.GELU(approximate="tanh")),
]
CASE_IDS = ["elu", "elu_0.3", "elu_2", "softplus", "softplus_b2_t1", "softplus_b0.5_t3", "gelu",
            "gelu_tanh"]


def params_of(kwargs):
    return {**DEFAULTS, **kwargs}


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def inputs(rows, cols, dtype, seed, scale=3.0):
    """Random z with the special values (large |z|, 0, the softplus thresholds) in row 0."""
    z = scale * np.random.default_rng(seed).standard_normal((rows, cols))
    z.flat[:len(SPECIAL)] = SPECIAL[:z.size]
    return np.ascontiguousarray(z.astype(dtype))


# --------------------------------------------------------------------------- kernel: forward
@pytest.mark.parametrize("name,kwargs,_layer,_torch", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("rows,cols", [(1, 1), (9, 130), (300, 130)])
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("separate", [False, True], ids=["inplace", "separate_A"])
def test_forward_kernel(dtype, threads, name, kwargs, _layer, _torch, rows, cols, with_bias,
                        separate):
    rng = np.random.default_rng(rows + cols)
    Z = inputs(rows, cols, dtype, seed=rows * cols)
    bias = (rng.standard_normal(cols)).astype(dtype) if with_bias else None
    x = Z.astype(dtype) + (bias if with_bias else dtype(0))   # z + b rounded as the kernel does
    expected = ref_forward(name, x, params_of(kwargs))
    A = np.full_like(Z, np.nan) if separate else None

    K.bias_activation_forward(Z, bias, name, A=A, **kwargs)

    out = A if separate else Z
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, **tol(dtype))
    if separate:
        np.testing.assert_array_equal(Z, x)   # Z keeps the pre-activation z + b


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh"])
def test_gelu_large_and_tiny_values(dtype, name):
    """Far left GELU is a tiny negative number (erfc keeps it), far right it is z itself."""
    z = np.array([[-1e30, -40.0, -10.0, -3.0, 3.0, 10.0, 40.0, 1e30]], dtype=dtype)
    A = np.empty_like(z)
    K.bias_activation_forward(z.copy(), None, name, A=A)
    np.testing.assert_array_equal(A[0, -3:], z[0, -3:])
    assert (A[0, :4] <= 0).all() and np.isfinite(A).all()
    if name == "gelu" and dtype == np.float64:
        # -10 Phi(-10) = -7.62e-23: kept to full relative precision.
        np.testing.assert_allclose(A[0, 2], ref_forward("gelu", -10.0, DEFAULTS), rtol=1e-12)


def test_softplus_threshold_switches_to_identity(dtype):
    """torch's rule: z itself where beta z > threshold, log(1 + e^(beta z)) / beta at and below."""
    beta, threshold = 2.0, 1.0
    z = np.array([[0.49, 0.5, 0.51, 10.0, 400.0, -300.0]], dtype=dtype)
    out = z.copy()
    K.bias_activation_forward(out, None, "softplus", beta=beta, threshold=threshold)
    below = np.log1p(np.exp(beta * z[0, :2].astype(np.float64))) / beta
    np.testing.assert_allclose(out[0, :2], below, **tol(dtype))
    np.testing.assert_array_equal(out[0, 2:5], z[0, 2:5])
    tiny = ref_forward("softplus", -300.0, {"beta": beta, "threshold": threshold})  # 1.3e-261
    np.testing.assert_allclose(out[0, 5], tiny, rtol=1e-12, atol=np.finfo(dtype).tiny)


def test_softplus_large_threshold_does_not_overflow(dtype):
    """log(1 + e^y) is evaluated as max(y, 0) + log1p(e^-|y|): no overflow for any threshold."""
    z = np.array([[100.0, 500.0, 1e4]], dtype=dtype)
    out = z.copy()
    K.bias_activation_forward(out, None, "softplus", threshold=1e30)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, z, **tol(dtype))


# -------------------------------------------------------------------------- kernel: backward
@pytest.mark.parametrize("name,kwargs,_layer,_torch", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 17), (300, 130)])
@pytest.mark.parametrize("in_place", [False, True], ids=["out", "inplace"])
def test_backward_kernel(dtype, threads, name, kwargs, _layer, _torch, rows, cols, in_place):
    p = params_of(kwargs)
    Z = inputs(rows, cols, dtype, seed=7 * rows + cols)
    A = np.empty_like(Z)
    K.bias_activation_forward(Z.copy(), None, name, A=A, **kwargs)
    dA = np.random.default_rng(rows).standard_normal((rows, cols)).astype(dtype)
    expected = dA.astype(np.float64) * ref_derivative(name, Z, p)
    Z0, A0, dA0 = Z.copy(), A.copy(), dA.copy()
    dZ = dA if in_place else np.full_like(dA, np.nan)

    K.activation_backward(dA, A, dZ, name, Z=Z, **kwargs)

    assert np.isfinite(dZ).all()
    np.testing.assert_allclose(dZ, expected, **tol(dtype))
    np.testing.assert_array_equal(Z, Z0)
    np.testing.assert_array_equal(A, A0)
    if not in_place:
        np.testing.assert_array_equal(dA, dA0)


def test_which_backward_needs_the_preactivation():
    assert [n for n in K.ACTIVATIONS if K.needs_preactivation(n)] == [
        "softplus", "gelu", "gelu_tanh"]
    assert [name for name, cls in ACTIVATIONS.items() if cls().needs_preactivation] == [
        "softplus", "gelu"]
    assert fb.GELU(approximate="tanh").kernel_name == "gelu_tanh"


def test_backward_reads_only_what_it_needs(dtype):
    """GELU/Softplus backward reads Z (A may be None); ELU backward reads the output A."""
    z = np.array([[-2.0, -0.5, 0.5, 2.0]], dtype=dtype)
    d = np.ones_like(z)
    for name in ("gelu", "gelu_tanh", "softplus"):
        dZ = np.empty_like(z)
        K.activation_backward(d, None, dZ, name, Z=z)
        np.testing.assert_allclose(dZ, ref_derivative(name, z, DEFAULTS), **tol(dtype))
    a = z.copy()
    K.bias_activation_forward(a, None, "elu")
    dZ = np.empty_like(z)
    K.activation_backward(d, a, dZ, "elu")
    np.testing.assert_allclose(dZ, ref_derivative("elu", z, DEFAULTS), **tol(dtype))


def test_elu_derivative_through_output_near_zero_and_far_left(dtype):
    """f' = f + alpha for z <= 0 equals alpha e^z to float precision, also around z = 0 and
    for z << 0 (where f + alpha cancels), for every alpha >= 0."""
    z = np.array([[-40.0, -15.0, -1.0, -1e-4, -1e-7, 0.0, 1e-7, 1e-4, 1.0]], dtype=dtype)
    eps = float(np.finfo(dtype).eps)
    for alpha in (0.0, 0.5, 1.0, 3.0):
        a = z.copy()
        K.bias_activation_forward(a, None, "elu", alpha=alpha)
        dZ = np.empty_like(z)
        K.activation_backward(np.ones_like(z), a, dZ, "elu", alpha=alpha)
        expected = ref_derivative("elu", z, {"alpha": alpha})
        np.testing.assert_allclose(dZ, expected, rtol=4 * eps, atol=4 * eps * max(alpha, 1.0))


def test_softplus_derivative_on_both_sides_of_a_small_threshold(dtype):
    """beta = 2, threshold = 1: at z = 0.5 (beta z = threshold) and just below, the output
    (~0.66) exceeds the output just above (z = 0.5+); only z tells the two sides apart."""
    z = np.array([[0.3, 0.5, np.nextafter(dtype(0.5), dtype(1)), 0.6]], dtype=dtype)
    A = np.empty_like(z)
    K.bias_activation_forward(z.copy(), None, "softplus", A=A, beta=2.0, threshold=1.0)
    assert A[0, 1] > A[0, 2]                       # the jump of torch's definition
    dZ = np.empty_like(z)
    K.activation_backward(np.ones_like(z), A, dZ, "softplus", Z=z, beta=2.0, threshold=1.0)
    np.testing.assert_allclose(dZ[0, :2], expit(2.0 * z[0, :2].astype(np.float64)),
                               **tol(dtype))
    np.testing.assert_array_equal(dZ[0, 2:], 1.0)


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh"])
def test_gelu_derivative_finite_where_z_squared_overflows(dtype, name):
    big = 1e20 if dtype == np.float32 else 1e160
    z = np.array([[-big, -1e6, 1e6, big]], dtype=dtype)
    dZ = np.empty_like(z)
    K.activation_backward(np.ones_like(z), None, dZ, name, Z=z)
    np.testing.assert_array_equal(dZ, [[0.0, 0.0, 1.0, 1.0]])


def test_nan_propagates():
    z = np.array([[np.nan, 1.0]])
    for name in ("elu", "softplus", "gelu", "gelu_tanh"):
        A = np.empty_like(z)
        K.bias_activation_forward(z.copy(), None, name, A=A)
        assert np.isnan(A[0, 0]) and np.isfinite(A[0, 1]), name


# ----------------------------------------------------------------------- kernel: bad input
def test_kernel_argument_errors():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="Z: the gelu backward needs the forward's pre-activation"):
        K.activation_backward(z, z, z.copy(), "gelu")
    with pytest.raises(ValueError, match="A: the elu backward needs the forward's output"):
        K.activation_backward(z, None, z.copy(), "elu", Z=z)
    with pytest.raises(ValueError, match="Z: expected shape"):
        K.activation_backward(z, None, z.copy(), "softplus", Z=np.zeros((3, 2)))
    with pytest.raises(TypeError, match="Z: expected dtype float64"):
        K.activation_backward(z, None, z.copy(), "gelu", Z=z.astype(np.float32))
    shared = np.zeros(7)
    with pytest.raises(ValueError, match="A: expected an array that does not overlap Z"):
        K.bias_activation_forward(shared[:6].reshape(2, 3), None, "gelu",
                                  A=shared[1:7].reshape(2, 3))
    same = np.array([[-1.0, 0.0, 2.0]])
    K.bias_activation_forward(same, None, "gelu", A=same)        # A is Z: in place
    np.testing.assert_allclose(same, ref_forward("gelu", [[-1.0, 0.0, 2.0]], DEFAULTS))
    with pytest.raises(ValueError, match="A: expected shape"):
        K.bias_activation_forward(z, None, "gelu", A=np.zeros((3, 2)))
    with pytest.raises(TypeError, match="A: expected dtype float64"):
        K.bias_activation_forward(z, None, "gelu", A=np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="alpha: expected a finite number >= 0 for elu"):
        K.bias_activation_forward(z, None, "elu", alpha=-1.0)
    with pytest.raises(ValueError, match="beta: expected a finite number > 0 for softplus"):
        K.activation_backward(z, None, z.copy(), "softplus", Z=z, beta=0.0)
    with pytest.raises(ValueError, match="threshold"):
        K.bias_activation_forward(z, None, "softplus", threshold=float("nan"))


# --------------------------------------------------------------------------- layers vs torch
def _torch():
    return pytest.importorskip("torch")


def close(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-10,
                                                                      "atol": 1e-13}


# PyTorch runs in float64 on the same (float32-rounded) values: its float32 tanh-GELU derivative
# loses precision where tanh u is close to +-1 (1 - tanh^2 u cancels; it gives 0 or twice the
# value around |z| = 5), which fastbp's float32 kernel does not.
@pytest.mark.parametrize("name,kwargs,make_layer,make_torch", CASES, ids=CASE_IDS)
def test_layer_matches_torch(dtype, name, kwargs, make_layer, make_torch):
    torch = _torch()
    layer, module = make_layer(), make_torch(torch.nn)
    Z = inputs(40, 9, dtype, seed=3)
    Z.flat[-4:] = [0.5, 1.5, 6.0, -0.7]            # the small thresholds, GELU's minimum
    dA = np.random.default_rng(4).standard_normal(Z.shape).astype(dtype)

    A = layer.forward(Z)
    dZ = layer.backward(dA)

    tz = torch.from_numpy(Z.astype(np.float64)).requires_grad_(True)
    tA = module(tz)
    tA.backward(torch.from_numpy(dA.astype(np.float64)))
    np.testing.assert_allclose(A, tA.detach().numpy(), **close(dtype))
    np.testing.assert_allclose(dZ, tz.grad.numpy(), **close(dtype))


@pytest.mark.parametrize("name,kwargs,make_layer,make_torch", CASES, ids=CASE_IDS)
def test_fused_network_matches_torch(dtype, name, kwargs, make_layer, make_torch):
    """Dense + activation fused, then Dense: same output, loss, gradients and dX as PyTorch."""
    torch = _torch()
    net = fb.Sequential(fb.Dense(5, 7), make_layer(), fb.Dense(7, 3), dtype=np.dtype(dtype).name,
                        seed=1)
    assert len(net._stages) == 2                   # the activation runs fused
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), make_torch(torch.nn),
                                torch.nn.Linear(7, 3))
    model = model.to(torch.float64)
    tparams = dict(model.named_parameters())
    with torch.no_grad():
        for pname, value, _ in net.named_parameters():
            tparams[pname].copy_(torch.from_numpy(value.astype(np.float64)))
    rng = np.random.default_rng(2)
    X = (2.0 * rng.standard_normal((16, 5))).astype(dtype)
    y = rng.integers(0, 3, size=16)

    out = net.forward(X)
    value, dout = fb.SoftmaxCrossEntropy()(out, y)
    dX = net.backward(dout)

    tX = torch.from_numpy(X.astype(np.float64)).requires_grad_(True)
    t_out = model(tX)
    t_loss = torch.nn.functional.cross_entropy(t_out, torch.from_numpy(y))
    t_loss.backward()
    np.testing.assert_allclose(out, t_out.detach().numpy(), **close(dtype))
    np.testing.assert_allclose(value, t_loss.item(), **close(dtype))
    np.testing.assert_allclose(dX, tX.grad.numpy(), **close(dtype))
    for pname, _, grad in net.named_parameters():
        np.testing.assert_allclose(grad, tparams[pname].grad.numpy(), **close(dtype),
                                   err_msg=pname)


# -------------------------------------------------------------- fused stage keeps what it needs
@pytest.mark.parametrize("name,kwargs,make_layer,_torch", CASES, ids=CASE_IDS)
def test_fused_stage_buffers(name, kwargs, make_layer, _torch):
    """Fused forward keeps Z = X W^T + b apart from A = f(Z) only when backward needs Z."""
    act = make_layer()
    net = fb.Sequential(fb.Dense(4, 6), act, dtype="float64", seed=2)
    X = np.random.default_rng(5).standard_normal((3, 4))
    A = net.forward(X)
    dense = net.layers[0]
    Z = X @ dense.params["weight"].T + dense.params["bias"]
    np.testing.assert_allclose(A, ref_forward(name, Z, params_of(kwargs)), rtol=1e-12,
                               atol=1e-14)
    if act.needs_preactivation:
        np.testing.assert_allclose(act._Z, Z, rtol=1e-13, atol=1e-14)
        assert not np.shares_memory(act._A, act._Z)
    else:
        assert act._Z is None
        np.testing.assert_array_equal(act._A, A)


# ------------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("name,kwargs,make_layer,_torch", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "standalone"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_gradcheck(name, kwargs, make_layer, _torch, fused, loss):
    act = make_layer()
    if fused:
        layers = [fb.Dense(4, 6), act, fb.Dense(6, 5, bias=False), make_layer(), fb.Dense(5, 3)]
    else:   # after an Identity the activation is a stage of its own
        layers = [fb.Dense(4, 6), fb.Identity(), act, fb.Dense(6, 3)]
    net = fb.Sequential(*layers, dtype="float64", seed=3)
    assert any(stage is act for stage in net._stages) != fused
    rng = np.random.default_rng(6)
    X = 1.5 * rng.standard_normal((8, 4))
    y = rng.integers(0, 3, size=8) if loss == "cross_entropy" else rng.standard_normal((8, 3))
    report = fb.gradcheck(net, loss, X, y)
    assert report.passed and len(report.results) == len(net.parameter_slices())


def test_gradcheck_catches_a_wrong_derivative():
    """The checker sees a 1% error in the GELU derivative (a wrong kernel parameter would too)."""
    class WrongGELU(fb.GELU):
        def gradient(self, dA, dZ):
            return super().gradient(dA, dZ) * 1.01

    net = fb.Sequential(fb.Dense(3, 4), fb.Identity(), WrongGELU(), fb.Dense(4, 2),
                        dtype="float64", seed=0)
    X = np.random.default_rng(0).standard_normal((5, 3))
    report = fb.gradcheck(net, "mse", X, np.zeros((5, 2)), raise_on_failure=False)
    assert [r.name for r in report.failures] == ["0.weight", "0.bias"]


# ------------------------------------------------------------------------- config, save, load
def test_config_round_trip():
    layers = [fb.GELU(), fb.GELU(approximate="tanh"), fb.Softplus(beta=2.0, threshold=5.0),
              fb.ELU(alpha=0.5)]
    for layer in layers:
        again = layer_from_config(layer.config())
        assert type(again) is type(layer) and again.config() == layer.config()
        assert again.kernel_name == layer.kernel_name
        assert again.kernel_params() == layer.kernel_params()
    assert repr(layers[1]) == "GELU(approximate='tanh')"
    assert repr(layers[2]) == "Softplus(beta=2.0, threshold=5.0)"
    assert {"GELU", "Softplus", "ELU"} <= set(LAYERS)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load(tmp_path, dtype):
    net = fb.Sequential(fb.Dense(4, 6), fb.GELU(approximate="tanh"), fb.Dense(6, 5),
                        fb.Softplus(2.0, 5.0), fb.Dense(5, 5), fb.ELU(0.5), fb.GELU(),
                        fb.Dense(5, 3), dtype=dtype, seed=4)
    X = np.random.default_rng(7).standard_normal((10, 4))
    net.fit(X, np.arange(10) % 3, epochs=2, batch_size=4, verbose=0)
    net.save(tmp_path / "m.npz")
    loaded = fb.load(tmp_path / "m.npz")
    assert loaded.config() == net.config()
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


# ---------------------------------------------------------------------- mlp, CLI, bad values
@pytest.mark.parametrize("activation,cls", [("gelu", fb.GELU), ("elu", fb.ELU),
                                            ("softplus", fb.Softplus)])
def test_mlp_accepts_the_new_activations(activation, cls):
    net = fb.mlp([6, 8, 3], activation=activation, dtype="float64", seed=0)
    assert [type(layer) for layer in net.layers] == [fb.Dense, cls, fb.Dense]
    assert len(net._stages) == 2
    assert all(d.init == "he" for d in net.layers[::2])      # relu family


def test_cli_trains_with_a_new_activation(tmp_path, capsys):
    from fastbp.cli import main
    out = tmp_path / "m.npz"
    assert main(["train", "--activation", "gelu", "--layers", "16", "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0
    assert "gelu" in capsys.readouterr().out
    assert any(isinstance(layer, fb.GELU) for layer in fb.load(out).layers)


def test_bad_activation_parameters():
    with pytest.raises(ValueError, match=r"approximate: expected one of \['none', 'tanh'\], "
                                         r"got 'erf'"):
        fb.GELU(approximate="erf")
    for kwargs, name in [({"beta": 0.0}, "beta"), ({"beta": -1.0}, "beta"),
                         ({"threshold": 0.0}, "threshold"), ({"beta": float("nan")}, "beta"),
                         ({"threshold": float("inf")}, "threshold")]:
        with pytest.raises(ValueError, match=f"{name}: expected a finite number > 0"):
            fb.Softplus(**kwargs)
    for alpha in (-0.5, float("nan"), "1"):
        with pytest.raises(ValueError, match="alpha: expected a finite number >= 0"):
            fb.ELU(alpha)


def test_unknown_activation_lists_the_new_names():
    with pytest.raises(ValueError, match="activation: expected one of") as info:
        fb.mlp([2, 3, 2], activation="swish")
    for name in ("elu", "gelu", "softplus"):
        assert f"'{name}'" in str(info.value)
    with pytest.raises(ValueError, match=r"layer type: expected one of \[.*'GELU'.*"):
        layer_from_config({"type": "Swish"})
