"""Small datasets shipped with fastbp, and a seeded train/test split.

The 8x8 handwritten digits are the test set of the UCI ML "Optical Recognition of Handwritten
Digits" dataset (E. Alpaydin, C. Kaynak, 1998, doi:10.24432/C50P49, licence CC BY 4.0), in the
copy redistributed by scikit-learn (BSD-3-Clause). See ``fastbp/data/README.md``.
"""
from __future__ import annotations

import gzip
import io
from importlib import resources

import numpy as np

from fastbp._validation import seed_value

__all__ = ["load_digits", "train_test_split"]

DIGITS_FILE = "digits.csv.gz"
DIGITS_SHAPE = (1797, 64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits dataset shipped inside the package.

    1797 images of the digits 0..9; each feature is the number of "on" pixels (0..16) in one
    4x4 block of a 32x32 bitmap, the 64 blocks taken row by row.

    Returns
    -------
    X : ndarray of shape (1797, 64), float64
        Pixel counts, integers in 0..16.
    y : ndarray of shape (1797,), int64
        Digit labels in 0..9.

    Notes
    -----
    Source: UCI Machine Learning Repository, "Optical Recognition of Handwritten Digits",
    E. Alpaydin and C. Kaynak (1998), https://doi.org/10.24432/C50P49, licensed CC BY 4.0;
    the file is the copy redistributed by scikit-learn (BSD-3-Clause), so ``X`` and ``y``
    equal ``sklearn.datasets.load_digits(return_X_y=True)``.

    Examples
    --------
    >>> from fastbp.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, y.shape
    ((1797, 64), (1797,))
    """
    raw = resources.files("fastbp").joinpath("data").joinpath(DIGITS_FILE).read_bytes()
    with gzip.open(io.BytesIO(raw), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.shape != (DIGITS_SHAPE[0], DIGITS_SHAPE[1] + 1):
        raise ValueError(f"{DIGITS_FILE}: expected {DIGITS_SHAPE[0]} rows of "
                         f"{DIGITS_SHAPE[1] + 1} values, got shape {table.shape}")
    X = np.ascontiguousarray(table[:, :-1])
    y = table[:, -1].astype(np.int64)
    return X, y


def train_test_split(X: np.ndarray, y: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split (X, y) at random into a training and a test part.

    The rows are permuted by ``numpy.random.default_rng(seed)``; the first
    ``round(test_fraction * n)`` rows of the permutation (at least 1 and at most n - 1) form
    the test part.

    Parameters
    ----------
    X : ndarray of shape (n, ...)
    y : ndarray of shape (n, ...)
    test_fraction : float in (0, 1)
        Share of the samples put in the test part.
    seed : int
        Seed of the permutation: the same seed gives the same split.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarrays
        Rows of X and y, in the permuted order.
    """
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0] if X.ndim else 0
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"y: expected {n} rows to match X, got shape {y.shape}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    if n < 2:
        raise ValueError(f"X: expected at least 2 samples to split, got {n}")
    n_test = min(max(round(float(test_fraction) * n), 1), n - 1)
    order = np.random.default_rng(seed_value(seed)).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
