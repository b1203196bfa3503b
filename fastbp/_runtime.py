"""Loading the compiled core with fastbp's runtime settings, leaving the environment as it was.

The OpenMP runtime and SciPy's OpenBLAS read their settings from environment variables once,
when they load. fastbp wants two of them (a user's own value wins): set here for the moment
the compiled core loads them, and removed again, so that ``os.environ`` and every child process
see exactly what the user had.

- ``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads that spin after a parallel region steal the cores
  BLAS threads need next (measured on 2 cores, an mnist-sized step went from 2.2 ms to 28 ms).
- ``OPENBLAS_THREAD_TIMEOUT=22``: OpenBLAS workers spin for about 2^28 cycles after each product,
  and the second core is then not free for the optimizer update that follows (Adam over 25M
  floats: 33 ms instead of 17 ms on 2 cores); 2^22 cycles (about a millisecond) still bridges
  the gaps between the products of one step.

The OpenMP setting reaches fastbp's own runtime whatever was imported before (setup.py gives
the extension a private copy of GNU OpenMP); SciPy's OpenBLAS reads its setting only when fastbp
is the first to load it into the process.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

LOAD_SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "22"}


@contextlib.contextmanager
def environment_while_loading(settings: dict[str, str] = LOAD_SETTINGS) -> Iterator[None]:
    """`settings` in the environment for the duration (the user's values kept), then exactly
    the environment from before."""
    added = [name for name in settings if name not in os.environ]
    for name in added:
        os.environ[name] = settings[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def own_symbols_first() -> Iterator[None]:
    """Extensions loaded in the body bind their undefined symbols to their own dependencies
    before the libraries already in the process's global scope (RTLD_DEEPBIND, on Linux). The
    compiled core's OpenMP calls then reach its private runtime even when another library (as
    PyTorch does) has put a libgomp into the global scope, which would otherwise win."""
    deep = getattr(os, "RTLD_DEEPBIND", 0)
    if not deep:
        yield
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | deep)
    try:
        yield
    finally:
        sys.setdlopenflags(flags)


@contextlib.contextmanager
def environment_kept() -> Iterator[None]:
    """Whatever the body does to ``os.environ`` (an import that sets a variable) is undone."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(before):
            del os.environ[name]
        for name, value in before.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def core_not_built(exc: ImportError) -> ImportError:
    """The error for a fastbp whose compiled core is missing: what to do about it."""
    where = os.path.dirname(os.path.abspath(__file__))
    return ImportError(
        f"fastbp's compiled core (fastbp._core) is not built in {where}: install fastbp with "
        f"'pip install .' (or build it in place with 'python setup.py build_ext --inplace'); "
        f"to use an installed fastbp, run Python outside the source tree ({exc})")
