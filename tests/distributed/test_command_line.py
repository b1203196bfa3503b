"""``mpirun -n N fastbp train ...`` trains data-parallel: the model rank 0 saves is the one
process's, to rounding, and rank 0 alone prints and writes."""
from dist_helpers import relative

import fastbp as fb
from fastbp.cli import main
from fastbp.distributed.ranks import _LAUNCHED_SIZE

ARGS = ["train", "--layers", "16", "--epochs", "3", "--batch-size", "32", "--quiet"]


def test_train_under_mpirun_saves_the_one_process_model(comm, tmp_path, capsys, monkeypatch):
    one, par = tmp_path / "one.npz", tmp_path / "par.npz"
    with monkeypatch.context() as alone:          # as if started without the launcher
        for name in _LAUNCHED_SIZE:
            alone.delenv(name, raising=False)
        assert main([*ARGS, "--out", str(one)]) == 0
    capsys.readouterr()
    assert main([*ARGS, "--out", str(par)]) == 0
    out = capsys.readouterr().out
    printed = comm.allgather(out)
    written = comm.allgather(par.exists())
    assert written == [True] + [False] * (comm.Get_size() - 1)
    assert f"{comm.Get_size()} ranks x " in printed[0] and "test accuracy" in printed[0]
    assert all(p == "" for p in printed[1:])
    if comm.Get_rank() == 0:
        assert relative(fb.load(one).params, fb.load(par).params) <= 1e-6


def test_an_input_error_is_reported_once(comm, tmp_path, capsys):
    status = main(["train", "--data", str(tmp_path / "missing.csv"), "--out",
                   str(tmp_path / "m.npz")])
    errors = comm.allgather(capsys.readouterr().err)
    statuses = comm.allgather(status)
    assert statuses == [2] * comm.Get_size()
    assert errors[0].startswith("fastbp: error: rank 0 of ")
    assert all(e == "" for e in errors[1:])


def test_too_few_rows_for_the_ranks(comm, tmp_path, capsys):
    data = tmp_path / "tiny.csv"
    data.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(6)))
    status = main(["train", str(data), "--out", str(tmp_path / "m.npz"), "--test-fraction",
                   "0.1", "--quiet"])
    errors = comm.allgather(capsys.readouterr().err)
    assert comm.allgather(status) == [2] * comm.Get_size()
    assert "1 test samples cannot be shared by" in errors[0]
