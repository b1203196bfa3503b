"""What MLPClassifier and MLPRegressor share: scikit-learn's MLP parameters, fit loop, stopping
rules, warnings and fitted attributes, over a fastbp network (`network_`).

The loop follows sklearn.neural_network's step for step (the same draws from `random_state`
for the initial weights, the early-stopping split and the shuffles), so that started from the
same weights the two give the same results to rounding; fastbp's C core computes each batch's
forward, loss, backward, L2 term and update.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SklearnMLPClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from fastbp._validation import _numeric, check_finite
from fastbp.nn.dropout import Dropout
from fastbp.parallel import threads
from fastbp.sklearn.objective import (
    HIDDEN_ACTIVATIONS,
    Objective,
    apply_output_activation,
    build_network,
    dense_layers,
    glorot_initialize,
)
from fastbp.sklearn.solvers import AdamSolver, SGDSolver, minimize_lbfgs

STOCHASTIC_SOLVERS = ("sgd", "adam")


def batches(n: int, batch_size: int, min_batch_size: int = 0):
    """(start, stop) of each batch, as sklearn.utils.gen_batches gives them (without its
    argument validation, which took a quarter of a small fit's time)."""
    start = 0
    for _ in range(n // batch_size):
        stop = start + batch_size
        if stop + min_batch_size > n:
            continue
        yield start, stop
        start = stop
    if start < n:
        yield start, n


class ParameterList(list):
    """`coefs_` or `intercepts_`: views of the network's parameters, in scikit-learn's layout
    ((n_in, n_out) matrices). Writing into a view, or assigning an element of the list,
    changes the network."""

    def __init__(self, views: list[np.ndarray], name: str) -> None:
        super().__init__(views)
        self.name = name

    def __setitem__(self, index, value) -> None:
        if not isinstance(index, Integral):
            raise TypeError(f"{self.name}: assign one array at a time, by integer index, got "
                            f"index {index!r}")
        view = list.__getitem__(self, index)
        name = f"{self.name}[{index}]"
        array = _numeric(value, name)
        if array.shape != view.shape:
            raise ValueError(f"{name}: expected shape {view.shape}, got {array.shape}")
        check_finite(array, name)
        view[...] = array


class BaseMLP(BaseEstimator):
    """Base class of fastbp.sklearn's estimators; use MLPClassifier or MLPRegressor."""

    _parameter_constraints: dict = {
        **_SklearnMLPClassifier._parameter_constraints,
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, hidden_layer_sizes, activation, *, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, loss, shuffle,
                 random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                 early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change,
                 max_fun, dropout, batch_norm, n_threads) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.n_threads = n_threads

    # ---------------------------------------------------------------- fitted attributes
    def _network(self):
        try:
            return self.__dict__["network_"]
        except KeyError:
            raise AttributeError("this estimator is not fitted yet: call fit first") from None

    @property
    def coefs_(self) -> ParameterList:
        """The weight matrices, (n_in, n_out) views of the network's parameters."""
        return ParameterList([layer.params["weight"].T for layer in
                              dense_layers(self._network())], "coefs_")

    @coefs_.setter
    def coefs_(self, values) -> None:
        self._assign(self.coefs_, values)

    @property
    def intercepts_(self) -> ParameterList:
        """The bias vectors, views of the network's parameters."""
        return ParameterList([layer.params["bias"] for layer in
                              dense_layers(self._network())], "intercepts_")

    @intercepts_.setter
    def intercepts_(self, values) -> None:
        self._assign(self.intercepts_, values)

    @staticmethod
    def _assign(views: ParameterList, values) -> None:
        values = list(values)
        if len(values) != len(views):
            raise ValueError(f"{views.name}: expected {len(views)} arrays, one per layer, got "
                             f"{len(values)}")
        for i, value in enumerate(values):
            views[i] = value

    # ------------------------------------------------------------------------- fitting
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and targets y (with optional sample weights: a
        row of weight 2 counts as that row twice). Returns self."""
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _threads(self):
        return contextlib.nullcontext() if self.n_threads is None else threads(self.n_threads)

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden_layer_sizes}.")
        if self.dropout and self.solver == "lbfgs":
            raise ValueError("dropout: expected 0 with solver='lbfgs' (its line search needs "
                             f"the same loss at every evaluation), got {self.dropout}")
        first_pass = "network_" not in self.__dict__ or (not self.warm_start and not incremental)
        X, y, row_weights = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if row_weights is not None:
            row_weights = row_weights.astype(X.dtype)
            sample_weight = row_weights if sample_weight is None else sample_weight * row_weights
        if sample_weight is not None and not sample_weight.sum() > 0:
            raise ValueError("sample_weight: expected weights with a positive sum, got "
                             f"{sample_weight.sum()}")
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        else:
            self._check_layer_units(layer_units)
        net = self.network_
        X = self._dense(X)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=net.dtype)
        with self._threads():
            if self.solver in STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, y, sample_weight, incremental)
            else:
                self._fit_lbfgs(X, y, sample_weight)
        if not np.isfinite(net.params).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        return self

    def _check_layer_units(self, layer_units: list[int]) -> None:
        """A warm start or partial_fit continues the fitted network: same layer widths."""
        fitted = [dense_layers(self.network_)[0].in_features] + \
            [layer.out_features for layer in dense_layers(self.network_)]
        if fitted != layer_units:
            raise ValueError(f"hidden_layer_sizes: a warm start or partial_fit continues the "
                             f"fitted network of layer widths {fitted}, got data and "
                             f"parameters giving {layer_units}")

    def _dense(self, X) -> np.ndarray:
        """X as the network computes on it: dense, C-contiguous, in the network's dtype."""
        if scipy.sparse.issparse(X):
            X = X.toarray()
        return np.ascontiguousarray(X, dtype=self.network_.dtype)

    def _initialize(self, y: np.ndarray, layer_units: list[int], dtype) -> None:
        """A new network, initialised as scikit-learn initialises its MLP, and fresh fit
        state (as sklearn's `_initialize`)."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        net = build_network(layer_units, self.activation, dtype, self.batch_norm, self.dropout,
                            seed=0)
        glorot_initialize(net, self.activation, self._random_state)
        for layer in net.layers:       # drawn after the weights: those are sklearn's draws
            if isinstance(layer, Dropout):
                layer.seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        self.network_ = net
        self._best_params = net.params.copy()
        self._best_buffers = net.buffers.copy()
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _fit_lbfgs(self, X: np.ndarray, y: np.ndarray, sample_weight) -> None:
        net = self.network_
        objective = Objective(net, self.out_activation_, self.alpha, X, self._target(y),
                              sample_weight)
        self.n_iter_, self.loss_ = minimize_lbfgs(
            objective.whole, net.params, net.grads, self.max_iter, self.max_fun, self.tol,
            self.verbose is True or self.verbose >= 1)

    def _fit_stochastic(self, X: np.ndarray, y: np.ndarray, sample_weight,
                        incremental: bool) -> None:
        net = self.network_
        if not incremental or not hasattr(self, "_optimizer"):
            if self.solver == "sgd":
                self._optimizer = SGDSolver(net.params, self.learning_rate_init,
                                            self.learning_rate, self.momentum,
                                            self.nesterovs_momentum, self.power_t)
            else:
                self._optimizer = AdamSolver(net.params, self.learning_rate_init, self.beta_1,
                                             self.beta_2, self.epsilon)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        validation = None
        if early_stopping:
            # stratified on the one output of binary classification (as scikit-learn)
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            parts = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, y_train, y_val = parts[:4]
            sample_weight, sw_val = parts[4:] if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            validation = (X_val, self._scored_targets(y_val), sw_val, self._target(y_val))
        else:
            X_train, y_train = X, y
        X_train = np.ascontiguousarray(X_train)
        target = self._target(y_train)
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.int64)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped", stacklevel=3)
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        objective = Objective(net, self.out_activation_, self.alpha, X_train, target,
                              sample_weight)
        backup = net.params.copy()
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:       # as sklearn.utils.shuffle(sample_idx, random_state=)
                    self._random_state.shuffle(sample_idx)
                accumulated_loss = 0.0
                # BatchNorm needs 2 rows a batch: a last batch of one joins the one before
                for start, stop in batches(n_samples, batch_size,
                                           min_batch_size=2 if self.batch_norm else 0):
                    batch_loss = objective.batch(sample_idx, start, stop)
                    if batch_loss is None:     # rows of zero total weight change nothing
                        continue
                    if not math.isfinite(batch_loss):
                        net.params[...] = backup
                        raise ValueError(
                            f"Solver produced a non-finite loss ({batch_loss}) at iteration "
                            f"{self.n_iter_ + 1}; the parameters from before the last update "
                            f"were kept. The input data may contain large values and need to "
                            f"be preprocessed, or learning_rate_init may be too high.")
                    self._optimizer.update(net.params, net.grads, backup)
                    accumulated_loss += batch_loss * (stop - start)
                self.n_iter_ += 1
                self.loss_ = accumulated_loss / X_train.shape[0]
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(validation, objective)
                self._optimizer.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (f"Validation score did not improve more than tol={self.tol:f} "
                               f"for {self.n_iter_no_change} consecutive epochs.")
                    else:
                        msg = (f"Training loss did not improve more than tol={self.tol:f} "
                               f"for {self.n_iter_no_change} consecutive epochs.")
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                                  f"reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning, stacklevel=3)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if not np.isfinite(net.params).all():
            net.params[...] = backup
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed. The parameters "
                             "from before the last update were kept.")
        if early_stopping:
            net.params[...] = self._best_params
            net.buffers[...] = self._best_buffers

    def _update_no_improvement_count(self, validation, objective: Objective) -> None:
        """Count the epochs without improvement by tol: of the validation score with early
        stopping (keeping the best parameters), else of the training loss."""
        if validation is not None:
            X_val, y_val, sw_val, target_val = validation
            val_score = self._score(X_val, y_val, sample_weight=sw_val)
            self.validation_scores_.append(val_score)
            self.validation_loss_curve_.append(objective.evaluate(X_val, target_val, sw_val))
            if self.verbose:
                print(f"Validation score: {self.validation_scores_[-1]:f}")
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_params = self.network_.params.copy()
                self._best_buffers = self.network_.buffers.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ---------------------------------------------------------------------- predicting
    def _forward_pass_fast(self, X, check_input: bool = True) -> np.ndarray:
        """The model's predictions (probabilities or values) for X, (n, n_outputs_)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        X = self._dense(X)
        with self._threads():
            out = self.network_.predict(X)
        return apply_output_activation(out, self.out_activation_)

    def _score_with_function(self, X, y, sample_weight, score_function) -> float:
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

