"""Dropout: the counter-based mask generator against a NumPy implementation (float32/float64,
1 and 2 threads), training and evaluation modes, reproducibility, frozen masks for gradcheck,
save/load, and bad arguments."""
import math

import numpy as np
import pytest
from thread_helpers import num_threads

import fastbp as fb
from fastbp import _core as K

DTYPES = ["float32", "float64"]
MASK64 = (1 << 64) - 1


def rnd(shape, seed, dtype="float64"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------------ NumPy reference
def mix64(z):
    """splitmix64's output function on Python ints or uint64 arrays (wrapping arithmetic)."""
    if isinstance(z, int):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def ref_keep(n, p, seed, draw):
    """The documented mask: keep_i = u_i >= ceil(p 2^32), u from splitmix64 of the stream."""
    stream = mix64(seed ^ mix64(draw))
    k = np.arange(1, (n + 1) // 2 + 1, dtype=np.uint64)
    h = mix64(np.uint64(stream) + k * np.uint64(0x9E3779B97F4A7C15))
    u = np.empty(2 * h.shape[0], dtype=np.uint64)
    u[0::2] = h & np.uint64(0xFFFFFFFF)
    u[1::2] = h >> np.uint64(32)
    return u[:n] >= np.uint64(math.ceil(p * 2.0 ** 32))


# ---------------------------------------------------------------------------------- kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (64, 33), (301, 129)])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_kernel_matches_the_numpy_generator(dtype, shape, p, threads):
    x = rnd(shape, 0, dtype)
    y = np.empty_like(x)
    K.dropout(x, y, p, 12345, 7)
    keep = ref_keep(x.size, p, 12345, 7).reshape(shape)
    scale = np.asarray(1.0 / (1.0 - p), dtype=dtype)
    np.testing.assert_array_equal(y, np.where(keep, x * scale, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [1, 4, 7, 33])
def test_rows_kernel_gives_the_rows_the_masks_of_their_positions(dtype, cols, threads):
    """dropout_rows: rows taken from a larger batch (any order, repeats) get exactly the mask
    `dropout` gives them in that batch: how a rank of data-parallel training draws its masks."""
    batch = rnd((40, cols), 2, dtype)
    whole = np.empty_like(batch)
    K.dropout(batch, whole, 0.4, 77, 5)
    positions = np.array([3, 0, 39, 17, 18, 18, 1], dtype=np.int64)
    part = np.ascontiguousarray(batch[positions])
    out = np.empty_like(part)
    K.dropout_rows(part, out, positions, 0.4, 77, 5)
    np.testing.assert_array_equal(out, whole[positions])
    K.dropout_rows(part, part, positions, 0.4, 77, 5)        # in place
    np.testing.assert_array_equal(part, whole[positions])


def test_rows_kernel_refuses_bad_positions():
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match="positions: expected a C-contiguous int64 array of 3"):
        K.dropout_rows(x, x, np.arange(2), 0.5, 1, 0)
    with pytest.raises(ValueError, match="positions: expected a C-contiguous int64 array of 3"):
        K.dropout_rows(x, x, [0, 1, 2], 0.5, 1, 0)
    with pytest.raises(ValueError, match="positions: expected positions >= 0, got -1"):
        K.dropout_rows(x, x, np.array([0, -1, 2]), 0.5, 1, 0)


def test_same_mask_for_any_thread_count_and_in_place():
    x = rnd((500, 130), 1)
    out = []
    for threads in (1, 2):
        with num_threads(threads):
            y = np.empty_like(x)
            K.dropout(x, y, 0.3, 99, 3)
            out.append(y)
    assert np.array_equal(out[0], out[1])
    in_place = x.copy()
    K.dropout(in_place, in_place, 0.3, 99, 3)
    assert np.array_equal(in_place, out[0])


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_keep_fraction_and_mean_are_preserved(p):
    x = np.ones((400, 250))
    y = np.empty_like(x)
    K.dropout(x, y, p, 2024, 0)
    n = x.size
    kept = np.count_nonzero(y) / n
    assert abs(kept - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p))


def test_masks_differ_between_draws_and_seeds():
    x = np.ones((50, 40))
    masks = {}
    for seed, draw in [(1, 0), (1, 1), (2, 0), (2**64 - 1, 2**64 - 1)]:
        y = np.empty_like(x)
        K.dropout(x, y, 0.5, seed, draw)
        masks[seed, draw] = y != 0
    keys = list(masks)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            agreement = np.mean(masks[a] == masks[b])
            assert 0.4 < agreement < 0.6, (a, b)     # unrelated masks agree half the time


def test_kernel_argument_errors():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\), got 1.0"):
        K.dropout(x, x.copy(), 1.0, 0, 0)
    with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 2\*\*64\)"):
        K.dropout(x, x.copy(), 0.5, -1, 0)
    with pytest.raises(ValueError, match=r"draw: expected an integer in \[0, 2\*\*64\)"):
        K.dropout(x, x.copy(), 0.5, 0, 2**64)
    with pytest.raises(ValueError, match="seed: expected an integer"):
        K.dropout(x, x.copy(), 0.5, 1.5, 0)
    with pytest.raises(ValueError, match="y: expected shape"):
        K.dropout(x, np.ones((4, 3)), 0.5, 0, 0)
    with pytest.raises(TypeError, match="y: expected dtype float64"):
        K.dropout(x, np.ones((3, 4), np.float32), 0.5, 0, 0)


# ------------------------------------------------------------------------------------ layer
def dropout_net(p=0.4, dtype="float64", seed=0):
    return fb.Sequential(fb.Dense(5, 8), fb.Tanh(), fb.Dropout(p), fb.Dense(8, 3),
                         dtype=dtype, seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_masks_and_evaluation_is_identity(dtype):
    net = dropout_net(0.4, dtype)
    drop = net.layers[2]
    X = rnd((6, 8), 0, dtype)
    out = drop.forward(X, training=True)
    keep = ref_keep(X.size, 0.4, drop.seed, 0).reshape(X.shape)
    np.testing.assert_array_equal(out, np.where(keep, X * np.asarray(1 / 0.6, dtype), 0))
    dout = rnd((6, 8), 1, dtype)
    np.testing.assert_array_equal(drop.backward(dout),
                                  np.where(keep, dout * np.asarray(1 / 0.6, dtype), 0))
    second = drop.forward(X, training=True)            # a new mask per training forward
    assert not np.array_equal(second != 0, keep)
    assert np.array_equal(drop.forward(X, training=False), X)
    Xn = rnd((6, 5), 2, dtype)
    np.testing.assert_array_equal(net.predict(Xn), net.predict(Xn))


def test_zero_probability_is_identity_in_training():
    net = dropout_net(0.0)
    X = rnd((4, 8), 0)
    assert np.array_equal(net.layers[2].forward(X, training=True), X)
    assert np.array_equal(net.layers[2].backward(X), X)


def test_runs_repeat_exactly_and_the_seed_comes_from_the_network():
    X = rnd((10, 5), 0)
    a, b, c = dropout_net(seed=3), dropout_net(seed=3), dropout_net(seed=4)
    assert a.layers[2].seed == b.layers[2].seed != c.layers[2].seed
    for _ in range(3):
        out_a, out_b = a.forward(X, training=True), b.forward(X, training=True)
        assert np.array_equal(out_a, out_b)
    y = np.arange(10) % 3
    a.fit(X, y, epochs=3, batch_size=4, verbose=0)
    b.fit(X, y, epochs=3, batch_size=4, verbose=0)
    assert np.array_equal(a.params, b.params)


def test_backward_uses_the_mask_of_the_latest_forward():
    drop = fb.Dropout(0.5)
    X = rnd((7, 5), 0) + 10.0                          # no zero inputs: zeros are the mask's
    for _ in range(3):
        out = drop.forward(X, training=True)
        dX = drop.backward(np.ones_like(X))
        np.testing.assert_array_equal(dX, np.where(out != 0, 2.0, 0.0))


def test_frozen_mask_is_reused_for_any_batch_size():
    drop = fb.Dropout(0.5).freeze_mask()
    X = rnd((9, 6), 0)
    first = drop.forward(X, training=True).copy()
    np.testing.assert_array_equal(drop.forward(X, training=True), first)
    np.testing.assert_array_equal(drop.forward(X[:4], training=True), first[:4])
    drop.freeze_mask(False)
    assert not np.array_equal(drop.forward(X, training=True), first)
    assert drop.freeze_mask() is drop and drop.mask_frozen


def test_gradcheck_with_frozen_masks_in_a_deep_network():
    net = fb.Sequential(fb.Dense(5, 8), fb.ReLU(), fb.Dropout(0.3), fb.Dense(8, 8), fb.Tanh(),
                        fb.Dropout(0.5), fb.Dense(8, 3), dtype="float64", seed=1)
    net.params[...] = rnd(net.params.size, 2)
    X, y = rnd((6, 5), 3), np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(fb.GradcheckError):            # a new mask at every evaluation
        fb.gradcheck(net, "cross_entropy", X, y, max_checks=5)
    for layer in net.layers:
        if isinstance(layer, fb.Dropout):
            layer.freeze_mask()
    report = fb.gradcheck(net, "cross_entropy", X, y)
    assert report.passed and len(report.results) == 6


def test_save_load_round_trip(tmp_path):
    net = dropout_net(0.25)
    X, y = rnd((20, 5), 0), np.arange(20) % 3
    net.fit(X, y, epochs=2, batch_size=8, verbose=0)
    net.save(tmp_path / "d.npz")
    loaded = fb.load(tmp_path / "d.npz")
    assert loaded.layers[2].config() == {"type": "Dropout", "p": 0.25,
                                         "seed": net.layers[2].seed}
    assert loaded.layers[2].seed == net.layers[2].seed
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert net.buffers.size == 0
    # The position in the mask sequence is not saved (as PyTorch keeps no generator state in a
    # model): a loaded network draws the masks a freshly built one draws.
    H = rnd((4, 8), 5)
    np.testing.assert_array_equal(loaded.layers[2].forward(H, training=True),
                                  dropout_net(0.25).layers[2].forward(H, training=True))


def test_astype_keeps_the_mask_sequence():
    net = dropout_net(0.5, "float32")
    X = rnd((6, 5), 0)
    net.forward(X, training=True)
    twin = net.astype("float64")
    np.testing.assert_allclose(twin.forward(X, training=True), net.forward(X, training=True),
                               rtol=1e-5, atol=1e-6)


def test_constructor_errors():
    for p in (1.0, -0.1, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match=r"p: expected a finite number >= 0 and < 1.0"):
            fb.Dropout(p)


def test_a_given_seed_is_kept_and_the_network_seed_stream_is_unchanged():
    given = fb.Sequential(fb.Dense(5, 4), fb.Dropout(0.5, seed=7), fb.Dense(4, 2), seed=3)
    drawn = fb.Sequential(fb.Dense(5, 4), fb.Dropout(0.5), fb.Dense(4, 2), seed=3)
    assert given.layers[1].seed == 7 and drawn.layers[1].seed != 7
    np.testing.assert_array_equal(given.params, drawn.params)
    with pytest.raises(ValueError, match="seed: expected an integer >= 0, got 1.5"):
        fb.Dropout(0.5, seed=1.5)
