"""A rank that dies in the middle of a fit is reported by MPI, and the job ends instead of
hanging: run here as `mpirun -n 2` of a script whose rank 1 exits in an epoch's callback."""
import os
import shutil
import subprocess
import sys

import pytest

from fastbp.distributed.ranks import launched_size

SCRIPT = """
import os
import numpy as np
from mpi4py import MPI
import fastbp as fb

class Die(fb.Callback):
    def on_epoch_end(self, epoch, logs):
        if epoch == 2 and MPI.COMM_WORLD.Get_rank() == 1:
            os._exit(3)

X = np.random.default_rng(0).standard_normal((64, 4)); y = np.arange(64) % 2
fb.mlp([4, 8, 2]).fit(X, y, epochs=50, comm=MPI.COMM_WORLD, shard="auto", verbose=0,
                      callbacks=[Die()])
"""


def test_a_dead_rank_ends_the_job(tmp_path):
    if launched_size() > 1:
        pytest.skip("starts mpirun itself: run in the ordinary suite, not under mpirun")
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("no mpirun here (Open MPI: apt-get install openmpi-bin)")
    pytest.importorskip("mpi4py", reason="no mpi4py (pip install 'fastbp[mpi]')")
    import fastbp
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fastbp.__file__)),
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    script = tmp_path / "die.py"
    script.write_text(SCRIPT)
    done = subprocess.run([mpirun, "--oversubscribe", "-n", "2", sys.executable, str(script)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0
    assert "exited" in done.stdout + done.stderr     # mpirun names the rank that exited
