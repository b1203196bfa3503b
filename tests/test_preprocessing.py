"""Standardizer: against NumPy, its errors, and attached to a network (inputs standardised by
every method, gradients with respect to the raw input, kept by save/load)."""
import numpy as np
import pytest

import fastbp as fb

DTYPES = [np.float32, np.float64]


def data(n=50, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(loc=[3.0, -20.0, 0.0, 1e3][:d], scale=[0.5, 4.0, 1.0, 50.0][:d],
                      size=(n, d))


# ---------------------------------------------------------------------------------- values
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_numpy_population_statistics(dtype):
    X = data().astype(dtype)
    scaler = fb.Standardizer().fit(X)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(scaler.mean, X64.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(scaler.std, X64.std(axis=0, ddof=0), rtol=1e-12)
    Z = scaler.transform(X)
    assert Z.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(Z, (X64 - X64.mean(0)) / X64.std(0), rtol=tol, atol=tol)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=10 * tol)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=10 * tol)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=tol, atol=tol * 1e3)


def test_fit_transform_and_other_inputs():
    X = data()
    np.testing.assert_array_equal(fb.Standardizer().fit_transform(X),
                                  fb.Standardizer().fit(X).transform(X))
    scaler = fb.Standardizer().fit(X.tolist())                  # lists work
    ints = np.arange(12).reshape(4, 3)
    assert fb.Standardizer().fit(ints).transform(ints).dtype == np.float64
    assert scaler.transform(X[:1]).shape == (1, 4)


def test_constant_features_get_std_one_and_map_to_zero():
    X = data()
    X[:, 1] = 0.1                  # its float mean is not exactly 0.1: std must still be 1
    X[:, 2] = -7.0
    scaler = fb.Standardizer().fit(X)
    assert scaler.std[1] == 1.0 and scaler.std[2] == 1.0
    Z = scaler.transform(X)
    assert np.all(Z[:, 1] == 0.0) and np.all(Z[:, 2] == 0.0)
    assert np.all(np.isfinite(scaler.transform(X + 5.0)))
    single = fb.Standardizer().fit(X[:1])                          # one sample: all constant
    np.testing.assert_array_equal(single.std, np.ones(4))


# ---------------------------------------------------------------------------------- errors
def test_unfitted_use_is_refused():
    for method in ("transform", "inverse_transform"):
        with pytest.raises(ValueError, match="not fitted"):
            getattr(fb.Standardizer(), method)(data())
    assert "unfitted" in repr(fb.Standardizer())
    assert fb.Standardizer().n_features is None


def test_wrong_width_nan_and_bad_types_are_named():
    scaler = fb.Standardizer().fit(data())
    with pytest.raises(ValueError, match=r"X: expected 4 features.*\(50, 3\)"):
        scaler.transform(data(d=3))
    X = data()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="X: expected finite values, got nan at index"):
        fb.Standardizer().fit(X)
    with pytest.raises(ValueError, match="finite"):
        scaler.transform(X)
    with pytest.raises(ValueError, match="2-D"):
        fb.Standardizer().fit(np.zeros(5))
    with pytest.raises(TypeError, match="X"):
        fb.Standardizer().fit(np.array([["a", "b"]]))


def test_from_arrays_checks_its_statistics():
    scaler = fb.Standardizer.from_arrays([1.0, 2.0], [0.5, 4.0])
    np.testing.assert_array_equal(scaler.transform([[1.0, 6.0]]), [[0.0, 1.0]])
    with pytest.raises(ValueError, match="std"):
        fb.Standardizer.from_arrays([1.0, 2.0], [0.5, 0.0])
    with pytest.raises(ValueError, match="shape"):
        fb.Standardizer.from_arrays([1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="finite"):
        fb.Standardizer.from_arrays([np.inf, 2.0], [0.5, 1.0])


# -------------------------------------------------------------------------- on a network
def labelled(n=60, seed=0):
    X = data(n, seed=seed)
    return X, (X[:, 0] - 3.0 > 0).astype(int) + (X[:, 1] + 20.0 > 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_attached_standardizer_applies_to_every_input(dtype):
    X, y = labelled()
    Xv, yv = labelled(30, seed=1)
    scaler = fb.Standardizer().fit(X)
    plain = fb.mlp([4, 8, 3], dtype=dtype, seed=1)
    hist_plain = plain.fit(scaler.transform(X), y, epochs=3, batch_size=16, verbose=0,
                           validation_data=(scaler.transform(Xv), yv))
    net = fb.mlp([4, 8, 3], dtype=dtype, seed=1)
    net.standardizer = scaler
    hist = net.fit(X, y, epochs=3, batch_size=16, verbose=0, validation_data=(Xv, yv))
    np.testing.assert_array_equal(net.params, plain.params)
    assert hist["val_loss"] == hist_plain["val_loss"]
    np.testing.assert_array_equal(net.predict(Xv), plain.predict(scaler.transform(Xv)))
    np.testing.assert_array_equal(net.forward(Xv), plain.forward(scaler.transform(Xv)))
    assert net.evaluate(Xv, yv) == plain.evaluate(scaler.transform(Xv), yv)
    loss = net.train_step(X[:8], y[:8])
    assert loss == plain.train_step(scaler.transform(X[:8]), y[:8])


def test_backward_returns_the_gradient_with_respect_to_raw_features():
    X, _ = labelled(6)
    net = fb.mlp([4, 5, 2], activation="tanh", dtype="float64", seed=2)
    net.standardizer = fb.Standardizer().fit(data(40, seed=3))
    weights = np.random.default_rng(4).standard_normal((6, 2))

    def objective(X_raw):
        return float((net.forward(X_raw, training=False) * weights).sum())

    net.forward(X)
    dX = net.backward(weights)
    eps = 1e-4
    numeric = np.zeros_like(X)
    for index in np.ndindex(*X.shape):
        step = np.zeros_like(X)
        step[index] = eps
        numeric[index] = (objective(X + step) - objective(X - step)) / (2 * eps)
    np.testing.assert_allclose(dX, numeric, rtol=1e-6, atol=1e-9)


def test_gradcheck_passes_with_a_standardizer():
    X, y = labelled(8)
    net = fb.mlp([4, 6, 3], activation="tanh", seed=5)
    net.standardizer = fb.Standardizer().fit(data(40))
    assert fb.gradcheck(net, "cross_entropy", X, y).passed


def test_save_and_load_keep_the_standardizer(tmp_path):
    X, y = labelled()
    net = fb.mlp([4, 8, 3], seed=6)
    net.standardizer = fb.Standardizer().fit(X)
    net.fit(X, y, epochs=2, verbose=0)
    net.save(tmp_path / "m.npz")
    same = fb.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(same.standardizer.mean, net.standardizer.mean)
    np.testing.assert_array_equal(same.standardizer.std, net.standardizer.std)
    np.testing.assert_array_equal(same.predict(X), net.predict(X))
    plain = fb.mlp([4, 8, 3])
    plain.save(tmp_path / "plain.npz")
    assert fb.load(tmp_path / "plain.npz").standardizer is None


def test_a_damaged_saved_standardizer_is_reported(tmp_path):
    net = fb.mlp([4, 3])
    net.standardizer = fb.Standardizer().fit(data())
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = dict(f)
    arrays["standardizer.std"] = np.zeros(4)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="malformed standardizer"):
        fb.load(tmp_path / "bad.npz")
    del arrays["standardizer.std"]
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(ValueError, match="malformed standardizer"):
        fb.load(tmp_path / "missing.npz")
    arrays["standardizer.std"] = np.ones(3)
    arrays["standardizer.mean"] = np.ones(3)
    np.savez(tmp_path / "narrow.npz", **arrays)
    with pytest.raises(ValueError, match="malformed standardizer.*4 features"):
        fb.load(tmp_path / "narrow.npz")


def test_attaching_checks_type_fit_and_width():
    net = fb.mlp([4, 3])
    with pytest.raises(TypeError, match="standardizer"):
        net.standardizer = (np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="unfitted"):
        net.standardizer = fb.Standardizer()
    with pytest.raises(ValueError, match="fitted on 4 features.*got one fitted on 3"):
        net.standardizer = fb.Standardizer().fit(data(d=3))
    net.standardizer = fb.Standardizer().fit(data())
    net.standardizer = None                                # detaching
    assert net.standardizer is None


# ------------------------------------------------------------------------ target standardizer
@pytest.mark.parametrize("dtype", DTYPES)
def test_target_standardizer_puts_predictions_in_target_units(dtype, tmp_path):
    X = data(d=3)
    targets = data(d=2, seed=1)
    net = fb.mlp([3, 8, 2], dtype=dtype, seed=2)
    raw = net.predict(X)
    net.target_standardizer = fb.Standardizer().fit(targets)
    scaler = net.target_standardizer
    want = (raw.astype(np.float64) * scaler.std + scaler.mean).astype(dtype)
    np.testing.assert_array_equal(net.predict(X), want)
    np.testing.assert_array_equal(net.forward(X, training=False), raw)   # forward: net units
    net.save(tmp_path / "m.npz")
    same = fb.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(same.target_standardizer.std, scaler.std)
    np.testing.assert_array_equal(same.predict(X), want)


def test_target_standardizer_checks_type_fit_and_output_width():
    net = fb.mlp([4, 3])
    with pytest.raises(TypeError, match="target_standardizer"):
        net.target_standardizer = np.ones(3)
    with pytest.raises(ValueError, match="target_standardizer.*3 features.*output width"):
        net.target_standardizer = fb.Standardizer().fit(data())
