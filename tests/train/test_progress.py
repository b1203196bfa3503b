"""Progress report of fit: per-epoch lines with or without tqdm, the bar on a terminal."""
import io
import re
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp.train.progress import epoch_line, format_seconds


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return centers[y] + 0.5 * rng.standard_normal((n, 2)), y


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so tqdm draws its bar into it."""

    def isatty(self):
        return True


def fit_lines(capsys, **kwargs):
    X, y = blobs()
    fb.mlp([2, 4, 3], seed=1).fit(X, y, epochs=3, batch_size=16, **kwargs)
    captured = capsys.readouterr()
    return [line for line in captured.out.splitlines() if line.strip()], captured.err


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_one_line_per_epoch_with_loss_metrics_rate_and_time_left(capsys, monkeypatch,
                                                                 tqdm_installed):
    if not tqdm_installed:
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)      # import tqdm.auto fails
    lines, err = fit_lines(capsys, verbose=1, validation_data=blobs(15, 1))
    assert len(lines) == 3 and err == ""                         # no bar: not a terminal
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {epoch}/3  loss ")
        for part in ("accuracy", "val_loss", "val_accuracy", "samples/s"):
            assert part in line
        assert ("ETA" in line) == (epoch < 3)
    assert re.search(r"\d+ samples/s  \d+\.\d\ds  ETA \d+\.\ds$", lines[0]), lines[0]


def test_progress_bar_on_a_terminal(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    lines, _ = fit_lines(capsys, verbose=1)
    assert len(lines) == 3                            # the epoch lines still go to stdout
    bar = terminal.getvalue()
    assert "epoch 1/3" in bar and "sample" in bar     # samples/s and time left: tqdm's own
    assert re.search(r"\d+/180", bar), bar            # counts samples over the whole fit


def test_verbose_2_prints_lines_but_no_bar(capsys, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    lines, _ = fit_lines(capsys, verbose=2)
    assert len(lines) == 3 and terminal.getvalue() == ""


def test_verbose_0_is_silent_even_on_a_terminal(capsys, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    lines, err = fit_lines(capsys, verbose=0)
    assert lines == [] and terminal.getvalue() == ""


def test_lines_show_the_scheduled_lr(capsys):
    lines, _ = fit_lines(capsys, verbose=2, lr_schedule=fb.StepDecay(2, 0.5))
    assert [re.search(r"lr (\S+)", line).group(1) for line in lines] == ["0.001", "0.001",
                                                                        "0.0005"]


@pytest.mark.parametrize("bad", [3, -1, 0.5, "1", None])
def test_verbose_is_validated(bad):
    X, y = blobs()
    with pytest.raises(ValueError, match="verbose"):
        fb.mlp([2, 3]).fit(X, y, epochs=1, verbose=bad)


def test_format_seconds_and_eta():
    assert format_seconds(12.34) == "12.3s"
    assert format_seconds(245) == "4:05"
    assert format_seconds(3723) == "1:02:03"
    line = epoch_line(2, 10, {"loss": 0.5, "time": 2.0}, 1000, elapsed=5.0)
    assert line == "epoch  2/10  loss 0.5000  500 samples/s  2.00s  ETA 20.0s"
