"""Inference from many threads at once gives the single-threaded bits: no layer writes into a
shared workspace outside training."""
import re
import threading

import numpy as np
import pytest

import fastbp as fb


def _nets():
    yield fb.mlp([256, 512, 10], seed=0)
    yield fb.mlp([256, 64, 10], activation="gelu", seed=1)       # keeps its pre-activation
    yield fb.Sequential(fb.Dense(256, 64), fb.BatchNorm(64), fb.Tanh(), fb.Dropout(0.3),
                        fb.Residual(fb.Dense(64, 64), fb.ELU()), fb.Softplus(),
                        fb.Dense(64, 10), seed=2)


def _in_threads(call, inputs):
    """call(x) for each x, all at once from as many threads; the results in order."""
    results = [None] * len(inputs)
    start = threading.Barrier(len(inputs))

    def run(i):
        start.wait()
        for _ in range(3):
            results[i] = call(inputs[i])
    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


@pytest.mark.parametrize("net", list(_nets()), ids=["relu", "gelu", "mixed"])
@pytest.mark.parametrize("entry", ["predict", "evaluate", "forward"])
def test_concurrent_inference_matches_one_thread(net, entry):
    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal((600, 256)), rng.integers(0, 10, 600)) for _ in range(4)]
    calls = {"predict": lambda xy: net.predict(xy[0], batch_size=128),
             "evaluate": lambda xy: net.evaluate(xy[0], xy[1], "cross_entropy",
                                                 batch_size=128)["loss"],
             "forward": lambda xy: net.forward(xy[0], training=False)}
    call = calls[entry]
    expected = [call(xy) for xy in inputs]
    for got, want in zip(_in_threads(call, inputs), expected, strict=True):
        np.testing.assert_array_equal(got, want)



class Gate(fb.Layer):
    """An identity layer whose training forward waits until the test lets it go on."""

    def __init__(self):
        super().__init__()
        self.inside, self.go_on = threading.Event(), threading.Event()

    def forward(self, X, training=True):
        if training:
            self.inside.set()
            assert self.go_on.wait(10)
        return X

    def backward(self, dout, input_grad=True, accumulate=False):
        return dout if input_grad else None


@pytest.mark.parametrize("first", ["fit", "train_step", "forward"])
def test_a_second_training_call_meanwhile_is_a_clear_error(first):
    gate = Gate()
    net = fb.Sequential(fb.Dense(3, 4), gate, fb.Dense(4, 2), seed=0)
    X, y = np.ones((6, 3)), np.zeros(6, dtype=int)
    calls = {"fit": lambda: net.fit(X, y, epochs=1, verbose=0),
             "train_step": lambda: net.train_step(X, y),
             "forward": lambda: net.forward(X, training=True)}
    worker = threading.Thread(target=calls[first])
    worker.start()
    assert gate.inside.wait(10)
    before = net.params.copy()
    seconds = {"fit": calls["fit"], "train_step": calls["train_step"],
               "forward(training=True)": calls["forward"],
               "backward": lambda: net.backward(np.ones((6, 2)))}
    try:
        for name, call in seconds.items():
            with pytest.raises(RuntimeError, match=rf"{re.escape(name)}.*already in a training"):
                call()
        assert net.predict(X).shape == (6, 2)           # inference is not a training call
    finally:
        gate.go_on.set()
        worker.join()
    if first == "forward":
        np.testing.assert_array_equal(net.params, before)
    net.fit(X, y, epochs=1, verbose=0)                   # free again afterwards


def _fits(net, X, y, times):
    for _ in range(times):
        net.fit(X, y, epochs=2, batch_size=8, verbose=0)
    return net.params


def test_two_fits_on_one_network_from_two_threads_never_interleave():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((256, 8)), rng.integers(0, 3, 256)
    net = fb.mlp([8, 32, 3], seed=0)
    outcomes = []

    def run():
        try:
            net.fit(X, y, epochs=2, batch_size=8, verbose=0)
            outcomes.append("done")
        except RuntimeError:
            outcomes.append("refused")
    workers = [threading.Thread(target=run) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done = outcomes.count("done")
    assert done >= 1 and len(outcomes) == 2
    np.testing.assert_array_equal(net.params, _fits(fb.mlp([8, 32, 3], seed=0), X, y, done))
