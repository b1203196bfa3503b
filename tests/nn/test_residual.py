"""Residual blocks: y = x + f(x) against NumPy (float32/float64, 1 and 2 threads), nested
parameter names and views, fused stages inside, the beta=1 skip gradient, width errors,
gradcheck, a PyTorch residual MLP, save/load, astype, fit and train_step."""
import json

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core as K
from fastbp.nn.stages import FusedDense

DTYPES = ["float32", "float64"]


def tol(dtype):
    if np.dtype(dtype) == np.float32:
        return {"rtol": 1e-4, "atol": 1e-5}
    return {"rtol": 1e-11, "atol": 1e-12}


def rnd(shape, seed, dtype="float64", scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def randomize(net, seed=0, scale=0.5):
    """Random parameters (biases too, so that no ReLU input sits exactly at its kink)."""
    net.params[...] = rnd(net.params.size, seed, net.dtype, scale)
    return net


def residual_mlp(dtype="float64", seed=0, width=8):
    return fb.Sequential(fb.Dense(5, width), fb.ReLU(),
                         fb.Residual(fb.Dense(width, 16), fb.ReLU(), fb.Dense(16, width)),
                         fb.Residual(fb.Dense(width, width), fb.Tanh()),
                         fb.Dense(width, 3), dtype=dtype, seed=seed)


def numpy_forward(net, X):
    """Reference forward of residual_mlp in float64."""
    p = {name: value.astype(np.float64) for name, value, _ in net.named_parameters()}
    h = np.maximum(X @ p["0.weight"].T + p["0.bias"], 0)
    f = np.maximum(h @ p["2.0.weight"].T + p["2.0.bias"], 0) @ p["2.2.weight"].T + p["2.2.bias"]
    h = h + f
    h = h + np.tanh(h @ p["3.0.weight"].T + p["3.0.bias"])
    return h @ p["4.weight"].T + p["4.bias"]


# ---------------------------------------------------------------------------------- kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (300, 130)])
def test_residual_add_kernel(dtype, shape, threads):
    x, f = rnd(shape, 1, dtype), rnd(shape, 2, dtype)
    y = np.empty_like(x)
    K.residual_add(x, f, y)
    np.testing.assert_array_equal(y, x + f)
    K.residual_add(x, f, f)                              # in place
    np.testing.assert_array_equal(f, y)


def test_residual_add_kernel_errors():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"f: expected shape \(3, 4\) like x, got \(4, 3\)"):
        K.residual_add(x, np.ones((4, 3)), x.copy())
    with pytest.raises(TypeError, match="y: expected dtype float64 like x, got float32"):
        K.residual_add(x, x, np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="y: expected a writeable array"):
        frozen = x.copy()
        frozen.flags.writeable = False
        K.residual_add(x, x, frozen)


# ----------------------------------------------------------------------- forward, backward
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,width", [(1, 8), (9, 8), (300, 130)])   # 300 x 130: parallel
def test_forward_matches_numpy(dtype, n, width, threads):
    net = randomize(residual_mlp(dtype, width=width))
    X = rnd((n, 5), 1)
    expected = numpy_forward(net, X)
    bound = tol(dtype)
    if np.dtype(dtype) == np.float32:
        # rounding of sums of `width` products whose size is about the outputs': an element
        # near 0 in an output of size 100 may be off by eps * sqrt(width) * 100 in any BLAS
        scale = np.abs(expected).max()
        bound["atol"] = max(bound["atol"], 4 * np.finfo(np.float32).eps * np.sqrt(width) * scale)
    np.testing.assert_allclose(net.predict(X), expected, **bound)
    np.testing.assert_allclose(net.forward(X, training=True), expected, **bound)


@pytest.mark.parametrize("dtype", DTYPES)
def test_input_gradient_matches_finite_differences_of_numpy(dtype):
    """dX of a network whose first layer is a residual block: skip path plus block path."""
    net = randomize(fb.Sequential(fb.Residual(fb.Dense(4, 6), fb.Tanh(), fb.Dense(6, 4)),
                                  fb.Dense(4, 2), dtype=dtype))
    p = {name: value.astype(np.float64) for name, value, _ in net.named_parameters()}

    def f(X):
        h = X + np.tanh(X @ p["0.0.weight"].T + p["0.0.bias"]) @ p["0.2.weight"].T \
            + p["0.2.bias"]
        return h @ p["1.weight"].T + p["1.bias"]

    X, dout = rnd((3, 4), 2), rnd((3, 2), 3)
    net.forward(X, training=True)
    dX = net.backward(dout)
    numeric = np.empty_like(X)
    for idx in np.ndindex(*X.shape):
        e = np.zeros_like(X)
        e[idx] = 1e-6
        numeric[idx] = np.sum((f(X + e) - f(X - e)) * dout) / 2e-6
    np.testing.assert_allclose(dX, numeric, rtol=1e-4 if dtype == "float32" else 1e-7,
                               atol=1e-4 if dtype == "float32" else 1e-8)


def test_backward_fused_accumulates_into_a_given_buffer():
    """Dense.backward_fused(dX_into=B) adds dZ W to B (beta=1) and returns B itself."""
    net = randomize(fb.Sequential(fb.Dense(3, 4), fb.Sigmoid(), dtype="float64"))
    dense = net.layers[0]
    X, dA, held = rnd((5, 3), 1), rnd((5, 4), 2), rnd((5, 3), 3)
    sigmoid = net.layers[1]
    A = dense.forward_fused(X, sigmoid).copy()
    into = held.copy()
    out = dense.backward_fused(dA, sigmoid, True, False, dX_into=into)
    assert out is into
    np.testing.assert_allclose(into, held + (dA * A * (1 - A)) @ dense.params["weight"],
                               **tol("float64"))


def test_input_grad_false_gives_the_same_parameter_gradients():
    net = randomize(fb.Sequential(fb.Residual(fb.Dense(4, 4), fb.ReLU()), fb.Dense(4, 2)))
    X, dout = rnd((6, 4), 1), rnd((6, 2), 2)
    net.forward(X, training=True)
    assert net.backward(dout, input_grad=False) is None
    without = net.grads.copy()
    net.backward(dout)
    np.testing.assert_array_equal(net.grads, without)
    net.backward(dout, accumulate=True)
    np.testing.assert_allclose(net.grads, 2 * without, **tol("float64"))


# ------------------------------------------------------------------- parameters and widths
def test_nested_names_views_and_fused_stages():
    net = residual_mlp()
    names = [name for name, _, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.0.weight", "2.0.bias", "2.2.weight", "2.2.bias",
                     "3.0.weight", "3.0.bias", "4.weight", "4.bias"]
    assert [name for name, _, _ in net.parameter_slices()] == names
    block = net.layers[2]
    for (_, value, grad), (_, region, shape) in zip(net.named_parameters(),
                                                    net.parameter_slices(), strict=True):
        assert value.shape == shape
        assert np.shares_memory(value, net.params[region])
        assert np.shares_memory(grad, net.grads[region])
    assert block.layers[0].params["weight"] is block.params["0.weight"]
    assert [type(stage) for stage in block._stages] == [FusedDense, fb.Dense]
    assert [type(stage) for stage in net.layers[3]._stages] == [FusedDense]
    assert net.params.size == 5 * 8 + 8 + (8 * 16 + 16) + (16 * 8 + 8) + (8 * 8 + 8) + 8 * 3 + 3


def test_inner_layers_are_initialised_from_the_network_generator():
    a, b, c = residual_mlp(seed=1), residual_mlp(seed=1), residual_mlp(seed=2)
    assert np.array_equal(a.params, b.params) and not np.array_equal(a.params, c.params)
    inner = a.layers[2].layers[0].params["weight"]
    assert inner.std() > 0.1 and not a.layers[2].layers[0].params["bias"].any()


def test_nested_residual_blocks():
    net = randomize(fb.Sequential(
        fb.Dense(3, 4),
        fb.Residual(fb.Residual(fb.Dense(4, 4), fb.Sigmoid()), fb.BatchNorm(4), fb.Dense(4, 4)),
        fb.Dense(4, 2), dtype="float64", seed=2))
    assert [name for name, _, _ in net.named_parameters()][2:8] == [
        "1.0.0.weight", "1.0.0.bias", "1.1.weight", "1.1.bias", "1.2.weight", "1.2.bias"]
    assert [name for name, _ in net.named_buffers()] == ["1.1.running_mean", "1.1.running_var"]
    X, y = rnd((7, 3), 1), rnd((7, 2), 2)
    fb.gradcheck(net, "mse", X, y)


def test_width_errors_name_both_widths():
    with pytest.raises(ValueError, match="takes width 4 and outputs width 8"):
        fb.Residual(fb.Dense(4, 8))
    with pytest.raises(ValueError, match=r"Residual layer 1 \(Dense\): expected input width 5, "
                                         r"but the layer before it outputs width 8"):
        fb.Residual(fb.Dense(4, 8), fb.Dense(5, 4))
    with pytest.raises(ValueError, match=r"layer 1 \(Residual\): expected input width 4, but "
                                         r"the layer before it outputs width 3"):
        fb.Sequential(fb.Dense(2, 3), fb.Residual(fb.Dense(4, 4)))
    with pytest.raises(ValueError, match=r"layer 1 \(Residual\): expected input width 5, but "
                                         r"the layer before it outputs width 3"):
        fb.Sequential(fb.Dense(2, 3), fb.Residual(fb.ReLU(), fb.BatchNorm(5)))
    with pytest.raises(ValueError, match="expected at least one layer in the Residual block"):
        fb.Residual()
    with pytest.raises(TypeError, match=r"Residual layers\[1\]: expected a fastbp Layer, "
                                        r"got str"):
        fb.Residual(fb.ReLU(), "relu")
    relu = fb.ReLU()
    with pytest.raises(ValueError, match="appears twice"):
        fb.Residual(relu, relu)
    width_free = fb.Sequential(fb.Dense(2, 3), fb.Residual(fb.Tanh(), fb.Dropout(0.1)))
    assert width_free.out_features == 3


# -------------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("block", [
    lambda: fb.Residual(fb.Dense(6, 6), fb.ReLU(), fb.BatchNorm(6)),       # starts with Dense
    lambda: fb.Residual(fb.BatchNorm(6), fb.Dense(6, 6), fb.Tanh()),       # with BatchNorm
    lambda: fb.Residual(fb.Sigmoid(), fb.Dense(6, 9), fb.LeakyReLU(0.1), fb.Dense(9, 6)),
    lambda: fb.Residual(fb.Dense(6, 6, bias=False)),                         # plain Dense
    lambda: fb.Residual(fb.Dropout(0.5).freeze_mask(), fb.Dense(6, 6), fb.ReLU()),
    lambda: fb.Residual(fb.Dense(6, 6), fb.GELU(), fb.Dense(6, 6), fb.Softplus()),
], ids=["dense_relu_bn", "bn_dense_tanh", "act_first", "plain_dense", "dropout_first",
        "dense_gelu_dense_softplus"])
def test_gradcheck_blocks(block):
    net = randomize(fb.Sequential(fb.Dense(4, 6), fb.Tanh(), block(), block(), fb.Dense(6, 3),
                                  dtype="float64", seed=4))
    X, y = rnd((8, 4), 1), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    report = fb.gradcheck(net, "cross_entropy", X, y)
    assert report.passed


def test_gradcheck_of_a_deep_residual_network_with_every_new_layer():
    net = randomize(fb.Sequential(
        fb.Dense(5, 8), fb.BatchNorm(8), fb.ReLU(),
        fb.Residual(fb.Dense(8, 8), fb.ReLU(), fb.BatchNorm(8)),
        fb.Dropout(0.2).freeze_mask(),
        fb.Residual(fb.Dense(8, 12), fb.Tanh(), fb.Dropout(0.3).freeze_mask(), fb.Dense(12, 8)),
        fb.Residual(fb.BatchNorm(8), fb.Dense(8, 8), fb.Sigmoid()),
        fb.Dense(8, 3), dtype="float64", seed=5), seed=6)
    X = rnd((10, 5), 1)
    report = fb.gradcheck(net, "cross_entropy", X, np.arange(10) % 3)
    assert len(report.results) == 18


# ----------------------------------------------------------------------------------- torch
def torch_residual_mlp(torch, net, tdtype):
    class TorchResidual(torch.nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.ReLU(),
        TorchResidual(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8)),
        TorchResidual(torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 8), torch.nn.Tanh()),
        torch.nn.Linear(8, 3)).to(tdtype)
    tparams = dict(model.named_parameters())
    assert [name for name, _, _ in net.named_parameters()] == list(tparams)
    with torch.no_grad():
        for name, value, _ in net.named_parameters():
            tparams[name].copy_(torch.from_numpy(value.copy()))
    return model, tparams


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_a_torch_residual_mlp(dtype):
    torch = pytest.importorskip("torch")
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    net = randomize(fb.Sequential(
        fb.Dense(5, 8), fb.ReLU(),
        fb.Residual(fb.Dense(8, 16), fb.ReLU(), fb.Dense(16, 8)),
        fb.Residual(fb.BatchNorm(8), fb.Dense(8, 8), fb.Tanh()),
        fb.Dense(8, 3), dtype=dtype, seed=7), seed=8)
    model, tparams = torch_residual_mlp(torch, net, tdtype)
    close = tol(dtype)
    opt = fb.Adam(net, lr=0.01)
    topt = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(4):
        X = rnd((12, 5), 10 + step, dtype)
        y = np.random.default_rng(step).integers(0, 3, 12)
        loss = net.train_step(X, y, "cross_entropy", opt)
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(model(torch.from_numpy(X)),
                                                  torch.from_numpy(y))
        tloss.backward()
        assert loss == pytest.approx(tloss.item(), rel=close["rtol"])
        for name, _, grad in net.named_parameters():
            np.testing.assert_allclose(grad, tparams[name].grad.numpy(), **close, err_msg=name)
        topt.step()
    for name, value, _ in net.named_parameters():
        np.testing.assert_allclose(value, tparams[name].detach().numpy(), **close, err_msg=name)
    tbn = model[3][0]
    np.testing.assert_allclose(net.named_buffers()[0][1], tbn.running_mean.numpy(), **close)
    np.testing.assert_allclose(net.named_buffers()[1][1], tbn.running_var.numpy(), **close)
    model.eval()
    X = rnd((6, 5), 99, dtype)
    with torch.no_grad():
        np.testing.assert_allclose(net.predict(X), model(torch.from_numpy(X)).numpy(), **close)


@pytest.mark.parametrize("dtype", DTYPES)
def test_input_gradient_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    net = randomize(fb.Sequential(
        fb.Residual(fb.Dense(5, 16), fb.ReLU(), fb.Dense(16, 5)),
        fb.Residual(fb.BatchNorm(5), fb.Dense(5, 5), fb.Tanh()), dtype=dtype, seed=9))

    class TorchResidual(torch.nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    model = torch.nn.Sequential(
        TorchResidual(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5)),
        TorchResidual(torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 5), torch.nn.Tanh()),
    ).to(tdtype)
    tparams = dict(model.named_parameters())
    with torch.no_grad():
        for name, value, _ in net.named_parameters():
            tparams[name].copy_(torch.from_numpy(value.copy()))
    X, dout = rnd((9, 5), 1, dtype), rnd((9, 5), 2, dtype)
    out = net.forward(X, training=True)
    dX = net.backward(dout)
    tX = torch.from_numpy(X).requires_grad_(True)
    tout = model(tX)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), **tol(dtype))
    np.testing.assert_allclose(dX, tX.grad.numpy(), **tol(dtype))


# ---------------------------------------------------------------- save, load, astype, fit
@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trip(tmp_path, dtype):
    net = fb.Sequential(fb.Dense(5, 8), fb.ReLU(),
                        fb.Residual(fb.Dense(8, 8), fb.ReLU(), fb.BatchNorm(8),
                                    fb.Residual(fb.Tanh(), fb.Dense(8, 8))),
                        fb.Dense(8, 3), dtype=dtype, seed=3)
    X, y = rnd((40, 5), 0), np.arange(40) % 3
    net.fit(X, y, epochs=2, batch_size=8, verbose=0)
    net.save(tmp_path / "r.npz", include_optimizer=True)
    loaded = fb.load(tmp_path / "r.npz")
    dense = fb.Dense(8, 8).config()
    assert loaded.layers[2].config() == {"type": "Residual", "layers": [
        dense, {"type": "ReLU"},
        {"type": "BatchNorm", "num_features": 8, "momentum": 0.1, "eps": 1e-5},
        {"type": "Residual", "layers": [{"type": "Tanh"}, dense]}]}
    assert np.array_equal(loaded.params, net.params)
    assert np.array_equal(loaded.buffers, net.buffers)
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert repr(loaded) == repr(net)
    net.fit(X, y, optimizer=net.optimizer, epochs=1, batch_size=8, seed=1, verbose=0)
    loaded.fit(X, y, optimizer=loaded.optimizer, epochs=1, batch_size=8, seed=1, verbose=0)
    assert np.array_equal(loaded.params, net.params)   # resumed from the same state


def test_malformed_residual_config_is_a_clear_error(tmp_path):
    net = residual_mlp()
    net.save(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as f:
        arrays = dict(f)
    description = json.loads(str(arrays["fastbp"]))
    del description["layers"][2]["layers"]
    arrays["fastbp"] = np.array(json.dumps(description))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="malformed architecture"):
        fb.load(tmp_path / "bad.npz")


def test_astype_rebinds_nested_views():
    net = randomize(residual_mlp("float32"))
    twin = net.astype("float64")
    inner = twin.layers[2].layers[2]
    assert inner.params["weight"].dtype == np.float64
    assert np.shares_memory(inner.params["weight"], twin.params)
    assert np.shares_memory(twin.layers[2].params["2.weight"], twin.params)
    assert not np.shares_memory(inner.params["weight"], net.params)
    X = rnd((4, 5), 1)
    np.testing.assert_allclose(twin.predict(X), net.predict(X), rtol=1e-5, atol=1e-5)
    fb.gradcheck(randomize(residual_mlp("float32"), seed=2), "cross_entropy", X,
                 np.array([0, 1, 2, 0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_and_train_step_learn(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    net = residual_mlp(dtype, seed=1)
    hist = net.fit(X, y, lr=0.01, epochs=25, batch_size=32, verbose=0)
    assert hist["loss"][-1] < 0.6 * hist["loss"][0]
    assert net.evaluate(X, y)["accuracy"] > 0.8
    again = residual_mlp(dtype, seed=1)
    again.fit(X, y, lr=0.01, epochs=25, batch_size=32, verbose=0)
    assert np.array_equal(again.params, net.params)
    losses = [net.train_step(X[:32], y[:32], optimizer="sgd") for _ in range(5)]
    assert losses[-1] < losses[0]


def test_fit_options_with_every_new_layer():
    """Monitoring, a standardizer, clipping, a schedule and callbacks run on the layer path."""
    rng = np.random.default_rng(0)
    X, y = 5.0 + 3.0 * rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
    net = fb.Sequential(fb.Dense(5, 8), fb.BatchNorm(8), fb.ReLU(), fb.Dropout(0.2),
                        fb.Residual(fb.Dense(8, 8), fb.ReLU()), fb.Dense(8, 3), seed=1)
    net.standardizer = fb.Standardizer().fit(X)
    hist = net.fit(X, y, epochs=3, batch_size=16, verbose=0, monitor=True, clip_value=1.0,
                   lr_schedule=fb.StepDecay(1), validation_data=(X, y),
                   callbacks=[fb.EarlyStopping(patience=5)])
    assert hist.layer_names == ["0:Dense", "1:BatchNorm", "4:Residual", "5:Dense"]
    assert hist["grad_norm"].shape == (3, 4) and np.isfinite(hist["grad_norm"]).all()
    assert np.isfinite(hist["val_loss"]).all()
