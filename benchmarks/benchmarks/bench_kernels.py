"""Kernel benchmarks: gemm helper, activation forward/backward, softmax cross-entropy, Adam."""
import timeit

import numpy as np

import fastbp as fb
from fastbp import _core


class Kernels:
    """One call of each hot kernel on mnist-sized arrays."""

    params = (["float32", "float64"], [1, 2])
    param_names = ["dtype", "threads"]
    timer = timeit.default_timer

    def setup(self, dtype, threads):
        fb.set_num_threads(threads)
        rng = np.random.default_rng(0)
        self.X = rng.standard_normal((128, 784)).astype(dtype)
        self.W = rng.standard_normal((256, 784)).astype(dtype)
        self.Z = np.empty((128, 256), dtype=dtype)
        self.b = rng.standard_normal(256).astype(dtype)
        self.A = np.maximum(rng.standard_normal((1024, 1024)), 0).astype(dtype)
        self.dA = rng.standard_normal((1024, 1024)).astype(dtype)
        self.logits = rng.standard_normal((1024, 10)).astype(dtype)
        self.labels = rng.integers(0, 10, 1024)
        self.dlogits = np.empty_like(self.logits)
        self.S = rng.random((1024, 1024)).astype(dtype)
        self.dS = np.empty_like(self.S)
        self.b1024 = np.zeros(1024, dtype)

    def time_gemm_forward(self, dtype, threads):
        _core.gemm(self.X, self.W, self.Z, trans_b=True)

    def time_bias_relu_forward(self, dtype, threads):
        _core.bias_activation_forward(self.A, None, "relu")

    def time_relu_backward(self, dtype, threads):
        _core.activation_backward(self.dA, self.A, self.dA, "relu")

    def time_bias_sigmoid_forward(self, dtype, threads):
        _core.bias_activation_forward(self.S, self.b1024, "sigmoid")

    def time_sigmoid_backward(self, dtype, threads):
        _core.activation_backward(self.dA, self.S, self.dS, "sigmoid")

    def time_softmax_cross_entropy(self, dtype, threads):
        _core.softmax_cross_entropy(self.logits, self.labels, self.dlogits)


class AdamUpdate:
    """The fused Adam update over flat buffers of `size` elements."""

    params = ([10**5, 10**6, 10**7], ["float32", "float64"], [1, 2])
    param_names = ["size", "dtype", "threads"]
    timer = timeit.default_timer

    def setup(self, size, dtype, threads):
        fb.set_num_threads(threads)
        rng = np.random.default_rng(0)
        self.p = rng.standard_normal(size).astype(dtype)
        self.g = rng.standard_normal(size).astype(dtype)
        self.m = np.zeros(size, dtype)
        self.v = np.zeros(size, dtype)
        self.t = 0

    def time_adam_step(self, size, dtype, threads):
        self.t += 1
        _core.adam_step(self.p, self.g, self.m, self.v, self.t, 1e-3, 0.9, 0.999, 1e-8,
                        0.0, False)
