"""Data-parallel training gives what one process gives on the whole data, to rounding: every
kind of network the plan compiles, every optimizer, shards of the whole data on every rank
("auto") or of the ranks' own (unequal), clipping by the global norm, validation metrics, and
train_step; the parameters stay identical on every rank."""
import numpy as np
import pytest
from dist_helpers import (
    NETWORKS,
    TOLERANCE,
    data,
    dense,
    own_rows,
    relative,
    same_on_every_rank,
)

import fastbp as fb

OPTIMIZERS = {
    "sgd": lambda net: fb.SGD(net, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda net: fb.Adam(net, lr=0.01),
    "adamw": lambda net: fb.AdamW(net, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda net: fb.RMSprop(net, lr=0.005, momentum=0.5, centered=True),
}


def both(make_net, dtype, comm, X, y, X_mine, y_mine, shard, optimizer="adam", **kwargs):
    """(one process's net and history on (X, y), the data-parallel ones on (X_mine, y_mine))."""
    one, par = make_net(dtype), make_net(dtype)
    kwargs = {"epochs": 3, "batch_size": 16, "verbose": 0, **kwargs}
    h1 = one.fit(X, y, optimizer=OPTIMIZERS[optimizer](one), **kwargs)
    h2 = par.fit(X_mine, y_mine, optimizer=OPTIMIZERS[optimizer](par), comm=comm, shard=shard,
                 **kwargs)
    return one, h1, par, h2


def check(one, h1, par, h2, dtype, comm):
    assert relative(one.params, par.params) <= TOLERANCE[dtype]
    if one.buffers.size:
        assert relative(one.buffers, par.buffers) <= TOLERANCE[dtype]
    for key in h1.history:
        if key != "time":
            assert relative(h1[key], h2[key]) <= 10 * TOLERANCE[dtype], key
    assert same_on_every_rank(comm, par.params)
    assert same_on_every_rank(comm, par.buffers)
    assert same_on_every_rank(comm, np.array([v for k in h2.history if k != "time"
                                              for v in h2[k]]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_auto_shard_equals_one_process(comm, kind, dtype):
    X, y = data()
    check(*both(NETWORKS[kind], dtype, comm, X, y, X, y, "auto"), dtype, comm)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_unequal_own_shards_equal_one_process(comm, kind):
    """Rank r holds a share growing with r of the rows; batches of 8 from 3 ranks leave some
    rank without a row in some batches."""
    X, y = data(rows=98)
    mine = own_rows(98, comm)
    check(*both(NETWORKS[kind], "float64", comm, X, y, X[mine], y[mine], None, batch_size=8),
          "float64", comm)


def test_a_rank_without_rows_in_most_batches_still_trains_with_the_others(comm):
    X, y = data(rows=60)
    weights = [2] + [30] * (comm.Get_size() - 1)     # rank 0 holds one to three rows
    mine = own_rows(60, comm, weights)
    check(*both(NETWORKS["batchnorm"], "float64", comm, X, y, X[mine], y[mine], None),
          "float64", comm)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_optimizer(comm, optimizer, dtype):
    X, y = data()
    check(*both(dense, dtype, comm, X, y, X, y, "auto", optimizer), dtype, comm)


def test_clipping_uses_the_global_gradient(comm):
    X, y = data()
    one, h1, par, h2 = both(dense, "float64", comm, X, y, X, y, "auto", optimizer="sgd",
                            clip_norm=0.05, clip_value=0.02)
    check(one, h1, par, h2, "float64", comm)
    free = dense()
    free.fit(X, y, optimizer=OPTIMIZERS["sgd"](free), epochs=3, batch_size=16, verbose=0)
    assert relative(free.params, par.params) > 1e-3       # the clipping did change the result


def test_validation_and_regression_losses(comm):
    X, y = data()
    targets = np.random.default_rng(3).standard_normal((103, 3))
    mine = own_rows(103, comm)
    for loss, t in (("mse", targets), ("bce", (targets > 0).astype(float))):
        X_val, t_val = X[:40] + 0.5, t[:40]
        val_mine = own_rows(40, comm)
        one, h1, par, h2 = both(dense, "float64", comm, X, t, X[mine], t[mine], None,
                                loss=loss, validation_data=(X_val, t_val))
        par2 = dense()
        h3 = par2.fit(X[mine], t[mine], optimizer=OPTIMIZERS["adam"](par2), comm=comm,
                      loss=loss, epochs=3, batch_size=16, verbose=0,
                      validation_data=(X_val[val_mine], t_val[val_mine]))
        check(one, h1, par, h2, "float64", comm)
        assert "val_loss" in h1.history
        assert relative(h1["val_loss"], h3["val_loss"]) <= 1e-12


def test_train_step_on_the_ranks_rows_of_one_batch(comm):
    X, y = data(rows=41)
    mine = own_rows(41, comm)
    one, par = NETWORKS["batchnorm"](), NETWORKS["batchnorm"]()
    for _ in range(4):
        value = one.train_step(X, y, "cross_entropy", "adam")
        parallel = par.train_step(X[mine], y[mine], "cross_entropy", "adam", comm=comm)
    assert relative([value], [parallel]) <= 1e-12
    assert relative(one.params, par.params) <= 1e-12
    assert same_on_every_rank(comm, par.params)


def test_parameters_start_as_rank_0s(comm):
    X, y = data()
    net = dense(seed=comm.Get_rank())      # a different start on every rank
    reference = dense(seed=0)
    net.fit(X, y, epochs=1, comm=comm, shard="auto", verbose=0)
    reference.fit(X, y, epochs=1, verbose=0)
    assert relative(reference.params, net.params) <= 1e-12


@pytest.mark.parametrize("overlap", [True, False])
def test_bucket_sizes_and_overlap_do_not_change_the_result(comm, overlap):
    X, y = data()
    one, par = dense(), dense()
    one.fit(X, y, epochs=2, batch_size=16, verbose=0)
    ranks = fb.distributed.Ranks(comm, overlap=overlap, bucket_bytes=64, threads=1)
    par.fit(X, y, epochs=2, batch_size=16, verbose=0, comm=ranks, shard="auto")
    assert relative(one.params, par.params) <= 1e-12
