"""Losses written with fastbp.autograd (Loss.from_function, fit(loss=fn)): the network runs its
own kernels; the loss and d(loss)/d(output) come from the tape."""
import numpy as np
import pytest

import fastbp as fb
from fastbp import autograd as ag
from fastbp.train.step import LayerStep, make_step


def cross_entropy(out, y):
    return -ag.take_along_axis(out.log_softmax(axis=1), y[:, None], axis=1).mean()


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)), rng.integers(0, 3, n)


def test_cross_entropy_by_log_softmax_equals_the_builtin():
    X, y = data()
    out = np.random.default_rng(1).standard_normal((24, 3)) * 3
    value, dout = fb.Loss.from_function(cross_entropy)(out, y)
    ref_value, ref_dout = fb.SoftmaxCrossEntropy()(out, y)
    assert abs(value - ref_value) <= 1e-12
    np.testing.assert_allclose(dout, ref_dout, rtol=0, atol=1e-12)

    nets = [fb.mlp([5, 7, 3], activation="tanh", dtype="float64", seed=2) for _ in range(2)]
    for net, loss in zip(nets, [cross_entropy, fb.SoftmaxCrossEntropy()], strict=True):
        loss = fb.losses.get_loss(loss)
        _, d = loss(net.forward(X), y)
        net.backward(d)
    np.testing.assert_allclose(nets[0].grads, nets[1].grads, rtol=0, atol=1e-12)


def test_a_ten_step_adam_trajectory_equals_the_builtin():
    X, y = data()
    nets = [fb.mlp([5, 7, 3], activation="relu", dtype="float64", seed=3) for _ in range(2)]
    histories = [net.fit(X, y, loss=loss, optimizer="adam", lr=1e-2, epochs=5, batch_size=12,
                         verbose=0)
                 for net, loss in zip(nets, [cross_entropy, "cross_entropy"], strict=True)]
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=0, atol=1e-12)


def test_a_function_loss_trains_layer_by_layer_and_passes_gradcheck():
    X, y = data()
    net = fb.mlp([5, 6, 3], dtype="float64", seed=4)
    assert isinstance(make_step(net, fb.Loss.from_function(cross_entropy), fb.Adam(net), True),
                      LayerStep)
    assert fb.gradcheck(net, cross_entropy, X[:6], y[:6]).passed
    Xr = np.random.default_rng(5).standard_normal((24, 3))
    mse = fb.Loss.from_function(lambda out, t: ((out - t) ** 2).mean())
    assert fb.gradcheck(net, mse, X[:6], Xr[:6]).passed
    np.testing.assert_allclose(mse(net.predict(X), Xr)[0], fb.MSE()(net.predict(X), Xr)[0],
                               rtol=1e-14)


def test_float_targets_and_train_step():
    X, _ = data()
    t = np.random.default_rng(6).standard_normal(24)
    net = fb.mlp([5, 4, 1], dtype="float32", seed=7)
    loss = fb.Loss.from_function(lambda out, y: ((out - y) ** 2).mean())
    assert loss.prepare_targets(t, 24, 1, np.dtype(np.float32)).shape == (24, 1)
    first = net.train_step(X, t[:, None], loss=loss)
    for _ in range(20):
        last = net.train_step(X, t[:, None], loss=loss)
    assert last < first
    assert net.evaluate(X, t, loss=loss)["loss"] == pytest.approx(last, rel=0.2)


def test_a_network_trained_with_a_function_loss_saves_without_it(tmp_path):
    X, y = data()
    net = fb.mlp([5, 4, 3], seed=8)
    net.fit(X, y, loss=cross_entropy, epochs=1, verbose=0)
    net.save(tmp_path / "m.npz")
    loaded = fb.load(tmp_path / "m.npz")
    assert loaded.loss is None
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_bad_function_losses_and_targets_are_named():
    X, y = data()
    with pytest.raises(TypeError, match="fn: expected a function"):
        fb.Loss.from_function(3)
    net = fb.mlp([5, 4, 3], seed=9)
    with pytest.raises(TypeError, match="loss function <lambda>: expected it to return a Tensor"):
        net.fit(X, y, loss=lambda out, y: 1.0, epochs=1, verbose=0)
    with pytest.raises(TypeError, match=r"got shape \(24, 3\)"):
        net.fit(X, y, loss=lambda out, y: out * 2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="y: expected finite values"):
        net.fit(X, np.full(24, np.nan), loss=cross_entropy, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"y: expected 24 targets"):
        net.fit(X, y[:5], loss=cross_entropy, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="y: expected integer labels of shape"):
        net.fit(X, np.ones((24, 2), dtype=int), loss=cross_entropy, epochs=1, verbose=0)
    with pytest.raises(TypeError, match="y: expected a real numeric array"):
        net.fit(X, y.astype(complex), loss=cross_entropy, epochs=1, verbose=0)
    with pytest.raises(FloatingPointError, match="the loss became"):
        net.fit(X, y, loss=lambda out, y: out.sum() * np.inf, epochs=1, verbose=0)
