"""The training loop and the network's training-facing methods: fit, evaluate, predict,
backward (accumulate, input gradient) and thread control."""
import re

import numpy as np
import pytest
from thread_helpers import num_threads
from threadpoolctl import threadpool_limits

import fastbp as fb
from fastbp import _core as K

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0.0, 1.0, 1.0, 0.0])


def blobs(n=300, k=3, d=2, seed=0, spread=0.3):
    """k well separated Gaussian blobs in d dimensions (centres fixed: on a circle of radius 3
    in the first two coordinates), labels 0..k-1; `seed` draws the noise."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(k) / k
    centers = np.zeros((k, d))
    centers[:, 0] = 3.0 * np.cos(angles)
    centers[:, 1 % d] += 3.0 * np.sin(angles)
    y = np.arange(n) % k
    X = centers[y] + spread * rng.standard_normal((n, d))
    return X, y


def regression(n=40, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = np.tanh(X @ rng.standard_normal((d, k))) + 0.1 * rng.standard_normal((n, k))
    return X, Y


def without_time(history):
    return {k: v for k, v in history.history.items() if k != "time"}


@pytest.fixture
def restore_threads():
    """Give the test a free hand with fb.set_num_threads; put everything back afterwards."""
    old = fb.get_num_threads()
    old_omp = K.get_num_threads()
    with threadpool_limits(limits=None):      # restores the BLAS thread counts on exit
        yield
        fb.set_num_threads(old)
        K.set_num_threads(old_omp)


# -------------------------------------------------------------------------------- XOR
@pytest.mark.parametrize("act,loss,opt,lr,epochs,dtype", [
    ("tanh", "mse", "adam", 0.05, 500, "float32"),
    ("tanh", "mse", "sgd", 0.1, 1000, "float64"),
    ("sigmoid", "mse", "adam", 0.05, 1000, "float32"),
    ("sigmoid", "bce", "adam", 0.05, 1000, "float32"),
    ("tanh", "bce", "adamw", 0.05, 500, "float64"),
    ("tanh", "bce", "sgd", 0.5, 1000, "float64"),
])
@pytest.mark.parametrize("seed", [0, 1])
def test_xor_converges(act, loss, opt, lr, epochs, dtype, seed):
    net = fb.mlp([2, 8, 1], activation=act, dtype=dtype, seed=seed)
    hist = net.fit(XOR_X, XOR_Y, loss=loss, optimizer=opt, lr=lr, epochs=epochs, batch_size=4,
                   verbose=0)
    assert hist.epochs == epochs
    assert hist["loss"][-1] < 0.01
    assert net.evaluate(XOR_X, XOR_Y)["loss"] < 0.01
    out = net.predict(XOR_X).ravel()
    threshold = 0.0 if loss == "bce" else 0.5
    np.testing.assert_array_equal(out > threshold, XOR_Y > 0.5)


# ------------------------------------------------------------------------ a classifier learns
@pytest.mark.parametrize("opt,lr", [("adam", 0.01), ("sgd", 0.1), ("adamw", 0.01)])
def test_classifier_learns_separable_blobs(opt, lr):
    X, y = blobs(300, k=3)
    Xv, yv = blobs(90, k=3, seed=100)
    net = fb.mlp([2, 16, 3], activation="relu", seed=1)
    before = net.evaluate(X, y, loss="cross_entropy")
    hist = net.fit(X, y, loss="cross_entropy", optimizer=opt, lr=lr, epochs=30, batch_size=32,
                   validation_data=(Xv, yv), verbose=0)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist["accuracy"][-1] >= 0.95
    assert hist["val_accuracy"][-1] >= 0.95
    after = net.evaluate(X, y)
    assert after["loss"] < before["loss"]
    assert after["accuracy"] >= 0.95
    assert np.mean(net.predict(X).argmax(axis=1) == y) >= 0.95


def test_binary_classifier_with_bce_learns():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(float)
    net = fb.mlp([4, 8, 1], activation="tanh", seed=2)
    hist = net.fit(X, y, loss="bce", optimizer="adam", lr=0.02, epochs=40, batch_size=25,
                   verbose=0)
    assert hist["accuracy"][-1] >= 0.95
    assert net.evaluate(X, y)["accuracy"] >= 0.95


# -------------------------------------------------------------------------------- determinism
def fit_once(seed=0, fit_seed=0, dtype="float32", **kwargs):
    X, y = blobs(200, k=3, d=5, seed=4)
    net = fb.mlp([5, 12, 7, 3], activation="tanh", dtype=dtype, seed=seed)
    args = {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.01, "epochs": 4,
            "batch_size": 32, "verbose": 0, "seed": fit_seed}
    args.update(kwargs)
    hist = net.fit(X, y, **args)
    return net, hist


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["adam", "sgd", "adamw"])
def test_same_seed_same_result(dtype, opt):
    a, ha = fit_once(dtype=dtype, optimizer=opt)
    b, hb = fit_once(dtype=dtype, optimizer=opt)
    assert without_time(ha) == without_time(hb)
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.predict(np.ones((2, 5))), b.predict(np.ones((2, 5))))


def test_different_seeds_differ():
    base, hbase = fit_once()
    other_shuffle, hshuffle = fit_once(fit_seed=1)           # same init, other batch order
    other_init, hinit = fit_once(seed=1)                     # other init, same batch order
    assert not np.array_equal(base.params, other_shuffle.params)
    assert not np.array_equal(base.params, other_init.params)
    assert hbase["loss"] != hshuffle["loss"]
    assert hbase["loss"] != hinit["loss"]


def test_refit_continues_from_current_parameters():
    net, _ = fit_once(epochs=2)
    params = net.params.copy()
    X, y = blobs(200, k=3, d=5, seed=4)
    net.fit(X, y, epochs=1, verbose=0, lr=0.01)
    assert not np.array_equal(net.params, params)


def big_problem():
    """Sizes large enough for threaded BLAS (and, with thread_helpers.num_threads, for the C
    core's parallel branches)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1024, 64))
    y = rng.integers(0, 10, size=1024)
    return X, y


def fit_big(dtype):
    X, y = big_problem()
    net = fb.mlp([64, 256, 128, 10], activation="relu", dtype=dtype, seed=0)
    hist = net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=1e-2, epochs=2,
                   batch_size=512, verbose=0)
    return net.params.copy(), without_time(hist)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_core_threads_do_not_change_the_result(restore_threads, dtype):
    """With BLAS held at one thread, 1 and 2 OpenMP threads of the C core give the same bits
    (reductions use fixed chunks whatever the thread count)."""
    results = []
    for n in (1, 2):
        with num_threads(n), threadpool_limits(limits=1, user_api="blas"):
            assert K.get_num_threads() == (n if K.HAVE_OPENMP else 1)
            results.append(fit_big(dtype))
    assert results[0][1] == results[1][1]
    assert np.array_equal(results[0][0], results[1][0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_and_two_threads_agree(restore_threads, dtype):
    """fb.set_num_threads also sets the BLAS threads; OpenBLAS's ?gemm may then sum in another
    order, so 1 and 2 threads agree to rounding (bitwise agreement is not promised by BLAS)."""
    results = []
    for n in (1, 2, 1, 2):
        fb.set_num_threads(n)
        assert fb.get_num_threads() == n
        results.append(fit_big(dtype))
    # the same thread count repeats exactly
    assert np.array_equal(results[0][0], results[2][0])
    assert np.array_equal(results[1][0], results[3][0])
    assert results[0][1] == results[2][1] and results[1][1] == results[3][1]
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(results[0][0], results[1][0], **tol)
    np.testing.assert_allclose(results[0][1]["loss"], results[1][1]["loss"], **tol)


def test_set_get_num_threads_round_trip(restore_threads):
    for n in (1, 2, 3, 1):
        fb.set_num_threads(n)
        assert fb.get_num_threads() == n
        if K.HAVE_OPENMP:
            assert K.get_num_threads() == n


@pytest.mark.parametrize("bad", [0, -1])
def test_set_num_threads_rejects_non_positive(restore_threads, bad):
    fb.set_num_threads(2)
    with pytest.raises(ValueError, match="n"):
        fb.set_num_threads(bad)
    assert fb.get_num_threads() == 2


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_set_num_threads_rejects_non_integers(restore_threads, bad):
    fb.set_num_threads(2)
    with pytest.raises((ValueError, TypeError)):
        fb.set_num_threads(bad)
    assert fb.get_num_threads() == 2


def test_get_num_threads_default_is_positive():
    assert isinstance(fb.get_num_threads(), int) and fb.get_num_threads() >= 1


# ------------------------------------------------------------------- batches and shuffling
def manual_training(net, X, y, loss, batch_size, epochs, lr):
    """The documented loop with shuffle=False, written out: forward, loss, backward, SGD."""
    opt = fb.SGD(net, lr=lr)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, X.shape[0], batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            value, dout = loss(net.forward(xb), yb)
            net.backward(dout)
            opt.step()
            total += value * xb.shape[0]
        losses.append(total / X.shape[0])
    return losses


@pytest.mark.parametrize("n,batch_size", [(10, 4), (10, 5), (10, 10), (10, 64), (7, 1)])
def test_shuffle_false_is_the_plain_loop(n, batch_size):
    """Batches in order, the last one smaller when batch_size does not divide n, and one batch
    of all rows when batch_size > n."""
    X, Y = regression(n=n)
    a = fb.mlp([3, 5, 2], activation="tanh", dtype="float64", seed=6)
    b = fb.mlp([3, 5, 2], activation="tanh", dtype="float64", seed=6)
    hist = a.fit(X, Y, loss="mse", optimizer="sgd", lr=0.1, epochs=3, batch_size=batch_size,
                 shuffle=False, verbose=0)
    ref = manual_training(b, X, Y, fb.MSE(), batch_size, 3, 0.1)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(hist["loss"], ref, rtol=1e-13)


def test_shuffle_false_ignores_the_seed():
    a, ha = fit_once(shuffle=False, fit_seed=0)
    b, hb = fit_once(shuffle=False, fit_seed=123)
    assert np.array_equal(a.params, b.params)
    assert without_time(ha) == without_time(hb)
    c, _ = fit_once(shuffle=True, fit_seed=0)
    assert not np.array_equal(a.params, c.params)


def test_batch_size_larger_than_n_is_full_batch():
    X, Y = regression(n=6)
    a = fb.mlp([3, 4, 2], dtype="float64", seed=7)
    b = fb.mlp([3, 4, 2], dtype="float64", seed=7)
    a.fit(X, Y, loss="mse", optimizer="sgd", lr=0.1, epochs=2, batch_size=1000, verbose=0)
    b.fit(X, Y, loss="mse", optimizer="sgd", lr=0.1, epochs=2, batch_size=6, verbose=0)
    # one batch of every row: shuffling only permutes rows inside the batch
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)
    c = fb.mlp([3, 4, 2], dtype="float64", seed=7)
    manual_training(c, X, Y, fb.MSE(), 6, 2, 0.1)
    np.testing.assert_allclose(a.params, c.params, rtol=1e-12, atol=1e-14)


def test_shuffled_epoch_sees_every_sample_once():
    """With lr tiny the reported epoch loss is (nearly) the full-data loss whatever the order."""
    X, Y = regression(n=23)
    net = fb.mlp([3, 4, 2], dtype="float64", seed=8)
    start = net.evaluate(X, Y, loss="mse")["loss"]
    hist = net.fit(X, Y, loss="mse", optimizer="sgd", lr=1e-12, epochs=2, batch_size=5,
                   verbose=0)
    np.testing.assert_allclose(hist["loss"], start, rtol=1e-9)


def test_first_epoch_loss_is_measured_before_the_update():
    X, Y = regression(n=12)
    net = fb.mlp([3, 6, 2], dtype="float64", seed=9)
    start = net.evaluate(X, Y, loss="mse")["loss"]
    hist = net.fit(X, Y, loss="mse", optimizer="sgd", lr=0.1, epochs=1, batch_size=12,
                   verbose=0)
    assert hist["loss"][0] == pytest.approx(start, rel=1e-12)


# -------------------------------------------------------------------------------- history
def test_history_fields_for_classification():
    X, y = blobs(60, k=3)
    net = fb.mlp([2, 8, 3], seed=10)
    hist = net.fit(X, y, epochs=5, batch_size=16, verbose=0)
    assert isinstance(hist, fb.History)
    assert hist.epochs == 5
    assert set(hist.history) == {"loss", "accuracy", "time"}
    for key in ("loss", "accuracy", "time"):
        assert len(hist.history[key]) == 5
        assert hist[key] == hist.history[key]
        assert all(isinstance(v, float) for v in hist[key])
    assert all(0.0 <= a <= 1.0 for a in hist["accuracy"])
    assert all(t >= 0.0 for t in hist["time"])
    assert all(np.isfinite(hist["loss"]))
    assert "History" in repr(hist)


def test_history_fields_for_regression_have_no_accuracy():
    X, Y = regression()
    net = fb.mlp([3, 5, 2], seed=11)
    hist = net.fit(X, Y, loss="mse", epochs=3, batch_size=8, verbose=0,
                   validation_data=regression(seed=1))
    assert set(hist.history) == {"loss", "val_loss", "time"}
    assert hist.epochs == 3


def test_validation_data_gives_val_loss_and_val_accuracy():
    X, y = blobs(90, k=3)
    Xv, yv = blobs(30, k=3, seed=100)
    net = fb.mlp([2, 8, 3], seed=12)
    hist = net.fit(X, y, epochs=4, batch_size=16, validation_data=(Xv, yv), verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "time"}
    assert len(hist["val_loss"]) == len(hist["val_accuracy"]) == 4
    final = net.evaluate(Xv, yv)
    assert hist["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-12)
    assert hist["val_accuracy"][-1] == pytest.approx(final["accuracy"], rel=1e-12)
    # validation does not train: the training data alone decides the parameters
    other = fb.mlp([2, 8, 3], seed=12)
    other.fit(X, y, epochs=4, batch_size=16, verbose=0)
    np.testing.assert_array_equal(net.params, other.params)


def test_validation_data_must_be_a_pair():
    X, y = blobs(30, k=3)
    net = fb.mlp([2, 4, 3])
    with pytest.raises(ValueError, match="validation_data"):
        net.fit(X, y, epochs=1, validation_data=X, verbose=0)
    with pytest.raises(ValueError, match="validation_data"):
        net.fit(X, y, epochs=1, validation_data=(X[:5], y[:4]), verbose=0)


# -------------------------------------------------------------------------------- verbose
def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = blobs(40, k=3)
    Xv, yv = blobs(12, k=3, seed=100)
    net = fb.mlp([2, 4, 3], seed=13)
    net.fit(X, y, epochs=3, batch_size=16, verbose=1, validation_data=(Xv, yv))
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 3, out
    for i, line in enumerate(lines, 1):
        assert re.search(rf"\b{i}\s*/\s*3\b", line), line
        assert "loss" in line and "val_loss" in line and "accuracy" in line


def test_verbose_is_default(capsys):
    X, y = blobs(20, k=3)
    fb.mlp([2, 4, 3]).fit(X, y, epochs=2)
    assert len([line for line in capsys.readouterr().out.splitlines() if line.strip()]) == 2


def test_verbose_zero_prints_nothing(capsys):
    X, y = blobs(40, k=3)
    fb.mlp([2, 4, 3], seed=14).fit(X, y, epochs=3, batch_size=16, verbose=0,
                                   validation_data=blobs(9, k=3))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ------------------------------------------------------------------------------ clip_norm
def full_gradient(net, loss, X, y):
    value, dout = loss(net.forward(X), y)
    net.backward(dout)
    return net.grads.copy()


def test_clip_norm_bounds_each_sgd_step():
    X, Y = regression(n=16)
    net = fb.mlp([3, 8, 2], activation="tanh", dtype="float64", seed=15)
    g = full_gradient(net, fb.MSE(), X, Y)
    clip, lr = 1e-3, 0.5
    assert np.linalg.norm(g) > 100 * clip              # clipping really happens
    before = net.params.copy()
    net.fit(X, Y, loss="mse", optimizer="sgd", lr=lr, epochs=1, batch_size=16, clip_norm=clip,
            verbose=0)
    step = net.params - before
    assert np.linalg.norm(step) <= lr * clip * (1 + 1e-9)
    # and it is exactly the clipped gradient step: g * clip / (|g| + 1e-6)
    expected = -lr * g * clip / (np.linalg.norm(g) + 1e-6)
    np.testing.assert_allclose(step, expected, rtol=1e-9, atol=1e-18)


def test_clip_norm_bounds_every_step_over_epochs():
    X, Y = regression(n=20)
    net = fb.mlp([3, 8, 2], activation="relu", dtype="float64", seed=16)
    lr, clip = 0.3, 1e-2
    for _ in range(4):
        before = net.params.copy()
        net.fit(X, Y, loss="mse", optimizer="sgd", lr=lr, epochs=1, batch_size=5,
                clip_norm=clip, verbose=0)
        # four steps per epoch, each of norm <= lr * clip
        assert np.linalg.norm(net.params - before) <= 4 * lr * clip * (1 + 1e-9)


def test_large_clip_norm_changes_nothing():
    a, _ = fit_once(dtype="float64", optimizer="sgd", lr=0.05)
    b, _ = fit_once(dtype="float64", optimizer="sgd", lr=0.05, clip_norm=1e9)
    np.testing.assert_array_equal(a.params, b.params)


def test_clip_norm_changes_training_when_active():
    a, _ = fit_once(dtype="float64", optimizer="sgd", lr=0.05)
    b, _ = fit_once(dtype="float64", optimizer="sgd", lr=0.05, clip_norm=0.01)
    assert not np.allclose(a.params, b.params)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_clip_norm_validated(bad):
    X, y = blobs(20, k=3)
    with pytest.raises(ValueError, match="clip_norm"):
        fb.mlp([2, 4, 3]).fit(X, y, epochs=1, clip_norm=bad, verbose=0)


# ------------------------------------------------------------------------------- evaluate
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluate_classification_matches_loss_object(dtype):
    X, y = blobs(50, k=3, seed=2)
    net = fb.mlp([2, 6, 3], dtype=dtype, seed=17)
    loss = fb.SoftmaxCrossEntropy()
    result = net.evaluate(X, y, loss=loss)
    assert set(result) == {"loss", "accuracy"}
    out = net.forward(X, training=False)
    value, _ = loss(out, y)
    rtol = 1e-6 if dtype == "float32" else 1e-12
    assert result["loss"] == pytest.approx(value, rel=rtol)
    assert result["accuracy"] == pytest.approx(np.mean(out.argmax(axis=1) == y), abs=1e-12)
    # in small batches: the same mean
    small = net.evaluate(X, y, loss=loss, batch_size=7)
    assert small["loss"] == pytest.approx(value, rel=rtol)
    assert small["accuracy"] == pytest.approx(result["accuracy"], abs=1e-12)


def test_evaluate_probability_targets_and_names():
    X, y = blobs(30, k=3, seed=3)
    net = fb.mlp([2, 6, 3], dtype="float64", seed=18)
    onehot = np.eye(3)[y]
    a = net.evaluate(X, y, loss="cross_entropy")
    b = net.evaluate(X, onehot, loss="softmax_cross_entropy")
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-12)
    assert a["accuracy"] == b["accuracy"]


@pytest.mark.parametrize("half", [False, True])
def test_evaluate_regression_matches_mse(half):
    X, Y = regression(n=30)
    net = fb.mlp([3, 5, 2], dtype="float64", seed=19)
    result = net.evaluate(X, Y, loss=fb.MSE(half=half), batch_size=4)
    assert set(result) == {"loss"}
    out = net.predict(X)
    ref = np.mean((out - Y) ** 2) * (0.5 if half else 1.0)
    assert result["loss"] == pytest.approx(ref, rel=1e-12)


def test_evaluate_bce_matches_formula():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((25, 3))
    y = (rng.uniform(size=25) > 0.5).astype(float)
    net = fb.mlp([3, 4, 1], dtype="float64", seed=20)
    result = net.evaluate(X, y, loss="bce")
    z = net.predict(X).ravel()
    ref = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    assert result["loss"] == pytest.approx(ref, rel=1e-12)
    assert result["accuracy"] == pytest.approx(np.mean((z > 0) == (y > 0.5)))


def test_evaluate_defaults_to_the_loss_of_the_last_fit():
    X, Y = regression(n=20)
    net = fb.mlp([3, 5, 2], dtype="float64", seed=21)
    with pytest.raises(ValueError, match="loss"):
        net.evaluate(X, Y)
    hist = net.fit(X, Y, loss="mse", epochs=1, verbose=0)
    assert hist.epochs == 1
    assert net.evaluate(X, Y) == net.evaluate(X, Y, loss="mse")


# -------------------------------------------------------------------------------- predict
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_equals_forward_in_evaluation_mode(dtype):
    X, _ = blobs(37, k=3, seed=5)
    net = fb.mlp([2, 7, 3], dtype=dtype, seed=22)
    out = net.predict(X)
    assert out.shape == (37, 3) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, net.forward(X, training=False))


def test_predict_in_several_internal_batches():
    X, _ = blobs(10, k=3, seed=6)
    net = fb.mlp([2, 5, 3], dtype="float64", seed=23)
    full = net.forward(X, training=False)
    for batch_size in (1, 3, 4, 10, 11):
        np.testing.assert_array_equal(net.predict(X, batch_size=batch_size), full)


def test_predict_more_rows_than_the_default_batch():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((5000, 3))
    net = fb.mlp([3, 4, 2], dtype="float64", seed=24)
    out = net.predict(X)
    assert out.shape == (5000, 2)
    np.testing.assert_array_equal(out, net.forward(X, training=False))
    np.testing.assert_array_equal(out[4096:], net.predict(X[4096:]))


def test_predict_does_not_corrupt_backward():
    """predict between forward(training=True) and backward: backward either refuses (its caches
    are gone) or still gives the gradients of the training forward, never a mix."""
    X, Y = regression(n=8)
    net = fb.mlp([3, 4, 2], dtype="float64", seed=25)
    out = net.forward(X)
    dout = np.ones_like(out)
    ref_dX = net.backward(dout)
    ref = net.grads.copy()
    net.zero_grad()
    net.forward(X)
    net.predict(X[:3] + 1.0)
    try:
        dX = net.backward(dout)
    except RuntimeError:
        return
    np.testing.assert_array_equal(net.grads, ref)
    np.testing.assert_array_equal(dX, ref_dX)


def test_predict_converts_input():
    X, _ = blobs(9, k=3, seed=8)
    net = fb.mlp([2, 5, 3], dtype="float32", seed=26)
    ref = net.predict(X.astype(np.float32))
    np.testing.assert_array_equal(net.predict(np.asfortranarray(X)), ref)
    np.testing.assert_array_equal(net.predict(X.tolist()), ref)


# ------------------------------------------------------------------------ optimizer objects
@pytest.mark.parametrize("make", [
    lambda net: fb.SGD(net, lr=0.1, momentum=0.9),
    lambda net: fb.SGD(net, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
    lambda net: fb.Adam(net, lr=0.01),
    lambda net: fb.AdamW(net, lr=0.01, weight_decay=0.01),
], ids=["sgd-momentum", "sgd-nesterov", "adam", "adamw"])
def test_fit_with_optimizer_objects(make):
    X, y = blobs(120, k=3, seed=9)
    net = fb.mlp([2, 12, 3], seed=27)
    opt = make(net)
    hist = net.fit(X, y, optimizer=opt, epochs=15, batch_size=20, verbose=0)
    assert net.optimizer is opt
    assert opt.step_count == 15 * 6
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist["accuracy"][-1] >= 0.9
    # a second fit goes on with the same optimizer state
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=20, verbose=0)
    assert opt.step_count == 16 * 6


def test_optimizer_object_equals_optimizer_name():
    X, y = blobs(60, k=3, seed=10)
    a, b = fb.mlp([2, 6, 3], seed=28), fb.mlp([2, 6, 3], seed=28)
    a.fit(X, y, optimizer="adam", lr=0.02, epochs=3, batch_size=16, verbose=0)
    b.fit(X, y, optimizer=fb.Adam(b, lr=0.02), epochs=3, batch_size=16, verbose=0)
    np.testing.assert_array_equal(a.params, b.params)


def test_optimizer_built_for_another_net_is_rejected():
    X, y = blobs(30, k=3)
    net, other = fb.mlp([2, 6, 3]), fb.mlp([2, 6, 3])
    with pytest.raises(ValueError, match="optimizer"):
        net.fit(X, y, optimizer=fb.Adam(other), epochs=1, verbose=0)


# ---------------------------------------------------------------------- backward details
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backward_accumulate_doubles_gradients(dtype):
    X, y = blobs(16, k=3, seed=11)
    net = fb.mlp([2, 6, 5, 3], activation="tanh", dtype=dtype, seed=29)
    _, dout = fb.SoftmaxCrossEntropy()(net.forward(X), y)
    net.backward(dout)
    once = net.grads.copy()
    assert np.any(once != 0)
    dX2 = net.backward(dout, accumulate=True)
    np.testing.assert_allclose(net.grads, 2 * once, rtol=1e-6 if dtype == "float32" else 1e-14)
    # without accumulate the gradient is overwritten, not added
    dX1 = net.backward(dout)
    np.testing.assert_array_equal(net.grads, once)
    np.testing.assert_array_equal(dX1, dX2)           # the input gradient does not accumulate


def test_backward_accumulate_sums_two_batches():
    X, Y = regression(n=10)
    net = fb.mlp([3, 5, 2], activation="sigmoid", dtype="float64", seed=30)
    loss = fb.MSE()
    g_a = full_gradient(net, loss, X[:4], Y[:4])
    g_b = full_gradient(net, loss, X[4:], Y[4:])
    _, d_a = loss(net.forward(X[:4]), Y[:4])
    net.backward(d_a)
    _, d_b = loss(net.forward(X[4:]), Y[4:])
    net.backward(d_b, accumulate=True)
    np.testing.assert_allclose(net.grads, g_a + g_b, rtol=1e-13, atol=1e-16)


def test_input_grad_false_returns_none_and_same_parameter_gradients():
    X, Y = regression(n=6)
    net = fb.mlp([3, 5, 2], dtype="float64", seed=31)
    out = net.forward(X)
    dX = net.backward(np.ones_like(out))
    g = net.grads.copy()
    assert dX.shape == X.shape
    assert net.backward(np.ones_like(out), input_grad=False) is None
    np.testing.assert_array_equal(net.grads, g)


@pytest.mark.parametrize("layers", [
    lambda: [fb.Dense(4, 6), fb.Tanh(), fb.Dense(6, 3)],
    lambda: [fb.Dense(4, 6), fb.Sigmoid(), fb.Dense(6, 5), fb.LeakyReLU(0.1), fb.Dense(5, 3)],
    lambda: [fb.Tanh(), fb.Dense(4, 5), fb.ReLU(), fb.Tanh(), fb.Dense(5, 3)],
], ids=["tanh", "sigmoid-leaky", "standalone"])
def test_input_gradient_matches_finite_differences(layers):
    rng = np.random.default_rng(12)
    net = fb.Sequential(*layers(), dtype="float64", seed=32)
    X = rng.standard_normal((5, 4))
    R = rng.standard_normal((5, 3))                 # objective: sum(forward(X) * R)
    net.forward(X)
    dX = net.backward(R)
    eps = 1e-6
    numeric = np.empty_like(X)
    for idx in np.ndindex(*X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += eps
        Xm[idx] -= eps
        numeric[idx] = (np.sum(net.forward(Xp, training=False) * R)
                        - np.sum(net.forward(Xm, training=False) * R)) / (2 * eps)
    np.testing.assert_allclose(dX, numeric, rtol=1e-6, atol=1e-8)


def test_input_gradient_matches_numpy_backprop():
    rng = np.random.default_rng(13)
    net = fb.mlp([4, 6, 3], activation="tanh", dtype="float64", seed=33)
    (_, W1, _), (_, b1, _), (_, W2, _), (_, b2, _) = net.named_parameters()
    b1[...] = 0.1 * rng.standard_normal(6)
    X, y = rng.standard_normal((7, 4)), rng.integers(0, 3, size=7)
    _, dout = fb.SoftmaxCrossEntropy()(net.forward(X), y)
    dX = net.backward(dout)
    H = np.tanh(X @ W1.T + b1)
    logits = H @ W2.T + b2
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    ref_dout = (P - np.eye(3)[y]) / 7
    np.testing.assert_allclose(dout, ref_dout, rtol=1e-12, atol=1e-15)
    ref_dX = ((ref_dout @ W2) * (1 - H ** 2)) @ W1
    np.testing.assert_allclose(dX, ref_dX, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------- train_step and fit
def test_fit_does_not_modify_inputs():
    X, y = blobs(40, k=3, seed=14)
    X0, y0 = X.copy(), y.copy()
    fb.mlp([2, 4, 3]).fit(X, y, epochs=2, batch_size=7, verbose=0)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_fit_accepts_float32_data_and_lists():
    X, y = blobs(30, k=3, seed=15)
    a, b = fb.mlp([2, 4, 3], seed=34), fb.mlp([2, 4, 3], seed=34)
    a.fit(X.astype(np.float32), y, epochs=2, batch_size=8, verbose=0)
    b.fit(X.tolist(), y.tolist(), epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("kwargs,name", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"), ({"loss": "hinge"}, "loss"), ({"optimizer": "lbfgs"}, "optimizer"),
])
def test_fit_rejects_bad_arguments(kwargs, name):
    X, y = blobs(20, k=3)
    with pytest.raises(ValueError, match=name):
        fb.mlp([2, 4, 3]).fit(X, y, verbose=0, **kwargs)


def test_train_step_equals_one_full_batch_fit_step():
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(16, 4)), rng.integers(0, 3, 16)
    a = fb.mlp([4, 6, 3], dtype="float64", seed=2)
    b = fb.mlp([4, 6, 3], dtype="float64", seed=2)
    opt = fb.Adam(a, lr=0.01)
    losses = [a.train_step(X, y, "cross_entropy", opt) for _ in range(3)]
    hist = b.fit(X, y, optimizer=fb.Adam(b, lr=0.01), epochs=3, batch_size=16, shuffle=False,
                 verbose=0)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_allclose(losses, hist["loss"], rtol=1e-12)


def test_train_step_with_an_optimizer_name_keeps_its_state():
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    net = fb.mlp([3, 5, 2], dtype="float64")
    net.train_step(X, y, "mse", "adam")
    first = net.optimizer
    net.train_step(X, y, "mse", "adam")
    assert net.optimizer is first and first.step_count == 2
    net.train_step(X, y, "mse", "sgd")
    assert isinstance(net.optimizer, fb.SGD) and net.optimizer.lr == 1e-2


def test_train_step_refuses_a_non_finite_loss_without_updating():
    net = fb.mlp([2, 2], dtype="float64")
    before = net.params.copy()
    net.params[0] = 1e300
    net.params[1] = 1e300
    with pytest.raises(FloatingPointError, match="no update"):
        net.train_step(np.full((2, 2), 1e10), np.zeros((2, 2)), "mse", fb.SGD(net, lr=0.1))
    assert net.params[2:].tolist() == before[2:].tolist()


@pytest.mark.parametrize("optimizer, lr", [("sgd", 3e38), ("adam", 1e39), ("rmsprop", 1e39),
                                           ("adamw", 1e39)])
def test_a_last_update_that_breaks_the_network_is_undone(optimizer, lr):
    """The update of the last step has no next loss to show it; fit checks it itself."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 4)), rng.integers(0, 3, 200)
    net = fb.mlp([4, 8, 3], seed=0)
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match=r"last update \(epoch 1, step 1\) made") as info:
        net.fit(X, y, optimizer=optimizer, lr=lr, epochs=1, batch_size=256, verbose=0)
    np.testing.assert_array_equal(net.params, before)
    assert np.isfinite(net.predict(X)).all()
    assert info.value.history.epochs == 1


def test_history_is_a_read_only_mapping_of_names():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    hist = fb.mlp([4, 8, 3]).fit(X, y, epochs=2, validation_data=(X, y), verbose=0)
    assert "val_loss" in hist and "nothing" not in hist
    assert list(hist) == ["loss", "accuracy", "val_loss", "val_accuracy", "time"]
    assert len(hist) == 5 and list(hist.keys()) == list(hist)
    assert dict(hist)["loss"] == hist["loss"] and len(hist["loss"]) == hist.epochs == 2
    assert dict(hist.items())["val_accuracy"] == hist["val_accuracy"]
    hist["loss"].append(0.0)                        # a copy: the record does not change
    assert len(hist["loss"]) == 2
    with pytest.raises(TypeError):
        hist["loss"] = [0.0]
    with pytest.raises(KeyError, match="'val_los'.* records"):
        hist["val_los"]
