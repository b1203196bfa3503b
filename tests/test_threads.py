"""Thread control: the thread count's bound and reach, threads racing each other, the parallel
threshold, and the spin-wait settings fastbp chooses at import."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from thread_helpers import num_threads

import fastbp
from fastbp import _core
from fastbp.threads import _set_parallel_min, available_cpus, max_threads


def test_thread_count_is_bounded_by_the_cpus():
    bound = max_threads()
    assert bound == 4 * available_cpus()
    for n in (bound + 1, 10_000, 2**40):
        with pytest.raises(ValueError, match=rf"n: expected at most {bound} threads .*got {n}"):
            fastbp.set_num_threads(n)
    assert fastbp.get_num_threads() <= bound


def test_thread_count_holds_in_every_python_thread():
    """OpenMP keeps its thread count per calling thread; fastbp's holds for all of them."""
    seen = []
    with num_threads(1):
        worker = threading.Thread(target=lambda: seen.append(_core.get_num_threads()))
        worker.start()
        worker.join()
    assert seen == [1]


def _fit(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((256, 40)), rng.integers(0, 5, 256)
    net = fastbp.mlp([40, 300, 5], seed=seed)
    net.fit(X, y, epochs=2, batch_size=32, verbose=0)
    return net.params


def test_fits_in_two_threads_give_the_bits_of_fits_one_after_the_other():
    """Products of every size interleave across the two threads (the BLAS thread count is not
    changed around small ones), and each fit gets the bits it gets alone."""
    together = [None, None]

    def run(i):
        together[i] = _fit(i)
    with num_threads(2):
        alone = [_fit(seed) for seed in (0, 1)]
        workers = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    for i in (0, 1):
        np.testing.assert_array_equal(together[i], alone[i])


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
