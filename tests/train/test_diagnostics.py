"""Training diagnostics: the active-units kernel against NumPy, the activation accessor, the
per-layer records of fit(monitor=True) against NumPy, and the warnings."""
import warnings

import numpy as np
import pytest
from thread_helpers import num_threads

import fastbp as fb
from fastbp import _core as K

DTYPES = [np.float32, np.float64]


# --------------------------------------------------------------------------------- kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, cols", [(1, 1), (7, 3), (5, 130), (1023, 17), (300, 200)])
@pytest.mark.parametrize("threads", [1, 2])
def test_mark_active_units_is_an_or_of_positive_entries(dtype, rows, cols, threads):
    rng = np.random.default_rng(rows * cols)
    A = np.maximum(rng.standard_normal((rows, cols)) - 1.5, 0).astype(dtype)   # mostly zero
    A[:, ::5] = 0.0                                                             # never active
    if rows > 1:
        A[-1, 1::7] = -1.0                                  # negative is not active
    active = np.zeros(cols, dtype=bool)
    active[2::9] = True                                     # set before: stays set
    expected = active | (A > 0).any(axis=0)
    with num_threads(threads):
        K.mark_active_units(A, active)
    np.testing.assert_array_equal(active, expected)
    assert active.view(np.uint8).max() <= 1                  # proper booleans
    more = np.ones((2, cols), dtype=dtype)
    K.mark_active_units(more, active)                        # accumulates over batches
    assert active.all()


def test_mark_active_units_treats_nan_as_inactive():
    active = np.zeros(3, dtype=bool)
    K.mark_active_units(np.array([[np.nan, 0.0, 1e-30]]), active)
    np.testing.assert_array_equal(active, [False, False, True])


def test_mark_active_units_refuses_bad_arguments():
    A = np.ones((4, 3))
    with pytest.raises(TypeError, match="active"):
        K.mark_active_units(A, np.zeros(3, dtype=np.uint8))
    with pytest.raises(TypeError, match="active"):
        K.mark_active_units(A, [False] * 3)
    with pytest.raises(ValueError, match=r"active: expected shape \(3,\)"):
        K.mark_active_units(A, np.zeros(4, dtype=bool))
    with pytest.raises(TypeError, match="active"):
        K.mark_active_units(A, np.zeros(6, dtype=bool)[::2])
    readonly = np.zeros(3, dtype=bool)
    readonly.flags.writeable = False
    with pytest.raises(TypeError, match="writeable"):
        K.mark_active_units(A, readonly)
    with pytest.raises(ValueError, match="A"):
        K.mark_active_units(np.ones(3), np.zeros(3, dtype=bool))
    with pytest.raises(TypeError, match="A"):
        K.mark_active_units(np.ones((2, 3), dtype=np.int32), np.zeros(3, dtype=bool))


# ----------------------------------------------------------------------- activation outputs
def test_activation_outputs_lists_fused_and_standalone_activations():
    net = fb.Sequential(fb.Dense(3, 4), fb.ReLU(), fb.Dense(4, 5), fb.Identity(), fb.Tanh(),
                        fb.Dense(5, 2), fb.LeakyReLU(0.1), dtype="float64", seed=1)
    X = np.random.default_rng(0).standard_normal((6, 3))
    net.forward(X)
    outputs = net.activation_outputs()
    assert [(i, name) for i, name, _ in outputs] == [
        (1, "relu"), (3, "identity"), (4, "tanh"), (6, "leaky_relu")]
    (W1, b1), (W2, b2), (W3, b3) = [(d.params["weight"], d.params["bias"])
                                    for d in net.layers if isinstance(d, fb.Dense)]
    a1 = np.maximum(X @ W1.T + b1, 0)
    z2 = a1 @ W2.T + b2
    a3 = np.tanh(z2)
    z3 = a3 @ W3.T + b3
    for (_, _, got), want in zip(outputs, [a1, z2, a3, np.where(z3 > 0, z3, 0.1 * z3)],
                                 strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_activation_outputs_need_a_training_forward():
    net = fb.mlp([2, 3, 2])
    with pytest.raises(RuntimeError, match="forward"):
        net.activation_outputs()
    net.forward(np.ones((1, 2)))
    net.predict(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="training=True"):
        net.activation_outputs()


# ------------------------------------------------------------------------------- records
def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return centers[y] + 0.5 * rng.standard_normal((n, 2)), y


def layer_norms(flat, net):
    """L2 norm of each Dense layer's parameters (weight and bias) in a flat buffer."""
    regions = {}
    for name, region, _ in net.parameter_slices():
        regions.setdefault(name.split(".")[0], []).append(flat[region])
    return np.array([np.linalg.norm(np.concatenate(parts)) for parts in regions.values()])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_records_match_numpy_for_one_full_batch_step(dtype):
    X, y = blobs(40)
    net = fb.Sequential(fb.Dense(2, 6, init="he"), fb.ReLU(), fb.Dense(6, 5, init="he"),
                        fb.LeakyReLU(0.1), fb.Dense(5, 3), dtype=dtype, seed=3)
    net.layers[0].params["bias"][1] = -50.0                 # unit 1 of layer 1 is dead
    start = net.params.copy()
    value, dout = fb.SoftmaxCrossEntropy()(net.forward(X), y)
    net.backward(dout)
    grads = net.grads.copy()
    acts = [A.copy() for _, _, A in net.activation_outputs()]
    hist = net.fit(X, y, optimizer="sgd", lr=0.3, epochs=1, batch_size=40, verbose=0,
                   monitor=True)
    assert hist.layer_names == ["0:Dense", "2:Dense", "4:Dense"]
    assert hist.unit_layer_names == ["1:ReLU", "3:LeakyReLU"]
    tol = {"rtol": 1e-5} if dtype == "float32" else {"rtol": 1e-12}
    np.testing.assert_allclose(hist["grad_norm"], [layer_norms(grads, net)], **tol)
    np.testing.assert_allclose(hist["weight_norm"], [layer_norms(net.params, net)], **tol)
    ratio = layer_norms(net.params - start, net) / layer_norms(start, net)
    np.testing.assert_allclose(hist["update_ratio"], [ratio], rtol=1e-4 if dtype == "float32"
                               else 1e-10)
    dead = [1.0 - (A > 0).any(axis=0).mean() for A in acts]
    np.testing.assert_array_equal(hist["dead_fraction"], [dead])
    assert dead[0] > 0.0


def test_records_have_one_row_per_epoch_and_mean_over_steps():
    X, y = blobs()
    net = fb.mlp([2, 16, 16, 3], seed=4)
    hist = net.fit(X, y, epochs=4, batch_size=32, verbose=0, monitor=True)
    for key, width in [("grad_norm", 3), ("weight_norm", 3), ("update_ratio", 3),
                       ("dead_fraction", 2)]:
        assert hist[key].shape == (4, width), key
        assert np.all(np.isfinite(hist[key]))
    assert np.all((hist["dead_fraction"] >= 0) & (hist["dead_fraction"] <= 1))
    assert "grad_norm" not in repr(hist)          # the summary stays scalar
    assert isinstance(hist["loss"], list)


def test_update_ratio_of_zero_initialised_layer_is_nan():
    X, y = blobs(30)
    net = fb.Sequential(fb.Dense(2, 3, init="zeros"), dtype="float64")
    hist = net.fit(X, y, epochs=2, verbose=0, monitor=True)
    assert np.isnan(hist["update_ratio"][0, 0]) and np.isfinite(hist["update_ratio"][1, 0])
    assert hist["dead_fraction"].shape == (2, 0) and hist.unit_layer_names == []


@pytest.mark.parametrize("options", [{}, {"clip_value": 0.05, "optimizer": "sgd"},
                                     {"clip_norm": 0.1, "validation_data": blobs(30, 9)}])
def test_monitoring_does_not_change_training(options):
    X, y = blobs()
    a, b = fb.mlp([2, 16, 8, 3], seed=5), fb.mlp([2, 16, 8, 3], seed=5)
    hist_a = a.fit(X, y, epochs=3, batch_size=16, verbose=0, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fb.TrainingWarning)
        hist_b = b.fit(X, y, epochs=3, batch_size=16, verbose=0, monitor=True, **options)
    np.testing.assert_array_equal(a.params, b.params)
    assert hist_a["loss"] == hist_b["loss"]


# -------------------------------------------------------------------------------- warnings
def training_warnings(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit()
    return result, [w for w in caught if issubclass(w.category, fb.TrainingWarning)]


def test_vanishing_gradients_warn_once_per_fit():
    X, y = blobs(64)
    net = fb.mlp([2] + [16] * 20 + [3], activation="sigmoid", seed=0)
    hist, caught = training_warnings(
        lambda: net.fit(X, y, epochs=3, batch_size=32, verbose=0, monitor=True))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "vanishing gradients at epoch 1" in message and "Hint" in message
    assert caught[0].filename == __file__                 # points at the fit call
    assert np.all(hist["grad_norm"][:, 0] < 1e-3 * hist["grad_norm"][:, -1])
    _, again = training_warnings(lambda: net.fit(X, y, epochs=1, verbose=0, monitor=True))
    assert len(again) == 1                                # once per fit, not once per process


def test_exploding_gradients_warn_above_the_threshold():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    Y = X @ rng.standard_normal((4, 1))
    net = fb.mlp([4, 16, 1], activation="tanh", seed=0)
    _, caught = training_warnings(lambda: net.fit(X, Y, loss="mse", optimizer="sgd", lr=2.0,
                                                  epochs=1, batch_size=8, verbose=0,
                                                  monitor=True))
    assert [str(w.message).split(":")[0] for w in caught] == ["exploding gradients at epoch 1, "
                                                              "step 4"]
    assert "explode_norm=1000" in str(caught[0].message)


def test_exploding_gradients_warn_on_tenfold_growth():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    Y = X @ rng.standard_normal((4, 1))
    net = fb.mlp([4, 16, 1], activation="tanh", seed=0)
    hist, caught = training_warnings(lambda: net.fit(
        X, Y, loss="mse", optimizer="sgd", lr=0.4, epochs=2, batch_size=8, verbose=0,
        monitor=fb.Monitor(explode_norm=1e30)))
    assert len(caught) == 1 and "grew" in str(caught[0].message)
    assert np.linalg.norm(hist["grad_norm"][1]) > 10 * np.linalg.norm(hist["grad_norm"][0])


def test_dead_units_warn():
    X, y = blobs()
    net = fb.mlp([2, 8, 8, 3], seed=1)
    net.layers[2].params["bias"][:6] = -100.0         # 6 of 8 units of layer 3 can never fire
    hist, caught = training_warnings(
        lambda: net.fit(X, y, epochs=2, verbose=0, monitor=True))
    assert len(caught) == 1
    assert "dead units at epoch 1: 75% of the 8 units of layer 3:ReLU" in str(caught[0].message)
    np.testing.assert_array_equal(hist["dead_fraction"][:, 1], [0.75, 0.75])


def test_healthy_training_is_silent():
    X, y = blobs(200)
    net = fb.mlp([2, 32, 32, 3], activation="relu", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fb.TrainingWarning)
        hist = net.fit(X, y, epochs=8, batch_size=16, lr=1e-2, verbose=0, monitor=True,
                       validation_data=blobs(60, seed=1))
    assert hist["val_accuracy"][-1] > 0.95


def test_thresholds_are_adjustable_and_validated():
    X, y = blobs()
    net = fb.mlp([2, 16, 3], seed=2)
    _, caught = training_warnings(lambda: net.fit(X, y, epochs=1, verbose=0,
                                                  monitor=fb.Monitor(explode_norm=1e-9)))
    assert len(caught) == 1 and "explode_norm=1e-09" in str(caught[0].message)
    for kwargs, name in [({"explode_norm": 0}, "explode_norm"), ({"growth": -1}, "growth"),
                         ({"vanishing_ratio": float("nan")}, "vanishing_ratio"),
                         ({"dead_fraction": 1.0}, "dead_fraction")]:
        with pytest.raises(ValueError, match=name):
            fb.Monitor(**kwargs)
    with pytest.raises(TypeError, match="monitor"):
        net.fit(X, y, epochs=1, verbose=0, monitor="yes")
