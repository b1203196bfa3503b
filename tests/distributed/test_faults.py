"""A fault on one rank raises the same error on every rank at the same step, instead of leaving
the others waiting in a collective: bad input, a non-finite loss, an error in a loss or a
callback, diverged parameters, data that differs under shard="auto", an uncompiled network."""
import os

import numpy as np
import pytest
from dist_helpers import data, dense, own_rows

import fastbp as fb
from fastbp.distributed.ranks import default_threads


def raised(comm, run):
    """The (type name, message) of the error `run()` raised here, checked to be the same on
    every rank; None when it raised nothing."""
    try:
        run()
        outcome = None
    except Exception as error:          # compared over the ranks below
        outcome = (type(error).__name__, str(error))
    outcomes = comm.allgather(outcome)
    assert all(o == outcomes[0] for o in outcomes), outcomes
    return outcome


def last_rank(comm):
    return comm.Get_size() - 1


def test_bad_input_on_one_rank(comm):
    X, y = data()
    mine = own_rows(103, comm)
    X_mine = X[mine].copy()
    if comm.Get_rank() == last_rank(comm):
        X_mine[2, 1] = np.nan
    outcome = raised(comm, lambda: dense().fit(X_mine, y[mine], comm=comm, verbose=0))
    assert outcome[0] == "ValueError"
    assert outcome[1].startswith(f"rank {last_rank(comm)} of {comm.Get_size()}: X: ")


def test_a_loss_that_overflows_on_one_rank_stops_every_rank_at_the_same_step(comm):
    X, y = data()
    mine = own_rows(103, comm)
    X_mine = X[mine].copy()
    if comm.Get_rank() == last_rank(comm):
        X_mine[-1] = 1.7e308          # finite, but the loss of its batch overflows
    net = dense()
    outcome = raised(comm, lambda: net.fit(X_mine, y[mine], comm=comm, verbose=0, epochs=2,
                                           shuffle=False, batch_size=16))
    assert outcome[0] == "FloatingPointError"
    assert "at epoch 1, step 7" in outcome[1]     # the last batch holds the last rank's last row
    assert np.isfinite(net.params).all()


def test_an_error_in_a_compiled_loss_on_one_rank(comm):
    calls = []

    def loss(out, y):
        calls.append(1)
        if comm.Get_rank() == last_rank(comm) and len(calls) == 3:
            raise KeyError("lost label")
        return ((out - y) ** 2).mean()

    X, _ = data()
    targets = np.random.default_rng(2).standard_normal((103, 3))
    net = dense()
    before = net.params.copy()
    outcome = raised(comm, lambda: net.fit(X, targets, loss=fb.Loss.from_function(loss),
                                           comm=comm, shard="auto", verbose=0, epochs=1,
                                           batch_size=32))
    assert outcome == ("KeyError", f"\"rank {last_rank(comm)} of {comm.Get_size()}: "
                                   f"'lost label'\"")
    assert not np.array_equal(net.params, before)          # two steps were made


class FailOnRank(fb.Callback):
    def __init__(self, rank, epoch):
        self.rank, self.epoch = rank, epoch

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch and self.rank == self.here:
            raise OSError("disk full")

    here = None


def test_an_error_in_a_callback_on_one_rank(comm):
    X, y = data()
    callback = FailOnRank(last_rank(comm), 2)
    callback.here = comm.Get_rank()
    outcome = raised(comm, lambda: dense().fit(X, y, comm=comm, shard="auto", verbose=0,
                                               epochs=4, callbacks=[callback]))
    assert outcome == ("OSError", f"rank {last_rank(comm)} of {comm.Get_size()}: disk full")


class Nudge(fb.Callback):
    """Changes one parameter on one rank: the ranks diverge."""

    def __init__(self, rank):
        self.rank = rank

    def on_train_begin(self, net):
        self.net = net

    def on_epoch_end(self, epoch, logs):
        if self.rank:
            self.net.params[0] += 1e-7


def test_diverged_parameters_are_detected(comm):
    X, y = data()
    outcome = raised(comm, lambda: dense().fit(X, y, comm=comm, shard="auto", verbose=0,
                                               callbacks=[Nudge(comm.Get_rank() == 1)]))
    assert outcome[0] == "RuntimeError"
    assert "ranks [1] differ from rank 0's" in outcome[1]


def test_periodic_checksum_during_an_epoch(comm):
    X, y = data()
    net = dense()
    ranks = fb.distributed.Ranks(comm, check_every=2)
    net.train_step(X[:8], y[:8], comm=ranks)          # step 1 (parameters from rank 0)
    if comm.Get_rank() == 1:
        net.params[0] += 1e-7
    outcome = raised(comm, lambda: net.train_step(X[:8], y[:8], comm=ranks))   # step 2
    assert outcome[0] == "RuntimeError"
    assert "ranks [1] differ from rank 0's" in outcome[1]


def test_auto_shard_needs_the_same_data_on_every_rank(comm):
    X, y = data()
    X_here = X + comm.Get_rank()
    outcome = raised(comm, lambda: dense().fit(X_here, y, comm=comm, shard="auto", verbose=0))
    assert outcome[0] == "ValueError"
    assert "every rank holds the whole data, but rank 1's differs" in outcome[1]


def test_a_network_without_a_compiled_plan_is_refused(comm):
    X, y = data()
    net = fb.Sequential(fb.Dense(5, 4), fb.FunctionLayer(lambda x: x * 2.0, {}, 4, 4),
                        fb.Dense(4, 3), dtype="float64")
    outcome = raised(comm, lambda: net.fit(X, y, comm=comm, shard="auto", verbose=0))
    assert outcome[0] == "ValueError"
    assert outcome[1].startswith("comm: data-parallel training runs on the compiled plan")


@pytest.mark.parametrize("bad, error, message", [
    ({"threads": 0}, ValueError, "threads: expected a positive integer"),
    ({"bucket_bytes": -1}, ValueError, "bucket_bytes: expected a positive integer"),
    ({"check_every": 1.5}, ValueError, "check_every: expected a positive integer"),
    ({"overlap": "yes"}, TypeError, "overlap: expected True or False"),
])
def test_bad_ranks_settings(comm, bad, error, message):
    with pytest.raises(error, match=message):
        fb.distributed.Ranks(comm, **bad)


def test_default_threads_share_the_node(comm):
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    expected = default_threads(fb.parallel.available_cpus(), os.cpu_count(), node.Get_size())
    node.Free()
    assert fb.distributed.Ranks(comm).threads == expected
    assert fb.distributed.Ranks(comm, threads=3).threads == 3
