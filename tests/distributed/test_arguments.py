"""fit's comm and shard arguments in one process: refused with a clear error, and fastbp works
where mpi4py cannot be imported (it is the optional extra fastbp[mpi])."""
import os
import subprocess
import sys

import numpy as np
import pytest
from dist_helpers import data, dense

import fastbp
from fastbp.distributed.ranks import default_threads

# Run beside the fastbp these tests import (the installed one when run from a source tree)
PACKAGE_PARENT = os.path.dirname(os.path.dirname(fastbp.__file__))


class NotAComm:
    def Allreduce(self, *args):
        raise AssertionError("not called")


def test_comm_must_be_a_communicator():
    X, y = data()
    with pytest.raises(TypeError, match=r"comm: expected an MPI communicator \(mpi4py.MPI.Comm, "
                                        r"e.g. MPI.COMM_WORLD\), got NotAComm \(no Bcast\)"):
        dense().fit(X, y, comm=NotAComm(), verbose=0)
    with pytest.raises(TypeError, match="comm: expected an MPI communicator"):
        dense().train_step(X, y, comm="world")


@pytest.mark.parametrize("shard, message", [
    ("auto", "shard: expected None without comm"),
    ("rows", "shard: expected 'auto' .* or None .*, got 'rows'"),
])
def test_shard_is_checked(shard, message):
    X, y = data()
    net = dense()
    before = net.params.copy()
    with pytest.raises(ValueError, match=message):
        net.fit(X, y, shard=shard, verbose=0)
    assert np.array_equal(net.params, before)


WITHOUT_MPI4PY = """
import sys
sys.modules["mpi4py"] = None          # import mpi4py now raises ImportError
import numpy as np
import fastbp as fb
X = np.random.default_rng(0).standard_normal((20, 3)); y = np.arange(20) % 2
fb.mlp([3, 4, 2]).fit(X, y, epochs=1, verbose=0)

class Comm:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None

try:
    fb.mlp([3, 4, 2]).fit(X, y, comm=Comm(), verbose=0)
except ImportError as error:
    print(error)
"""


def test_fastbp_works_without_mpi4py_and_says_what_comm_needs():
    out = subprocess.run([sys.executable, "-c", WITHOUT_MPI4PY], capture_output=True,
                         text=True, timeout=120, check=True, cwd=PACKAGE_PARENT).stdout
    assert "comm: data-parallel training needs mpi4py: pip install 'fastbp[mpi]'" in out


def test_importing_fastbp_does_not_import_mpi4py():
    code = "import sys, fastbp; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True, cwd=PACKAGE_PARENT).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("usable, node, ranks, threads", [
    (16, 16, 4, 4), (16, 16, 3, 5), (2, 2, 4, 1), (4, 16, 4, 4), (1, 2, 2, 1)])
def test_default_threads(usable, node, ranks, threads):
    """cores / ranks on the node, unless the launcher bound the rank to fewer CPUs."""
    assert default_threads(usable, node, ranks) == threads
