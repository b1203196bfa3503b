"""Thread control: BLAS threads around small products, the parallel threshold, and the
spin-wait settings fastbp chooses at import."""
import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest
from thread_helpers import num_threads
from threadpoolctl import threadpool_limits

import fastbp
from fastbp import _core
from fastbp.threads import _openblas_thread_functions, _set_parallel_min


def test_small_products_leave_the_blas_thread_count_as_it_was():
    address, _ = _openblas_thread_functions()
    if not address:
        pytest.skip("SciPy's OpenBLAS is not reachable here")
    blas_threads = ctypes.CFUNCTYPE(ctypes.c_int)(address)   # openblas_get_num_threads
    with threadpool_limits(limits=2, user_api="blas"):
        for n in (8, 256):          # below and above the one-thread threshold
            A = np.ones((n, n), np.float32)
            _core.gemm(A, A, np.empty_like(A))
            assert blas_threads() == 2


def test_parallel_threshold_is_a_runtime_setting():
    old = _set_parallel_min(5)
    try:
        assert _set_parallel_min(0) == 5      # values below 1 are taken as 1
        assert _set_parallel_min(old) == 1
    finally:
        _set_parallel_min(old)


@pytest.mark.parametrize("preset, expected", [
    ({}, "PASSIVE 22"),
    ({"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "28"}, "ACTIVE 28"),
])
def test_spin_wait_settings_at_import_respect_the_user(preset, expected, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    code = ("import os, fastbp; print(os.environ['OMP_WAIT_POLICY'], "
            "os.environ['OPENBLAS_THREAD_TIMEOUT'])")
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(fastbp.__file__))  # this fastbp
    out = subprocess.run([sys.executable, "-c", code], env={**env, **preset}, cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == expected.split()


def test_results_do_not_depend_on_which_thread_takes_which_chunk():
    """Guided scheduling hands out chunks in a run-dependent order; reductions still give the
    same bits (fixed chunks combined in order)."""
    x = np.random.default_rng(0).standard_normal(200_003)
    with num_threads(2):
        norms = {_core.grad_norm(x) for _ in range(20)}
    assert len(norms) == 1
