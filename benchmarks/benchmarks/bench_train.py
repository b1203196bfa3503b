"""Training-step and fit benchmarks of the named workloads (see common.py)."""
import timeit

import fastbp as fb

from .common import WORKLOADS, make_data, make_net


class TrainStep:
    """One compiled step (forward, loss, backward, Adam update) on one batch."""

    params = (list(WORKLOADS), ["float32", "float64"], [1, 2])
    param_names = ["workload", "dtype", "threads"]
    timer = timeit.default_timer
    timeout = 300

    def setup(self, workload, dtype, threads):
        self.net, self.loss, self.X, self.y = make_net(workload, dtype, threads)
        self.opt = fb.Adam(self.net, lr=1e-3)
        self.net.train_step(self.X, self.y, self.loss, self.opt)

    def time_train_step(self, workload, dtype, threads):
        self.net.train_step(self.X, self.y, self.loss, self.opt)


class FitEpoch:
    """One epoch of fit over 8192 samples (batches gathered from a shuffled order)."""

    params = (["small", "mnist"], ["float32", "float64"], [1, 2])
    param_names = ["workload", "dtype", "threads"]
    timer = timeit.default_timer
    number = 1
    repeat = 3

    def setup(self, workload, dtype, threads):
        sizes, activation, batch, loss = WORKLOADS[workload]
        fb.set_num_threads(threads)
        self.net = fb.mlp(sizes, activation=activation, dtype=dtype, seed=0)
        self.X, self.y = make_data(sizes, loss, 8192, dtype)
        self.kwargs = dict(loss=loss, optimizer="adam", lr=1e-3, epochs=1, batch_size=batch,
                           verbose=0)

    def time_fit_epoch(self, workload, dtype, threads):
        self.net.fit(self.X, self.y, **self.kwargs)

    def peakmem_fit_epoch(self, workload, dtype, threads):
        self.net.fit(self.X, self.y, **self.kwargs)


class _Identity(fb.Layer):
    """A custom layer (the identity): the network around it runs layer by layer."""

    def forward(self, X, training=True):
        return X

    def backward(self, dout, input_grad=True, accumulate=False):
        return dout


class CheckpointedStep:
    """Deep narrow networks trained with and without gradient checkpointing (0 = off), where
    activations dominate memory: 32 Dense + ReLU layers of width 128 on batches of 2048, and
    16 residual blocks of Dense + BatchNorm + ReLU of width 128 on batches of 4096, compiled
    and (behind a custom layer) layer by layer."""

    params = (["dense", "residual", "residual_layered"], [0, 4, 8])
    param_names = ["network", "checkpoint_segments"]
    timer = timeit.default_timer
    number = 1
    repeat = 3

    def setup(self, network, segments):
        fb.set_num_threads(2)
        if network == "dense":
            self.net = fb.mlp([128] * 33, activation="relu", seed=0)
            rows = 2048
        else:
            blocks = [fb.Residual(fb.Dense(128, 128, init="he"), fb.BatchNorm(128), fb.ReLU())
                      for _ in range(16)]
            custom = [_Identity()] if network == "residual_layered" else []
            self.net = fb.Sequential(*custom, *blocks, fb.Dense(128, 128), seed=0)
            rows = 4096
        self.X, self.y = make_data([128, 128], "cross_entropy", rows, "float32")
        self.segments = segments or None

    def _steps(self):
        for _ in range(2):
            self.net.train_step(self.X, self.y, checkpoint_segments=self.segments)

    def time_train_step(self, network, segments):
        self._steps()

    def peakmem_train_step(self, network, segments):
        self._steps()
