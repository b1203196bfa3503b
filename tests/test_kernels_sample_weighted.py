"""The kernels behind fastbp.sklearn against NumPy references, in float32 and float64, on 1 and
2 threads: weighted losses summed over a row's outputs (scikit-learn's definitions: its delta
over W), the L2 penalty, and the two updates in scikit-learn's MLP forms (velocity momentum SGD;
Adam with folded bias corrections)."""
import numpy as np
import pytest
from scipy.special import xlogy

from fastbp import _core as K

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def rtol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-12


def ref_loss(kind, z, t, w, weight_sum):
    """scikit-learn's delta (output - target, weighted) / W, and the weighted row losses / W."""
    z = z.astype(np.float64)
    w = np.ones(z.shape[0]) if w is None else w.astype(np.float64)
    if kind == "softmax_cross_entropy":
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        onehot = np.eye(z.shape[1])[t]
        rows, grad = -(onehot * log_p).sum(axis=1), np.exp(log_p) - onehot
    elif kind == "bce_with_logits":
        p = 1 / (1 + np.exp(-z))
        rows = -(t * np.log(p) + (1 - t) * np.log1p(-p)).sum(axis=1)
        grad = p - t
    elif kind == "half_squared_error":
        rows, grad = 0.5 * ((z - t) ** 2).sum(axis=1), z - t
    else:
        mean = np.exp(z)
        rows, grad = (xlogy(t, t / mean) - t + mean).sum(axis=1), mean - t
    return (w * rows).sum() / weight_sum, grad * w[:, None] / weight_sum


def loss_case(rng, kind, rows, cols, dtype):
    z = rng.standard_normal((rows, cols)).astype(dtype)
    if kind == "softmax_cross_entropy":
        t = rng.integers(0, cols, rows)
    elif kind == "bce_with_logits":
        t = rng.integers(0, 2, (rows, cols)).astype(dtype)
    elif kind == "half_squared_error":
        t = rng.standard_normal((rows, cols)).astype(dtype)
    else:
        t = rng.poisson(1.5, (rows, cols)).astype(dtype)
    return z, t


@pytest.mark.parametrize("kind", K.WEIGHTED_LOSSES)
@pytest.mark.parametrize("rows,cols", [(1, 1), (7, 3), (300, 1), (2000, 5)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
def test_weighted_loss_matches_reference(dtype, threads, kind, rows, cols, weighted):
    rng = np.random.default_rng(rows * cols)
    z, t = loss_case(rng, kind, rows, cols, dtype)
    w = rng.uniform(0, 3, rows).astype(dtype) if weighted else None
    weight_sum = float(rows if w is None else w.astype(np.float64).sum())
    d = np.empty_like(z)
    value = K.weighted_loss(kind, z, t, w, weight_sum, d)
    expected, grad = ref_loss(kind, z, t, w, weight_sum)
    np.testing.assert_allclose(value, expected, rtol=rtol(dtype))
    np.testing.assert_allclose(d, grad, rtol=rtol(dtype), atol=rtol(dtype) / rows)


@pytest.mark.parametrize("kind", K.WEIGHTED_LOSSES)
def test_weight_two_equals_a_duplicated_row(kind):
    rng = np.random.default_rng(5)
    z, t = loss_case(rng, kind, 6, 3, np.float64)
    w = np.array([2.0, 1, 1, 1, 1, 1])
    d = np.empty_like(z)
    value = K.weighted_loss(kind, z, t, w, 7.0, d)
    z2, t2 = np.vstack([z[:1], z]), np.concatenate([t[:1], t])
    d2 = np.empty_like(z2)
    assert value == pytest.approx(K.weighted_loss(kind, z2, t2, None, 7.0, d2), rel=1e-14)
    np.testing.assert_allclose(d[0], d2[0] + d2[1], rtol=1e-14)
    np.testing.assert_allclose(d[1:], d2[2:], rtol=1e-14)


def test_weighted_loss_refuses_bad_arguments():
    z = np.zeros((3, 2))
    d = np.empty_like(z)
    with pytest.raises(ValueError, match="kind: expected one of"):
        K.weighted_loss("hinge", z, z, None, 3.0, d)
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 2\)"):
        K.weighted_loss("softmax_cross_entropy", z, np.array([0, 2, 1]), None, 3.0, d)
    with pytest.raises(ValueError, match="target: expected 3 labels"):
        K.weighted_loss("softmax_cross_entropy", z, np.array([0, 1]), None, 3.0, d)
    with pytest.raises(ValueError, match="weights: expected 3 weights"):
        K.weighted_loss("bce_with_logits", z, z, np.ones(2), 3.0, d)
    with pytest.raises(TypeError, match="weights: expected dtype float64"):
        K.weighted_loss("bce_with_logits", z, z, np.ones(3, np.float32), 3.0, d)
    with pytest.raises(ValueError, match="weight_sum: expected a finite number > 0"):
        K.weighted_loss("half_squared_error", z, z, None, 0.0, d)
    with pytest.raises(ValueError, match="target: expected shape"):
        K.weighted_loss("half_squared_error", z, np.zeros((3, 1)), None, 3.0, d)
    with pytest.raises(ValueError, match="out: expected at least one element"):
        K.weighted_loss("half_squared_error", z[:0], z[:0], None, 3.0, d[:0])


@pytest.mark.parametrize("n", [1, 33, 100_003])
def test_add_l2_gradient(dtype, threads, n):
    rng = np.random.default_rng(n)
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    expected_g = g.astype(np.float64) + 0.3 * p
    total = K.add_l2_gradient(p, g, 0.3)
    np.testing.assert_allclose(total, np.dot(p.astype(np.float64), p), rtol=rtol(dtype))
    np.testing.assert_allclose(g, expected_g, rtol=rtol(dtype), atol=rtol(dtype))


def test_add_l2_gradient_over_ranges_only(dtype, threads):
    rng = np.random.default_rng(4)
    p, g = rng.standard_normal(50).astype(dtype), rng.standard_normal(50).astype(dtype)
    expected_g = g.astype(np.float64)
    ranges = np.array([[0, 10], [20, 20], [30, 50]], dtype=np.int64)
    inside = np.r_[0:10, 30:50]
    expected_g[inside] += 0.5 * p[inside]
    total = K.add_l2_gradient(p, g, 0.5, ranges)
    np.testing.assert_allclose(total, np.dot(p[inside].astype(np.float64), p[inside]),
                               rtol=rtol(dtype))
    np.testing.assert_allclose(g, expected_g, rtol=rtol(dtype), atol=rtol(dtype))


@pytest.mark.parametrize("nesterov", [False, True])
def test_velocity_sgd_follows_sklearn_form(dtype, threads, nesterov):
    rng = np.random.default_rng(1)
    p = rng.standard_normal(1000).astype(dtype)
    u = np.zeros_like(p)
    ref_p, ref_u = p.astype(np.float64), np.zeros(1000)
    backup = np.empty_like(p)
    for lr in (0.1, 0.05, 0.02):                    # a changing lr, as invscaling gives
        g = rng.standard_normal(1000).astype(dtype)
        before = p.copy()
        K.velocity_sgd_step(p, g, u, lr, 0.9, nesterov, backup)
        np.testing.assert_array_equal(backup, before)
        ref_u = 0.9 * ref_u - lr * g
        ref_p += 0.9 * ref_u - lr * g if nesterov else ref_u
        np.testing.assert_allclose(p, ref_p, rtol=rtol(dtype), atol=rtol(dtype))
        np.testing.assert_allclose(u, ref_u, rtol=rtol(dtype), atol=rtol(dtype))


def test_adam_folded_follows_sklearn_form(dtype, threads):
    rng = np.random.default_rng(2)
    p = rng.standard_normal(1000).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ref_p, ref_m, ref_v = p.astype(np.float64), np.zeros(1000), np.zeros(1000)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-3
    for t in range(1, 5):
        g = rng.standard_normal(1000).astype(dtype) * 10.0 ** -t
        before, backup = p.copy(), np.empty_like(p)
        K.adam_folded_step(p, g, m, v, t, lr, b1, b2, eps, backup if t % 2 else None)
        if t % 2:
            np.testing.assert_array_equal(backup, before)
        ref_m = b1 * ref_m + (1 - b1) * g
        ref_v = b2 * ref_v + (1 - b2) * g.astype(np.float64) ** 2
        ref_p += -lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * ref_m / (np.sqrt(ref_v) + eps)
        np.testing.assert_allclose(p, ref_p, rtol=rtol(dtype), atol=rtol(dtype))


def test_adam_folded_differs_from_torch_form_where_eps_matters():
    """eps added to sqrt(v), not to sqrt(v / (1 - b2^t)): on gradients near eps they differ."""
    g = np.full(4, 1e-8)
    p1, p2 = np.zeros(4), np.zeros(4)
    K.adam_folded_step(p1, g, np.zeros(4), np.zeros(4), 1, 1e-3, 0.9, 0.999, 1e-8)
    K.adam_step(p2, g, np.zeros(4), np.zeros(4), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    assert not np.allclose(p1, p2, rtol=1e-3)


def test_update_kernels_refuse_bad_arguments():
    p = np.zeros(4)
    with pytest.raises(ValueError, match="velocity: expected shape"):
        K.velocity_sgd_step(p, p, np.zeros(3), 0.1, 0.9, True)
    with pytest.raises(ValueError, match="step: expected a step count >= 1"):
        K.adam_folded_step(p, p, p.copy(), p.copy(), 0, 1e-3, 0.9, 0.999, 1e-8)
    with pytest.raises(TypeError, match="grads: expected dtype float64"):
        K.add_l2_gradient(p, np.zeros(4, np.float32), 0.1)
    with pytest.raises(ValueError, match=r"ranges: expected 0 <= start <= stop <= 4, got "
                                         r"\[3, 5\] at row 1"):
        K.add_l2_gradient(p, p.copy(), 0.1, np.array([[0, 2], [3, 5]]))
    with pytest.raises(TypeError, match="ranges: expected a C-contiguous int64 array"):
        K.add_l2_gradient(p, p.copy(), 0.1, [[0, 2]])
    with pytest.raises(ValueError, match="backup: expected shape"):
        K.velocity_sgd_step(p, p, p.copy(), 0.1, 0.9, True, np.zeros(5))
    with pytest.raises(TypeError, match="backup: expected a numpy.ndarray"):
        K.adam_folded_step(p, p, p.copy(), p.copy(), 1, 1e-3, 0.9, 0.999, 1e-8, [0.0] * 4)
