"""Losses written with fastbp.autograd (Loss.from_function, fit(loss=fn)): the network runs its
own kernels; the loss and d(loss)/d(output) come from the tape."""
import numpy as np
import pytest

import fastbp as fb
from fastbp import autograd as ag
from fastbp.train.step import CompiledStep, LayerStep, make_step


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_compiled_step_runs_a_function_loss_as_the_layer_step_does(dtype):
    """The loss is called from inside the one C call of the compiled step; its steps equal
    those of the layer-by-layer path, on given batches and on batches gathered by fit."""
    X, y = data()
    X = X.astype(dtype)
    loss = fb.Loss.from_function(cross_entropy)
    nets = [fb.mlp([5, 6, 3], dtype=dtype, seed=4) for _ in range(2)]
    steps = [make_step(nets[0], loss, fb.Adam(nets[0], lr=1e-2), True),
             LayerStep(nets[1], loss, fb.Adam(nets[1], lr=1e-2))]
    assert isinstance(steps[0], CompiledStep)
    order = np.random.default_rng(6).permutation(24)
    targets = loss.prepare_targets(y, 24, 3, nets[0].dtype)
    for start in range(0, 24, 8):
        values = [step.step(X[:8], y[:8]) for step in steps]
        values += [step.gathered(X, targets, order, start, start + 8) for step in steps]
        np.testing.assert_allclose(values[0::2], values[1::2], rtol=1e-6 if dtype == "float32"
                                   else 1e-13)
    np.testing.assert_allclose(nets[0].params, nets[1].params,
                               rtol=0, atol=1e-6 if dtype == "float32" else 1e-13)


def test_an_error_in_the_loss_function_reaches_the_caller_and_changes_nothing():
    X, y = data()
    net = fb.mlp([5, 6, 3], dtype="float64", seed=4)
    before = net.params.copy()

    def broken(out, y):
        raise ZeroDivisionError("inside the loss")
    with pytest.raises(ZeroDivisionError, match="inside the loss"):
        net.fit(X, y, loss=broken, epochs=1, batch_size=8, verbose=0)
    with pytest.raises(TypeError, match="expected it to return a Tensor of one element"):
        net.train_step(X, y, lambda out, y: out.sum(axis=1), fb.Adam(net))
    np.testing.assert_array_equal(net.params, before)
    net.fit(X, y, loss=cross_entropy, epochs=1, batch_size=8, verbose=0)   # and it goes on


def test_a_function_loss_passes_gradcheck():
    X, y = data()
    net = fb.mlp([5, 6, 3], dtype="float64", seed=4)
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
