"""Thread control: fastbp's OpenMP threads and the BLAS threads of SciPy's OpenBLAS.

`set_num_threads` changes only what fastbp uses: the thread count of the C core's parallel
loops (a value of fastbp's own, not OpenMP's process setting that other libraries share) and
that of the OpenBLAS behind SciPy's ``cython_blas``, which only SciPy and fastbp call (NumPy,
PyTorch and MKL keep their own libraries and counts). Where SciPy's OpenBLAS cannot be told
apart from the others (a SciPy not installed from its wheels), every BLAS threadpoolctl finds
is set instead.

Forking: GNU OpenMP keeps a pool of threads that a forked child does not have. A child forked
after fastbp's kernels ran on several threads runs them on one (a fork handler of the C core
sees to it), and `set_num_threads` there warns and keeps one; "spawn" and "forkserver" workers
start fresh and use threads as usual.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import math
import os
import threading
import warnings
from collections.abc import Iterator

import scipy

from fastbp import _core
from fastbp._runtime import environment_kept
from fastbp._validation import positive_int


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def max_threads() -> int:
    """The most threads `set_num_threads` accepts: 4 per CPU this process may use (more only
    oversubscribes the CPUs, and can exhaust the process's thread limit)."""
    return 4 * available_cpus()


def set_num_threads(n: int) -> None:
    """Use `n` threads in fastbp's kernels and in SciPy's BLAS, from every thread of the
    process (1 <= n <= `max_threads()`)."""
    n = positive_int(n, "n")
    if n > max_threads():
        raise ValueError(f"n: expected at most {max_threads()} threads (4 per CPU this process "
                         f"may use), got {n}")
    if not _core.set_num_threads(n):
        warnings.warn(f"set_num_threads({n}): this process was forked from one that had run "
                      f"fastbp's threads, and GNU OpenMP cannot start threads in it: fastbp's "
                      f"kernels stay on 1 thread here (use the 'spawn' or 'forkserver' start "
                      f"method of multiprocessing for parallel workers)", RuntimeWarning,
                      stacklevel=2)
    _set_blas_threads(n)


def get_num_threads() -> int:
    """The number of threads of fastbp's kernels (as the C core has it)."""
    return _core.get_num_threads()


# The `threads` blocks open in the process (each its count, in the order entered), and the
# counts of fastbp and of SciPy's BLAS from before the first of them.
_open_blocks: list[list[int]] = []
_counts_before: tuple[int, int | None] = (1, None)
_blocks_lock = threading.Lock()


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """``with fb.threads(n):`` runs its body with `n` threads (`set_num_threads`), then puts
    back the previous counts of fastbp and of SciPy's BLAS.

    The counts are the process's: blocks open at the same time in several Python threads (a
    joblib "threading" backend) share them. The one entered last sets them; one that ends
    while others are still open hands them to the latest of those, and the last to end puts
    back the counts from before the first.
    """
    global _counts_before
    block = [n]
    with _blocks_lock:
        if not _open_blocks:
            _counts_before = (get_num_threads(), _blas_threads())
        set_num_threads(n)
        _open_blocks.append(block)
    try:
        yield
    finally:
        with _blocks_lock:
            del _open_blocks[next(i for i, b in enumerate(_open_blocks) if b is block)]
            if _open_blocks:
                set_num_threads(_open_blocks[-1][0])
            else:
                previous, previous_blas = _counts_before
                _core.set_num_threads(previous)
                _set_blas_threads(previous_blas if previous_blas is not None else previous)


def _scipy_openblas() -> tuple | None:
    """(get, set) thread-count functions of the OpenBLAS shipped in SciPy's wheel folder
    (``scipy.libs``), or None when SciPy has no such library (then threadpoolctl is used)."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(scipy.__file__))),
                          "scipy.libs")
    found = glob.glob(os.path.join(folder, "libscipy_openblas*.so*"))
    if len(found) != 1:
        return None
    lib = ctypes.CDLL(found[0])       # the library cython_blas already loaded (same file)
    for prefix in ("scipy_openblas", "openblas"):
        for suffix in ("", "64_"):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype, put.argtypes = ctypes.c_int, [ctypes.c_int]
                return get, put
    return None


_SCIPY_OPENBLAS = _scipy_openblas()


def _blas_threads() -> int | None:
    """SciPy's BLAS thread count, or None where it cannot be read apart from the others."""
    return None if _SCIPY_OPENBLAS is None else int(_SCIPY_OPENBLAS[0]())


def _set_blas_threads(n: int) -> None:
    if _SCIPY_OPENBLAS is not None:
        _SCIPY_OPENBLAS[1](n)
        return
    with environment_kept():              # threadpoolctl sets KMP_DUPLICATE_LIB_OK on import
        from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n, user_api="blas")


def _set_parallel_min(elements: int) -> int:
    """Array size from which the C core's elementwise kernels use several threads; returns the
    previous value. For tests of the parallel code paths."""
    return _core.set_parallel_min(elements)


def _init_threads() -> None:
    """Default: OMP_NUM_THREADS when set, else every CPU the process may use.

    SciPy's BLAS is limited too only when the process may use fewer CPUs than the machine has
    (OpenBLAS would otherwise start one thread per CPU).
    """
    if os.environ.get("OMP_NUM_THREADS"):
        _core.set_num_threads(_core.default_num_threads())
    elif available_cpus() < (os.cpu_count() or 1):
        set_num_threads(available_cpus())
    else:
        _core.set_num_threads(available_cpus())
