"""Gradient checkpointing (checkpoint_segments): same gradients, fewer kept activations."""
import numpy as np
import pytest

import fastbp as fb
from fastbp.train.step import LayerStep


def _deep(activation, dtype="float64"):
    return fb.mlp([6, 9, 8, 7, 9, 8, 5], activation=activation, dtype=dtype, seed=1)


def _data(n=11, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)), rng.integers(0, 5, n)


@pytest.mark.parametrize("activation", ["relu", "gelu", "softplus", "tanh"])
@pytest.mark.parametrize("segments", [1, 2, 3, 6])
def test_train_step_gradients_are_bit_identical(activation, segments):
    plain, checkpointed = _deep(activation), _deep(activation)
    for k in range(3):
        X, y = _data(seed=k)
        a = plain.train_step(X, y)
        b = checkpointed.train_step(X, y, checkpoint_segments=segments)
        assert a == b
        np.testing.assert_array_equal(plain.grads, checkpointed.grads)
        np.testing.assert_array_equal(plain.params, checkpointed.params)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_is_bit_identical(dtype):
    X, y = _data(n=70)
    plain, checkpointed = _deep("relu", dtype), _deep("relu", dtype)
    h1 = plain.fit(X, y, epochs=2, batch_size=16, verbose=0)
    h2 = checkpointed.fit(X, y, epochs=2, batch_size=16, verbose=0, checkpoint_segments=3)
    np.testing.assert_array_equal(plain.params, checkpointed.params)
    assert h1["loss"] == h2["loss"] and h1["accuracy"] == h2["accuracy"]


@pytest.mark.parametrize("activation, per_stage", [("relu", 1), ("gelu", 2)])
def test_only_segment_ends_keep_their_own_buffers(activation, per_stage):
    """12 stages in 4 segments: the 4 segment ends keep their outputs, the other 2 stages of a
    segment share one pool (GELU also keeps every pre-activation, in the pool)."""
    net = fb.mlp([4] + [32] * 11 + [32], activation=activation, seed=0)
    X, y = np.zeros((50, 4), np.float32), np.zeros(50, np.int64)
    net.train_step(X, y)
    stage_bytes = 50 * 32 * 4
    assert net._train_step.plan.activation_nbytes == (12 + 11 * (per_stage - 1)) * stage_bytes
    net.train_step(X, y, checkpoint_segments=4)
    pool = 2 + 3 * (per_stage - 1) if activation == "gelu" else 2
    assert net._train_step.plan.activation_nbytes == (4 + pool) * stage_bytes


def test_bad_segment_counts_are_refused():
    net = _deep("relu")
    X, y = _data()
    with pytest.raises(ValueError, match=r"checkpoint_segments: expected 1 to 6"):
        net.train_step(X, y, checkpoint_segments=7)
    with pytest.raises(ValueError, match="checkpoint_segments"):
        net.fit(X, y, checkpoint_segments=0, verbose=0)
    for bad in ("2", 2.5, True):
        with pytest.raises(ValueError, match="checkpoint_segments: expected a positive integer"):
            net.train_step(X, y, checkpoint_segments=bad)
    with pytest.raises(ValueError, match="monitor"):
        net.fit(X, y, checkpoint_segments=2, monitor=True, verbose=0)


class PassThrough(fb.Layer):
    """A custom layer (the identity): it sends a network down the layer-by-layer path."""

    def forward(self, X, training=True):
        return X

    def backward(self, dout, input_grad=True, accumulate=False):
        return dout


def _layered(dtype="float64", dropout=True):
    """A network run layer by layer (a custom layer), with BatchNorm, Dropout and Residual."""
    dropout_layers = [fb.Dropout(0.2)] if dropout else []
    return fb.Sequential(PassThrough(), fb.Dense(6, 8), fb.BatchNorm(8), fb.ReLU(),
                         *dropout_layers,
                         fb.Residual(fb.Dense(8, 8), fb.GELU(), fb.BatchNorm(8)),
                         fb.Dense(8, 7), fb.Tanh(), fb.Dense(7, 5), dtype=dtype, seed=2)


@pytest.mark.parametrize("segments", [1, 2, 3, 8])
def test_layer_by_layer_networks_are_bit_identical(segments):
    """BatchNorm statistics and Dropout masks are replayed, not redrawn or updated twice."""
    plain, checkpointed = _layered(), _layered()
    assert len(plain._stages) == 8
    for k in range(3):
        X, y = _data(seed=k)
        a = plain.train_step(X, y)
        b = checkpointed.train_step(X, y, checkpoint_segments=segments)
        assert isinstance(checkpointed._train_step, LayerStep)
        assert a == b
        np.testing.assert_array_equal(plain.grads, checkpointed.grads)
        np.testing.assert_array_equal(plain.params, checkpointed.params)
        np.testing.assert_array_equal(plain.buffers, checkpointed.buffers)
    np.testing.assert_array_equal(plain.predict(X), checkpointed.predict(X))


def test_layer_by_layer_fit_is_bit_identical():
    X, y = _data(n=70)
    plain, checkpointed = _layered(), _layered()
    h1 = plain.fit(X, y, epochs=2, batch_size=16, verbose=0)
    h2 = checkpointed.fit(X, y, epochs=2, batch_size=16, verbose=0, checkpoint_segments=2)
    np.testing.assert_array_equal(plain.params, checkpointed.params)
    np.testing.assert_array_equal(plain.buffers, checkpointed.buffers)
    assert h1["loss"] == h2["loss"]


def test_layer_by_layer_checkpointing_releases_inner_outputs():
    """After the forward pass only the kept segment inputs hold activations: the stages of
    released segments keep no arrays of that pass."""
    net = _layered(dropout=False)
    X, _ = _data()
    net.run_checkpointed_forward(X, 2)
    dense, batchnorm = net._stages[1:3]   # in the first segment, which is released
    assert dense._X is None and dense._Z._buffer is None
    assert batchnorm._X is None and batchnorm._out._buffer is None
    assert len(net._segment_inputs) == 2
    with pytest.raises(ValueError, match="checkpoint_segments: expected 1 to 7"):
        net.run_checkpointed_forward(X, 8)
