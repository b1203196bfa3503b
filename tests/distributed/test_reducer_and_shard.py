"""GradientReducer and Shard without MPI, over stand-in ranks: the sums are tail slices of the
gradient buffer, each summed once, in order, on the communication thread; each rank's part of
a global batch, over all ranks, is the batch, at its positions."""
import threading

import numpy as np
import pytest

from fastbp.distributed.reducer import GradientReducer
from fastbp.distributed.shard import Shard


class Recorder:
    """Stand-in ranks: records what is summed (as slices of `base`) and on which thread."""

    def __init__(self, base, bucket, overlap=True, fail=False):
        self.base, self.bucket, self.overlap, self.fail = base, bucket, overlap, fail
        self.sums = []

    def bucket_bytes(self):
        return self.bucket

    def sum(self, array):
        if self.fail:
            raise OSError("link down")
        start = (array.__array_interface__["data"][0] -
                 self.base.__array_interface__["data"][0]) // self.base.itemsize
        self.sums.append((start, start + array.shape[0], threading.current_thread().name))


def test_buckets_are_tail_slices_summed_on_the_thread_once_each():
    grads = np.zeros(1000, dtype=np.float32)
    ranks = Recorder(grads, bucket=100 * 4)
    reducer = GradientReducer(ranks, grads)
    for offset in (950, 880, 700, 690, 300, 0):      # the stages' offsets, as backward goes
        reducer.grads_ready(offset)
    reducer.finish()
    reducer.close()
    assert [s[:2] for s in ranks.sums] == [(880, 1000), (700, 880), (300, 700), (0, 300)]
    assert {s[2] for s in ranks.sums} == {"fastbp-allreduce"}


def test_without_overlap_one_sum_after_backward_in_the_calling_thread():
    grads = np.zeros(1000)
    for ranks in (Recorder(grads, 80, overlap=False), Recorder(grads, 8000)):  # off, one bucket
        reducer = GradientReducer(ranks, grads)
        assert not reducer.overlap
        for offset in (900, 500, 0):
            reducer.grads_ready(offset)
        reducer.finish()
        assert ranks.sums == [(0, 1000, threading.current_thread().name)]


def test_a_sum_in_between_waits_for_the_queued_buckets():
    grads = np.zeros(1000)
    ranks = Recorder(grads, 80)
    reducer = GradientReducer(ranks, grads)
    reducer.grads_ready(500)
    stats = grads[:10]                     # stands for BatchNorm's sums: summed now, in order
    reducer.sum(stats)
    assert [s[:2] for s in ranks.sums] == [(500, 1000), (0, 10)]
    reducer.finish()
    reducer.close()


def test_a_failed_sum_is_raised_by_finish():
    grads = np.zeros(100)
    reducer = GradientReducer(Recorder(grads, 80, fail=True), grads)
    reducer.grads_ready(0)
    with pytest.raises(OSError, match="link down"):
        reducer.finish()
    reducer.close()


class StandIn:
    """Stand-in ranks for Shard: rank `rank` of `size`, gather answered with `everyone`."""

    def __init__(self, rank, size, everyone):
        self.rank, self.size, self.everyone = rank, size, everyone

    def gather(self, value):
        return self.everyone


@pytest.mark.parametrize("counts", [[5, 9, 1], [13], [4, 4, 4, 4]])
def test_own_shards_cover_each_batch_at_its_positions(counts):
    total = sum(counts)
    order = np.random.default_rng(1).permutation(total)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for start, stop in ((0, 4), (4, total), (2, 3)):
        batch = np.full(stop - start, -1)
        for rank, count in enumerate(counts):
            shard = Shard(StandIn(rank, len(counts), counts), None, np.zeros((count, 2)),
                          np.zeros(count))
            rows, positions = shard.batch(order, start, stop)
            assert rows.dtype == positions.dtype == np.int64
            assert ((0 <= rows) & (rows < count)).all()
            batch[positions] = rows + offsets[rank]
        assert np.array_equal(batch, order[start:stop])
    assert shard.rows == total and shard.evaluation_rows() == slice(None)


def test_auto_shards_split_each_batch_and_the_evaluation_rows():
    X, y = np.zeros((10, 2)), np.zeros(10)
    order = np.arange(10)[::-1].copy()
    parts = []
    for rank in range(3):
        shard = Shard(StandIn(rank, 3, [(10, 0)] * 3), "auto", X, y)   # the same data
        parts.append((shard.batch(order, 2, 9), shard.evaluation_rows()))
    assert [list(p[0][1]) for p in parts] == [[0, 1], [2, 3], [4, 5, 6]]
    assert np.array_equal(np.concatenate([p[0][0] for p in parts]), order[2:9])
    assert [p[1] for p in parts] == [slice(0, 3), slice(3, 6), slice(6, 10)]
