"""fastbp.autograd: reverse-mode differentiation of functions written with Tensors.

Write the forward computation with `Tensor` operations; `backward()` gives the gradients::

    x = Tensor(2.0, requires_grad=True)
    y = x**3 + 2 * x
    y.backward()          # x.grad == 14

Pure NumPy (not a hot path): it computes custom losses (`fastbp.Loss.from_function`) and
custom layers (`fastbp.FunctionLayer`) for the compiled engine, and anything else by hand.
"""
from fastbp.autograd.arithmetic import add, div, matmul, mul, neg, power, sub
from fastbp.autograd.elementwise import (
    abs,
    clip,
    exp,
    log,
    maximum,
    minimum,
    relu,
    sigmoid,
    sqrt,
    tanh,
    where,
)
from fastbp.autograd.functional import grad, value_and_grad
from fastbp.autograd.nn_functions import log_softmax, softmax
from fastbp.autograd.reductions import logsumexp, max, mean, sum
from fastbp.autograd.shapes import getitem, reshape, take_along_axis, transpose
from fastbp.autograd.tensor import Tensor, as_tensor, is_recording, no_grad, unbroadcast

__all__ = [
    "Tensor", "as_tensor", "no_grad", "is_recording", "unbroadcast", "grad", "value_and_grad",
    "add", "sub", "mul", "div", "power", "neg", "matmul",
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "maximum", "minimum", "where", "clip",
    "sum", "mean", "max", "logsumexp", "softmax", "log_softmax",
    "reshape", "transpose", "getitem", "take_along_axis",
]
