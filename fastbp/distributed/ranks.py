"""The processes of a data-parallel training: an MPI communicator and what they agree on.

`Ranks` wraps an mpi4py communicator (mpi4py is imported here, when one is made: it is the
optional extra ``fastbp[mpi]``). Every method that communicates is collective: each rank calls
it at the same point, in the same order, or the ranks wait on each other forever.
"""
from __future__ import annotations

import builtins
import contextlib
import os
import time
import zlib
from collections.abc import Iterator

import numpy as np

from fastbp._validation import boolean, positive_int
from fastbp.parallel import available_cpus, threads

# what an mpi4py communicator offers that data-parallel training uses
_COMM_METHODS = ("Allreduce", "Bcast", "allreduce", "allgather", "bcast", "scatter",
                 "Get_rank", "Get_size", "Split_type")
# the ranks and the rank of this process, as MPI launchers (Open MPI, MPICH's Hydra) tell them
_LAUNCHED_SIZE = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
_LAUNCHED_RANK = ("OMPI_COMM_WORLD_RANK", "PMI_RANK")
# errors raised again on every rank as their own type; any other is a RuntimeError
_SHARED_ERRORS = (ValueError, TypeError, FloatingPointError, RuntimeError, KeyError, OSError,
                  MemoryError, ZeroDivisionError, IndexError)


class Ranks:
    """The ranks of a communicator training one model together.

    Parameters
    ----------
    comm : an mpi4py communicator, e.g. ``MPI.COMM_WORLD``.
    threads : threads of each rank's kernels during fit; None: the CPUs this process may use
        divided by the ranks on its node (``cores / ranks per node``), or, where the launcher
        bound the rank to fewer CPUs than the node has, those CPUs.
    overlap : sum the last layers' gradients over the ranks (on a communication thread) while
        the backward pass of the earlier ones still runs; False: one sum after backward.
    bucket_bytes : bytes of gradients summed together; None: measured (`measure_bucket`).
    check_every : compare a checksum of the parameters over the ranks every this many steps
        (and after every epoch); a difference raises RuntimeError.
    """

    def __init__(self, comm, threads: int | None = None, overlap: bool = True,
                 bucket_bytes: int | None = None, check_every: int = 100) -> None:
        missing = [m for m in _COMM_METHODS if not callable(getattr(comm, m, None))]
        if missing:
            raise TypeError(f"comm: expected an MPI communicator (mpi4py.MPI.Comm, e.g. "
                            f"MPI.COMM_WORLD), got {type(comm).__name__} (no {missing[0]})")
        try:
            from mpi4py import MPI
        except ImportError:
            raise ImportError("comm: data-parallel training needs mpi4py: pip install "
                              "'fastbp[mpi]' (and an MPI library, e.g. Open MPI)") from None
        self._MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        if threads is not None:
            threads = positive_int(threads, "threads")
        self.threads = threads if threads is not None else self._default_threads()
        self.overlap = boolean(overlap, "overlap") and \
            MPI.Query_thread() >= MPI.THREAD_SERIALIZED
        if bucket_bytes is not None:
            bucket_bytes = positive_int(bucket_bytes, "bucket_bytes")
        self._bucket_bytes = bucket_bytes
        self.check_every = positive_int(check_every, "check_every")

    @property
    def root(self) -> bool:
        """True on rank 0: the rank that prints and writes files."""
        return self.rank == 0

    def _default_threads(self) -> int:
        node = self.comm.Split_type(self._MPI.COMM_TYPE_SHARED)
        try:
            on_node = node.Get_size()
        finally:
            node.Free()
        return default_threads(available_cpus(), os.cpu_count() or 1, on_node)

    def sum(self, array: np.ndarray) -> None:
        """Replace `array` (contiguous) by its elementwise sum over the ranks, in place."""
        self.comm.Allreduce(self._MPI.IN_PLACE, array, op=self._MPI.SUM)

    def broadcast(self, array: np.ndarray) -> None:
        """Give every rank rank 0's `array` (in place)."""
        self.comm.Bcast(array, root=0)

    def share(self, value):
        """Rank 0's `value` (a small picklable object), on every rank."""
        return self.comm.bcast(value, root=0)

    def scatter(self, values: list | None):
        """Rank r's item of rank 0's `values` (one picklable item per rank; None elsewhere)."""
        return self.comm.scatter(values, root=0)

    def gather(self, value) -> list:
        """Every rank's `value` (a small picklable object), in rank order."""
        return self.comm.allgather(value)

    def mean(self, values: dict[str, float], weight: float) -> dict[str, float]:
        """The mean over the ranks of each of `values` (the same keys on every rank), each
        rank's weighted by `weight` (e.g. its rows)."""
        sums = np.array([v * weight for v in values.values()] + [weight], dtype=np.float64)
        self.sum(sums)
        return {k: float(v / sums[-1]) for k, v in zip(values, sums[:-1], strict=True)}

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is True on any."""
        return bool(self.comm.allreduce(bool(flag), op=self._MPI.LOR))

    def agree(self, error: BaseException | None, value=None) -> list:
        """Raise on every rank the error of the first rank that had one (`error` is this
        rank's, or None); when no rank had one, return every rank's `value` (a small
        picklable object), in rank order."""
        shared = self.gather((value, None if error is None else
                              (_builtin_name(error), str(error))))
        failed = [(r, e) for r, (_, e) in enumerate(shared) if e is not None]
        if not failed:
            return [v for v, _ in shared]
        rank, (name, message) = failed[0]
        kind = getattr(builtins, name, None)
        if not (isinstance(kind, type) and issubclass(kind, _SHARED_ERRORS)):
            kind, message = RuntimeError, f"{name}: {message}"
        shared = kind(f"rank {rank} of {self.size}: {message}")
        if isinstance(error, FloatingPointError) and hasattr(error, "history"):
            shared.history = error.history
        raise shared from error

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Run the body on every rank; when it raised on any, raise that error on every rank
        (`agree`) instead of leaving the others waiting in their next collective."""
        error = None
        try:
            yield
        except Exception as exc:      # re-raised by agree, on every rank
            error = exc
        self.agree(error)

    def check_identical(self, *arrays: np.ndarray) -> None:
        """Raise RuntimeError on every rank unless `arrays` hold the same bits on every rank
        (a CRC-32 of their bytes compared)."""
        checksums = self.gather(checksum(*arrays))
        if len(set(checksums)) > 1:
            differ = [r for r, c in enumerate(checksums) if c != checksums[0]]
            raise RuntimeError(f"the parameters (or buffers) of ranks {differ} differ from rank "
                               f"0's: the ranks diverged (a rank's data, network or optimizer "
                               f"differs, or something changed its parameters)")

    def bucket_bytes(self) -> int:
        """Gradient bytes summed in one piece: set, or `measure_bucket`'s (once)."""
        if self._bucket_bytes is None:
            self._bucket_bytes = self.measure_bucket()
        return self._bucket_bytes

    def measure_bucket(self, repeats: int = 5) -> int:
        """A bucket size for this communicator: 8 x latency x bandwidth (a sum of that many
        bytes spends about 1/9 of its time on latency), from the best of `repeats` sums of 8
        bytes and of 1 MiB, within [64 KiB, 16 MiB]; rank 0's measurement, for all."""
        small, large = np.zeros(1), np.zeros(1 << 17)
        latency, seconds = self._best_time(small, repeats), self._best_time(large, repeats)
        bandwidth = large.nbytes / max(seconds - latency, 1e-9)
        size = int(min(max(8 * latency * bandwidth, 1 << 16), 1 << 24))
        return int(self.share(size))

    def _best_time(self, array: np.ndarray, repeats: int) -> float:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            self.sum(array)
            best = min(best, time.perf_counter() - start)
        return float(self.comm.allreduce(best, op=self._MPI.MAX))


def _builtin_name(error: BaseException) -> str:
    """The name of the nearest built-in class of `error` (what every rank can raise)."""
    return next(c.__name__ for c in type(error).__mro__ if getattr(builtins, c.__name__, None)
                is c)


def default_threads(usable: int, node_cpus: int, ranks_on_node: int) -> int:
    """Threads of a rank that may use `usable` of its node's `node_cpus` CPUs, with
    `ranks_on_node` ranks there: its share of the node, or all it may use when the launcher
    bound it to fewer CPUs than the node has (the binding is its share)."""
    if usable < node_cpus:
        return usable
    return max(1, usable // ranks_on_node)


def launched_size() -> int:
    """The ranks of the MPI launch (``mpirun -n N``) that started this process; 1 without."""
    return next((int(os.environ[v]) for v in _LAUNCHED_SIZE if v in os.environ), 1)


def launched_rank() -> int:
    """This process's rank in its MPI launch; 0 without."""
    return next((int(os.environ[v]) for v in _LAUNCHED_RANK if v in os.environ), 0)


def launched_ranks(threads: int | None = None) -> Ranks | None:
    """Ranks over MPI.COMM_WORLD when an MPI launcher started this process with 2 or more
    ranks, else None (mpi4py is imported only then)."""
    if launched_size() < 2:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("started by an MPI launcher, but data-parallel training needs "
                          "mpi4py: pip install 'fastbp[mpi]'") from None
    return Ranks(MPI.COMM_WORLD, threads=threads)


def together(ranks: Ranks | None):
    """`ranks.together()`, or nothing to agree on in one process (None)."""
    return contextlib.nullcontext() if ranks is None else ranks.together()


@contextlib.contextmanager
def training(ranks: Ranks | None, step) -> Iterator[None]:
    """The threads of a data-parallel fit (`ranks.threads`), the step's communication thread
    stopped after it; nothing in one process."""
    if ranks is None:
        yield
        return
    try:
        with threads(ranks.threads):
            yield
    finally:
        step.close()


def checksum(*arrays: np.ndarray) -> int:
    """CRC-32 of the bytes of `arrays`, in order."""
    value = 0
    for array in arrays:
        value = zlib.crc32(np.ascontiguousarray(array).view(np.uint8), value)
    return value


def as_ranks(comm) -> Ranks | None:
    """`comm` as Ranks: None (one process), a Ranks, or a communicator (with defaults)."""
    if comm is None or isinstance(comm, Ranks):
        return comm
    return Ranks(comm)
