"""Every autograd operation against two oracles: PyTorch's autograd (float64, 1e-10) and central
finite differences (always). Each case differentiates sum(w * op(inputs)) for a random w, so
the whole vector-Jacobian product is checked, not one row of it."""
import numpy as np
import pytest
from autograd_cases import cases, inputs

import fastbp.autograd as ag

CASES = cases()
IDS = [case[0] for case in CASES]


def ours(fn, arrays, seed=1):
    """(value, [gradient of each input]) of fn by fastbp.autograd, with the weights w."""
    leaves = [ag.Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    w = np.random.default_rng(seed).standard_normal(out.shape)
    (out * w).sum().backward()
    return out.data, [leaf.grad for leaf in leaves], w


def relative_error(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)), initial=0.0))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_against_torch(case):
    torch = pytest.importorskip("torch")
    _, fn, torch_fn, shapes, domain = case
    arrays = inputs(shapes, domain, seed=0)
    value, grads, w = ours(fn, arrays)
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = torch_fn(*leaves)
    (out * torch.from_numpy(w)).sum().backward()
    assert relative_error(value, out.detach().numpy()) <= 1e-10
    for g, leaf in zip(grads, leaves, strict=True):
        assert g.shape == leaf.shape and g.dtype == np.float64
        assert relative_error(g, leaf.grad.numpy()) <= 1e-10


def finite_differences(fn, arrays, w, eps=1e-6):
    """Central differences of sum(w * fn(arrays)) with respect to every input element."""
    def objective():
        with ag.no_grad():
            return float(np.sum(w * fn(*[ag.Tensor(a) for a in arrays]).data))

    grads = []
    for a in arrays:
        g = np.empty_like(a)
        for i in np.ndindex(a.shape):
            kept = a[i]
            a[i] = kept + eps
            plus = objective()
            a[i] = kept - eps
            minus = objective()
            a[i] = kept
            g[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_against_finite_differences(case):
    _, fn, _, shapes, domain = case
    arrays = inputs(shapes, domain, seed=0)
    _, grads, w = ours(fn, arrays)
    for g, numeric in zip(grads, finite_differences(fn, arrays, w), strict=True):
        assert relative_error(g, numeric) <= 1e-7


def test_the_cubic_example_is_exact():
    x = ag.Tensor(2.0, requires_grad=True)
    y = x ** 3 + 2 * x
    y.backward()
    assert y.item() == 12.0 and x.grad == 14.0 and x.grad.dtype == np.float64


def test_max_shares_the_gradient_between_ties_as_torch_amax():
    torch = pytest.importorskip("torch")
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    for axis in (None, 1):
        x = ag.Tensor(data, requires_grad=True)
        x.max(axis=axis).sum().backward()
        t = torch.tensor(data, requires_grad=True)
        torch.amax(t, dim=(0, 1) if axis is None else axis).sum().backward()
        np.testing.assert_array_equal(x.grad, t.grad.numpy())


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_and_minimum_split_ties_in_halves_as_torch(op):
    torch = pytest.importorskip("torch")
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0])
    x, y = ag.Tensor(a, requires_grad=True), ag.Tensor(b, requires_grad=True)
    getattr(ag, op)(x, y).sum().backward()
    s, t = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    getattr(torch, op)(s, t).sum().backward()
    np.testing.assert_array_equal(x.grad, s.grad.numpy())
    np.testing.assert_array_equal(y.grad, t.grad.numpy())


@pytest.mark.parametrize("x", [0.0, -1.0])
def test_kinks_take_torch_gradients(x):
    """relu'(0) = 0, abs'(0) = 0, clip at its bound passes the gradient; pow of 0."""
    torch = pytest.importorskip("torch")
    for ours_fn, torch_fn in [(ag.relu, torch.relu), (ag.abs, torch.abs),
                              (lambda v: ag.clip(v, x, 1.0), lambda v: torch.clamp(v, x, 1.0)),
                              (lambda v: v ** 2.0, lambda v: v ** 2.0)]:
        a = ag.Tensor(x, requires_grad=True)
        ours_fn(a).backward()
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        torch_fn(t).backward()
        assert a.grad == t.grad.item()
    base, exponent = ag.Tensor(0.0, requires_grad=True), ag.Tensor(2.0, requires_grad=True)
    (base ** exponent).backward()
    assert base.grad == 0.0 and exponent.grad == 0.0      # torch: 0, not nan
