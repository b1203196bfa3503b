"""Every function of the C core (`fastbp._core`) against a plain NumPy reference.

The references below are written in float64 NumPy. Each kernel runs in float32 and float64, on odd
sizes, with 1 and 2 OpenMP threads; reductions must give the same bits whatever the thread count.
"""
import warnings

import numpy as np
import pytest
from thread_helpers import num_threads
from tolerance import assert_within, dense_bound, sum_bound

from fastbp import _core as K

DTYPES = [np.float32, np.float64]
ACTIVATION_NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]
ROWS = [1, 7, 1023]
WIDTHS = [1, 3, 17, 130]


# ------------------------------------------------------------------------- NumPy references
def ref_sigmoid(x):
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def ref_activation(x, name, slope=0.01):
    """f(x) in float64."""
    x = np.asarray(x, dtype=np.float64)
    if name == "identity":
        return x.copy()
    if name == "sigmoid":
        return ref_sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0, x, slope * x)
    raise AssertionError(name)


def ref_derivative_from_output(a, name, slope=0.01):
    """f'(z) written through the output a = f(z), in float64."""
    a = np.asarray(a, dtype=np.float64)
    if name == "identity":
        return np.ones_like(a)
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a * a
    if name == "relu":
        return (a > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(a > 0, 1.0, slope)
    raise AssertionError(name)


def ref_gemm(A, B, C, trans_a, trans_b, alpha, beta):
    a = A.astype(np.float64).T if trans_a else A.astype(np.float64)
    b = B.astype(np.float64).T if trans_b else B.astype(np.float64)
    out = alpha * (a @ b)
    if beta != 0.0:
        out = out + beta * C.astype(np.float64)
    return out


def ref_softmax_ce(logits, labels):
    z = logits.astype(np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    logp = shifted - lse
    n = z.shape[0]
    loss = -logp[np.arange(n), labels].mean()
    onehot = np.zeros_like(z)
    onehot[np.arange(n), labels] = 1.0
    return loss, (np.exp(logp) - onehot) / n


def eps_of(dtype):
    return float(np.finfo(dtype).eps)


def elementwise_tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def rand(rng, shape, dtype, scale=1.0):
    return np.ascontiguousarray((scale * rng.standard_normal(shape)).astype(dtype))


# ---------------------------------------------------------------------------------- threads
def test_set_and_get_num_threads():
    with num_threads(2):
        assert K.get_num_threads() == (2 if K.HAVE_OPENMP else 1)
    with num_threads(1):
        assert K.get_num_threads() == 1
    assert isinstance(K.HAVE_OPENMP, bool)


def test_set_num_threads_refuses_zero():
    old = K.get_num_threads()
    with pytest.raises(ValueError):
        K.set_num_threads(0)
    assert K.get_num_threads() == old


# ------------------------------------------------------------------------------------- gemm
GEMM_SIZES = [(1, 1, 1), (7, 3, 17), (1, 130, 7), (1023, 17, 130), (17, 3, 1023)]  # (m, n, k)


def check_gemm(dtype, m, n, k, trans_a, trans_b, alpha, beta):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    A = rand(rng, (k, m) if trans_a else (m, k), dtype)
    B = rand(rng, (n, k) if trans_b else (k, n), dtype)
    if beta == 0.0:
        C = np.full((m, n), np.nan, dtype=dtype)  # garbage that BLAS ignores when beta == 0
        C.flat[::2] = np.inf
    else:
        C = rand(rng, (m, n), dtype)
    A0, B0, C0 = A.copy(), B.copy(), C.copy()
    expected = ref_gemm(A0, B0, C0, trans_a, trans_b, alpha, beta)

    assert K.gemm(A, B, C, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta) is None

    assert np.isfinite(C).all()
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(B, B0)
    a = np.abs(A0.astype(np.float64).T if trans_a else A0.astype(np.float64))
    b = np.abs(B0.astype(np.float64).T if trans_b else B0.astype(np.float64))
    c = np.abs(C0.astype(np.float64)) if beta != 0.0 else 0.0
    assert_within(C, expected, sum_bound(dtype, k + 1, abs(alpha) * (a @ b) + abs(beta) * c))


@pytest.mark.parametrize("m,n,k", GEMM_SIZES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm(dtype, threads, m, n, k, trans_a, trans_b):
    """beta = 0: C is written, never read (NaN/Inf garbage in C is ignored, as BLAS does)."""
    check_gemm(dtype, m, n, k, trans_a, trans_b, alpha=-0.75, beta=0.0)


@pytest.mark.parametrize("m,n,k", [(7, 3, 17), (1023, 17, 130)])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (-0.75, 0.5)])
def test_gemm_alpha_beta(dtype, m, n, k, trans_a, trans_b, alpha, beta):
    """beta = 1 accumulates into C; general alpha and beta scale both terms."""
    check_gemm(dtype, m, n, k, trans_a, trans_b, alpha, beta)


def test_gemm_defaults_write_product(dtype):
    rng = np.random.default_rng(1)
    A, B = rand(rng, (7, 3), dtype), rand(rng, (3, 17), dtype)
    C = np.full((7, 17), np.nan, dtype=dtype)
    K.gemm(A, B, C)
    assert_within(C, A.astype(np.float64) @ B.astype(np.float64), dense_bound(dtype, A, B.T))


def test_gemm_accumulates_twice(dtype):
    """beta = 1 twice adds the product twice (gradient accumulation)."""
    rng = np.random.default_rng(2)
    A, B = rand(rng, (17, 130), dtype), rand(rng, (7, 130), dtype)
    C = np.zeros((17, 7), dtype=dtype)
    K.gemm(A, B, C, trans_b=True, beta=1.0)
    K.gemm(A, B, C, trans_b=True, beta=1.0)
    # the first product's rounding, carried, and the second's, of sums twice as large
    assert_within(C, 2 * (A.astype(np.float64) @ B.astype(np.float64).T),
                  3 * dense_bound(dtype, A, B))


# ---------------------------------------------------------------- bias + activation forward
SHAPES = [(1, 1), (1, 130), (7, 3), (7, 17), (1023, 1), (1023, 130)]


@pytest.mark.parametrize("rows,cols", SHAPES)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_bias_activation_forward(dtype, threads, rows, cols, activation, with_bias):
    rng = np.random.default_rng(rows * 131 + cols)
    Z = rand(rng, (rows, cols), dtype, scale=3.0)
    Z.flat[::5] = 0.0  # the kink of relu-family activations
    bias = rand(rng, (cols,), dtype) if with_bias else None
    x = Z.astype(np.float64) + (bias.astype(np.float64) if with_bias else 0.0)
    slope = 0.2 if activation == "leaky_relu" else 0.01
    expected = ref_activation(x, activation, slope)
    bias0 = None if bias is None else bias.copy()

    assert K.bias_activation_forward(Z, bias, activation, slope=slope) is None

    np.testing.assert_allclose(Z, expected, **elementwise_tol(dtype))
    if with_bias:
        np.testing.assert_array_equal(bias, bias0)


def test_leaky_relu_default_slope(dtype):
    Z = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]], dtype=dtype)
    K.bias_activation_forward(Z, None, "leaky_relu")
    np.testing.assert_allclose(Z, [[-0.02, -0.005, 0.0, 0.5, 3.0]], **elementwise_tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_forward_extreme_inputs_are_stable(dtype, threads, activation):
    """+-1000 (and more) neither overflows nor gives NaN; sigmoid saturates to exactly 0 and 1."""
    row = np.array([-1e4, -1000.0, -100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 100.0, 1000.0, 1e4])
    Z = np.ascontiguousarray(np.tile(row, (7, 1)).astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        K.bias_activation_forward(Z, None, activation, slope=0.01)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z, np.tile(ref_activation(row, activation), (7, 1)),
                               **elementwise_tol(dtype))
    if activation == "sigmoid":
        assert (Z[:, 1] == 0.0).all() and (Z[:, -2] == 1.0).all()
        assert ((Z >= 0) & (Z <= 1)).all()


def test_forward_large_bias_sigmoid(dtype):
    """The bias is added before the activation: sigmoid(0 + 1000) = 1, sigmoid(0 - 1000) = 0."""
    Z = np.zeros((3, 2), dtype=dtype)
    K.bias_activation_forward(Z, np.array([1000.0, -1000.0], dtype=dtype), "sigmoid")
    np.testing.assert_array_equal(Z, np.tile([1.0, 0.0], (3, 1)))


# ----------------------------------------------------------------------- activation backward
def _forward_output(rng, shape, dtype, activation, slope):
    z = 3.0 * rng.standard_normal(shape)
    z.flat[::7] = 0.0
    return np.ascontiguousarray(ref_activation(z, activation, slope).astype(dtype))


@pytest.mark.parametrize("rows,cols", SHAPES)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("in_place", [False, True], ids=["out", "inplace"])
def test_activation_backward(dtype, threads, rows, cols, activation, in_place):
    rng = np.random.default_rng(rows * 7 + cols)
    slope = 0.2 if activation == "leaky_relu" else 0.01
    A = _forward_output(rng, (rows, cols), dtype, activation, slope)
    dA = rand(rng, (rows, cols), dtype)
    A0, dA0 = A.copy(), dA.copy()
    expected = dA0.astype(np.float64) * ref_derivative_from_output(A0, activation, slope)
    if in_place:
        dZ = dA
    else:
        dZ = np.full((rows, cols), np.nan, dtype=dtype)

    assert K.activation_backward(dA, A, dZ, activation, slope=slope) is None

    np.testing.assert_allclose(dZ, expected, **elementwise_tol(dtype))
    np.testing.assert_array_equal(A, A0)
    if not in_place:
        np.testing.assert_array_equal(dA, dA0)


def test_activation_backward_leaky_default_slope(dtype):
    A = np.array([[-0.02, 0.0, 0.5]], dtype=dtype)
    dA = np.array([[2.0, 3.0, 4.0]], dtype=dtype)
    dZ = np.empty_like(dA)
    K.activation_backward(dA, A, dZ, "leaky_relu")
    np.testing.assert_allclose(dZ, [[0.02, 0.03, 4.0]], **elementwise_tol(dtype))


# -------------------------------------------------------------------------------- bias_grad
@pytest.mark.parametrize("rows,cols", SHAPES + [(4099, 130), (20000, 3)])
@pytest.mark.parametrize("accumulate", [False, True], ids=["write", "accumulate"])
def test_bias_grad(dtype, threads, rows, cols, accumulate):
    rng = np.random.default_rng(rows + 3 * cols)
    dZ = rand(rng, (rows, cols), dtype)
    if accumulate:
        db = rand(rng, (cols,), dtype)
    else:
        db = np.full(cols, np.nan, dtype=dtype)
    db0 = db.copy()
    expected = dZ.astype(np.float64).sum(axis=0)
    if accumulate:
        expected += db0.astype(np.float64)

    assert K.bias_grad(dZ, db, accumulate=accumulate) is None

    # Each column is a sum of `rows` values: allow rows * eps * max|value| on top of rounding.
    atol = (rows + 2) * eps_of(dtype) * (np.abs(dZ).max() + (np.abs(db0).max() if accumulate
                                                            else 0.0))
    np.testing.assert_allclose(db, expected, rtol=4 * eps_of(dtype), atol=atol)


def test_bias_grad_default_overwrites(dtype):
    dZ = np.ones((7, 3), dtype=dtype)
    db = np.full(3, 100.0, dtype=dtype)
    K.bias_grad(dZ, db)
    np.testing.assert_array_equal(db, [7.0, 7.0, 7.0])


# ----------------------------------------------------------------------------------- gather
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("cols", WIDTHS)
def test_gather_rows(dtype, threads, n, cols):
    rng = np.random.default_rng(n * 17 + cols)
    src = rand(rng, (300, cols), dtype)
    indices = rng.integers(0, 300, size=n).astype(np.int64)
    if n > 2:
        indices[:3] = [0, 299, 0]  # first, last, repeated
    out = np.full((n, cols), np.nan, dtype=dtype)
    src0 = src.copy()
    assert K.gather_rows(src, indices, out) is None
    np.testing.assert_array_equal(out, src0[indices])
    np.testing.assert_array_equal(src, src0)


def test_gather_rows_large(dtype, threads):
    """Enough elements for the threaded path."""
    rng = np.random.default_rng(5)
    src = rand(rng, (5000, 130), dtype)
    indices = rng.permutation(5000).astype(np.int64)[:4097]
    out = np.empty((4097, 130), dtype=dtype)
    K.gather_rows(src, indices, out)
    np.testing.assert_array_equal(out, src[indices])


@pytest.mark.parametrize("n", ROWS + [40000])
def test_gather_labels(threads, n):
    rng = np.random.default_rng(n)
    src = rng.integers(-5, 10, size=max(n, 50)).astype(np.int64)
    indices = rng.integers(0, src.shape[0], size=n).astype(np.int64)
    out = np.full(n, -99, dtype=np.int64)
    src0 = src.copy()
    assert K.gather_labels(src, indices, out) is None
    np.testing.assert_array_equal(out, src0[indices])
    np.testing.assert_array_equal(src, src0)


# -------------------------------------------------------------------------------- grad_norm
@pytest.mark.parametrize("n", [1, 7, 1023, 300_001])
def test_grad_norm(dtype, threads, n):
    rng = np.random.default_rng(n)
    x = rand(rng, (n,), dtype)
    x0 = x.copy()
    norm = K.grad_norm(x)
    assert isinstance(norm, float)
    # accumulated in double: as accurate as NumPy's float64 norm for both dtypes
    np.testing.assert_allclose(norm, np.linalg.norm(x.astype(np.float64)), rtol=1e-12)
    np.testing.assert_array_equal(x, x0)


def test_grad_norm_special_values(dtype):
    assert K.grad_norm(np.zeros(1023, dtype=dtype)) == 0.0
    # sum of squares exact in double, then a correctly rounded square root
    assert K.grad_norm(np.array([5.0], dtype=dtype)) == 5.0
    assert K.grad_norm(np.array([3.0, 4.0], dtype=dtype)) == 5.0
    # float32 values whose squares overflow float32 are fine when accumulated in double
    big = np.full(4, 1e30, dtype=dtype)
    np.testing.assert_allclose(K.grad_norm(big), 2e30, rtol=1e-6)


@pytest.mark.parametrize("n", [1, 7, 1023, 300_001])
def test_grad_norm_equals_clip_grad_norm(dtype, threads, n):
    """The two entry points compute the same global norm, to the bit."""
    for seed in range(5):
        x = rand(np.random.default_rng(seed), (n,), dtype)
        assert K.grad_norm(x) == K.clip_grad_norm(x.copy(), 1e300)


# --------------------------------------------------------------------------- clip_grad_norm
@pytest.mark.parametrize("n", [1, 7, 1023, 300_001])
def test_clip_grad_norm_below_max_leaves_grads(dtype, threads, n):
    rng = np.random.default_rng(n)
    g = rand(rng, (n,), dtype)
    g0 = g.copy()
    norm = np.linalg.norm(g0.astype(np.float64))
    got = K.clip_grad_norm(g, 2.0 * norm)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, norm, rtol=1e-12)
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("n", [1, 7, 1023, 300_001])
@pytest.mark.parametrize("max_norm", [1.0, 1e-3])
def test_clip_grad_norm_above_max_scales(dtype, threads, n, max_norm):
    rng = np.random.default_rng(n + 1)
    g = rand(rng, (n,), dtype, scale=3.0)
    g[0] = 10.0  # norm well above max_norm whatever the size
    g0 = g.copy()
    norm = np.linalg.norm(g0.astype(np.float64))
    got = K.clip_grad_norm(g, max_norm)
    np.testing.assert_allclose(got, norm, rtol=1e-12)
    factor = max_norm / (norm + 1e-6)
    np.testing.assert_allclose(g, g0.astype(np.float64) * factor, rtol=4 * eps_of(dtype),
                               atol=0)
    np.testing.assert_allclose(np.linalg.norm(g.astype(np.float64)), max_norm, rtol=1e-5)


def test_clip_grad_norm_zero_grads(dtype):
    g = np.zeros(7, dtype=dtype)
    assert K.clip_grad_norm(g, 1.0) == 0.0
    np.testing.assert_array_equal(g, 0.0)


# ------------------------------------------------------------------------------ determinism
def _same_bits(a, b):
    return np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _run_with_threads(fn):
    """fn() with 1 and with 2 threads; returns both results."""
    results = []
    for n in (1, 2):
        with num_threads(n):
            results.append(fn())
    return results


@pytest.mark.parametrize("n", [300_001, 1_000_003])
def test_grad_norm_deterministic(dtype, n):
    x = rand(np.random.default_rng(9), (n,), dtype)
    one, two = _run_with_threads(lambda: K.grad_norm(x))
    assert _same_bits(one, two), (one, two)


@pytest.mark.parametrize("rows,cols", [(4099, 130), (100_003, 3), (1023, 1000)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_bias_grad_deterministic(dtype, rows, cols, accumulate):
    rng = np.random.default_rng(10)
    dZ = rand(rng, (rows, cols), dtype)
    db0 = rand(rng, (cols,), dtype)

    def run():
        db = db0.copy()
        K.bias_grad(dZ, db, accumulate=accumulate)
        return db

    one, two = _run_with_threads(run)
    assert _same_bits(one, two)


def test_clip_grad_norm_deterministic(dtype):
    g0 = rand(np.random.default_rng(11), (300_001,), dtype, scale=5.0)

    def run():
        g = g0.copy()
        return K.clip_grad_norm(g, 1.0), g

    (n1, g1), (n2, g2) = _run_with_threads(run)
    assert _same_bits(n1, n2) and _same_bits(g1, g2)


def test_softmax_cross_entropy_deterministic(dtype):
    rng = np.random.default_rng(12)
    logits = rand(rng, (30_001, 17), dtype, scale=4.0)
    labels = rng.integers(0, 17, size=30_001).astype(np.int64)

    def run():
        d = np.empty_like(logits)
        return K.softmax_cross_entropy(logits, labels, d), d

    (l1, d1), (l2, d2) = _run_with_threads(run)
    assert _same_bits(l1, l2) and _same_bits(d1, d2)


def test_softmax_cross_entropy_probs_deterministic(dtype):
    rng = np.random.default_rng(13)
    logits = rand(rng, (30_001, 17), dtype, scale=4.0)
    t = rng.random((30_001, 17))
    t = np.ascontiguousarray((t / t.sum(axis=1, keepdims=True)).astype(dtype))

    def run():
        d = np.empty_like(logits)
        return K.softmax_cross_entropy_probs(logits, t, d), d

    (l1, d1), (l2, d2) = _run_with_threads(run)
    assert _same_bits(l1, l2) and _same_bits(d1, d2)


@pytest.mark.parametrize("loss", ["mse", "mse_half", "bce_with_logits"])
def test_elementwise_losses_deterministic(dtype, loss):
    rng = np.random.default_rng(14)
    pred = rand(rng, (100_003, 3), dtype, scale=3.0)
    target = np.ascontiguousarray(rng.random((100_003, 3)).astype(dtype))

    def run():
        g = np.empty_like(pred)
        if loss == "bce_with_logits":
            return K.bce_with_logits(pred, target, g), g
        return K.mse(pred, target, g, half=loss == "mse_half"), g

    (l1, g1), (l2, g2) = _run_with_threads(run)
    assert _same_bits(l1, l2) and _same_bits(g1, g2)


def test_softmax_cross_entropy_matches_reference_large(dtype, threads):
    """The threaded loss path agrees with the reference too (not only with itself)."""
    rng = np.random.default_rng(15)
    logits = rand(rng, (20_001, 10), dtype, scale=4.0)
    labels = rng.integers(0, 10, size=20_001).astype(np.int64)
    d = np.empty_like(logits)
    loss = K.softmax_cross_entropy(logits, labels, d)
    ref_loss, ref_grad = ref_softmax_ce(logits, labels)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss, ref_loss, rtol=tol)
    np.testing.assert_allclose(d * 20_001, ref_grad * 20_001, rtol=tol, atol=tol)


# ------------------------------------------------------------------------- argument checks
def test_kernels_refuse_mixed_dtypes():
    A = np.ones((3, 3), dtype=np.float32)
    B = np.ones((3, 3), dtype=np.float64)
    with pytest.raises(TypeError, match="B"):
        K.gemm(A, B, np.ones((3, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="bias"):
        K.bias_activation_forward(A, np.zeros(3, dtype=np.float64), "relu")


def test_kernels_refuse_bad_shapes_and_layout():
    A = np.ones((3, 4))
    with pytest.raises(ValueError):
        K.gemm(A, np.ones((3, 4)), np.ones((3, 3)))  # inner sizes 4 vs 3
    with pytest.raises(ValueError, match="C"):
        K.gemm(A, np.ones((4, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="Z"):
        K.bias_activation_forward(np.ones((4, 6))[:, ::2], None, "relu")
    with pytest.raises(ValueError, match="bias"):
        K.bias_activation_forward(np.ones((3, 4)), np.zeros(5), "relu")
    with pytest.raises(ValueError, match="activation"):
        K.bias_activation_forward(np.ones((3, 4)), None, "softsign")
    with pytest.raises(ValueError, match="db"):
        K.bias_grad(np.ones((3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="indices"):
        K.gather_rows(np.ones((3, 4)), np.array([0, 3], dtype=np.int64), np.ones((2, 4)))
    with pytest.raises(ValueError, match="labels"):
        K.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 3], dtype=np.int64),
                                np.ones((2, 3)))
    with pytest.raises(TypeError):
        K.gemm(np.ones((3, 3), dtype=np.int64), np.ones((3, 3)), np.ones((3, 3)))
