"""The distributed tests run under an MPI launcher with 2 or more ranks and mpi4py
(``mpirun -n 2 python -m pytest tests/distributed``); elsewhere they skip. Every rank runs
every test (each test is collective); only rank 0 reports."""
import pytest

from fastbp.distributed.ranks import launched_rank, launched_size


@pytest.hookimpl(trylast=True)   # after pytest's own, which registers the reporter
def pytest_configure(config):
    """Ranks other than 0 run silently: their results are rank 0's (a failure on one rank
    fails its exit status, which mpirun reports)."""
    if launched_size() > 1 and launched_rank() > 0:
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)


@pytest.fixture(scope="session")
def comm():
    """MPI.COMM_WORLD of a launch with at least 2 ranks."""
    if launched_size() < 2:
        pytest.skip("distributed tests run under MPI with 2 or more ranks: mpirun -n 2 python "
                    "-m pytest tests/distributed")
    MPI = pytest.importorskip("mpi4py.MPI", reason="the distributed tests need mpi4py: pip "
                              "install 'fastbp[mpi]'")
    return MPI.COMM_WORLD
