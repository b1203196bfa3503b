"""Gradient clipping by value: the C kernel against NumPy (and PyTorch), and fit(clip_value)."""

import numpy as np
import pytest
from thread_helpers import num_threads

import fastbp as fb
from fastbp import _core as K

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 1023, 40000]


def ref_clip_value(g, c):
    return np.clip(g.astype(np.float64), -c, c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("c", [1e-3, 0.5, 3.0])
def test_clip_grad_value_matches_numpy(dtype, n, threads, c):
    rng = np.random.default_rng(n)
    g = (2.0 * rng.standard_normal(n)).astype(dtype)
    g[0] = c                       # exactly at the bound stays
    expected = ref_clip_value(g, dtype(c))
    with num_threads(threads):
        K.clip_grad_value(g, c)
    assert g.dtype == dtype
    np.testing.assert_array_equal(g, expected.astype(dtype))
    assert np.abs(g).max() <= dtype(c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_value_keeps_nan_and_clamps_infinities(dtype):
    g = np.array([np.nan, np.inf, -np.inf, 0.25, -0.25], dtype=dtype)
    K.clip_grad_value(g, 0.5)
    np.testing.assert_array_equal(g, np.array([np.nan, 0.5, -0.5, 0.25, -0.25], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_value_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    g = (3.0 * rng.standard_normal(1000)).astype(dtype)
    param = torch.nn.Parameter(torch.zeros(1000, dtype=getattr(torch, np.dtype(dtype).name)))
    param.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_value_([param], 0.7)
    K.clip_grad_value(g, 0.7)
    np.testing.assert_array_equal(g, param.grad.numpy())


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_clip_grad_value_refuses_a_bad_bound(bad):
    with pytest.raises(ValueError, match="clip_value"):
        K.clip_grad_value(np.zeros(3), bad)


def test_clip_grad_value_refuses_bad_arrays():
    with pytest.raises(TypeError, match="grads"):
        K.clip_grad_value([1.0, 2.0], 1.0)
    with pytest.raises(TypeError, match="grads"):
        K.clip_grad_value(np.zeros(3, dtype=np.int64), 1.0)
    with pytest.raises(ValueError, match="grads"):
        K.clip_grad_value(np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.clip_grad_value(np.zeros(6)[::2], 1.0)
    readonly = np.zeros(3)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        K.clip_grad_value(readonly, 1.0)


# ------------------------------------------------------------------------------------- fit
def regression(n=16, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, 5.0 * rng.standard_normal((n, k))


def full_gradient(net, X, Y):
    value, dout = fb.MSE()(net.forward(X), Y)
    net.backward(dout)
    return net.grads.copy()


def test_fit_clip_value_is_the_clamped_sgd_step():
    X, Y = regression()
    net = fb.mlp([3, 8, 2], activation="tanh", dtype="float64", seed=1)
    g = full_gradient(net, X, Y)
    clip, lr = 0.05, 0.1
    assert (np.abs(g) > clip).sum() > 5            # clipping really happens
    before = net.params.copy()
    net.fit(X, Y, loss="mse", optimizer="sgd", lr=lr, epochs=1, batch_size=16, clip_value=clip,
            verbose=0)
    np.testing.assert_allclose(net.params - before, -lr * np.clip(g, -clip, clip), rtol=1e-12,
                               atol=1e-15)


def test_fit_clip_value_then_clip_norm():
    X, Y = regression(seed=2)
    net = fb.mlp([3, 8, 2], activation="tanh", dtype="float64", seed=2)
    g = np.clip(full_gradient(net, X, Y), -0.2, 0.2)
    clip_norm, lr = 0.1, 0.5
    assert np.linalg.norm(g) > clip_norm
    before = net.params.copy()
    net.fit(X, Y, loss="mse", optimizer="sgd", lr=lr, epochs=1, batch_size=16, clip_value=0.2,
            clip_norm=clip_norm, verbose=0)
    expected = -lr * g * clip_norm / (np.linalg.norm(g) + 1e-6)
    np.testing.assert_allclose(net.params - before, expected, rtol=1e-9, atol=1e-15)


def test_fit_large_clip_value_changes_nothing():
    X, Y = regression(seed=3)
    a = fb.mlp([3, 8, 2], seed=3)
    b = fb.mlp([3, 8, 2], seed=3)
    a.fit(X, Y, loss="mse", epochs=2, batch_size=4, verbose=0)
    b.fit(X, Y, loss="mse", epochs=2, batch_size=4, verbose=0, clip_value=1e9)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1"])
def test_fit_clip_value_validated(bad):
    X, Y = regression()
    with pytest.raises(ValueError, match="clip_value"):
        fb.mlp([3, 4, 2]).fit(X, Y, loss="mse", epochs=1, clip_value=bad, verbose=0)
