"""BatchNorm: kernels against NumPy (float32/float64, 1 and 2 threads), training and evaluation
modes, running statistics, buffers (saved, loaded, converted, never optimized), gradcheck,
PyTorch's BatchNorm1d, and bad arguments."""
import numpy as np
import pytest
from thread_helpers import num_threads

import fastbp as fb
from fastbp import _core as K

DTYPES = ["float32", "float64"]
SHAPES = [(2, 1), (7, 5), (33, 70), (300, 130)]      # one column block, several, parallel


def tol(dtype):
    if np.dtype(dtype) == np.float32:
        return {"rtol": 2e-5, "atol": 2e-5}
    return {"rtol": 1e-11, "atol": 1e-12}


def rnd(shape, seed, dtype="float64", scale=1.0, shift=0.0):
    values = shift + scale * np.random.default_rng(seed).standard_normal(shape)
    return np.ascontiguousarray(values.astype(dtype))


# ------------------------------------------------------------------------ NumPy references
def ref_forward(X, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """(Y, mean, invstd, new running_mean, new running_var), all in float64."""
    X = X.astype(np.float64)
    rm, rv = running_mean.astype(np.float64), running_var.astype(np.float64)
    if training:
        mean, var = X.mean(axis=0), X.var(axis=0)
        n = X.shape[0]
        rm = (1 - momentum) * rm + momentum * mean
        rv = (1 - momentum) * rv + momentum * var * n / (n - 1)
    else:
        mean, var = rm, rv
    invstd = 1.0 / np.sqrt(var + eps)
    Y = gamma.astype(np.float64) * (X - mean) * invstd + beta.astype(np.float64)
    return Y, mean, invstd, rm, rv


def ref_backward(X, dY, gamma, eps=1e-5):
    """(dX, dgamma, dbeta) of the training forward, written the long way round: through
    xhat, var and mean by the chain rule, not with the compact formula the kernel uses."""
    X, dY, gamma = X.astype(np.float64), dY.astype(np.float64), gamma.astype(np.float64)
    n = X.shape[0]
    mean, var = X.mean(axis=0), X.var(axis=0)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (X - mean) * invstd
    dxhat = dY * gamma
    dvar = np.sum(dxhat * (X - mean), axis=0) * -0.5 * invstd ** 3
    dmean = -np.sum(dxhat * invstd, axis=0) + dvar * np.mean(-2.0 * (X - mean), axis=0)
    dX = dxhat * invstd + dvar * 2.0 * (X - mean) / n + dmean / n
    return dX, np.sum(dY * xhat, axis=0), np.sum(dY, axis=0)


def kernel_arrays(n, d, dtype, seed=0):
    X = rnd((n, d), seed, dtype, scale=2.0, shift=0.5)
    gamma, beta = rnd(d, seed + 1, dtype), rnd(d, seed + 2, dtype)
    rm, rv = rnd(d, seed + 3, dtype), np.abs(rnd(d, seed + 4, dtype)) + 0.5
    return X, gamma, beta, rm, rv


# ---------------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_forward_kernel_matches_numpy(dtype, n, d, training, threads):
    X, gamma, beta, rm, rv = kernel_arrays(n, d, dtype)
    Y_ref, mean_ref, invstd_ref, rm_ref, rv_ref = ref_forward(X, gamma, beta, rm, rv, training,
                                                              momentum=0.3, eps=1e-3)
    mean, invstd, Y = np.empty(d, dtype), np.empty(d, dtype), np.empty((n, d), dtype)
    K.batchnorm_forward(X, gamma, beta, rm, rv, mean, invstd, Y, training, 0.3, 1e-3)
    np.testing.assert_allclose(Y, Y_ref, **tol(dtype))
    np.testing.assert_allclose(mean, mean_ref, **tol(dtype))
    np.testing.assert_allclose(invstd, invstd_ref, **tol(dtype))
    np.testing.assert_allclose(rm, rm_ref, **tol(dtype))
    np.testing.assert_allclose(rv, rv_ref, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("accumulate", [False, True], ids=["write", "accumulate"])
def test_backward_kernel_matches_numpy(dtype, n, d, accumulate, threads):
    X, gamma, beta, rm, rv = kernel_arrays(n, d, dtype, seed=10)
    dY = rnd((n, d), 20, dtype)
    mean, invstd, Y = np.empty(d, dtype), np.empty(d, dtype), np.empty((n, d), dtype)
    K.batchnorm_forward(X, gamma, beta, rm, rv, mean, invstd, Y, True, 0.1, 1e-5)
    dgamma, dbeta = rnd(d, 30, dtype), rnd(d, 31, dtype)
    before = (dgamma.astype(np.float64), dbeta.astype(np.float64))
    work, dX = np.empty((2, d), dtype), np.empty((n, d), dtype)
    K.batchnorm_backward(X, dY, gamma, mean, invstd, dgamma, dbeta, work, dX, accumulate)
    dX_ref, dgamma_ref, dbeta_ref = ref_backward(X, dY, gamma)
    if accumulate:
        dgamma_ref, dbeta_ref = dgamma_ref + before[0], dbeta_ref + before[1]
    scale = np.abs(dY * gamma * invstd).max()         # the size of the terms that cancel in dX
    np.testing.assert_allclose(dX, dX_ref, rtol=tol(dtype)["rtol"] * 10,
                               atol=tol(dtype)["atol"] * 10 * scale)
    np.testing.assert_allclose(dgamma, dgamma_ref, rtol=tol(dtype)["rtol"],
                               atol=tol(dtype)["atol"] * n)
    np.testing.assert_allclose(dbeta, dbeta_ref, rtol=tol(dtype)["rtol"],
                               atol=tol(dtype)["atol"] * n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_kernel_without_input_gradient(dtype):
    X, gamma, beta, rm, rv = kernel_arrays(9, 4, dtype)
    dY = rnd((9, 4), 1, dtype)
    mean, invstd, Y = np.empty(4, dtype), np.empty(4, dtype), np.empty((9, 4), dtype)
    K.batchnorm_forward(X, gamma, beta, rm, rv, mean, invstd, Y, True, 0.1, 1e-5)
    dgamma, dbeta, work = np.empty(4, dtype), np.empty(4, dtype), np.empty((2, 4), dtype)
    K.batchnorm_backward(X, dY, gamma, mean, invstd, dgamma, dbeta, work, None)
    _, dgamma_ref, dbeta_ref = ref_backward(X, dY, gamma)
    np.testing.assert_allclose(dgamma, dgamma_ref, **tol(dtype))
    np.testing.assert_allclose(dbeta, dbeta_ref, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_same_bits_for_any_thread_count(dtype):
    """Column sums run in row order in double: statistics and gradients do not depend on the
    number of threads."""
    n, d = 700, 100                                   # several column blocks
    results = []
    for threads in (1, 2):
        with num_threads(threads):
            X, gamma, beta, rm, rv = kernel_arrays(n, d, dtype, seed=5)
            mean, invstd, Y = np.empty(d, dtype), np.empty(d, dtype), np.empty((n, d), dtype)
            K.batchnorm_forward(X, gamma, beta, rm, rv, mean, invstd, Y, True, 0.1, 1e-5)
            dg, db, work, dX = (np.empty(d, dtype), np.empty(d, dtype),
                                np.empty((2, d), dtype), np.empty((n, d), dtype))
            K.batchnorm_backward(X, rnd((n, d), 6, dtype), gamma, mean, invstd, dg, db, work, dX)
            results.append((Y, mean, invstd, rm, rv, dg, db, dX))
    for one, two in zip(*results, strict=True):
        assert np.array_equal(one, two)


def test_kernel_argument_errors():
    X, gamma, beta, rm, rv = kernel_arrays(4, 3, "float64")
    mean, invstd, Y = np.empty(3), np.empty(3), np.empty((4, 3))
    with pytest.raises(ValueError, match=r"running_var: expected shape \(3,\), got \(2,\)"):
        K.batchnorm_forward(X, gamma, beta, rm, rv[:2], mean, invstd, Y, True)
    with pytest.raises(TypeError, match="invstd: expected dtype float64"):
        K.batchnorm_forward(X, gamma, beta, rm, rv, mean, invstd.astype(np.float32), Y, True)
    with pytest.raises(ValueError, match="X: expected at least 2 rows in training"):
        K.batchnorm_forward(X[:1], gamma, beta, rm, rv, mean, invstd, Y[:1], True)
    with pytest.raises(ValueError, match="momentum: expected a number in"):
        K.batchnorm_forward(X, gamma, beta, rm, rv, mean, invstd, Y, True, 1.5)
    with pytest.raises(ValueError, match="eps: expected a finite number > 0"):
        K.batchnorm_forward(X, gamma, beta, rm, rv, mean, invstd, Y, True, 0.1, 0.0)
    with pytest.raises(ValueError, match="Y: expected shape"):
        K.batchnorm_forward(X, gamma, beta, rm, rv, mean, invstd, np.empty((4, 2)), True)
    with pytest.raises(ValueError, match="running_mean: expected a writeable array"):
        frozen = rm.copy()
        frozen.flags.writeable = False
        K.batchnorm_forward(X, gamma, beta, frozen, rv, mean, invstd, Y, True)
    dg, db = np.empty(3), np.empty(3)
    with pytest.raises(ValueError, match=r"work: expected shape \(2, 3\)"):
        K.batchnorm_backward(X, X, gamma, mean, invstd, dg, db, np.empty((3, 3)), None)
    with pytest.raises(ValueError, match="dX: expected shape"):
        K.batchnorm_backward(X, X, gamma, mean, invstd, dg, db, np.empty((2, 3)),
                             np.empty((4, 4)))
    with pytest.raises(TypeError, match="dY: expected a numpy.ndarray"):
        K.batchnorm_backward(X, X.tolist(), gamma, mean, invstd, dg, db, np.empty((2, 3)), None)


# ------------------------------------------------------------------------------------ layer
def bn_net(dtype="float64", momentum=0.1, eps=1e-5):
    net = fb.Sequential(fb.Dense(4, 6), fb.BatchNorm(6, momentum, eps), fb.ReLU(),
                        fb.Dense(6, 3), dtype=dtype, seed=2)
    bn = net.layers[1]
    bn.params["weight"][...] = rnd(6, 40, dtype, scale=0.5, shift=1.0)
    bn.params["bias"][...] = rnd(6, 41, dtype, scale=0.5)
    return net


def test_parameters_and_buffers_are_views_of_the_flat_arrays():
    net = bn_net()
    bn = net.layers[1]
    assert bn.parameter_shapes() == [("weight", (6,)), ("bias", (6,))]
    assert [name for name, _, _ in net.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    assert [name for name, _ in net.named_buffers()] == ["1.running_mean", "1.running_var"]
    assert net.buffers.shape == (12,)
    for name, view in net.named_buffers():
        assert np.shares_memory(view, net.buffers), name
    assert not any(np.shares_memory(net.buffers, arr) for arr in (net.params, net.grads))
    fresh = fb.Sequential(fb.BatchNorm(3))
    np.testing.assert_array_equal(fresh.params, [1, 1, 1, 0, 0, 0])       # weight 1, bias 0
    np.testing.assert_array_equal(fresh.buffers, [0, 0, 0, 1, 1, 1])      # mean 0, var 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_uses_batch_statistics_and_updates_running_ones(dtype):
    net = fb.Sequential(fb.BatchNorm(5, momentum=0.25), dtype=dtype)
    bn = net.layers[0]
    bn.params["weight"][...] = rnd(5, 1, dtype)
    bn.params["bias"][...] = rnd(5, 2, dtype)
    rm, rv = bn.buffers["running_mean"].copy(), bn.buffers["running_var"].copy()
    for step in range(3):
        X = rnd((8, 5), 10 + step, dtype, scale=3.0, shift=2.0)
        out = net.forward(X, training=True)
        Y_ref, _, _, rm, rv = ref_forward(X, bn.params["weight"], bn.params["bias"], rm, rv,
                                          True, momentum=0.25)
        np.testing.assert_allclose(out, Y_ref, **tol(dtype))
        np.testing.assert_allclose(bn.buffers["running_mean"], rm, **tol(dtype))
        np.testing.assert_allclose(bn.buffers["running_var"], rv, **tol(dtype))
    np.testing.assert_allclose(out.mean(axis=0), bn.params["bias"], **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_evaluation_uses_running_statistics_and_leaves_them(dtype):
    net = bn_net(dtype)
    net.fit(rnd((40, 4), 3), np.arange(40) % 3, epochs=2, batch_size=8, verbose=0)
    bn = net.layers[1]
    buffers = net.buffers.copy()
    X = rnd((5, 4), 4, dtype)
    hidden = net.layers[0].forward(X, training=False).astype(np.float64).copy()
    Y_ref = ref_forward(hidden, bn.params["weight"], bn.params["bias"],
                        bn.buffers["running_mean"], bn.buffers["running_var"], False)[0]
    np.testing.assert_allclose(bn.forward(net.layers[0].forward(X, False), training=False),
                               Y_ref, **tol(dtype))
    single = net.predict(X[:1])                       # one sample is fine in evaluation
    np.testing.assert_allclose(single, net.predict(X)[:1], **tol(dtype))
    net.evaluate(X, np.zeros(5, dtype=int))
    np.testing.assert_array_equal(net.buffers, buffers)
    assert not np.array_equal(buffers[:6], 0)         # the fit moved the running mean


def test_one_sample_in_training_is_a_clear_error():
    net = bn_net()
    with pytest.raises(ValueError, match=r"BatchNorm: expected at least 2 samples per batch in "
                                         r"training .* got input shape \(1, 6\)"):
        net.forward(np.ones((1, 4)), training=True)
    with pytest.raises(ValueError, match="batch_size"):
        net.fit(rnd((9, 4), 0), np.arange(9) % 3, batch_size=4, epochs=1, verbose=0)
    with pytest.raises(RuntimeError, match="call forward"):
        fb.BatchNorm(3).backward(np.ones((2, 3)))


def test_backward_after_evaluation_forward_is_refused():
    net = bn_net()
    net.forward(np.ones((3, 4)), training=True)
    net.layers[1].forward(np.ones((3, 6)), training=False)
    with pytest.raises(RuntimeError, match="forward"):
        net.layers[1].backward(np.ones((3, 6)))


def test_optimizers_never_touch_running_statistics():
    net = bn_net()
    net.forward(rnd((6, 4), 0), training=True)
    buffers = net.buffers.copy()
    net.grads[...] = 1.0
    for opt in (fb.SGD(net, lr=0.1, momentum=0.9, weight_decay=0.1),
                fb.AdamW(net, lr=0.1, weight_decay=0.5)):
        opt.step()
        assert all(buf.shape == net.params.shape for buf in opt.state().values())
    np.testing.assert_array_equal(net.buffers, buffers)


@pytest.mark.parametrize("dtype", DTYPES)
def test_accumulate_adds_this_batch_gradients(dtype):
    net = bn_net(dtype)
    X, dout = rnd((7, 4), 1, dtype), rnd((7, 3), 2, dtype)
    net.forward(X, training=True)
    net.backward(dout)
    once = net.grads.copy()
    net.forward(X, training=True)
    net.backward(dout, accumulate=True)
    np.testing.assert_allclose(net.grads, 2 * once, **tol(dtype))


def test_a_diverging_step_leaves_the_running_statistics():
    """A non-finite loss makes no update: neither to the parameters nor to the buffers."""
    net = bn_net("float64")
    X = rnd((16, 4), 0)
    net.forward(X, training=True)
    buffers = net.buffers.copy()
    with pytest.raises(FloatingPointError, match="no update was made"):
        net.train_step(X, np.full((16, 3), 1e200), loss="mse")      # (1e200)^2 overflows
    np.testing.assert_array_equal(net.buffers, buffers)
    with pytest.raises(FloatingPointError, match="training stopped"):
        net.fit(X, np.full((16, 3), 1e200), loss="mse", batch_size=8, verbose=0)
    np.testing.assert_array_equal(net.buffers, buffers)


# -------------------------------------------------------------------------------- gradcheck
def test_gradcheck_alone_and_in_a_deep_network():
    alone = fb.Sequential(fb.BatchNorm(5, eps=1e-3), dtype="float64", seed=1)
    alone.params[...] = rnd(10, 0)
    X = rnd((6, 5), 1, scale=2.0, shift=1.0)
    fb.gradcheck(alone, "mse", X, rnd((6, 5), 2))
    deep = fb.Sequential(fb.Dense(5, 8), fb.BatchNorm(8), fb.Tanh(), fb.Dense(8, 8),
                         fb.BatchNorm(8, momentum=0.5), fb.Sigmoid(), fb.Dense(8, 3),
                         fb.BatchNorm(3), dtype="float64", seed=3)
    deep.params[...] = rnd(deep.params.size, 4)
    report = fb.gradcheck(deep, "cross_entropy", X, np.array([0, 1, 2, 0, 1, 2]))
    assert [r.name for r in report.results if r.name.endswith(".weight")] == [
        "0.weight", "1.weight", "3.weight", "4.weight", "6.weight", "7.weight"]


def test_gradcheck_catches_a_wrong_batchnorm_gradient():
    """A backward that ignores the batch statistics (treats mean, var as constants) fails."""

    class ConstantStatsBatchNorm(fb.BatchNorm):
        def backward(self, dout, input_grad=True, accumulate=False):
            super().backward(dout, False, accumulate)
            stats = self._stats.get(2, self.num_features, dout.dtype)
            return dout * self.params["weight"] * stats[1]

    net = fb.Sequential(fb.Dense(4, 5), ConstantStatsBatchNorm(5), fb.Tanh(), fb.Dense(5, 2),
                        dtype="float64", seed=0)
    with pytest.raises(fb.GradcheckError, match=r"0\.(weight|bias)"):
        fb.gradcheck(net, "mse", rnd((6, 4), 0), rnd((6, 2), 1))


# -------------------------------------------------------------------------- save, load, dtype
@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trip_keeps_running_statistics(tmp_path, dtype):
    net = bn_net(dtype, momentum=0.3, eps=1e-4)
    X, y = rnd((32, 4), 0), np.arange(32) % 3
    net.fit(X, y, epochs=2, batch_size=8, verbose=0)
    net.save(tmp_path / "bn.npz")
    loaded = fb.load(tmp_path / "bn.npz")
    assert loaded.layers[1].config() == {"type": "BatchNorm", "num_features": 6,
                                         "momentum": 0.3, "eps": 1e-4}
    assert np.array_equal(loaded.buffers, net.buffers)
    assert np.array_equal(loaded.predict(X), net.predict(X))


def test_load_refuses_missing_or_wrong_buffers(tmp_path):
    net = bn_net()
    net.save(tmp_path / "bn.npz")
    with np.load(tmp_path / "bn.npz") as f:
        arrays = dict(f)
    np.savez(tmp_path / "no_buffers.npz", **{k: v for k, v in arrays.items() if k != "buffers"})
    with pytest.raises(ValueError, match=r"holds buffers of shape \(0,\).* needs \(12,\)"):
        fb.load(tmp_path / "no_buffers.npz")
    np.savez(tmp_path / "short.npz", **{**arrays, "buffers": arrays["buffers"][:5]})
    with pytest.raises(ValueError, match=r"holds buffers of shape \(5,\)"):
        fb.load(tmp_path / "short.npz")


def test_astype_converts_buffers():
    net = bn_net("float32")
    net.forward(rnd((8, 4), 0), training=True)
    twin = net.astype("float64")
    assert twin.buffers.dtype == np.float64
    np.testing.assert_array_equal(twin.buffers, net.buffers.astype(np.float64))
    assert np.shares_memory(twin.layers[1].buffers["running_var"], twin.buffers)
    X = rnd((5, 4), 1)
    np.testing.assert_allclose(twin.predict(X), net.predict(X), rtol=1e-5, atol=1e-5)


def test_constructor_errors():
    with pytest.raises(ValueError, match="num_features: expected a positive integer"):
        fb.BatchNorm(0)
    with pytest.raises(ValueError, match="momentum: expected a number in"):
        fb.BatchNorm(3, momentum=1.5)
    with pytest.raises(ValueError, match="momentum: expected a finite number >= 0"):
        fb.BatchNorm(3, momentum=-0.1)
    with pytest.raises(ValueError, match="eps: expected a finite number > 0"):
        fb.BatchNorm(3, eps=0)
    with pytest.raises(ValueError, match=r"layer 1 \(BatchNorm\): expected input width 5"):
        fb.Sequential(fb.Dense(3, 4), fb.BatchNorm(5))


def test_fit_is_deterministic_and_learns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 50.0, -2.0, 1.0]
    y = (X[:, 1] - 50 + 10 * X[:, 2] > 0).astype(int)
    runs = []
    for _ in range(2):
        net = bn_net("float32")
        hist = net.fit(X, y, lr=0.02, epochs=15, batch_size=16, verbose=0)
        runs.append((net.params.copy(), net.buffers.copy()))
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert net.evaluate(X, y)["accuracy"] > 0.9
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


# ----------------------------------------------------------------------------------- torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch_batchnorm1d_over_training_steps_then_eval(dtype):
    torch = pytest.importorskip("torch")
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    net = bn_net(dtype, momentum=0.2, eps=1e-4)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6, 1e-4, 0.2),
                                torch.nn.ReLU(), torch.nn.Linear(6, 3)).to(tdtype)
    tparams = dict(model.named_parameters())
    assert [name for name, _, _ in net.named_parameters()] == list(tparams)
    with torch.no_grad():
        for name, value, _ in net.named_parameters():
            tparams[name].copy_(torch.from_numpy(value.copy()))
    opt = fb.SGD(net, lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    close = tol(dtype) if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-5}
    for step in range(5):
        X = rnd((16, 4), 50 + step, dtype, scale=2.0, shift=1.0)
        y = np.random.default_rng(step).integers(0, 3, 16)
        loss = net.train_step(X, y, "cross_entropy", opt)
        topt.zero_grad()
        tloss = loss_fn(model(torch.from_numpy(X)), torch.from_numpy(y))
        tloss.backward()
        if step == 0:                                  # gradients of the same weights
            tgrads = {k: v.grad.numpy() for k, v in tparams.items()}
            for name, _, grad in net.named_parameters():
                np.testing.assert_allclose(grad, tgrads[name], **close, err_msg=name)
        topt.step()
        assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for name, value, _ in net.named_parameters():
        np.testing.assert_allclose(value, tparams[name].detach().numpy(), **close, err_msg=name)
    bn, tbn = net.layers[1], model[1]
    np.testing.assert_allclose(bn.buffers["running_mean"], tbn.running_mean.numpy(), **close)
    np.testing.assert_allclose(bn.buffers["running_var"], tbn.running_var.numpy(), **close)
    model.eval()
    X = rnd((7, 4), 99, dtype)
    with torch.no_grad():
        np.testing.assert_allclose(net.predict(X), model(torch.from_numpy(X)).numpy(), **close)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_matches_torch_input_gradient(dtype):
    torch = pytest.importorskip("torch")
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    net = fb.Sequential(fb.BatchNorm(70), dtype=dtype)          # several column blocks
    net.params[...] = rnd(140, 0, dtype)
    X, dout = rnd((33, 70), 1, dtype, scale=3.0), rnd((33, 70), 2, dtype)
    out = net.forward(X, training=True)
    dX = net.backward(dout)
    tbn = torch.nn.BatchNorm1d(70).to(tdtype)
    with torch.no_grad():
        tbn.weight.copy_(torch.from_numpy(net.layers[0].params["weight"].copy()))
        tbn.bias.copy_(torch.from_numpy(net.layers[0].params["bias"].copy()))
    tX = torch.from_numpy(X).requires_grad_(True)
    tout = tbn(tX)
    tout.backward(torch.from_numpy(dout))
    close = tol(dtype) if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(out, tout.detach().numpy(), **close)
    np.testing.assert_allclose(dX, tX.grad.numpy(), **close)
    np.testing.assert_allclose(net.layers[0].grads["weight"], tbn.weight.grad.numpy(), **close)
    np.testing.assert_allclose(net.layers[0].grads["bias"], tbn.bias.grad.numpy(), **close)
