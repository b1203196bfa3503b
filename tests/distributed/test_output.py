"""Around the loop everything is global: only rank 0 prints and writes files, and callbacks and
schedules decide on the global logs, alike on every rank and as one process does."""
import os

import numpy as np
from dist_helpers import data, dense, own_rows, relative

import fastbp as fb


def test_only_rank_0_prints_progress(comm, capsys):
    X, y = data()
    dense().fit(X, y, comm=comm, shard="auto", verbose=2, epochs=2)
    printed = comm.allgather(capsys.readouterr())
    assert printed[0].out.count("epoch") == 2
    assert all(p.out == "" and p.err == "" for p in printed[1:])


def test_model_checkpoint_writes_on_rank_0_only(comm, tmp_path):
    X, y = data()
    path = tmp_path / f"shared-{comm.Get_size()}.npz"     # each rank has its own tmp_path
    checkpoint = fb.ModelCheckpoint(path, monitor="loss")
    net = dense()
    net.fit(X, y, comm=comm, shard="auto", verbose=0, epochs=3, callbacks=[checkpoint])
    written = comm.allgather(os.path.exists(path))
    epochs = comm.allgather(checkpoint.saved_epochs)
    assert written == [True] + [False] * (comm.Get_size() - 1)
    assert all(e == epochs[0] for e in epochs) and epochs[0]
    if comm.Get_rank() == 0:
        assert np.array_equal(fb.load(path).params, net.params)


def test_early_stopping_and_schedules_decide_as_one_process(comm):
    X, y = data()
    X_val, y_val = data(rows=30, seed=5)
    mine, val_mine = own_rows(103, comm), own_rows(30, comm)

    def run(net, **kwargs):
        stop = fb.EarlyStopping(monitor="val_loss", patience=1, min_delta=0.05)
        history = net.fit(epochs=12, batch_size=16, verbose=0, callbacks=[stop],
                          lr_schedule=fb.StepDecay(2, gamma=0.5), **kwargs)
        return history, stop.stopped_epoch

    one, par = dense(), dense()
    h1, stopped1 = run(one, X=X, y=y, validation_data=(X_val, y_val))
    h2, stopped2 = run(par, X=X[mine], y=y[mine], validation_data=(X_val[val_mine],
                                                                  y_val[val_mine]), comm=comm)
    stops = comm.allgather(stopped2)
    assert stopped1 is not None and stopped1 < 12
    assert stops == [stopped1] * comm.Get_size()
    assert h1["lr"] == h2["lr"]
    assert relative(h1["val_accuracy"], h2["val_accuracy"]) <= 1e-12
