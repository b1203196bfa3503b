"""Data-parallel training over MPI (mpi4py, the optional extra ``fastbp[mpi]``).

Every rank holds the whole model and trains on its rows of each global batch; the gradients
are summed over the ranks, and every rank makes the same update, so the result is what one
process gives on the whole data, to rounding. Use it through ``net.fit(..., comm=...)`` and
``net.train_step(..., comm=...)``; `Ranks` sets threads, overlap and checks.
"""
from fastbp.distributed.ranks import Ranks
from fastbp.distributed.step import DataParallelStep

__all__ = ["Ranks", "DataParallelStep"]
