# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled core of fastbp: the C kernels and training step of src_c/, and their bindings.

One extension holds the C core once: one pair of BLAS pointers, one set of thread settings.
The bindings check their arguments (dtype, layout, shape, sizes), dispatch on the dtype
(float32 or float64) and call C with the GIL released: the kernels in _kernels.pxi, the
compiled training step (`TrainingPlan`) in _plan.pxi. The C declarations are in _core.pxd.
"""
import numpy as np
cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport NAN, sqrt
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

cnp.import_array()
fb_set_blas(<fb_sgemm_fn>sgemm, <fb_dgemm_fn>dgemm)

HAVE_OPENMP = bool(fb_have_openmp())


def set_parallel_min(Py_ssize_t elements):
    """Run elementwise kernels on several threads from this many elements (returns the old
    value). The default suits the machines fastbp is tuned on; tests lower it to reach the
    parallel branches with small arrays."""
    old = fb_parallel_min
    fb_set_parallel_min(max(1, elements))
    return old


fb_install_fork_handler()


def set_num_threads(int n):
    """Set the number of OpenMP threads of the C core's parallel loops (n >= 1), for calls from
    every thread of the process. Returns False when the count must stay 1: in a process forked
    after the C core ran threads (GNU OpenMP cannot start threads there)."""
    if n < 1:
        raise ValueError(f"n: expected a positive thread count, got {n}")
    return fb_set_num_threads(n) == 0


def get_num_threads():
    """Number of OpenMP threads the C core uses (1 without OpenMP)."""
    return fb_get_num_threads()


def default_num_threads():
    """OpenMP's default thread count: OMP_NUM_THREADS when set, else every CPU (1 without
    OpenMP)."""
    return fb_default_num_threads()


include "_kernels.pxi"
include "_plan.pxi"
