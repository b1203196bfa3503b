"""History.plot and `fastbp train --plot`: image files with matplotlib, a clear error without."""
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp.cli import main
from fastbp.plotting import _panels

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return centers[y] + 0.5 * rng.standard_normal((n, 2)), y


def monitored_history():
    X, y = blobs()
    net = fb.mlp([2, 8, 8, 3], seed=1)
    return net.fit(X, y, epochs=3, batch_size=16, verbose=0, validation_data=blobs(15, 1),
                   monitor=True, lr_schedule=fb.ExponentialDecay(0.5))


def test_panels_follow_what_the_history_holds():
    hist = monitored_history()
    titles = [(title, sorted(series)) for title, series, _ in _panels(hist)]
    assert titles == [("loss", ["loss", "val_loss"]),
                      ("accuracy", ["accuracy", "val_accuracy"]),
                      ("learning rate", ["lr"]),
                      ("gradient norm per layer", ["0:Dense", "2:Dense", "4:Dense"])]
    X, Y = blobs()[0], np.ones((60, 1))
    plain = fb.mlp([2, 1]).fit(X, Y, loss="mse", epochs=2, verbose=0)
    assert [title for title, _, _ in _panels(plain)] == ["loss"]


@pytest.mark.parametrize("suffix, signature", [("png", PNG_SIGNATURE), ("svg", b"<?xml"),
                                               ("pdf", b"%PDF")])
def test_plot_writes_the_image(tmp_path, suffix, signature):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"curves.{suffix}"
    monitored_history().plot(path)
    assert path.read_bytes().startswith(signature)


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        monitored_history().plot(tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_plot_refuses_bad_arguments(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(TypeError, match="path"):
        monitored_history().plot(3)
    with pytest.raises(ValueError, match="epoch"):
        fb.History().plot(tmp_path / "empty.png")


# ------------------------------------------------------------------------------------- CLI
def test_cli_train_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot, model = tmp_path / "curves.png", tmp_path / "m.npz"
    status = main(["train", "--epochs", "2", "--layers", "8", "--monitor", "--quiet",
                   "--plot", str(plot), "--out", str(model)])
    assert status == 0
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    assert f"saved training curves to {plot}" in capsys.readouterr().out


def test_cli_plot_without_matplotlib_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    status = main(["train", "--epochs", "1", "--plot", str(tmp_path / "c.png"),
                   "--out", str(tmp_path / "m.npz")])
    captured = capsys.readouterr()
    assert status == 2
    assert "fastbp: error: --plot: " in captured.err and "pip install matplotlib" in captured.err
    assert not (tmp_path / "m.npz").exists() and "epoch" not in captured.out


def test_cli_plot_into_a_missing_directory_fails_early(tmp_path, capsys):
    status = main(["train", "--epochs", "1", "--plot", str(tmp_path / "no" / "c.png"),
                   "--out", str(tmp_path / "m.npz")])
    assert status == 2 and "--plot" in capsys.readouterr().err
