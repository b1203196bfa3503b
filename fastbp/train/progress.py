"""Progress report of `fit`: one line per epoch, and a live progress bar when tqdm is installed.

verbose=0: silent. verbose=1: a tqdm bar over the samples of the whole fit (its rate in
samples/s and its time left cover every epoch; the running loss of the epoch as postfix), shown
on terminals and notebooks, plus one line per epoch; without tqdm, or when the output is not a
terminal, the lines alone. verbose=2: the lines alone (for log files). Each line holds the
epoch's loss and metrics, samples/s, the epoch's time and the estimated time left.
"""
from __future__ import annotations

import sys
import time

VERBOSITY = (0, 1, 2)
POSTFIX_INTERVAL = 0.5   # seconds between updates of the bar's running loss


def check_verbose(verbose) -> int:
    """`verbose` as 0, 1 or 2 (bools accepted)."""
    if verbose not in VERBOSITY or isinstance(verbose, float):
        raise ValueError(f"verbose: expected 0 (silent), 1 (progress bar) or 2 (one line per "
                         f"epoch), got {verbose!r}")
    return int(verbose)


def _tqdm_class():
    """tqdm's auto class (terminal or notebook), or None when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def format_seconds(seconds: float) -> str:
    """12.3s, 4:05 or 1:02:03."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_line(epoch: int, epochs: int, logs: dict[str, float], samples: int,
               elapsed: float) -> str:
    """``epoch 3/10  loss 0.1234  accuracy 0.9500  lr 0.001  5120 samples/s  0.28s  ETA 2.0s``

    `elapsed` is the time since the fit started; the time left assumes the mean epoch time.
    """
    parts = [f"epoch {epoch:>{len(str(epochs))}}/{epochs}"]
    for key, value in logs.items():
        if key == "lr":
            parts.append(f"lr {value:.3g}")
        elif key != "time":
            parts.append(f"{key} {value:.4f}")
    seconds = logs["time"]
    if seconds > 0:
        parts.append(f"{samples / seconds:.0f} samples/s")
    parts.append(f"{seconds:.2f}s")
    if epoch < epochs:
        parts.append(f"ETA {format_seconds(elapsed / epoch * (epochs - epoch))}")
    return "  ".join(parts)


class Progress:
    """Reports a fit of `epochs` epochs over `samples` samples at the given verbosity."""

    def __init__(self, verbose: int, epochs: int, samples: int) -> None:
        self.verbose, self.epochs, self.samples = verbose, epochs, samples
        self.started = time.perf_counter()
        self._next_postfix = 0.0
        self.bar = None
        tqdm = _tqdm_class() if verbose == 1 else None
        if tqdm is not None:
            bar = tqdm(total=epochs * samples, unit="sample", unit_scale=True,
                       desc=f"epoch 1/{epochs}", leave=False, dynamic_ncols=True,
                       disable=None, file=sys.stderr)
            if bar.disable:        # not a terminal: the lines alone
                bar.close()
            else:
                self.bar, self._write = bar, tqdm.write

    def batch(self, samples: int, mean_loss: float) -> None:
        """After each step: advance the bar; refresh the running loss now and then."""
        if self.bar is None:
            return
        self.bar.update(samples)
        now = time.perf_counter()
        if now >= self._next_postfix:
            self._next_postfix = now + POSTFIX_INTERVAL
            self.bar.set_postfix_str(f"loss {mean_loss:.4f}", refresh=False)

    def end_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        if not self.verbose:
            return
        line = epoch_line(epoch, self.epochs, logs, self.samples,
                          time.perf_counter() - self.started)
        if self.bar is None:
            print(line, flush=True)
        else:
            self._write(line, file=sys.stdout)
            self.bar.set_description(f"epoch {min(epoch + 1, self.epochs)}/{self.epochs}",
                                     refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
