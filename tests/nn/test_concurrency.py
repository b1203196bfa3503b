"""Inference from many threads at once gives the single-threaded bits: no layer writes into a
shared workspace outside training."""
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
    for got, want in zip(_in_threads(call, inputs), expected):
        np.testing.assert_array_equal(got, want)

