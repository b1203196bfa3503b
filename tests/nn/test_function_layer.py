"""FunctionLayer: a layer written with fastbp.autograd trains with fit and passes gradcheck."""
import pickle

import numpy as np
import pytest

import fastbp as fb


def gated(x, weight, bias, gate):
    """A gated linear unit of its own: (x W^T + b) * sigmoid(gate)."""
    return (x @ weight.T + bias) * gate.sigmoid()


def layer():
    return fb.FunctionLayer(gated, {"weight": (4, 6), "bias": (4,), "gate": (4,)},
                            in_features=6, out_features=4, init={"gate": 0.5})


def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((32, 5)), rng.integers(0, 3, 32)


def test_a_function_layer_passes_gradcheck_in_the_middle_and_first():
    X, y = data()
    net = fb.Sequential(fb.Dense(5, 6), fb.Tanh(), layer(), fb.Dense(4, 3), dtype="float64",
                        seed=1)
    report = fb.gradcheck(net, "cross_entropy", X[:8], y[:8])
    assert report.passed and [r.name for r in report.results][2:5] == \
        ["2.weight", "2.bias", "2.gate"]
    first = fb.Sequential(fb.FunctionLayer(lambda x, s: x * s, {"s": (5,)}, init={"s": 1.0}),
                          fb.Dense(5, 3), dtype="float64")
    assert fb.gradcheck(first, "cross_entropy", X[:8], y[:8]).passed


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_function_layer_trains_with_fit(dtype):
    X, y = data()
    net = fb.Sequential(fb.Dense(5, 6), fb.ReLU(), layer(), fb.Dense(4, 3), dtype=dtype, seed=2)
    np.testing.assert_array_equal(net.layers[2].params["gate"], 0.5)
    bound = 1 / np.sqrt(6)
    assert np.abs(net.layers[2].params["weight"]).max() <= bound
    assert not net.layers[2].params["bias"].any()
    history = net.fit(X, y, lr=1e-2, epochs=15, batch_size=8, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    assert net.predict(X).dtype == np.dtype(dtype)


def test_accumulate_and_inference_keep_no_tape():
    X, _ = data()
    net = fb.Sequential(fb.Dense(5, 6), layer(), dtype="float64", seed=3)
    net.forward(X[:4])
    dout = np.ones((4, 4))
    net.backward(dout)
    once = net.grads.copy()
    net.backward(dout, accumulate=True)
    np.testing.assert_allclose(net.grads, 2 * once)
    net.predict(X)
    assert net.layers[1]._tape[0].shape == (4, 6)   # inference leaves the training tape


def test_a_function_layer_cannot_be_saved_and_errors_are_named(tmp_path):
    net = fb.Sequential(fb.Dense(5, 6), layer(), seed=4)
    with pytest.raises(TypeError, match=r"FunctionLayer\(gated\) cannot be saved"):
        net.save(tmp_path / "m.npz")
    assert pickle.loads(pickle.dumps(net.layers[1])).shapes == layer().shapes
    with pytest.raises(TypeError, match="fn: expected a function"):
        fb.FunctionLayer(3, {})
    with pytest.raises(ValueError, match="parameter_shapes: expected names usable as keywords"):
        fb.FunctionLayer(gated, {"a.b": (2,)})
    with pytest.raises(ValueError, match=r"parameter_shapes\['w'\]: expected a positive"):
        fb.FunctionLayer(gated, {"w": (0, 2)})
    with pytest.raises(ValueError, match="init: 'x' is not a parameter"):
        fb.FunctionLayer(gated, {"w": (2,)}, init={"x": 1.0})
    bad = fb.Sequential(fb.Dense(5, 6), fb.FunctionLayer(lambda x: x[:, :2]), seed=5)
    with pytest.raises(ValueError, match=r"expected fn to return a Tensor of shape \(3, 6\), got "
                                         r"shape \(3, 2\)"):
        bad.predict(np.ones((3, 5)))
