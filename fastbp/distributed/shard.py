"""Which rows of each global batch a rank trains on.

The global batches are those one process would draw from the whole data: rows
order[start:stop] of a permutation of every rank's rows, the same permutation on every rank
(one seed). With ``shard="auto"`` every rank holds the whole data and takes an equal
contiguous part of each batch; with shards of their own (``shard=None``) the whole data is the
ranks' rows one after the other, in rank order, and each rank takes the batch's rows it holds.
Either way a rank also knows where its rows sit in the batch: Dropout draws their masks there.
"""
from __future__ import annotations

import numpy as np

from fastbp.distributed.ranks import checksum

SHARDS = ("auto", None)


def check_shard(shard):
    if shard not in SHARDS:
        raise ValueError(f"shard: expected 'auto' (every rank holds the whole data and takes "
                         f"its part of each batch) or None (each rank holds its own rows), got "
                         f"{shard!r}")
    return shard


class Shard:
    """This rank's rows of the global data (X, y) on `ranks` (`shard` as above)."""

    def __init__(self, ranks, shard, X: np.ndarray, y: np.ndarray, name: str = "X") -> None:
        self.ranks, self.auto = ranks, check_shard(shard) == "auto"
        if self.auto:
            held = ranks.gather((X.shape[0], checksum(X, y)))
            if len(set(held)) > 1:
                other = next(r for r, h in enumerate(held) if h != held[0])
                raise ValueError(f"{name}: with shard='auto' every rank holds the whole data, "
                                 f"but rank {other}'s differs from rank 0's (rows "
                                 f"{held[other][0]} and {held[0][0]}, or their values); pass "
                                 f"shard=None for data split between the ranks")
            self.rows, self.offset = X.shape[0], 0
        else:
            counts = ranks.gather(X.shape[0])
            self.rows, self.offset = sum(counts), sum(counts[:ranks.rank])
        self.local_rows = X.shape[0]

    def batch(self, order: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """This rank's part of the global batch order[start:stop]: its rows (indices into its
        own X) and their positions in the batch (int64 arrays, maybe empty)."""
        if self.auto:
            size, rank, m = self.ranks.size, self.ranks.rank, stop - start
            lo, hi = m * rank // size, m * (rank + 1) // size
            return order[start + lo:start + hi], np.arange(lo, hi, dtype=np.int64)
        rows = order[start:stop] - self.offset
        mine = (rows >= 0) & (rows < self.local_rows)
        return rows[mine], np.flatnonzero(mine).astype(np.int64)

    def evaluation_rows(self) -> slice:
        """The rows of this rank's data it evaluates: its share of the whole with 'auto'."""
        if not self.auto:
            return slice(None)
        size, rank = self.ranks.size, self.ranks.rank
        return slice(self.rows * rank // size, self.rows * (rank + 1) // size)
