"""The benchmark scripts run and report what they claim (a tiny smoke run, no timing checks)."""
import json
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks")
pytestmark = pytest.mark.skipif(not os.path.isdir(BENCHMARKS),
                                reason="the benchmarks/ folder is not beside these tests")
SMOKE = ["--workloads", "tiny", "--peers", "numpy", "--repeats", "1", "--settle", "0",
         "--sgemm-size", "64"]


def fresh_import(monkeypatch, name):
    monkeypatch.syspath_prepend(BENCHMARKS)
    sys.modules.pop(name, None)
    return __import__(name)


@pytest.fixture
def subprocesses_import_this_fastbp(monkeypatch):
    import fastbp
    monkeypatch.setenv("PYTHONPATH", os.path.dirname(os.path.dirname(fastbp.__file__)))


@pytest.fixture
def compare(monkeypatch, subprocesses_import_this_fastbp):
    return fresh_import(monkeypatch, "compare")


@pytest.fixture
def peers(monkeypatch):
    return fresh_import(monkeypatch, "peers")


def test_step_flops_counts_every_gemm(peers):
    # 2-3-4, batch 5: forward 5*2*3 + 5*3*4 products, dW the same, dX of the second layer only
    assert peers.step_flops([2, 3, 4], 5) == 2 * (2 * (30 + 60)) + 2 * 60


def test_compare_runs_each_library_in_a_worker_and_reports(compare, tmp_path, capsys,
                                                           monkeypatch):
    """Both thread counts in one invocation: the JSON has the run's context, each library's
    kernels, the tables print, the targets are computed; a kernel-forcing variable warns."""
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    out = tmp_path / "result.json"
    compare.main(["--threads", "1", "2", *SMOKE, "--adam-sizes", "1000", "--json", str(out)])
    result = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert {"date", "machine", "environment", "warnings", "runs", "targets"} <= set(result)
    assert result["environment"]["OPENBLAS_L2_SIZE"] == "1048576"
    assert "**WARNING**: OPENBLAS_L2_SIZE=1048576 is set" in printed
    for threads in (1, 2):
        run = result["runs"][str(threads)]
        assert run["worker_environment"]["OMP_NUM_THREADS"] == str(threads)
        assert run["sgemm_gflops"] > 0
        assert not run["failed"]
        for library in ("fastbp", "numpy"):
            info = run["libraries"][library]
            assert info["versions"]["numpy"]
            assert any(pool["user_api"] == "blas" for pool in info["threadpools"])
        if threads == 1:
            assert run["libraries"]["numpy"]["cpus"] == [run["pinned_cpu"]]
        rows = run["workloads"]["tiny"]["results"]
        assert set(rows) == {"fastbp", "numpy"}
        assert rows["fastbp"]["ratio_to_fastbp"] == 1.0
        assert rows["numpy"]["us_per_step"] > 0 and rows["numpy"]["gflops"] > 0
        assert run["adam"]["1000"]["fastbp"]["gb_per_s"] > 0
        assert f"## {threads} thread" in printed
    assert "| tiny | numpy |" in printed
    tiny = [t for t in result["targets"] if t["target"].startswith("tiny, 2 threads: fastbp")]
    assert tiny[0]["measured"] > 0
    assert "| target | measured | met |" in printed and "| not measured | NO |" in printed


def test_a_failing_worker_is_reported_not_fatal(compare, tmp_path, capsys, monkeypatch):
    command = compare.worker_command

    def numpy_crashes(library, *args):
        if library == "numpy":
            return [sys.executable, "-c", "import sys; sys.exit('numpy worker: out of luck')"]
        return command(library, *args)
    monkeypatch.setattr(compare, "worker_command", numpy_crashes)
    out = tmp_path / "result.json"
    compare.main(["--threads", "1", *SMOKE, "--adam-sizes", "--json", str(out)])
    run = json.loads(out.read_text())["runs"]["1"]
    assert run["failed"] == [{"library": "numpy", "job": "tiny",
                              "reason": "numpy worker: out of luck"}]
    assert set(run["workloads"]["tiny"]["results"]) == {"fastbp"}
    assert "- numpy failed (tiny): numpy worker: out of luck" in capsys.readouterr().out


def test_a_worker_out_of_time_is_reported(compare):
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    assert compare.run_worker(sleeper, 1, timeout=0.5) == {"failed": "timed out after 0.5 s"}


def test_a_peer_that_cannot_be_imported_is_skipped(peers, monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)
    assert peers.run("jax", "tiny", 1)["skipped"].startswith("cannot import it: ")


def test_numpy_textbook_step_learns(peers):
    """The peer implementation is a real training step: its loss goes down."""
    import numpy as np
    from benchmarks.common import WORKLOADS, make_data
    sizes, activation, batch, loss = WORKLOADS["small"]
    batches = peers.batches_of(*make_data(sizes, loss, batch, "float32"), batch)
    step, forward_loss = peers.numpy_step(sizes, activation, loss, batches, with_loss=True)
    first = forward_loss()
    for _ in range(50):
        step()
    assert forward_loss() < 0.5 * first
    assert np.isfinite(first)


def test_neighbours_times_each_case_in_its_own_process(monkeypatch, tmp_path, capsys,
                                                       subprocesses_import_this_fastbp):
    """Two cases, one short round: each gets a time, the neighbour case a ratio to the other."""
    neighbours = fresh_import(monkeypatch, "neighbours")
    out = tmp_path / "neighbours.json"
    neighbours.main(["--threads", "1", "--rounds", "1", "--seconds", "0.05", "--cases",
                     "fastbp alone", "fastbp after sklearn", "--json", str(out)])
    cases = json.loads(out.read_text())["cases"]
    assert "fastbp alone" in capsys.readouterr().out
    assert cases["fastbp alone"]["us_per_step"] > 0
    assert cases["fastbp alone"]["ratio_to_alone"] is None
    if "fastbp after sklearn" in cases:  # skipped where scikit-learn is not installed
        assert cases["fastbp after sklearn"]["ratio_to_alone"] > 0


def test_distributed_model_is_the_ring_allreduce_formula(monkeypatch):
    distributed = fresh_import(monkeypatch, "distributed")
    assert distributed.ring_seconds(4, 8e9, 1e9) == pytest.approx(2 * 3 / 4 * 8)
    rows = distributed.model(per_sample=1e-3, batch=100, grad_bytes=1e9)
    row = next(r for r in rows if r["link"] == "10 Gbit/s" and r["nodes"] == 2)
    a = 2 * 1 / 2 * 1e9 / 1.25e9                     # 0.8 s
    assert row["allreduce_ms"] == pytest.approx(a * 1e3)
    assert row["strong_speedup"] == pytest.approx(0.1 / (0.05 + a))
    assert row["weak_efficiency"] == pytest.approx(0.1 / (0.1 + a))
    assert row["strong_speedup_overlap"] == pytest.approx(0.1 / (0.05 / 3 + a))  # hides none
    assert {r["nodes"] for r in rows} == {2, 4, 8, 16, 32, 64}


def test_distributed_runs_under_mpirun(monkeypatch, tmp_path, capsys,
                                       subprocesses_import_this_fastbp):
    import shutil
    if shutil.which("mpirun") is None:
        pytest.skip("no mpirun here (Open MPI: apt-get install openmpi-bin)")
    pytest.importorskip("mpi4py", reason="no mpi4py (pip install 'fastbp[mpi]')")
    distributed = fresh_import(monkeypatch, "distributed")
    out = tmp_path / "distributed.json"
    distributed.main(["--ranks", "1", "2", "--workloads", "tiny", "--json", str(out)])
    result = json.loads(out.read_text())
    two = result["runs"][1]["workloads"]["tiny"]
    assert result["runs"][1]["ranks"] == 2 and two["bus_gb_per_s"] > 0
    assert two["step_s"] > 0 and two["allreduce_s"] > 0
    assert len(result["model"]["tiny"]) == 12
    assert "model: N nodes like this one" in capsys.readouterr().out
