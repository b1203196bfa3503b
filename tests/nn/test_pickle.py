"""Pickling and deep-copying networks, fitted or not: same predictions, same further training,
and the copy's layers work on the copy's own flat arrays."""
import copy
import pickle

import numpy as np
import pytest

import fastbp as fb


def _nets():
    yield fb.mlp([6, 16, 3], seed=0)
    yield fb.Sequential(fb.Dense(6, 8), fb.BatchNorm(8), fb.GELU(), fb.Dropout(0.2),
                        fb.Residual(fb.Dense(8, 8), fb.Tanh()), fb.Dense(8, 3), seed=1)


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((64, 6)), rng.integers(0, 3, 64)


def _copies(net):
    return {"pickle": pickle.loads(pickle.dumps(net)), "deepcopy": copy.deepcopy(net)}


@pytest.mark.parametrize("net", list(_nets()), ids=["mlp", "mixed"])
@pytest.mark.parametrize("state", ["new", "fitted", "train_step", "standardized"])
def test_copies_predict_and_train_like_the_original(net, state):
    X, y = _data()
    if state == "fitted":
        net.fit(X, y, epochs=2, batch_size=16, verbose=0)
    elif state == "train_step":
        net.train_step(X[:16], y[:16])
        net.activation_outputs()
    elif state == "standardized":
        net.standardizer = fb.Standardizer().fit(X)
    for how, twin in _copies(net).items():
        np.testing.assert_array_equal(twin.predict(X), net.predict(X), err_msg=how)
        assert twin.metadata == net.metadata and twin.metadata is not net.metadata
    twins = _copies(net)
    for model in (net, *twins.values()):
        model.fit(X, y, epochs=1, batch_size=16, verbose=0, optimizer=model.optimizer or "adam")
    for how, twin in twins.items():
        np.testing.assert_array_equal(twin.params, net.params, err_msg=how)
        np.testing.assert_array_equal(twin.buffers, net.buffers, err_msg=how)


def test_a_copy_owns_its_parameters():
    net = fb.mlp([6, 16, 3], seed=0)
    X, _ = _data()
    expected = net.predict(X)
    for twin in _copies(net).values():
        assert twin.layers[0].params["weight"].base is twin.params
        twin.params[...] = 0
        np.testing.assert_array_equal(twin.predict(X), 0)
        np.testing.assert_array_equal(net.predict(X), expected)


@pytest.mark.parametrize("net", list(_nets()), ids=["mlp", "mixed"])
def test_a_copy_on_read_only_arrays_predicts(net):
    """As joblib.load(..., mmap_mode="r") gives them: prediction writes no parameter or
    running statistic."""
    X, y = _data()
    net.fit(X, y, epochs=1, batch_size=16, verbose=0)
    state = pickle.loads(pickle.dumps(net)).__getstate__()
    for name in ("params", "grads", "buffers"):
        state[name] = state[name].copy()
        state[name].setflags(write=False)
    twin = type(net).__new__(type(net))
    twin.__setstate__(state)
    np.testing.assert_array_equal(twin.predict(X), net.predict(X))
