"""Thread control: OpenMP threads of the C core and BLAS threads of SciPy's OpenBLAS together.

Note: GNU OpenMP is not fork-safe. A process that has run fastbp kernels with several threads
must not `fork` and use fastbp in the child; use the "spawn" start method of multiprocessing.
"""
from __future__ import annotations

import math
import os

from fastbp import _core
from fastbp._validation import positive_int

_num_threads = 1


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
    """Use `n` threads in fastbp's kernels (OpenMP) and in BLAS (via threadpoolctl), from
    every thread of the process (1 <= n <= `max_threads()`)."""
    global _num_threads
    n = positive_int(n, "n")
    if n > max_threads():
        raise ValueError(f"n: expected at most {max_threads()} threads (4 per CPU this process "
                         f"may use), got {n}")
    _core.set_num_threads(n)
    import scipy.linalg  # noqa: F401  (loads the BLAS that threadpoolctl must see)
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n, user_api="blas")
    _num_threads = n


def _set_parallel_min(elements: int) -> int:
    """Array size from which the C core's elementwise kernels use several threads; returns the
    previous value. For tests of the parallel code paths."""
    return _core.set_parallel_min(elements)


def get_num_threads() -> int:
    """Number of threads fastbp uses."""
    return _num_threads


def _init_threads() -> None:
    """Default: OMP_NUM_THREADS when set, else every CPU the process may use.

    BLAS is limited too only when the process may use fewer CPUs than the machine has
    (OpenBLAS would otherwise start one thread per CPU).
    """
    global _num_threads
    if os.environ.get("OMP_NUM_THREADS"):
        _num_threads = _core.default_num_threads()
        _core.set_num_threads(_num_threads)
    elif available_cpus() < (os.cpu_count() or 1):
        set_num_threads(available_cpus())
    else:
        _num_threads = available_cpus()
        _core.set_num_threads(_num_threads)
