"""fastbp.sklearn.MLPRegressor: scikit-learn's MLPRegressor, trained by fastbp's C core."""
from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from fastbp.sklearn.base import BaseMLP


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: a drop-in for sklearn.neural_network.MLPRegressor.

    The same parameters, defaults, fitted attributes, methods, stopping rules and warnings as
    scikit-learn's, and the same mathematics: loss="squared_error" (half the squared error;
    scikit-learn reports its mean over the outputs, while its gradient is the summed one's) or
    "poisson" (the deviance, with an exponential output), the L2 term, the solvers and
    schedules, computed by fastbp's C core. Multi-output y is supported. Beyond
    scikit-learn's: `sample_weight` (weights >= 0, a weighted mean), `dropout`, `batch_norm`,
    every fastbp activation, `n_threads`, `validation_loss_curve_` and `network_`, as for
    fastbp.sklearn.MLPClassifier.
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, batch_norm=False, n_threads=None) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss=loss, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dropout=dropout, batch_norm=batch_norm, n_threads=n_threads)

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError(f"y: expected targets >= 0 for loss='poisson', got "
                             f"{y[y < 0].flat[0]}")
        return X, y, None

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _target(self, y: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(y, dtype=self.network_.dtype)

    def _scored_targets(self, y: np.ndarray) -> np.ndarray:
        return y

    def predict(self, X) -> np.ndarray:
        """The predicted values of X, (n,) for one output, else (n, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input: bool = True) -> np.ndarray:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None) -> float:
        return self._score_with_function(X, y, sample_weight, r2_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the fit. Only for the stochastic solvers."""
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
