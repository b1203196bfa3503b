"""Running a test body on a given number of threads."""
import contextlib

import fastbp as fb
from fastbp.parallel import _set_parallel_min


@contextlib.contextmanager
def num_threads(n: int):
    """Use `n` threads (OpenMP and BLAS) inside the block. With more than one, every
    elementwise kernel takes its parallel branch, however small its arrays (the default
    threshold is far above test sizes)."""
    old = fb.get_num_threads()
    fb.set_num_threads(n)
    old_min = _set_parallel_min(1 if n > 1 else 1 << 19)
    try:
        yield
    finally:
        _set_parallel_min(old_min)
        fb.set_num_threads(old)
