"""Kernel benchmarks: gemm helper, activation forward/backward, softmax cross-entropy, Adam."""
import timeit

import numpy as np

import fastbp as fb
from fastbp import _kernels


class Kernels:
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

    def time_gemm_forward(self, dtype, threads):
        _kernels.gemm(self.X, self.W, self.Z, trans_b=True)

    def time_bias_relu_forward(self, dtype, threads):
        _kernels.bias_activation_forward(self.A, None, "relu")

    def time_relu_backward(self, dtype, threads):
        _kernels.activation_backward(self.dA, self.A, self.dA, "relu")

    def time_softmax_cross_entropy(self, dtype, threads):
        _kernels.softmax_cross_entropy(self.logits, self.labels, self.dlogits)


class AdamUpdate:
    params = ([10**5, 10**6, 10**7], [1, 2])
    param_names = ["size", "threads"]
    timer = timeit.default_timer

    def setup(self, size, threads):
        fb.set_num_threads(threads)
        rng = np.random.default_rng(0)
        self.p = rng.standard_normal(size).astype(np.float32)
        self.g = rng.standard_normal(size).astype(np.float32)
        self.m = np.zeros(size, np.float32)
        self.v = np.zeros(size, np.float32)
        self.t = 0

    def time_adam_step(self, size, threads):
        self.t += 1
        _kernels.adam_step(self.p, self.g, self.m, self.v, self.t, 1e-3, 0.9, 0.999, 1e-8,
                           0.0, False)
