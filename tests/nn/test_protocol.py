"""A new layer is one class: declared, registered, trained, checked and saved with nothing else
touched (the layer protocol of fastbp.nn.layer)."""
import numpy as np
import pytest

import fastbp as fb
from fastbp.nn.layer import Layer, Workspace
from fastbp.registry import LAYERS
from fastbp.train.step import CompiledStep, LayerStep, make_step


@LAYERS.register()
class FeatureScale(Layer):
    """y = x * s, one learned scale s per feature (a layer without a compiled form)."""

    forward_state = ("_X",)

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self._out, self._dX = Workspace(), Workspace()
        self._X = None

    def input_width(self) -> int:
        return self.num_features

    def output_width(self, in_width):
        return self.num_features

    def parameter_shapes(self):
        return [("scale", (self.num_features,))]

    def initialize(self, rng):
        self.params["scale"][...] = rng.uniform(0.5, 1.5, self.num_features)

    def forward(self, X, training=True):
        self._X = X
        Y = self._out.get(X.shape[0], self.num_features, X.dtype)
        np.multiply(X, self.params["scale"], out=Y)
        return Y

    def backward(self, dout, input_grad=True, accumulate=False):
        grad = (dout * self._X).sum(axis=0)
        if accumulate:
            self.grads["scale"] += grad
        else:
            self.grads["scale"][...] = grad
        if not input_grad:
            return None
        dX = self._dX.get(dout.shape[0], self.num_features, dout.dtype)
        np.multiply(dout, self.params["scale"], out=dX)
        return dX

    def config(self):
        return {"type": "FeatureScale", "num_features": self.num_features}


def network(dtype="float64"):
    return fb.Sequential(fb.Dense(4, 6), fb.Tanh(), FeatureScale(6), fb.Dense(6, 3),
                         dtype=dtype, seed=2)


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 4)), rng.integers(0, 3, 32)


def test_a_new_layer_passes_gradcheck():
    X, y = data()
    assert fb.gradcheck(network(), "cross_entropy", X, y).passed


def test_a_new_layer_trains_layer_by_layer_and_a_builtin_network_compiles():
    X, y = data()
    net = network("float32")
    assert isinstance(make_step(net, fb.SoftmaxCrossEntropy(), fb.Adam(net), True), LayerStep)
    plain = fb.mlp([4, 6, 3])
    assert isinstance(make_step(plain, fb.SoftmaxCrossEntropy(), fb.Adam(plain), True),
                      CompiledStep)
    history = net.fit(X, y, lr=1e-2, epochs=20, batch_size=8, verbose=0)
    assert history["loss"][-1] < history["loss"][0]


def test_a_registered_layer_saves_and_loads(tmp_path):
    X, _ = data()
    net = network()
    net.save(tmp_path / "m.npz")
    loaded = fb.load(tmp_path / "m.npz")
    assert type(loaded.layers[2]) is FeatureScale
    assert np.array_equal(loaded.predict(X), net.predict(X))


def test_an_unregistered_layer_type_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"layer type: expected one of \[.*'FeatureScale'.*\], "
                                         r"got 'Nonexistent'"):
        fb.nn.layer_from_config({"type": "Nonexistent"})


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match="layer type 'FeatureScale' is registered twice"):
        LAYERS.register()(FeatureScale)
