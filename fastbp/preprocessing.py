"""Feature standardisation: x' = (x - mean) / std per feature.

A fitted Standardizer can be attached to a network (``net.standardizer = ...``): the network
then takes raw features and standardises them itself, and saves the statistics with the model.
"""
from __future__ import annotations

import numpy as np

from fastbp._validation import as_matrix, check_finite


class Standardizer:
    """Standardise features with the mean and population standard deviation of a training set.

    A feature that is constant in the training set gets std 1 (so it maps to 0 and nothing
    divides by zero). Statistics are computed and applied in float64; `transform` returns
    float32 for float32 input and float64 otherwise.

    Attributes
    ----------
    mean, std : float64 arrays (n_features,), None before `fit`.
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @property
    def n_features(self) -> int | None:
        """Width of the data it was fitted on (None before `fit`)."""
        return None if self.mean is None else self.mean.shape[0]

    def fit(self, X) -> Standardizer:
        """Learn per-feature mean and std from X (n, n_features); returns self."""
        X = as_matrix(X, "X", np.dtype(np.float64))
        constant = X.max(axis=0) == X.min(axis=0)
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = X.mean(axis=0), X.std(axis=0)
        mean[constant] = X[0, constant]          # exactly the value: it maps to exactly 0
        std[constant] = 1.0
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            column = int(np.argmax(bad))
            raise ValueError(f"X: column {column} holds values too large to standardise (its "
                             f"mean or std overflows float64: values up to "
                             f"{np.abs(X[:, column]).max():g})")
        self.mean, self.std = mean, std
        return self

    def _checked(self, X, name: str) -> tuple[np.ndarray, np.dtype]:
        """X as float64 (n, n_features) and the dtype to return."""
        if self.mean is None:
            raise ValueError("Standardizer: not fitted yet; call fit(X_train) first")
        out = np.dtype(np.float32) if getattr(X, "dtype", None) == np.float32 else \
            np.dtype(np.float64)
        X = as_matrix(X, name, np.dtype(np.float64), self.n_features)
        return X, out

    def transform(self, X, name: str = "X") -> np.ndarray:
        """(X - mean) / std, X of shape (n, n_features)."""
        X, out = self._checked(X, name)
        return ((X - self.mean) / self.std).astype(out, copy=False)

    def inverse_transform(self, X, name: str = "X") -> np.ndarray:
        """X * std + mean: the raw features of standardised X (n, n_features)."""
        X, out = self._checked(X, name)
        return (X * self.std + self.mean).astype(out, copy=False)

    def fit_transform(self, X) -> np.ndarray:
        """fit(X), then transform(X)."""
        return self.fit(X).transform(X)

    @classmethod
    def from_arrays(cls, mean, std) -> Standardizer:
        """A fitted Standardizer with the given statistics (as saved with a model)."""
        mean = np.array(mean, dtype=np.float64)
        std = np.array(std, dtype=np.float64)
        if mean.ndim != 1 or mean.shape != std.shape or mean.shape[0] == 0:
            raise ValueError(f"std: expected 1-D mean and std of one non-zero length, got "
                             f"shapes {mean.shape} and {std.shape}")
        check_finite(mean, "mean")
        check_finite(std, "std")
        if not (std > 0).all():
            raise ValueError(f"std: expected values > 0, got {std[~(std > 0)][0]}")
        scaler = cls()
        scaler.mean, scaler.std = mean, std
        return scaler

    def __repr__(self) -> str:
        state = "unfitted" if self.mean is None else f"n_features={self.n_features}"
        return f"Standardizer({state})"


def check_standardizer(value, width: int, name: str = "standardizer",
                       what: str = "input") -> Standardizer | None:
    """`value` if it is None or a fitted Standardizer of `width` features (the network's
    `what` width), for the attribute `name`."""
    if value is None:
        return None
    if not isinstance(value, Standardizer):
        raise TypeError(f"{name}: expected a fitted fb.Standardizer or None, got "
                        f"{type(value).__name__}")
    if value.mean is None:
        raise ValueError(f"{name}: expected a fitted Standardizer, got an unfitted one "
                         "(call fit first)")
    if value.n_features != width:
        raise ValueError(f"{name}: expected one fitted on {width} features (the "
                         f"network's {what} width), got one fitted on {value.n_features}")
    return value
