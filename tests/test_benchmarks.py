"""The benchmark scripts run and report what they claim (a tiny smoke run, no timing checks)."""
import json
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks")
pytestmark = pytest.mark.skipif(not os.path.isdir(BENCHMARKS),
                                reason="the benchmarks/ folder is not beside these tests")


@pytest.fixture
def compare(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    sys.modules.pop("compare", None)
    import compare
    return compare


def test_step_flops_counts_every_gemm(compare):
    # 2-3-4, batch 5: forward 5*2*3 + 5*3*4 products, dW the same, dX of the second layer only
    assert compare.step_flops([2, 3, 4], 5) == 2 * (2 * (30 + 60)) + 2 * 60


def test_compare_writes_the_table_and_json(compare, tmp_path, capsys):
    out = tmp_path / "result.json"
    compare.main(["--threads", "1", "--workloads", "tiny", "small", "--peers", "numpy",
                  "--adam-sizes", "1000", "--repeats", "1", "--sgemm-size", "128", "--settle", "0",
                  "--json", str(out)])
    result = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert set(result["workloads"]) == {"tiny", "small"}
    for name in ("tiny", "small"):
        rows = result["workloads"][name]["results"]
        assert set(rows) == {"fastbp", "numpy"}
        assert rows["fastbp"]["ratio_to_fastbp"] == 1.0
        assert rows["numpy"]["us_per_step"] > 0
        assert f"| {name} | numpy |" in printed
    assert result["adam"]["1000"]["fastbp"]["gb_per_s"] > 0
    assert result["sgemm_2048_gflops"] > 0


def test_numpy_textbook_step_learns(compare):
    """The peer implementation is a real training step: its loss goes down."""
    import numpy as np
    from benchmarks.common import WORKLOADS, make_data
    sizes, activation, batch, loss = WORKLOADS["small"]
    batches = compare.batches_of(*make_data(sizes, loss, batch, "float32"), batch)
    step, forward_loss = compare.numpy_step(sizes, activation, loss, batches, with_loss=True)
    first = forward_loss()
    for _ in range(50):
        step()
    assert forward_loss() < 0.5 * first
    assert np.isfinite(first)


def test_neighbours_times_each_case_in_its_own_process(monkeypatch, tmp_path, capsys):
    """Two cases, one short round: each gets a time, the neighbour case a ratio to the other."""
    import fastbp
    monkeypatch.syspath_prepend(BENCHMARKS)
    monkeypatch.setenv("PYTHONPATH", os.path.dirname(os.path.dirname(fastbp.__file__)))
    sys.modules.pop("neighbours", None)
    import neighbours
    out = tmp_path / "neighbours.json"
    neighbours.main(["--threads", "1", "--rounds", "1", "--seconds", "0.05", "--cases",
                     "fastbp alone", "fastbp after sklearn", "--json", str(out)])
    cases = json.loads(out.read_text())["cases"]
    assert "fastbp alone" in capsys.readouterr().out
    assert cases["fastbp alone"]["us_per_step"] > 0
    assert cases["fastbp alone"]["ratio_to_alone"] is None
    if "fastbp after sklearn" in cases:  # skipped where scikit-learn is not installed
        assert cases["fastbp after sklearn"]["ratio_to_alone"] > 0
