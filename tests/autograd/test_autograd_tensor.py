"""The tape: accumulation, no_grad, detach, dtypes and promotion, the functional form, and clear
errors for bad input; and a property test of random compositions against finite differences."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fastbp.autograd as ag
from fastbp.autograd import Tensor


def test_gradients_accumulate_over_backward_calls_and_uses():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * x + x            # x used three times: 2x + 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 5.0])
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 8.0])
    x.grad = None
    (x * 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_backward_with_a_gradient_and_only_leaves_get_grad():
    x = Tensor(np.arange(3.0), requires_grad=True)
    y = x * 2
    y.backward(np.array([1.0, 0.5, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 1.0, -2.0])
    assert y.grad is None


def test_no_grad_and_detach_leave_the_tape():
    x = Tensor(1.5, requires_grad=True)
    with ag.no_grad():
        assert not ag.is_recording()
        y = x * 2
    assert ag.is_recording() and not y.requires_grad
    z = x.detach() * x
    z.backward()
    assert x.grad == 1.5 and not x.detach().requires_grad


def test_a_long_chain_needs_no_recursion():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_kept_and_numbers_take_the_tensor_dtype(dtype):
    x = Tensor(np.ones(3, dtype=dtype), requires_grad=True)
    y = (2 * x + 1.5) / 3 - np.arange(3) + (x > 0)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype


def test_mixed_precision_promotes_and_gradients_keep_each_dtype():
    a = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    c = a * b
    assert c.dtype == np.float64
    c.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_python_numbers_and_lists_become_float64():
    assert Tensor(2).dtype == np.float64 and Tensor([1, 2]).dtype == np.float64


@pytest.mark.parametrize("data", [np.arange(3), np.array([True]), np.array([1j]),
                                  np.array(["a"]), np.array([object()]), True, "x"])
def test_non_float_data_is_refused(data):
    with pytest.raises(TypeError, match="data: expected"):
        Tensor(data)


def test_bad_backward_calls_name_the_problem():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="gradient: expected an array of shape \\(3,\\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="gradient: expected shape \\(3,\\)"):
        (x * 2).backward(np.ones(4))
    with pytest.raises(TypeError, match="gradient: expected float32 or float64"):
        (x * 2).backward(np.ones(3, dtype=complex))
    with pytest.raises(ValueError, match="gradient: expected finite"):
        (x * 2).backward(np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="does not require a gradient"):
        Tensor(1.0).backward()
    with pytest.raises(TypeError, match="requires_grad: expected True or False"):
        Tensor(1.0, requires_grad=1)


def test_bad_arguments_of_operations_are_named():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="axis: axis 2 is out of range"):
        x.sum(axis=2)
    with pytest.raises(TypeError, match="axis: expected None, an int"):
        x.mean(axis=1.0)
    with pytest.raises(ValueError, match="axis: repeated axis"):
        x.max(axis=(0, -2))
    with pytest.raises(TypeError, match="axis: expected an int"):
        ag.softmax(x, axis=None)
    with pytest.raises(ValueError, match="shape: cannot reshape"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="axes: expected a permutation"):
        x.transpose(0)
    with pytest.raises(ValueError, match="matmul: the inner dimensions differ"):
        x @ x
    with pytest.raises(ValueError, match="matmul: expected operands of at least one"):
        x @ 2.0
    with pytest.raises(TypeError, match="b: expected"):
        x * np.array([1j, 2j, 3j])
    with pytest.raises(TypeError, match="condition: expected a boolean array"):
        ag.where(np.ones(3), x, 0.0)
    with pytest.raises(TypeError, match="indices: expected an integer array"):
        ag.take_along_axis(x, np.zeros((2, 1)), 1)
    with pytest.raises(IndexError, match="indices: expected values in"):
        ag.take_along_axis(x, np.full((2, 1), 3), 1)
    with pytest.raises(IndexError, match="index:"):
        x[5]
    with pytest.raises(ValueError, match="clip: expected a bound"):
        x.clip()
    with pytest.raises(ValueError, match="item: expected a tensor of one element"):
        x.item()


def test_grad_and_value_and_grad():
    def f(w, x, scale=1.0):
        return ((x @ w).tanh() ** 2).mean() * scale

    rng = np.random.default_rng(0)
    w, x = rng.standard_normal(3), rng.standard_normal((4, 3))
    gw = ag.grad(f)(w, x)
    t = Tensor(w, requires_grad=True)
    f(t, x).backward()
    np.testing.assert_array_equal(gw, t.grad)
    value, (gw2, gx) = ag.value_and_grad(f, argnums=(0, 1))(w, x, scale=2.0)
    assert value == pytest.approx(2 * f(Tensor(w), x).item())
    np.testing.assert_allclose(gw2, 2 * gw)
    assert gx.shape == x.shape
    assert np.array_equal(ag.grad(lambda a, b: b.sum(), argnums=0)(w, Tensor(w)), 0 * w)


def test_grad_errors():
    with pytest.raises(TypeError, match="f: expected a function"):
        ag.grad(3)
    with pytest.raises(ValueError, match="argnums: expected an int >= 0"):
        ag.grad(lambda x: x, argnums=-1)
    with pytest.raises(ValueError, match="argnums: 1 asks for argument 1"):
        ag.grad(lambda x: x.sum(), argnums=1)(np.ones(2))
    with pytest.raises(TypeError, match="f: expected it to return a Tensor"):
        ag.grad(lambda x: 1.0)(np.ones(2))
    with pytest.raises(ValueError, match="f: expected it to return one element"):
        ag.grad(lambda x: x * 2)(np.ones(2))


# ------------------------------------------------------------ random compositions vs differences
UNARY = [ag.tanh, ag.sigmoid, lambda x: x.exp() * 0.5, lambda x: (x * x + 1.0).log(),
         lambda x: (x * x + 0.5).sqrt(), lambda x: -x, lambda x: x ** 2,
         lambda x: ag.softmax(x, axis=-1), lambda x: ag.log_softmax(x, axis=0),
         lambda x: x.T.T, lambda x: x / (x.abs() + 1.0)]
BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
          lambda a, b: a / (b * b + 1.0), lambda a, b: ag.where(a.data > b.data, a, b * 2.0)]
REDUCE = [lambda x: x.sum(), lambda x: x.mean(axis=1).sum(), lambda x: ag.logsumexp(x),
          lambda x: x.max(axis=0, keepdims=True).sum(), lambda x: (x ** 2).sum(axis=(0, 1))]


@settings(max_examples=25, deadline=None)
@given(program=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 10), st.integers(0, 2)),
                        min_size=1, max_size=6),
       reduce=st.integers(0, len(REDUCE) - 1), seed=st.integers(0, 2**16),
       broadcast=st.booleans())
@example(program=[(1, 4, 0), (1, 0, 0), (0, 2, 0), (0, 2, 0)], reduce=0, seed=0,
         broadcast=False)   # f about 6e12: its ulp exceeds what a perturbation changes
def test_random_expressions_match_finite_differences(program, reduce, seed, broadcast):
    """A random chain of unary and binary operations (the second operand broadcast or not),
    reduced to a scalar: its gradient with respect to both inputs matches central differences."""
    rng = np.random.default_rng(seed)
    x0, y0 = rng.standard_normal((3, 4)), rng.standard_normal((4,) if broadcast else (3, 4))

    def f(x, y):
        h = x
        for kind, op, _ in program:
            h = UNARY[op](h) if kind == 0 else BINARY[op % len(BINARY)](h, y)
        return REDUCE[reduce](h)

    gx, gy = ag.grad(f, argnums=(0, 1))(x0, y0)
    eps = 1e-6
    for arr, g in ((x0, gx), (y0, gy)):
        for i in np.ndindex(arr.shape):
            kept = arr[i]
            arr[i] = kept + eps
            plus = f(Tensor(x0), Tensor(y0)).item()
            arr[i] = kept - eps
            minus = f(Tensor(x0), Tensor(y0)).item()
            arr[i] = kept
            numeric = (plus - minus) / (2 * eps)
            # the difference quotient's own rounding error: a few ulps of f, divided by 2 eps
            rounding = 4 * np.finfo(np.float64).eps * max(abs(plus), abs(minus)) / (2 * eps)
            assert abs(g[i] - numeric) <= 1e-5 * max(1.0, abs(numeric)) + rounding, \
                (i, g[i], numeric)
