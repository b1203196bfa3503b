"""The examples of the README section on fastbp.autograd, as they are written there."""


def test_the_cubic_example():
    from fastbp.autograd import Tensor

    x = Tensor(2.0, requires_grad=True)
    y = x**3 + 2 * x
    y.backward()
    assert x.grad == 14.0            # 3 x^2 + 2 at x = 2


def test_a_focal_loss_trained_with_fit():
    import fastbp as fb
    from fastbp import autograd as ag
    from fastbp.datasets import load_digits

    def focal_loss(out, y, gamma=2.0):
        """-mean((1 - p_t)^gamma log p_t), p_t the probability of the true class."""
        log_pt = ag.take_along_axis(out.log_softmax(axis=1), y[:, None], axis=1)
        return -((1 - log_pt.exp()) ** gamma * log_pt).mean()

    X, y = load_digits()
    net = fb.mlp([64, 64, 10], seed=0)
    history = net.fit(X / 16.0, y, loss=focal_loss, lr=1e-2, epochs=5, batch_size=64, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    print(net.evaluate(X / 16.0, y, loss="cross_entropy"))


def test_a_function_layer():
    import numpy as np

    import fastbp as fb

    def gated(x, weight, bias, gate):
        """A linear layer whose outputs are scaled by learned gates in (0, 1)."""
        return (x @ weight.T + bias) * gate.sigmoid()

    layer = fb.FunctionLayer(gated, {"weight": (16, 32), "bias": (16,), "gate": (16,)},
                             in_features=32, out_features=16)
    net = fb.Sequential(fb.Dense(8, 32), fb.ReLU(), layer, fb.Dense(16, 3), dtype="float64")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 8)), rng.integers(0, 3, 64)
    assert fb.gradcheck(net, "cross_entropy", X[:8], y[:8]).passed
    history = net.fit(X, y, lr=1e-2, epochs=10, batch_size=16, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
