"""fastbp.sklearn against scikit-learn itself: started from the same weights, in float64, the
loss curves, validation scores and final weights agree to 1e-9 relative, for every solver,
schedule, momentum form, early stopping, L2 term and kind of target."""
import warnings

import numpy as np
import pytest

sklearn_nn = pytest.importorskip("sklearn.neural_network", reason="scikit-learn not installed")
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

RTOL = 1e-9


def data(task: str):
    rng = np.random.default_rng(0)
    if task in ("binary", "multiclass"):
        X, y = make_classification(150, 5, n_informative=3, n_redundant=0, flip_y=0.1,
                                   n_classes=2 if task == "binary" else 3, random_state=0)
        return X, y
    if task == "multilabel":
        return make_multilabel_classification(150, 5, n_classes=3, random_state=0)
    X = rng.standard_normal((150, 5))
    W = rng.standard_normal((5, 2))
    Y = np.tanh(X @ W) + 0.1 * rng.standard_normal((150, 2))
    if task == "poisson":
        return X, rng.poisson(np.exp(0.5 * Y[:, 0]))
    return (X, Y[:, 0]) if task == "regression" else (X, Y)


def pair(task: str, **params):
    params = {"hidden_layer_sizes": (6, 4), **params}
    params.setdefault("max_iter", 15)
    params.setdefault("random_state", 3)
    if task in ("regression", "multioutput", "poisson"):
        if task == "poisson":
            params["loss"] = "poisson"
        return sklearn_nn.MLPRegressor(**params), MLPRegressor(**params)
    return sklearn_nn.MLPClassifier(**params), MLPClassifier(**params)


def fit_both(reference, ours, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(X, y, **fit_params)
        ours.fit(X, y, **fit_params)


def assert_same_fit(reference, ours):
    assert ours.n_iter_ == reference.n_iter_
    assert ours.t_ == reference.t_
    np.testing.assert_allclose(ours.loss_, reference.loss_, rtol=RTOL)
    for name in ("loss_curve_", "validation_scores_"):
        expected = getattr(reference, name, None)
        if expected is not None:
            np.testing.assert_allclose(getattr(ours, name), expected, rtol=RTOL, atol=1e-15,
                                       err_msg=name)
    for name in ("best_loss_", "best_validation_score_"):
        expected = getattr(reference, name, None)
        if expected is not None:
            np.testing.assert_allclose(getattr(ours, name), expected, rtol=RTOL, err_msg=name)
    for name in ("coefs_", "intercepts_"):
        for i, (got, expected) in enumerate(zip(getattr(ours, name), getattr(reference, name),
                                                  strict=True)):
            np.testing.assert_allclose(got, expected, rtol=RTOL,
                                       atol=RTOL * np.abs(expected).max(),
                                       err_msg=f"{name}[{i}]")


SOLVERS = [
    {"solver": "adam"},
    {"solver": "adam", "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6,
     "learning_rate_init": 0.01},
    {"solver": "sgd", "learning_rate_init": 0.05},
    {"solver": "sgd", "nesterovs_momentum": False, "momentum": 0.5, "learning_rate_init": 0.05},
    {"solver": "sgd", "momentum": 0.0, "learning_rate_init": 0.1},
    {"solver": "sgd", "learning_rate": "invscaling", "power_t": 0.3, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "adaptive", "tol": 0.05, "n_iter_no_change": 1,
     "learning_rate_init": 0.05, "max_iter": 25},
    {"solver": "lbfgs"},
]
TASKS = ["binary", "multiclass", "multilabel", "regression", "multioutput", "poisson"]


def solver_id(params):
    return "-".join(f"{k}={v}" for k, v in params.items())


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("params", SOLVERS, ids=solver_id)
def test_same_fit_as_sklearn(task, params):
    X, y = data(task)
    reference, ours = pair(task, shuffle=False, alpha=1e-2, batch_size=32, **params)
    fit_both(reference, ours, X, y)
    assert_same_fit(reference, ours)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_same_fit_with_shuffling_and_early_stopping(task, solver):
    """The same draws from random_state: the split, then one shuffle per epoch."""
    X, y = data(task)
    reference, ours = pair(task, solver=solver, early_stopping=True, validation_fraction=0.2,
                           n_iter_no_change=3, tol=1e-3, max_iter=30, batch_size=25,
                           learning_rate_init=0.02)
    fit_both(reference, ours, X, y)
    assert len(ours.validation_scores_) == ours.n_iter_
    assert_same_fit(reference, ours)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "multioutput"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_same_fit_with_sample_weights(task, solver):
    X, y = data(task)
    weights = np.random.default_rng(1).uniform(0.2, 3.0, X.shape[0])
    reference, ours = pair(task, solver=solver, alpha=1e-3, batch_size=40)
    fit_both(reference, ours, X, y, sample_weight=weights)
    assert_same_fit(reference, ours)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_warm_start_from_assigned_weights_continues_like_sklearn(solver):
    """coefs_ and intercepts_ are the network's parameters: weights written into them are
    where a warm-started fit starts."""
    X, y = data("multiclass")
    reference, ours = pair("multiclass", solver=solver, warm_start=True, max_iter=3,
                           shuffle=False)
    fit_both(reference, ours, X, y)
    rng = np.random.default_rng(7)
    for i, coef in enumerate(reference.coefs_):
        reference.coefs_[i] = rng.uniform(-0.5, 0.5, coef.shape)
        reference.intercepts_[i] = rng.uniform(-0.5, 0.5, coef.shape[1])
        ours.coefs_[i][...] = reference.coefs_[i]          # into the view
        ours.intercepts_[i] = reference.intercepts_[i]     # by element assignment
    np.testing.assert_array_equal(ours.network_.layers[0].params["weight"].T,
                                  reference.coefs_[0])
    reference.set_params(max_iter=10)
    ours.set_params(max_iter=10)
    fit_both(reference, ours, X, y)
    assert_same_fit(reference, ours)


def test_partial_fit_matches_sklearn():
    X, y = data("multiclass")
    reference, ours = pair("multiclass", shuffle=False, batch_size=50)
    for start in range(0, 150, 50):
        kw = {"classes": np.unique(y)} if start == 0 else {}
        reference.partial_fit(X[start:start + 50], y[start:start + 50], **kw)
        ours.partial_fit(X[start:start + 50], y[start:start + 50], **kw)
    assert_same_fit(reference, ours)
