"""The compiled plan's data-parallel half-step without MPI: threads stand in for ranks (each
with its own copy of the network and a barrier for the sums), and the sum of their gradients
is one process's gradient of the whole batch, for BatchNorm, Dropout and Residual networks,
with a rank that holds no row of the batch. Runs in the ordinary test suite."""
import copy
import threading

import numpy as np
import pytest
from dist_helpers import NETWORKS, data

import fastbp as fb
from fastbp.train.step import make_step


class ThreadRanks:
    """Sums over `n` threads, in rank order: member(r) is the `ranks` argument of
    forward_backward_ranked on thread r."""

    def __init__(self, n):
        self.barrier = threading.Barrier(n, timeout=60)
        self.parts = [None] * n

    def member(self, rank):
        return Member(self, rank)


class Member:
    def __init__(self, shared, rank):
        self.shared, self.rank, self.offsets = shared, rank, []

    def sum(self, array):
        shared = self.shared
        shared.parts[self.rank] = array.copy()
        shared.barrier.wait()
        total = sum(shared.parts[1:], shared.parts[0].copy())
        shared.barrier.wait()
        array[...] = total

    def grads_ready(self, offset):
        self.offsets.append(offset)


def plan_of(net):
    return make_step(net, fb.SoftmaxCrossEntropy(), fb.SGD(net), labels=True).plan


@pytest.mark.parametrize("kind", ["batchnorm", "dropout", "residual", "dense"])
@pytest.mark.parametrize("parts", [[0, 9, 16], [12, 13], [25]])
def test_ranks_gradients_sum_to_the_whole_batchs(kind, parts):
    X, y = data(rows=50)
    order = np.random.default_rng(4).permutation(50)[:sum(parts)]
    reference = NETWORKS[kind]()
    copies = [copy.deepcopy(reference) for _ in parts]
    whole = plan_of(reference)
    expected = whole.train_step(np.ascontiguousarray(X[order]), y[order], None)  # no update
    ranks, losses, errors = ThreadRanks(len(parts)), [None] * len(parts), []
    members = [ranks.member(r) for r in range(len(parts))]
    bounds = np.concatenate([[0], np.cumsum(parts)])

    def run(r):
        try:
            idx = order[bounds[r]:bounds[r + 1]]
            positions = np.arange(bounds[r], bounds[r + 1], dtype=np.int64)
            losses[r] = plan_of(copies[r]).forward_backward_ranked(
                X, y, idx, positions, int(bounds[-1]), members[r])
        except Exception as error:      # reported by the main thread
            errors.append(error)

    with fb.threads(1):
        threads = [threading.Thread(target=run, args=(r,)) for r in range(len(parts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    grads = sum(c.grads for c in copies[1:]) + copies[0].grads
    np.testing.assert_allclose(grads, reference.grads, rtol=1e-12, atol=1e-15)
    loss = sum(v * p for v, p in zip(losses, parts, strict=True)) / sum(parts)
    assert abs(loss - expected) <= 1e-12 * abs(expected)
    for net in copies:
        np.testing.assert_allclose(net.buffers, reference.buffers, rtol=1e-12, atol=1e-15)
    for member in members:     # once per stage, from the last: the gradients' tail grows
        assert len(member.offsets) == len(whole.outputs(1))
        assert member.offsets == sorted(member.offsets, reverse=True)
        assert member.offsets[-1] == 0
