"""Loss kernels and the public loss objects against NumPy references (and PyTorch, if installed)."""
import warnings

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core as K

DTYPES = [np.float32, np.float64]
CE_SHAPES = [(1, 1), (1, 3), (7, 3), (7, 17), (1023, 17), (1023, 130), (64, 1000)]
ELEMENTWISE_SHAPES = [(1,), (7,), (1, 1), (7, 3), (1023, 1), (1023, 17)]


# ------------------------------------------------------------------------- NumPy references
def ref_log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def ref_ce_labels(logits, labels):
    """Mean softmax cross-entropy and its gradient, integer labels."""
    logp = ref_log_softmax(logits)
    n, k = logp.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    return -logp[np.arange(n), labels].mean(), (np.exp(logp) - onehot) / n


def ref_ce_probs(logits, targets):
    """Mean softmax cross-entropy and its gradient, target probabilities (rows sum to one)."""
    logp = ref_log_softmax(logits)
    t = np.asarray(targets, dtype=np.float64)
    n = logp.shape[0]
    return -(t * logp).sum(axis=1).mean(), (np.exp(logp) - t) / n


def ref_mse(pred, target, half=False):
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    c = 0.5 if half else 1.0
    return c * np.mean(diff ** 2), 2.0 * c * diff / diff.size


def ref_bce(logits, target):
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    e = np.exp(-np.abs(z))
    loss = np.maximum(z, 0.0) - z * y + np.log1p(e)
    sig = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return loss.mean(), (sig - y) / z.size


def value_tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def grad_tol(dtype):
    """For gradients multiplied back by the element/row count (values of order one)."""
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def random_probs(rng, shape, dtype):
    t = rng.random(shape) ** 3  # some near-zero entries
    return np.ascontiguousarray((t / t.sum(axis=1, keepdims=True)).astype(dtype))


EXTREME_LOGITS = np.array([[1e4, -1e4, 0.0],
                           [-1e4, -1e4, -1e4],
                           [1e4, 1e4, -1e4],
                           [0.0, 1e4, -1e4]])
EXTREME_LABELS = np.array([1, 2, 0, 2], dtype=np.int64)


# ---------------------------------------------------------------- softmax cross-entropy
@pytest.mark.parametrize("rows,cols", CE_SHAPES)
def test_softmax_cross_entropy(dtype, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols)
    logits = np.ascontiguousarray((4.0 * rng.standard_normal((rows, cols))).astype(dtype))
    labels = rng.integers(0, cols, size=rows).astype(np.int64)
    dlogits = np.full((rows, cols), np.nan, dtype=dtype)
    logits0, labels0 = logits.copy(), labels.copy()
    ref_loss, ref_grad = ref_ce_labels(logits, labels)

    loss = K.softmax_cross_entropy(logits, labels, dlogits)

    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(dlogits * rows, ref_grad * rows, **grad_tol(dtype))
    np.testing.assert_array_equal(logits, logits0)
    np.testing.assert_array_equal(labels, labels0)


def test_softmax_cross_entropy_extreme_logits(dtype):
    logits = np.ascontiguousarray(EXTREME_LOGITS.astype(dtype))
    dlogits = np.empty_like(logits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = K.softmax_cross_entropy(logits, EXTREME_LABELS, dlogits)
    ref_loss, ref_grad = ref_ce_labels(EXTREME_LOGITS, EXTREME_LABELS)
    # per row: 2e4, log 3, log 2, 2e4
    np.testing.assert_allclose(ref_loss, (4e4 + np.log(3) + np.log(2)) / 4, rtol=1e-15)
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    np.testing.assert_allclose(loss, ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(dlogits * 4, ref_grad * 4, **grad_tol(dtype))


def test_softmax_cross_entropy_uniform_and_perfect(dtype):
    """Equal logits give log k; a huge margin on the right class gives 0 and zero gradient."""
    d = np.empty((2, 5), dtype=dtype)
    loss = K.softmax_cross_entropy(np.zeros((2, 5), dtype=dtype),
                                   np.array([0, 4], dtype=np.int64), d)
    np.testing.assert_allclose(loss, np.log(5), **value_tol(dtype))
    z = np.array([[1e4, 0, 0], [0, 0, 1e4]], dtype=dtype)
    loss = K.softmax_cross_entropy(z, np.array([0, 2], dtype=np.int64), d[:, :3].copy())
    assert loss == 0.0


@pytest.mark.parametrize("rows,cols", CE_SHAPES)
def test_softmax_cross_entropy_probs(dtype, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols + 1)
    logits = np.ascontiguousarray((4.0 * rng.standard_normal((rows, cols))).astype(dtype))
    targets = random_probs(rng, (rows, cols), dtype)
    dlogits = np.full((rows, cols), np.nan, dtype=dtype)
    logits0, targets0 = logits.copy(), targets.copy()
    ref_loss, ref_grad = ref_ce_probs(logits, targets)

    loss = K.softmax_cross_entropy_probs(logits, targets, dlogits)

    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(dlogits * rows, ref_grad * rows, **grad_tol(dtype))
    np.testing.assert_array_equal(logits, logits0)
    np.testing.assert_array_equal(targets, targets0)


@pytest.mark.parametrize("rows,cols", [(1, 3), (7, 17), (1023, 130)])
def test_softmax_cross_entropy_probs_onehot_equals_labels(dtype, rows, cols):
    rng = np.random.default_rng(3)
    logits = np.ascontiguousarray((3.0 * rng.standard_normal((rows, cols))).astype(dtype))
    labels = rng.integers(0, cols, size=rows).astype(np.int64)
    onehot = np.zeros((rows, cols), dtype=dtype)
    onehot[np.arange(rows), labels] = 1
    d_labels, d_probs = np.empty_like(logits), np.empty_like(logits)
    loss_labels = K.softmax_cross_entropy(logits, labels, d_labels)
    loss_probs = K.softmax_cross_entropy_probs(logits, onehot, d_probs)
    np.testing.assert_allclose(loss_probs, loss_labels, **value_tol(dtype))
    np.testing.assert_allclose(d_probs * rows, d_labels * rows, **grad_tol(dtype))


def test_softmax_cross_entropy_probs_extreme_logits(dtype):
    logits = np.ascontiguousarray(EXTREME_LOGITS.astype(dtype))
    targets = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5], [0.5, 0.0, 0.5], [0.25, 0.25, 0.5]],
                       dtype=dtype)
    d = np.empty_like(logits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = K.softmax_cross_entropy_probs(logits, targets, d)
    ref_loss, ref_grad = ref_ce_probs(EXTREME_LOGITS, targets)
    assert np.isfinite(loss) and np.isfinite(d).all()
    np.testing.assert_allclose(loss, ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(d * 4, ref_grad * 4, **grad_tol(dtype))


# ---------------------------------------------------------------------------------------- mse
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("half", [False, True], ids=["full", "half"])
def test_mse(dtype, shape, half):
    rng = np.random.default_rng(sum(shape) + half)
    pred = np.ascontiguousarray((2.0 * rng.standard_normal(shape)).astype(dtype))
    target = np.ascontiguousarray(rng.standard_normal(shape).astype(dtype))
    grad = np.full(shape, np.nan, dtype=dtype)
    pred0, target0 = pred.copy(), target.copy()
    ref_loss, ref_grad = ref_mse(pred, target, half)

    loss = K.mse(pred, target, grad, half=half)

    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(grad * pred.size, ref_grad * pred.size, **grad_tol(dtype))
    np.testing.assert_array_equal(pred, pred0)
    np.testing.assert_array_equal(target, target0)


def test_mse_default_is_not_halved(dtype):
    pred = np.array([[1.0, 3.0]], dtype=dtype)
    target = np.array([[0.0, 0.0]], dtype=dtype)
    grad = np.empty_like(pred)
    assert K.mse(pred, target, grad) == pytest.approx(5.0)
    np.testing.assert_allclose(grad, [[1.0, 3.0]])
    assert K.mse(pred, target, grad, half=True) == pytest.approx(2.5)
    np.testing.assert_allclose(grad, [[0.5, 1.5]])


def test_mse_extreme_values(dtype):
    pred = np.array([[1e4, -1e4], [0.0, 1e4]], dtype=dtype)
    target = np.array([[-1e4, 1e4], [0.0, 1e4]], dtype=dtype)
    grad = np.empty_like(pred)
    loss = K.mse(pred, target, grad)
    ref_loss, ref_grad = ref_mse(pred, target)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(grad, ref_grad, **value_tol(dtype))


# ----------------------------------------------------------------------------- bce with logits
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_bce_with_logits(dtype, shape, soft):
    rng = np.random.default_rng(sum(shape) + 10 * soft)
    logits = np.ascontiguousarray((4.0 * rng.standard_normal(shape)).astype(dtype))
    if soft:
        target = rng.random(shape).astype(dtype)
    else:
        target = rng.integers(0, 2, size=shape).astype(dtype)
    target = np.ascontiguousarray(target)
    grad = np.full(shape, np.nan, dtype=dtype)
    logits0, target0 = logits.copy(), target.copy()
    ref_loss, ref_grad = ref_bce(logits, target)

    loss = K.bce_with_logits(logits, target, grad)

    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(grad * logits.size, ref_grad * logits.size, **grad_tol(dtype))
    np.testing.assert_array_equal(logits, logits0)
    np.testing.assert_array_equal(target, target0)


def test_bce_with_logits_extreme_logits(dtype):
    logits = np.array([[1e4, -1e4, 1e4, -1e4, 0.0, 1000.0, -1000.0]], dtype=dtype)
    target = np.array([[1.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.0]], dtype=dtype)
    grad = np.empty_like(logits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = K.bce_with_logits(logits, target, grad)
    ref_loss, ref_grad = ref_bce(logits, target)
    np.testing.assert_allclose(ref_loss, (2e4 + np.log(2)) / 7, rtol=1e-15)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(grad * 7, ref_grad * 7, **grad_tol(dtype))


# --------------------------------------------------------------------- public loss objects
def _finite_scalar(value):
    assert np.ndim(value) == 0
    value = float(value)
    assert np.isfinite(value)
    return value


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32])
def test_public_cross_entropy_int_labels(dtype, label_dtype):
    rng = np.random.default_rng(20)
    out = (3.0 * rng.standard_normal((7, 4))).astype(dtype)
    y = rng.integers(0, 4, size=7).astype(label_dtype)
    out0 = out.copy()
    value, dout = fb.SoftmaxCrossEntropy()(out, y)
    ref_loss, ref_grad = ref_ce_labels(out, y)
    np.testing.assert_allclose(_finite_scalar(value), ref_loss, **value_tol(dtype))
    assert dout.shape == out.shape and dout.dtype == out.dtype
    np.testing.assert_allclose(dout * 7, ref_grad * 7, **grad_tol(dtype))
    np.testing.assert_array_equal(out, out0)


def test_public_cross_entropy_onehot_and_probability_targets(dtype):
    rng = np.random.default_rng(21)
    out = (3.0 * rng.standard_normal((7, 4))).astype(dtype)
    labels = rng.integers(0, 4, size=7)
    onehot = np.eye(4, dtype=dtype)[labels]
    loss = fb.SoftmaxCrossEntropy()
    v_labels, d_labels = loss(out, labels)
    v_onehot, d_onehot = loss(out, onehot)
    np.testing.assert_allclose(_finite_scalar(v_onehot), _finite_scalar(v_labels),
                               **value_tol(dtype))
    np.testing.assert_allclose(d_onehot * 7, d_labels * 7, **grad_tol(dtype))

    probs = random_probs(rng, (7, 4), dtype)
    value, dout = loss(out, probs)
    ref_loss, ref_grad = ref_ce_probs(out, probs)
    np.testing.assert_allclose(_finite_scalar(value), ref_loss, **value_tol(dtype))
    assert dout.shape == out.shape and dout.dtype == out.dtype
    np.testing.assert_allclose(dout * 7, ref_grad * 7, **grad_tol(dtype))


def test_public_cross_entropy_extreme_logits(dtype):
    out = EXTREME_LOGITS.astype(dtype)
    value, dout = fb.SoftmaxCrossEntropy()(out, EXTREME_LABELS)
    ref_loss, ref_grad = ref_ce_labels(EXTREME_LOGITS, EXTREME_LABELS)
    np.testing.assert_allclose(_finite_scalar(value), ref_loss, **value_tol(dtype))
    np.testing.assert_allclose(dout * 4, ref_grad * 4, **grad_tol(dtype))


@pytest.mark.parametrize("half", [False, True])
def test_public_mse(dtype, half):
    rng = np.random.default_rng(22)
    out = rng.standard_normal((7, 3)).astype(dtype)
    y = rng.standard_normal((7, 3)).astype(dtype)
    value, dout = fb.MSE(half=half)(out, y)
    ref_loss, ref_grad = ref_mse(out, y, half)
    np.testing.assert_allclose(_finite_scalar(value), ref_loss, **value_tol(dtype))
    assert dout.shape == out.shape and dout.dtype == out.dtype
    np.testing.assert_allclose(dout * 21, ref_grad * 21, **grad_tol(dtype))


def test_public_mse_default_matches_torch_convention(dtype):
    """fb.MSE() is the mean over all elements without the 1/2, like torch.nn.MSELoss."""
    out = np.array([[1.0, 3.0]], dtype=dtype)
    value, dout = fb.MSE()(out, np.zeros((1, 2), dtype=dtype))
    assert float(value) == pytest.approx(5.0)
    np.testing.assert_allclose(dout, [[1.0, 3.0]])


@pytest.mark.parametrize("width", [1, 3])
def test_public_bce_with_logits(dtype, width):
    rng = np.random.default_rng(23)
    out = (4.0 * rng.standard_normal((7, width))).astype(dtype)
    out[0, 0] = 1e4
    y = rng.integers(0, 2, size=(7, width)).astype(dtype)
    y[0, 0] = 0.0
    value, dout = fb.BCEWithLogits()(out, y)
    ref_loss, ref_grad = ref_bce(out, y)
    np.testing.assert_allclose(_finite_scalar(value), ref_loss, **value_tol(dtype))
    assert dout.shape == out.shape and dout.dtype == out.dtype
    np.testing.assert_allclose(dout * out.size, ref_grad * out.size, **grad_tol(dtype))


# ------------------------------------------------------------------- PyTorch as second oracle
def _torch():
    return pytest.importorskip("torch")


def torch_tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}


def _torch_value_and_grad(torch, fn, x, *rest):
    xt = torch.tensor(x, requires_grad=True)
    loss = fn(xt, *rest)
    loss.backward()
    return loss.item(), xt.grad.numpy()


@pytest.mark.parametrize("rows,cols", [(1, 3), (7, 5), (1023, 17)])
def test_cross_entropy_matches_torch(dtype, rows, cols):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(30)
    logits = np.ascontiguousarray((4.0 * rng.standard_normal((rows, cols))).astype(dtype))
    labels = rng.integers(0, cols, size=rows).astype(np.int64)
    t_loss, t_grad = _torch_value_and_grad(torch, F.cross_entropy, logits,
                                           torch.from_numpy(labels))
    d = np.empty_like(logits)
    loss = K.softmax_cross_entropy(logits, labels, d)
    np.testing.assert_allclose(loss, t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(d * rows, t_grad * rows, **torch_tol(dtype))

    value, dout = fb.SoftmaxCrossEntropy()(logits, labels)
    np.testing.assert_allclose(float(value), t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(dout * rows, t_grad * rows, **torch_tol(dtype))


def test_cross_entropy_extreme_matches_torch(dtype):
    torch = _torch()
    logits = np.ascontiguousarray(EXTREME_LOGITS.astype(dtype))
    t_loss, t_grad = _torch_value_and_grad(torch, torch.nn.functional.cross_entropy, logits,
                                           torch.from_numpy(EXTREME_LABELS))
    d = np.empty_like(logits)
    loss = K.softmax_cross_entropy(logits, EXTREME_LABELS, d)
    np.testing.assert_allclose(loss, t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(d * 4, t_grad * 4, **torch_tol(dtype))


@pytest.mark.parametrize("rows,cols", [(1, 3), (7, 5), (1023, 17)])
def test_cross_entropy_probs_matches_torch(dtype, rows, cols):
    torch = _torch()
    rng = np.random.default_rng(31)
    logits = np.ascontiguousarray((4.0 * rng.standard_normal((rows, cols))).astype(dtype))
    targets = random_probs(rng, (rows, cols), dtype)
    t_loss, t_grad = _torch_value_and_grad(torch, torch.nn.functional.cross_entropy, logits,
                                           torch.from_numpy(targets))
    d = np.empty_like(logits)
    loss = K.softmax_cross_entropy_probs(logits, targets, d)
    np.testing.assert_allclose(loss, t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(d * rows, t_grad * rows, **torch_tol(dtype))

    value, dout = fb.SoftmaxCrossEntropy()(logits, targets)
    np.testing.assert_allclose(float(value), t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(dout * rows, t_grad * rows, **torch_tol(dtype))


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (1023, 17)])
@pytest.mark.parametrize("half", [False, True], ids=["full", "half"])
def test_mse_matches_torch(dtype, shape, half):
    torch = _torch()
    rng = np.random.default_rng(32)
    pred = np.ascontiguousarray((3.0 * rng.standard_normal(shape)).astype(dtype))
    target = np.ascontiguousarray(rng.standard_normal(shape).astype(dtype))
    c = 0.5 if half else 1.0
    t_loss, t_grad = _torch_value_and_grad(
        torch, lambda p, t: c * torch.nn.functional.mse_loss(p, t), pred,
        torch.from_numpy(target))
    g = np.empty_like(pred)
    loss = K.mse(pred, target, g, half=half)
    np.testing.assert_allclose(loss, t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(g * pred.size, t_grad * pred.size, **torch_tol(dtype))

    value, dout = fb.MSE(half=half)(pred, target)
    np.testing.assert_allclose(float(value), t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(dout * pred.size, t_grad * pred.size, **torch_tol(dtype))


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (1023, 17)])
def test_bce_with_logits_matches_torch(dtype, shape):
    torch = _torch()
    rng = np.random.default_rng(33)
    logits = np.ascontiguousarray((4.0 * rng.standard_normal(shape)).astype(dtype))
    logits.flat[0] = 1e4
    if logits.size > 1:
        logits.flat[1] = -1e4
    target = np.ascontiguousarray(rng.integers(0, 2, size=shape).astype(dtype))
    t_loss, t_grad = _torch_value_and_grad(
        torch, torch.nn.functional.binary_cross_entropy_with_logits, logits,
        torch.from_numpy(target))
    g = np.empty_like(logits)
    loss = K.bce_with_logits(logits, target, g)
    np.testing.assert_allclose(loss, t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(g * logits.size, t_grad * logits.size, **torch_tol(dtype))

    value, dout = fb.BCEWithLogits()(logits, target)
    np.testing.assert_allclose(float(value), t_loss, **torch_tol(dtype))
    np.testing.assert_allclose(dout * logits.size, t_grad * logits.size, **torch_tol(dtype))
