"""fastbp.gradcheck: finite differences judge every backward pass, and the judge is tested too.

The first half checks that every layer, activation and loss passes gradcheck in several network
shapes. The second half tests the checker itself with layers whose backward is deliberately
wrong: it must fail, name the parameter, the worst index and both values.
"""
import re

import numpy as np
import pytest

import fastbp as fb

ACTIVATIONS = {
    "sigmoid": fb.Sigmoid,
    "tanh": fb.Tanh,
    "relu": fb.ReLU,
    "leaky_relu": lambda: fb.LeakyReLU(0.1),
    "identity": fb.Identity,
}


def data(n, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def int_labels(n, k, seed=1):
    labels = np.random.default_rng(seed).integers(0, k, size=n)
    labels[: min(n, k)] = np.arange(min(n, k))      # every class present when n >= k
    return labels


def prob_targets(n, k, seed=2):
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)


def regression_targets(n, k, seed=3):
    return np.random.default_rng(seed).standard_normal((n, k))


def bce_targets(n, k, seed=4, soft=False):
    rng = np.random.default_rng(seed)
    if soft:
        return rng.uniform(0.0, 1.0, size=(n, k))
    return rng.integers(0, 2, size=(n, k)).astype(float)


def targets_for(loss_id, n, k):
    """(loss object, targets) for a loss id and an output of width k."""
    if loss_id == "ce_labels":
        return fb.SoftmaxCrossEntropy(), int_labels(n, k)
    if loss_id == "ce_probs":
        return fb.SoftmaxCrossEntropy(), prob_targets(n, k)
    if loss_id == "mse":
        return fb.MSE(), regression_targets(n, k)
    if loss_id == "mse_half":
        return fb.MSE(half=True), regression_targets(n, k)
    if loss_id == "bce":
        return fb.BCEWithLogits(), bce_targets(n, k)
    if loss_id == "bce_soft":
        return fb.BCEWithLogits(), bce_targets(n, k, soft=True)
    raise AssertionError(loss_id)


LOSS_IDS = ["ce_labels", "ce_probs", "mse", "mse_half", "bce", "bce_soft"]


def assert_passed(report, net):
    """A passing report with one entry per parameter of `net`, every element checked."""
    assert isinstance(report, fb.GradcheckReport)
    assert report.passed, str(report)
    names = [name for name, _, _ in net.named_parameters()]
    assert [r.name for r in report.results] == names
    for r, (_, value, _) in zip(report.results, net.named_parameters(), strict=True):
        assert r.passed
        assert r.checked == value.size
        assert tuple(r.shape) == value.shape


# ------------------------------------------------------------------ every layer and activation
@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_hidden_layer_each_activation(act, dtype):
    net = fb.Sequential(fb.Dense(4, 6), ACTIVATIONS[act](), fb.Dense(6, 3), dtype=dtype, seed=1)
    X, y = data(5, 4), int_labels(5, 3)
    assert_passed(fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y), net)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_three_hidden_layers_each_activation(act):
    net = fb.Sequential(fb.Dense(3, 5), ACTIVATIONS[act](), fb.Dense(5, 4), ACTIVATIONS[act](),
                        fb.Dense(4, 6), ACTIVATIONS[act](), fb.Dense(6, 2),
                        dtype="float64", seed=2)
    X, y = data(7, 3), regression_targets(7, 2)
    assert_passed(fb.gradcheck(net, fb.MSE(), X, y), net)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh", "identity"])
def test_mlp_shorthand(act):
    net = fb.mlp([5, 7, 6, 3], activation=act, dtype="float64", seed=3)
    X, y = data(6, 5), int_labels(6, 3)
    assert_passed(fb.gradcheck(net, "cross_entropy", X, y), net)


def test_mixed_activations_in_one_network():
    net = fb.Sequential(fb.Dense(4, 6), fb.Sigmoid(), fb.Dense(6, 5), fb.LeakyReLU(0.1),
                        fb.Dense(5, 5), fb.Tanh(), fb.Dense(5, 4), fb.Identity(),
                        fb.Dense(4, 3), dtype="float64", seed=4)
    X, y = data(8, 4), prob_targets(8, 3)
    assert_passed(fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y), net)


# --------------------------------------------------- activations that are not right after Dense
@pytest.mark.parametrize("first", list(ACTIVATIONS))
@pytest.mark.parametrize("second", ["tanh", "relu", "sigmoid"])
def test_standalone_activation_after_fused_pair(first, second):
    """Dense, act, act, Dense: the second activation runs alone (not fused)."""
    net = fb.Sequential(fb.Dense(4, 6), ACTIVATIONS[first](), ACTIVATIONS[second](),
                        fb.Dense(6, 3), dtype="float64", seed=5)
    X, y = data(6, 4), int_labels(6, 3)
    assert_passed(fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y), net)


def test_relu_then_tanh_example():
    net = fb.Sequential(fb.Dense(3, 5, init="he"), fb.ReLU(), fb.Tanh(), fb.Dense(5, 2),
                        dtype="float64", seed=6)
    assert_passed(fb.gradcheck(net, fb.MSE(), data(9, 3), regression_targets(9, 2)), net)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_activation_as_first_layer(act):
    net = fb.Sequential(ACTIVATIONS[act](), fb.Dense(4, 5), fb.Tanh(), fb.Dense(5, 2),
                        dtype="float64", seed=7)
    assert_passed(fb.gradcheck(net, fb.MSE(), data(6, 4), regression_targets(6, 2)), net)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_activation_as_last_layer(act):
    net = fb.Sequential(fb.Dense(4, 5), fb.Tanh(), fb.Dense(5, 3), ACTIVATIONS[act](),
                        dtype="float64", seed=8)
    assert_passed(fb.gradcheck(net, fb.MSE(half=True), data(6, 4), regression_targets(6, 3)),
                  net)


def test_single_dense_layer():
    net = fb.Sequential(fb.Dense(5, 3), dtype="float64", seed=9)
    assert_passed(fb.gradcheck(net, fb.SoftmaxCrossEntropy(), data(4, 5), int_labels(4, 3)), net)


# ------------------------------------------------------------------------------- every loss
@pytest.mark.parametrize("loss_id", LOSS_IDS)
@pytest.mark.parametrize("shape", ["one_hidden", "three_hidden"])
def test_every_loss(loss_id, shape):
    if shape == "one_hidden":
        net = fb.mlp([4, 8, 3], activation="tanh", dtype="float64", seed=10)
    else:
        net = fb.mlp([4, 6, 5, 6, 3], activation="sigmoid", dtype="float64", seed=11)
    loss, y = targets_for(loss_id, 6, 3)
    assert_passed(fb.gradcheck(net, loss, data(6, 4), y), net)


@pytest.mark.parametrize("name,y_kind", [("cross_entropy", "ce_labels"),
                                         ("softmax_cross_entropy", "ce_probs"),
                                         ("mse", "mse"), ("bce", "bce"),
                                         ("bce_with_logits", "bce_soft")])
def test_loss_given_by_name(name, y_kind):
    net = fb.mlp([3, 5, 2], activation="relu", dtype="float64", seed=12)
    _, y = targets_for(y_kind, 5, 2)
    assert_passed(fb.gradcheck(net, name, data(5, 3), y), net)


# -------------------------------------------------------------------------- network shapes
@pytest.mark.parametrize("loss_id", ["mse", "mse_half", "bce", "bce_soft"])
def test_width_one_output(loss_id):
    net = fb.mlp([3, 6, 1], activation="tanh", dtype="float64", seed=13)
    loss, y = targets_for(loss_id, 7, 1)
    assert_passed(fb.gradcheck(net, loss, data(7, 3), y), net)
    # 1-D targets are accepted for a single output
    assert_passed(fb.gradcheck(net, loss, data(7, 3), y.ravel()), net)


@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_batch_of_one(loss_id):
    net = fb.mlp([4, 5, 3], activation="leaky_relu", dtype="float64", seed=14)
    loss, y = targets_for(loss_id, 1, 3)
    assert_passed(fb.gradcheck(net, loss, data(1, 4), y), net)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_dense_without_bias(act):
    net = fb.Sequential(fb.Dense(4, 6, bias=False), ACTIVATIONS[act](), fb.Dense(6, 3),
                        fb.Tanh(), fb.Dense(3, 2, bias=False), dtype="float64", seed=15)
    names = [name for name, _, _ in net.named_parameters()]
    assert names == ["0.weight", "2.weight", "2.bias", "4.weight"]
    assert_passed(fb.gradcheck(net, fb.SoftmaxCrossEntropy(), data(5, 4), int_labels(5, 2)), net)


def test_wide_inputs_and_single_input_feature():
    net = fb.mlp([1, 4, 2], activation="sigmoid", dtype="float64", seed=16)
    assert_passed(fb.gradcheck(net, fb.MSE(), data(5, 1), regression_targets(5, 2)), net)
    net = fb.mlp([20, 3, 4], activation="relu", dtype="float64", seed=17)
    assert_passed(fb.gradcheck(net, fb.SoftmaxCrossEntropy(), data(5, 20), int_labels(5, 4)), net)


def test_after_training_steps():
    """Gradients are still right at parameters away from the initialisation."""
    net = fb.mlp([4, 8, 3], activation="tanh", dtype="float64", seed=18)
    X, y = data(30, 4), int_labels(30, 3)
    net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.05, epochs=5, batch_size=8,
            verbose=0)
    assert_passed(fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X[:6], y[:6]), net)


# ---------------------------------------------------------- float32 nets: a float64 copy is used
@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_float32_net_passes_with_default_tolerances(loss_id):
    net = fb.mlp([4, 6, 3], activation="tanh", dtype="float32", seed=19)
    loss, y = targets_for(loss_id, 5, 3)
    assert_passed(fb.gradcheck(net, loss, data(5, 4), y), net)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_original_net_is_untouched(dtype):
    net = fb.mlp([4, 6, 3], activation="relu", dtype=dtype, seed=20)
    X, y = data(5, 4), int_labels(5, 3)
    # give the gradient buffer known contents
    net.forward(X)
    net.backward(np.ones((5, 3)))
    params, grads = net.params.copy(), net.grads.copy()
    views = [(value, grad) for _, value, grad in net.named_parameters()]
    out_before = net.predict(X)

    fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y)

    assert net.dtype == np.dtype(dtype)
    assert net.params.dtype == np.dtype(dtype) and net.grads.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(net.params, params)
    np.testing.assert_array_equal(net.grads, grads)
    for (_, value, grad), (value0, grad0) in zip(net.named_parameters(), views, strict=True):
        assert np.shares_memory(value, net.params) and np.shares_memory(grad, net.grads)
        assert value is value0 and grad is grad0
    np.testing.assert_array_equal(net.predict(X), out_before)


def test_float32_net_checked_in_float64():
    """The numeric gradient of a float32 net is a float64 one: errors far below float32 eps."""
    net = fb.mlp([4, 6, 3], activation="tanh", dtype="float32", seed=21)
    report = fb.gradcheck(net, fb.SoftmaxCrossEntropy(), data(5, 4), int_labels(5, 3),
                          atol=1e-9, rtol=1e-7)
    assert report.passed, str(report)
    assert max(r.max_abs_err for r in report.results) < 1e-8


def test_inputs_are_not_modified():
    net = fb.mlp([4, 6, 3], activation="tanh", dtype="float64", seed=22)
    X, y = data(5, 4), prob_targets(5, 3)
    X0, y0 = X.copy(), y.copy()
    fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


# ======================================================================= the checker is tested
class ScaledWeightGradDense(fb.Dense):
    """A Dense layer whose weight gradient is 1% too large (Sequential does not fuse it)."""

    def backward(self, dout, input_grad=True, accumulate=False):
        dX = super().backward(dout, input_grad, accumulate)
        self.grads["weight"] *= 1.01
        return dX


class FlippedBiasGradDense(fb.Dense):
    """A Dense layer that gets the sign of one bias gradient element wrong."""

    bad = 1

    def backward(self, dout, input_grad=True, accumulate=False):
        dX = super().backward(dout, input_grad, accumulate)
        self.grads["bias"][self.bad] *= -1.0
        return dX


class FusedPathBrokenDense(fb.Dense):
    """Corrupts backward_fused only: reached through its own backward (identity activation)."""

    def backward_fused(self, dA, activation, input_grad, accumulate):
        dX = super().backward_fused(dA, activation, input_grad, accumulate)
        self.grads["weight"][0, 0] += 0.05
        return dX


class WrongTanh(fb.Tanh):
    """Tanh whose input gradient is 2% too large: only the layers before it are affected."""

    def backward(self, dout, input_grad=True, accumulate=False):
        dX = super().backward(dout, input_grad, accumulate)
        return None if dX is None else dX * 1.02


def test_subclasses_are_not_fused():
    """Precondition of the tests below: a Dense subclass runs its own forward/backward."""
    net = fb.Sequential(ScaledWeightGradDense(3, 4), fb.Tanh(), fb.Dense(4, 2), seed=0)
    assert len(net._stages) == 3
    assert net._stages[0] is net.layers[0]


def true_gradient(bad_net, loss, X, y):
    """The correct flat gradient: the same parameters in a network of plain layers."""
    layers = []
    for layer in bad_net.layers:
        if isinstance(layer, fb.Dense):
            layers.append(fb.Dense(layer.in_features, layer.out_features, bias=layer.use_bias))
        else:
            layers.append(type(layer)())
    good = fb.Sequential(*layers, dtype="float64", seed=0)
    good.params[...] = bad_net.params
    out = good.forward(X)
    _, dout = loss(out, y)
    good.backward(dout)
    return good


def bad_weight_net(dtype="float64"):
    return fb.Sequential(ScaledWeightGradDense(4, 6), fb.Tanh(), fb.Dense(6, 3),
                         dtype=dtype, seed=23)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_wrong_weight_gradient_raises_naming_parameter_index_and_values(dtype):
    net = bad_weight_net(dtype)
    X, y = data(6, 4), int_labels(6, 3)
    loss = fb.SoftmaxCrossEntropy()
    with pytest.raises(fb.GradcheckError) as info:
        fb.gradcheck(net, loss, X, y)
    err = info.value
    message = str(err)
    assert "0.weight" in message

    # the report travels with the error
    report = err.report
    assert not report.passed
    failing = [r.name for r in report.failures]
    assert failing == ["0.weight"]
    bad = report.failures[0]

    # worst index: where |g| is largest, since the error is 1% of the gradient
    good = true_gradient(net, loss, X, y)
    g = dict((name, grad) for name, _, grad in good.named_parameters())["0.weight"]
    worst = np.unravel_index(np.argmax(np.abs(g)), g.shape)
    assert bad.index == tuple(int(i) for i in worst)
    assert str(bad.index) in message or str(list(bad.index)) in message
    np.testing.assert_allclose(bad.numeric, g[worst], rtol=1e-6)
    np.testing.assert_allclose(bad.analytic, 1.01 * g[worst], rtol=1e-6)
    # both values are printed
    numbers = [float(s) for s in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", message)]
    assert any(np.isclose(v, bad.numeric, rtol=1e-8, atol=0) for v in numbers), message
    assert any(np.isclose(v, bad.analytic, rtol=1e-8, atol=0) for v in numbers), message


def test_sign_error_in_one_bias_element_is_located():
    net = fb.Sequential(fb.Dense(3, 5), fb.ReLU(), FlippedBiasGradDense(5, 4), fb.Sigmoid(),
                        fb.Dense(4, 2), dtype="float64", seed=24)
    X, y = data(7, 3), regression_targets(7, 2)
    loss = fb.MSE()
    with pytest.raises(fb.GradcheckError, match=r"2\.bias") as info:
        fb.gradcheck(net, loss, X, y)
    report = info.value.report
    assert [r.name for r in report.failures] == ["2.bias"]
    bad = report.failures[0]
    assert bad.index == (1,)
    assert "(1,)" in str(info.value)
    assert bad.analytic == pytest.approx(-bad.numeric, rel=1e-6)
    good = true_gradient(net, loss, X, y)
    db = dict((name, grad) for name, _, grad in good.named_parameters())["2.bias"]
    assert bad.numeric == pytest.approx(db[1], rel=1e-6)
    assert abs(bad.numeric) > 1e-4       # a real error, not one hidden by atol


def test_corrupted_fused_backward_is_caught():
    net = fb.Sequential(fb.Dense(3, 4), fb.Tanh(), FusedPathBrokenDense(4, 3),
                        dtype="float64", seed=25)
    with pytest.raises(fb.GradcheckError, match=r"2\.weight") as info:
        fb.gradcheck(net, fb.SoftmaxCrossEntropy(), data(5, 3), int_labels(5, 3))
    bad = info.value.report.failures[0]
    assert bad.index == (0, 0)
    assert bad.analytic - bad.numeric == pytest.approx(0.05, rel=1e-5)


def test_wrong_activation_backward_fails_the_layers_before_it():
    net = fb.Sequential(fb.Dense(3, 5), WrongTanh(), fb.Dense(5, 2), dtype="float64", seed=26)
    X, y = data(6, 3), int_labels(6, 2)
    report = fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y, raise_on_failure=False)
    status = {r.name: r.passed for r in report.results}
    assert status == {"0.weight": False, "0.bias": False, "2.weight": True, "2.bias": True}
    with pytest.raises(fb.GradcheckError, match=r"0\.weight"):
        fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y)


def test_raise_on_failure_false_returns_report():
    net = bad_weight_net()
    X, y = data(6, 4), int_labels(6, 3)
    report = fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y, raise_on_failure=False)
    assert isinstance(report, fb.GradcheckReport)
    assert report.passed is False
    assert [r.name for r in report.results] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    entry = report.results[0]
    assert entry.name == "0.weight" and entry.passed is False
    assert entry in report.failures and len(report.failures) == 1
    assert entry.checked == 24
    assert entry.max_abs_err > 0 and entry.max_rel_err == pytest.approx(0.01 / 1.01, rel=1e-4)
    for r in report.results[1:]:
        assert r.passed
    text = str(report)
    assert "FAIL" in text


def test_gradcheck_error_is_an_exception_with_report():
    assert issubclass(fb.GradcheckError, Exception)
    net = bad_weight_net()
    try:
        fb.gradcheck(net, fb.SoftmaxCrossEntropy(), data(6, 4), int_labels(6, 3))
    except fb.GradcheckError as exc:
        assert isinstance(exc.report, fb.GradcheckReport)
    else:
        pytest.fail("gradcheck accepted a wrong gradient")


def test_tolerances_decide():
    """A 1% error passes with rtol=2e-2 and fails with the default rtol."""
    net = bad_weight_net()
    X, y = data(6, 4), int_labels(6, 3)
    assert fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y, rtol=2e-2).passed
    assert not fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y,
                            raise_on_failure=False).passed


# ------------------------------------------------------------------------------ max_checks
def test_max_checks_limits_checked_elements():
    net = fb.mlp([10, 12, 3], activation="tanh", dtype="float64", seed=27)
    X, y = data(5, 10), int_labels(5, 3)
    report = fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y, max_checks=7)
    assert report.passed
    checked = {r.name: r.checked for r in report.results}
    assert checked == {"0.weight": 7, "0.bias": 7, "2.weight": 7, "2.bias": 3}
    full = fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y)
    assert {r.name: r.checked for r in full.results} == \
        {"0.weight": 120, "0.bias": 12, "2.weight": 36, "2.bias": 3}


def report_summary(report):
    return [(r.name, r.checked, r.index, r.numeric, r.analytic, r.max_abs_err, r.passed)
            for r in report.results]


def test_max_checks_is_seeded_and_deterministic():
    net = bad_weight_net()
    X, y = data(6, 4), int_labels(6, 3)
    loss = fb.SoftmaxCrossEntropy()
    runs = [report_summary(fb.gradcheck(net, loss, X, y, max_checks=5, seed=3,
                                        raise_on_failure=False)) for _ in range(2)]
    assert runs[0] == runs[1]
    # different seeds draw different subsets: the worst checked weight element differs for some
    worst = {fb.gradcheck(net, loss, X, y, max_checks=5, seed=s,
                          raise_on_failure=False).results[0].index for s in range(8)}
    assert len(worst) > 1


class OneBadElementDense(fb.Dense):
    """Only weight[2, 3] has a wrong gradient."""

    def backward(self, dout, input_grad=True, accumulate=False):
        dX = super().backward(dout, input_grad, accumulate)
        self.grads["weight"][2, 3] += 0.1
        return dX


def test_max_checks_checks_a_subset():
    """With a subset, a single wrong element is caught only by the seeds that draw it."""
    net = fb.Sequential(OneBadElementDense(5, 8), fb.Tanh(), fb.Dense(8, 2),
                        dtype="float64", seed=28)
    X, y = data(6, 5), int_labels(6, 2)
    loss = fb.SoftmaxCrossEntropy()
    with pytest.raises(fb.GradcheckError, match=r"0\.weight"):
        fb.gradcheck(net, loss, X, y)
    outcomes = []
    for s in range(12):
        report = fb.gradcheck(net, loss, X, y, max_checks=20, seed=s, raise_on_failure=False)
        assert report.results[0].checked == 20
        if not report.passed:
            assert report.failures[0].name == "0.weight"
            assert report.failures[0].index == (2, 3)
        outcomes.append(report.passed)
        again = fb.gradcheck(net, loss, X, y, max_checks=20, seed=s, raise_on_failure=False)
        assert again.passed == report.passed
    assert True in outcomes and False in outcomes


def test_max_checks_validated():
    net = fb.mlp([3, 4, 2], dtype="float64")
    X, y = data(4, 3), int_labels(4, 2)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="max_checks"):
            fb.gradcheck(net, fb.SoftmaxCrossEntropy(), X, y, max_checks=bad)


# ---------------------------------------------------------------------------- the report table
def test_report_is_a_table_naming_every_parameter():
    net = fb.Sequential(fb.Dense(4, 6), fb.ReLU(), fb.Dense(6, 5, bias=False), fb.Tanh(),
                        fb.Dense(5, 3), dtype="float64", seed=29)
    report = fb.gradcheck(net, fb.SoftmaxCrossEntropy(), data(5, 4), int_labels(5, 3))
    text = str(report)
    lines = text.splitlines()
    names = ["0.weight", "0.bias", "2.weight", "4.weight", "4.bias"]
    for name in names:
        rows = [line for line in lines if line.split() and line.split()[0] == name]
        assert len(rows) == 1, text
    assert len(lines) >= len(names) + 1
    assert "FAIL" not in text
    assert "passed" in text.lower()


def test_report_entries_have_the_documented_fields():
    net = fb.mlp([3, 4, 2], activation="sigmoid", dtype="float64", seed=30)
    report = fb.gradcheck(net, fb.MSE(), data(4, 3), regression_targets(4, 2))
    for r in report.results:
        for field in ("name", "max_abs_err", "max_rel_err", "index", "numeric", "analytic",
                      "checked"):
            assert hasattr(r, field)
        assert r.max_abs_err >= 0 and r.max_rel_err >= 0
        assert isinstance(r.index, tuple)
        assert abs(r.numeric - r.analytic) <= r.max_abs_err + 1e-15
