"""Thread control: the thread count's bound and reach, threads racing each other, the parallel
threshold, the spin-wait settings fastbp gives its runtimes at import (and nobody else), and
the error of an unbuilt source tree."""
import glob
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from thread_helpers import num_threads

import fastbp
from fastbp import _core
from fastbp.parallel import _set_parallel_min, available_cpus, max_threads


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


def run_python(code: str, env: dict, cwd) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter that imports this fastbp."""
    env = {**env, "PYTHONPATH": os.path.dirname(os.path.dirname(fastbp.__file__))}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, check=True)


@pytest.mark.parametrize("preset, policy", [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"},
                                                                "ACTIVE")])
def test_import_leaves_the_environment_as_it_was(preset, policy, tmp_path):
    """The spin-wait settings reach fastbp's OpenMP runtime as it loads (OMP_DISPLAY_ENV makes
    it print them) and are gone from os.environ and the C environment afterwards."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "KMP_DUPLICATE_LIB_OK")}
    code = ("import ctypes, os; before = dict(os.environ); import fastbp; "
            "fastbp.set_num_threads(1); import fastbp.parallel as p; p._set_blas_threads(1); "
            "libc = ctypes.CDLL(None); libc.getenv.restype = ctypes.c_char_p; "
            "print(dict(os.environ) == before, libc.getenv(b'OPENBLAS_THREAD_TIMEOUT'), "
            "libc.getenv(b'OMP_WAIT_POLICY'))")
    out = run_python(code, {**env, **preset, "OMP_DISPLAY_ENV": "TRUE"}, tmp_path)
    shown = preset.get("OMP_WAIT_POLICY")
    assert out.stdout.split() == ["True", "None", repr(shown.encode()) if shown else "None"]
    assert f"OMP_WAIT_POLICY = '{policy}'" in out.stderr


def test_the_openmp_runtime_is_fastbps_own(tmp_path):
    """With another libgomp already in the global scope (PyTorch puts its own there; without
    it, the system's stands in), the C core's OpenMP calls still bind to fastbp's copy, so
    neither library runs on the other's runtime and settings."""
    here = os.path.dirname(fastbp.__file__)
    if not glob.glob(os.path.join(here, "libgomp-fastbp*")):
        pytest.skip("this build has no private GNU OpenMP runtime (not Linux with GCC)")
    code = ("import ctypes, importlib.util\n"
            "if importlib.util.find_spec('torch'):\n"
            "    import torch\n"
            "else:\n"
            "    ctypes.CDLL('libgomp.so.1', mode=ctypes.RTLD_GLOBAL)\n"
            "import fastbp\n")
    out = run_python(code, {**os.environ, "LD_DEBUG": "bindings"}, tmp_path)
    bound = [line.split(" to ")[1].split()[0] for line in out.stderr.splitlines()
             if "_core" in line.split(" to ")[0] and "`GOMP_parallel'" in line]
    assert bound and all(os.path.basename(b) == "libgomp-fastbp.so.1" for b in bound), bound


def test_set_num_threads_changes_only_fastbps_threads(tmp_path):
    """NumPy's own OpenBLAS (and PyTorch's threads, when installed) keep their counts; SciPy's
    OpenBLAS, the one fastbp calls, follows."""
    code = ("import os, threadpoolctl, numpy, scipy.linalg, fastbp\n"
            "def counts():\n"
            "    return {os.path.dirname(i['filepath']).split(os.sep)[-1]: i['num_threads']\n"
            "            for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'}\n"
            "before = counts()\n"
            "try:\n"
            "    import torch; torch.set_num_threads(2); t = torch.get_num_threads\n"
            "except ImportError:\n"
            "    t = lambda: 2\n"
            "fastbp.set_num_threads(1)\n"
            "after = counts()\n"
            "print(before['numpy.libs'], after['numpy.libs'], after['scipy.libs'], t(), "
            "fastbp.get_num_threads())\n")
    out = run_python(code, {**os.environ, "OMP_NUM_THREADS": "2"}, tmp_path)
    assert out.stdout.split() == ["2", "2", "1", "2", "1"]


def test_the_threads_context_restores_both_counts():
    from fastbp.parallel import _blas_threads
    start, blas = fastbp.get_num_threads(), _blas_threads()
    with fastbp.threads(1):
        assert fastbp.get_num_threads() == 1 and _blas_threads() in (1, None)
        with pytest.raises(ValueError, match="n: expected"):
            with fastbp.threads(0):
                pass
        assert fastbp.get_num_threads() == 1
    assert fastbp.get_num_threads() == start and _blas_threads() == blas


def test_threads_blocks_overlapping_in_python_threads():
    """Blocks of two Python threads, the first entered ending first: the other keeps its
    count, and the count from before both comes back when the last one ends."""
    start = fastbp.get_num_threads()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with fastbp.threads(3):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with fastbp.threads(2):
            second_in.set()
            first_out.wait(10)
            seen["inside"] = fastbp.get_num_threads()

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert seen == {"inside": 2}
    assert fastbp.get_num_threads() == start


def test_an_unbuilt_source_tree_says_what_to_do(tmp_path):
    """A copy of the package without its compiled core: an ImportError naming the fix."""
    source = os.path.dirname(fastbp.__file__)
    target = tmp_path / "fastbp"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.so", "*.pyd",
                                                                  "__pycache__"))
    out = subprocess.run([sys.executable, "-c", "import fastbp"], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)},
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "ImportError: fastbp's compiled core (fastbp._core) is not built" in out.stderr
    assert "pip install ." in out.stderr and "circular import" not in out.stderr


FORK_CHILD = """
import multiprocessing as mp, sys, warnings
import numpy as np
import fastbp
from fastbp import _core
from fastbp.parallel import _set_parallel_min

def work(threads):
    caught = []
    if threads:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fastbp.set_num_threads(threads)
    net = fastbp.mlp([20, 64, 3], seed=0)
    X = np.random.default_rng(1).standard_normal((256, 20))
    net.fit(X, np.arange(256) % 3, epochs=1, batch_size=64, verbose=0)
    x = np.random.default_rng(0).standard_normal(1 << 19)
    return float(_core.grad_norm(x)), fastbp.get_num_threads(), [str(w.message) for w in caught]

if __name__ == "__main__":
    _set_parallel_min(1)
    fastbp.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal(1 << 19)
    expected = float(_core.grad_norm(x))
    with mp.get_context(sys.argv[1]).Pool(1) as pool:
        norm, threads, caught = pool.apply_async(work, (int(sys.argv[2]),)).get(timeout=60)
    print(norm == expected, threads, len(caught), "forked from one" in "".join(caught))
"""


@pytest.mark.parametrize("method, threads, expected", [
    ("fork", 0, "True 1 0 False"), ("fork", 2, "True 1 1 True"),
    ("spawn", 2, "True 2 0 False"), ("forkserver", 2, "True 2 0 False")])
def test_multiprocessing_workers_complete_after_parallel_kernels(method, threads, expected,
                                                                 tmp_path):
    """The parent runs 2-thread kernels first; a forked worker (whose OpenMP pool did not come
    along) runs on one thread, and warns if asked for more, where spawn and forkserver workers
    start fresh. Each child trains a network and takes a parallel norm."""
    script = tmp_path / "pool.py"
    script.write_text(FORK_CHILD)
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(fastbp.__file__))}
    out = subprocess.run([sys.executable, str(script), method, str(threads)], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == expected.split()


def test_results_do_not_depend_on_which_thread_takes_which_chunk():
    """Guided scheduling hands out chunks in a run-dependent order; reductions still give the
    same bits (fixed chunks combined in order)."""
    x = np.random.default_rng(0).standard_normal(200_003)
    with num_threads(2):
        norms = {_core.grad_norm(x) for _ in range(20)}
    assert len(norms) == 1
