"""Gradient checkpointing (checkpoint_segments): same gradients, fewer kept activations."""
import numpy as np
import pytest

import fastbp as fb


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
    with pytest.raises(ValueError, match="monitor"):
        net.fit(X, y, checkpoint_segments=2, monitor=True, verbose=0)


def test_layer_by_layer_networks_get_a_clear_error():
    class Twice(fb.Layer):
        def forward(self, X, training=True):
            return 2 * X

        def backward(self, dout, input_grad=True, accumulate=False):
            return 2 * dout

    net = fb.Sequential(fb.Dense(6, 4), Twice(), fb.Dense(4, 5))
    X, y = _data()
    with pytest.raises(ValueError, match="compiled engine"):
        net.train_step(X, y, checkpoint_segments=2)
