"""The textbook 2-2-1 worked example (shared/reference/worked_example.json), to 1e-12."""
import json
import pathlib

import numpy as np
import pytest

import fastbp as fb

HERE = pathlib.Path(__file__).resolve().parent
CANDIDATES = [HERE / "data" / "worked_example.json",
              HERE.parent.parent / "shared" / "reference" / "worked_example.json"]


@pytest.fixture(scope="module")
def example():
    for path in CANDIDATES:
        if path.exists():
            return json.loads(path.read_text())
    pytest.fail(f"worked_example.json not found in {CANDIDATES}")


def build(example):
    net = fb.Sequential(fb.Dense(2, 2), fb.Sigmoid(), fb.Dense(2, 1), fb.Sigmoid(),
                        dtype="float64")
    init = example["initial"]
    views = {name: (value, grad) for name, value, grad in net.named_parameters()}
    views["0.weight"][0][...] = init["W1"]
    views["0.bias"][0][...] = init["b1"]
    views["2.weight"][0][...] = init["W2"]
    views["2.bias"][0][...] = init["b2"]
    x = np.array([example["input"]["x"]])
    y = np.array([example["input"]["y"]])
    return net, views, x, y


def close(got, want):
    np.testing.assert_allclose(np.asarray(got).ravel(), np.asarray(want, float).ravel(),
                               rtol=0, atol=1e-12)


def test_forward_loss_and_gradients(example):
    exp = example["expected"]
    net, views, x, y = build(example)
    out = net.forward(x)
    close(net.layers[1]._A, exp["a1"])   # hidden activations (the sigmoid fused into Dense 0)
    close(out, exp["y_hat"])
    value, dout = fb.MSE(half=True)(out, y)
    close(value, exp["loss"])
    net.backward(dout)
    close(views["0.weight"][1], exp["dW1"])
    close(views["0.bias"][1], exp["db1"])
    close(views["2.weight"][1], exp["dW2"])
    close(views["2.bias"][1], exp["db2"])


def test_one_sgd_step(example):
    exp = example["expected"]
    net, views, x, y = build(example)
    loss = fb.MSE(half=True)
    net.backward(loss(net.forward(x), y)[1])
    fb.SGD(net, lr=example["initial"]["learning_rate"]).step()
    close(views["0.weight"][0], exp["W1_after"])
    close(views["0.bias"][0], exp["b1_after"])
    close(views["2.weight"][0], exp["W2_after"])
    close(views["2.bias"][0], exp["b2_after"])
    out = net.forward(x)
    close(out, exp["y_hat_after"])
    close(loss(out, y)[0], exp["loss_after"])


def test_fit_one_step_matches(example):
    """The same step through fit (batch of one, plain SGD)."""
    exp = example["expected"]
    net, views, x, y = build(example)
    net.fit(x, y, loss=fb.MSE(half=True), optimizer="sgd",
            lr=example["initial"]["learning_rate"], epochs=1, batch_size=1, verbose=0)
    close(views["0.weight"][0], exp["W1_after"])
    close(views["2.bias"][0], exp["b2_after"])
