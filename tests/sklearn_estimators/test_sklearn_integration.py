"""fastbp.sklearn's estimators where scikit-learn estimators are used: pipelines, grid search
and cross-validation (in worker processes too), clone, pickle and joblib, pandas inputs,
string, categorical and multilabel targets, and the fitted fastbp network saved and loaded.

Where scikit-learn has a behaviour of its own (labels, feature-name checks), fastbp's
estimator is run next to sklearn.neural_network's on the same data and must behave the same."""
import copy
import pickle
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed")
import joblib  # noqa: E402
import sklearn.neural_network as sklearn_nn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    KFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

import fastbp  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FITTED_ATTRIBUTES = ("network_", "coefs_", "intercepts_", "n_iter_", "n_layers_", "n_outputs_",
                     "out_activation_", "loss_", "loss_curve_", "t_", "n_features_in_")


# ------------------------------------------------------------------------------- data
def classification(n_classes: int = 3, n_samples: int = 240):
    return make_classification(n_samples, 4, n_informative=3, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, class_sep=1.5,
                               random_state=0)


def regression(n_samples: int = 240, n_outputs: int = 1):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, 4))
    Y = np.tanh(X @ rng.standard_normal((4, n_outputs))) + 0.05 * rng.standard_normal(
        (n_samples, n_outputs))
    return X, (Y[:, 0] if n_outputs == 1 else Y)


def multilabel():
    return make_multilabel_classification(200, 5, n_classes=3, random_state=0)


SMALL = {"hidden_layer_sizes": (8,), "max_iter": 30, "learning_rate_init": 0.01,
         "random_state": 0}


def classifier(**params) -> MLPClassifier:
    return MLPClassifier(**{**SMALL, **params})


def regressor(**params) -> MLPRegressor:
    return MLPRegressor(**{**SMALL, **params})


def task(kind: str):
    """(estimator, X, y) of a kind of task."""
    if kind == "classifier":
        return (classifier(), *classification())
    if kind == "binary":
        return (classifier(), *classification(2))
    if kind == "regressor":
        return (regressor(), *regression())
    if kind == "multioutput":
        return (regressor(), *regression(n_outputs=2))
    if kind == "multilabel":
        return (classifier(), *multilabel())
    if kind == "lbfgs":
        return (classifier(solver="lbfgs", max_iter=20), *classification())
    if kind == "sgd":
        return (regressor(solver="sgd", momentum=0.8), *regression())
    if kind == "batch_norm_dropout":
        return (classifier(batch_norm=True, dropout=0.2, hidden_layer_sizes=(8, 6)),
                *classification())
    if kind == "early_stopping":
        return (classifier(early_stopping=True, n_iter_no_change=50), *classification())
    if kind == "float32":
        X, y = regression()
        return regressor(), X.astype(np.float32), y
    raise AssertionError(kind)


def coefs(est) -> list[np.ndarray]:
    return [a.copy() for a in (*est.coefs_, *est.intercepts_)]


def assert_same_coefs(a, b) -> None:
    for x, y in zip(coefs(a), coefs(b), strict=True):
        np.testing.assert_array_equal(x, y)


def assert_bitwise(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def assert_same_outputs(a, b, X) -> None:
    """a and b predict the same, bit for bit (and their probabilities, for classifiers)."""
    assert_bitwise(a.predict(X), b.predict(X))
    if hasattr(a, "predict_proba"):
        assert_bitwise(a.predict_proba(X), b.predict_proba(X))


@pytest.fixture
def pd():
    return pytest.importorskip("pandas", reason="pandas not installed")


# --------------------------------------------------------------------------- Pipeline
@pytest.mark.parametrize("kind", ["classifier", "binary", "regressor", "multioutput"])
def test_pipeline_fit_predict_score_is_the_scaled_estimator(kind):
    est, X, y = task(kind)
    est.set_params(max_iter=200)
    X_train, X_test, y_train, y_test = X[:180], X[180:], y[:180], y[180:]
    pipe = make_pipeline(StandardScaler(), est).fit(X_train, y_train)
    scaler = StandardScaler().fit(X_train)
    alone = clone(est).fit(scaler.transform(X_train), y_train)
    assert_same_coefs(pipe[-1], alone)
    assert_bitwise(pipe.predict(X_test), alone.predict(scaler.transform(X_test)))
    score = pipe.score(X_test, y_test)
    if kind in ("classifier", "binary"):
        assert_bitwise(pipe.predict_proba(X_test), alone.predict_proba(scaler.transform(X_test)))
        assert score == accuracy_score(y_test, pipe.predict(X_test))
        assert score > 0.8
    else:
        assert score == r2_score(y_test, pipe.predict(X_test))
        assert score > 0.7


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_pipeline_routes_sample_weight_to_the_estimator(kind):
    est, X, y = task(kind)
    weights = np.random.default_rng(1).uniform(0, 2, len(X))
    pipe = make_pipeline(StandardScaler(), est)
    step = pipe.steps[-1][0]
    pipe.fit(X, y, **{f"{step}__sample_weight": weights})
    direct = clone(est).fit(StandardScaler().fit_transform(X), y, sample_weight=weights)
    assert_same_coefs(pipe[-1], direct)
    unweighted = clone(pipe).fit(X, y)
    assert not np.array_equal(unweighted[-1].coefs_[0], direct.coefs_[0])


def test_pipeline_set_params_reaches_the_estimator():
    X, y = classification()
    pipe = make_pipeline(StandardScaler(), classifier())
    pipe.set_params(mlpclassifier__alpha=0.5, mlpclassifier__hidden_layer_sizes=(5, 3))
    pipe.fit(X, y)
    assert pipe[-1].alpha == 0.5
    assert [c.shape for c in pipe[-1].coefs_] == [(4, 5), (5, 3), (3, 3)]
    direct = classifier(alpha=0.5, hidden_layer_sizes=(5, 3)).fit(
        StandardScaler().fit_transform(X), y)
    assert_same_coefs(pipe[-1], direct)


# ---------------------------------------------------------------------- GridSearchCV
@pytest.mark.parametrize("kind, scoring", [("classifier", None), ("binary", "neg_log_loss"),
                                           ("regressor", None)])
def test_grid_search_in_worker_processes_equals_serial(kind, scoring):
    est, X, y = task(kind)
    grid = {"alpha": [1e-4, 3.0], "hidden_layer_sizes": [(2,), (12,)]}
    searches = [GridSearchCV(est, grid, cv=3, n_jobs=n_jobs, scoring=scoring).fit(X, y)
                for n_jobs in (1, 2)]
    serial, parallel = searches
    assert parallel.best_params_ == serial.best_params_
    assert parallel.best_score_ == serial.best_score_
    for key in ("mean_test_score", "split0_test_score", "split1_test_score",
                "split2_test_score", "rank_test_score"):
        np.testing.assert_array_equal(parallel.cv_results_[key], serial.cv_results_[key])
    # each candidate's scores are its parameters' own cross-validation scores
    assert len(set(serial.cv_results_["mean_test_score"])) > 1
    for i, params in enumerate(serial.cv_results_["params"]):
        scores = cross_val_score(clone(est).set_params(**params), X, y, cv=3,
                                 scoring=scoring)
        np.testing.assert_array_equal(
            [serial.cv_results_[f"split{k}_test_score"][i] for k in range(3)], scores)
    # the refitted best estimator is the best parameters fitted on all the data
    best = clone(est).set_params(**serial.best_params_).fit(X, y)
    for search in searches:
        assert search.best_estimator_.get_params() == best.get_params()
        assert_same_coefs(search.best_estimator_, best)
        assert_same_outputs(search, best, X)


# ------------------------------------------------------------------ cross-validation
@pytest.mark.parametrize("kind", ["classifier", "regressor", "multilabel"])
def test_cross_val_score_parallel_equals_serial_and_repeats(kind):
    est, X, y = task(kind)
    cv = KFold(4, shuffle=True, random_state=0)
    serial = cross_val_score(est, X, y, cv=cv, n_jobs=1)
    parallel = cross_val_score(est, X, y, cv=cv, n_jobs=2)
    again = cross_val_score(est, X, y, cv=cv, n_jobs=1)
    np.testing.assert_array_equal(parallel, serial)
    np.testing.assert_array_equal(again, serial)
    folds = [clone(est).fit(X[train], y[train]).score(X[test], y[test])
             for train, test in cv.split(X)]
    np.testing.assert_array_equal(serial, folds)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_threading_backend_equals_serial(kind):
    est, X, y = task(kind)
    est.set_params(n_threads=1)
    serial = cross_val_score(est, X, y, cv=6)
    with joblib.parallel_backend("threading", n_jobs=2):
        threaded = cross_val_score(est, X, y, cv=6)
    np.testing.assert_array_equal(threaded, serial)


class SteppedRandomState(np.random.RandomState):
    """A RandomState that runs ``steps[k]()`` before its k-th shuffle: a fit paused at the
    start of its epoch k, inside the fit."""

    def __init__(self, seed: int, steps: dict) -> None:
        super().__init__(seed)
        self.steps, self.calls = steps, 0

    def shuffle(self, x) -> None:
        step = self.steps.get(self.calls)
        self.calls += 1
        if step is not None:
            step()
        super().shuffle(x)


def test_n_threads_of_fits_side_by_side_in_threads():
    """Two fits with n_threads=1 overlapping in two Python threads (as joblib's threading
    backend runs them), the first ending first: each runs on its own n_threads throughout,
    and the process's thread count is the same after them."""
    X, y = classification()
    first_inside, second_inside, first_done = (threading.Event() for _ in range(3))
    seen, errors = [], []

    def wait(event: threading.Event) -> None:
        assert event.wait(20), "the other fit did not get there"

    def pause_second() -> None:
        wait(first_done)
        seen.append(fastbp.get_num_threads())

    first = classifier(n_threads=1, random_state=SteppedRandomState(0, {
        0: lambda: (first_inside.set(), wait(second_inside))}))
    second = classifier(n_threads=1, random_state=SteppedRandomState(0, {
        0: second_inside.set, 1: pause_second}))

    def run(est, done=None) -> None:
        try:
            est.fit(X, y)
        except BaseException as exc:   # re-raised below, in the test's thread
            errors.append(exc)
        finally:
            if done is not None:
                done.set()

    before = fastbp.get_num_threads()
    fastbp.set_num_threads(2)
    try:
        threads = [threading.Thread(target=run, args=(first, first_done))]
        threads[0].start()
        wait(first_inside)
        threads.append(threading.Thread(target=run, args=(second,)))
        threads[1].start()
        for thread in threads:
            thread.join(60)
        if errors:
            raise errors[0]
        after = fastbp.get_num_threads()
    finally:
        fastbp.set_num_threads(before)
    # the second fit's thread count once the first ended, and the process's after both
    assert (seen, after) == ([1], 2)
    assert_same_coefs(first, second)


@pytest.mark.parametrize("kind", ["classifier", "regressor", "batch_norm_dropout"])
def test_cross_validate_returns_the_same_fitted_estimators_from_workers(kind):
    """The fitted estimators come back from the worker processes pickled."""
    est, X, y = task(kind)
    runs = [cross_validate(est, X, y, cv=3, n_jobs=n_jobs, return_estimator=True)
            for n_jobs in (1, 2)]
    np.testing.assert_array_equal(runs[0]["test_score"], runs[1]["test_score"])
    for a, b in zip(runs[0]["estimator"], runs[1]["estimator"], strict=True):
        assert_same_coefs(a, b)
        assert a.loss_curve_ == b.loss_curve_
        assert_same_outputs(a, b, X)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_random_state_decides_the_cross_validated_fits(kind):
    est, X, y = task(kind)
    runs = [cross_validate(clone(est).set_params(random_state=seed), X, y, cv=3,
                           return_estimator=True)["estimator"] for seed in (0, 0, 1)]
    for a, b, c in zip(*runs, strict=True):
        assert_same_coefs(a, b)
        assert not np.array_equal(a.coefs_[0], c.coefs_[0])


# ------------------------------------------------------------------------------ clone
EXTRAS = {"dropout": 0.1, "batch_norm": True, "n_threads": 1, "activation": "gelu",
          "early_stopping": True, "validation_fraction": 0.2}


@pytest.mark.parametrize("make, data", [
    (lambda: classifier(class_weight={0: 1.0, 1: 2.0, 2: 0.5}, **EXTRAS), classification),
    (lambda: classifier(class_weight="balanced", solver="lbfgs"), classification),
    (lambda: regressor(loss="poisson", **EXTRAS), None),
], ids=["classifier", "classifier_lbfgs", "regressor"])
def test_clone_is_unfitted_with_the_same_params(make, data):
    if data is None:
        X, y = regression()
        y = np.exp(y)
    else:
        X, y = data()
    est = make().fit(X, y)
    copy = clone(est)
    assert type(copy) is type(est)
    assert copy.get_params() == est.get_params() == make().get_params()
    for name in (*FITTED_ATTRIBUTES, "classes_", "validation_loss_curve_"):
        assert not hasattr(copy, name), name
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    with pytest.raises(NotFittedError):
        copy.predict(X)
    # fitted alike, the copy is the original; fitted on other data, it leaves it alone
    before = est.predict(X)
    assert_same_coefs(clone(est).fit(X, y), est)
    copy.fit(X[::2], y[::2])
    assert_bitwise(est.predict(X), before)
    assert copy.network_ is not est.network_
    assert not np.shares_memory(copy.network_.params, est.network_.params)


def test_repr_shows_the_extra_params():
    text = repr(classifier(dropout=0.25, class_weight="balanced", n_threads=1))
    for part in ("MLPClassifier(", "dropout=0.25", "class_weight='balanced'", "n_threads=1"):
        assert part in text


def test_clone_of_unpickled_estimator_keeps_params():
    est = pickle.loads(pickle.dumps(classifier(class_weight="balanced", **EXTRAS)))
    assert clone(est).get_params() == classifier(class_weight="balanced", **EXTRAS).get_params()


# ------------------------------------------------------------------- pickle and joblib
def pickle_round_trip(est, tmp_path):
    return pickle.loads(pickle.dumps(est))


def deepcopy_round_trip(est, tmp_path):
    return copy.deepcopy(est)


def joblib_round_trip(est, tmp_path):
    path = tmp_path / "estimator.joblib"
    joblib.dump(est, path)
    return joblib.load(path)


ROUND_TRIPS = pytest.mark.parametrize(
    "round_trip", [pickle_round_trip, joblib_round_trip, deepcopy_round_trip],
    ids=["pickle", "joblib", "deepcopy"])
KINDS = ["classifier", "binary", "regressor", "multioutput", "multilabel", "lbfgs", "sgd",
         "batch_norm_dropout", "early_stopping", "float32"]


@ROUND_TRIPS
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_predicts_bit_for_bit(round_trip, kind, tmp_path):
    est, X, y = task(kind)
    est.fit(X, y)
    loaded = round_trip(est, tmp_path)
    assert type(loaded) is type(est)
    assert loaded.get_params() == est.get_params()
    assert_same_outputs(loaded, est, X)
    if hasattr(est, "predict_proba"):
        assert_bitwise(loaded.predict_log_proba(X), est.predict_log_proba(X))
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
    assert loaded.score(X, y) == est.score(X, y)
    assert_same_coefs(loaded, est)
    for name in (*FITTED_ATTRIBUTES[3:], "best_loss_", "validation_scores_",
                 "validation_loss_curve_", "best_validation_score_"):
        assert hasattr(loaded, name) == hasattr(est, name), name
        assert getattr(loaded, name, None) == getattr(est, name, None), name
    assert_bitwise(loaded.network_.params, est.network_.params)
    assert_bitwise(loaded.network_.buffers, est.network_.buffers)
    assert not np.shares_memory(loaded.network_.params, est.network_.params)


@ROUND_TRIPS
@pytest.mark.parametrize("kind", ["classifier", "binary", "regressor", "multilabel", "sgd",
                                  "batch_norm_dropout"])
def test_round_trip_continues_with_partial_fit(round_trip, kind, tmp_path):
    """The unpickled estimator continues as the original would (its optimizer's state, its
    dropout and batch statistics with it), and independently of it."""
    est, X, y = task(kind)
    est.fit(X, y)
    loaded = round_trip(est, tmp_path)
    fitted = coefs(est)
    for _ in range(3):
        loaded.partial_fit(X, y)
    for a, b in zip(coefs(est), fitted, strict=True):        # the original is left alone
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(loaded.coefs_[0], fitted[0])   # the copy trained
    for _ in range(3):
        est.partial_fit(X, y)
    assert_same_coefs(loaded, est)
    assert loaded.loss_curve_ == est.loss_curve_
    assert loaded.n_iter_ == est.n_iter_ == 1 and loaded.t_ == est.t_
    assert_same_outputs(loaded, est, X)


@ROUND_TRIPS
@pytest.mark.parametrize("kind", ["classifier", "regressor", "lbfgs", "batch_norm_dropout",
                                  "early_stopping"])
def test_round_trip_continues_with_warm_start(round_trip, kind, tmp_path):
    est, X, y = task(kind)
    est.fit(X, y)
    loaded = round_trip(est, tmp_path)
    curve = list(getattr(est, "loss_curve_", []))
    for model in (loaded, est):
        model.set_params(warm_start=True, max_iter=5).fit(X, y)
    assert_same_coefs(loaded, est)
    assert_same_outputs(loaded, est, X)
    if curve:
        assert len(est.loss_curve_) == len(curve) + 5
        assert est.loss_curve_[:len(curve)] == curve
        assert loaded.loss_curve_ == est.loss_curve_
    # continued, not restarted: a fresh 5-iteration fit is something else
    fresh = clone(est).set_params(warm_start=False).fit(X, y)
    assert not np.array_equal(fresh.coefs_[0], est.coefs_[0])


def test_unpickled_coefs_are_views_of_its_own_network():
    X, y = classification()
    est = classifier().fit(X, y)
    loaded = pickle.loads(pickle.dumps(est))
    before = est.predict_proba(X)
    loaded.coefs_[0][...] = 0.0
    loaded.intercepts_[0][...] = 0.0
    # every row now has the same hidden activations, hence the same probabilities
    proba = loaded.predict_proba(X)
    np.testing.assert_array_equal(proba, np.broadcast_to(proba[0], proba.shape))
    assert not np.allclose(proba, before)
    assert_bitwise(est.predict_proba(X), before)


def test_joblib_memory_mapped_load_predicts_the_same(tmp_path):
    X, y = classification()
    est = classifier().fit(X, y)
    path = tmp_path / "estimator.joblib"
    joblib.dump(est, path)
    loaded = joblib.load(path, mmap_mode="r")
    assert_same_outputs(loaded, est, X)


def test_unfitted_estimator_round_trips():
    est = regressor(loss="poisson", **EXTRAS)
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.get_params() == est.get_params()
    assert not hasattr(loaded, "network_")


# ------------------------------------------------------------------------------ pandas
COLUMNS = ["alpha", "beta", "gamma", "delta"]


def frame(pd, X):
    df = pd.DataFrame(X, columns=COLUMNS)
    df["delta"] = np.round(df["delta"] * 4).astype(np.int64)     # a column of another dtype
    return df


def both_estimators(kind: str):
    """fastbp's estimator and scikit-learn's with the same parameters."""
    if kind == "classifier":
        return classifier(), sklearn_nn.MLPClassifier(**SMALL)
    return regressor(), sklearn_nn.MLPRegressor(**SMALL)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_dataframe_sets_feature_names_and_predicts_like_its_array(pd, kind):
    est, X, y = task(kind)
    df = frame(pd, X)
    est.fit(df, pd.Series(y, name="target"))
    np.testing.assert_array_equal(est.feature_names_in_, np.array(COLUMNS, dtype=object))
    assert est.feature_names_in_.dtype == object and est.n_features_in_ == 4
    on_array = clone(est).fit(df.to_numpy(dtype=np.float64), y)
    assert not hasattr(on_array, "feature_names_in_")
    assert_same_coefs(est, on_array)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predicted = est.predict(df)
        assert est.score(df, y) == on_array.score(df.to_numpy(dtype=np.float64), y)
    assert_bitwise(predicted, on_array.predict(df.to_numpy(dtype=np.float64)))
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_bitwise(loaded.predict(df), predicted)
    # a frame of the same columns, of other rows and another index
    rows = df.iloc[::-3].reset_index(drop=True)
    assert_bitwise(est.predict(rows), predicted[::-3])


def outcome(est, X) -> tuple:
    """What predicting X does: the error (type and message) or None, and the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.predict(X)
            error = None
        except Exception as exc:   # compared with scikit-learn's
            error = (type(exc), str(exc))
    return error, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("case", ["renamed", "reordered", "fewer", "array_after_frame",
                                  "frame_after_array"])
def test_feature_name_mismatch_behaves_as_scikit_learns(pd, kind, case):
    _, X, y = task(kind)
    df = frame(pd, X)
    fit_on = X if case == "frame_after_array" else df
    predict_on = {
        "renamed": df.rename(columns={"beta": "BETA"}),
        "reordered": df[["beta", "alpha", "gamma", "delta"]],
        "fewer": df[COLUMNS[:3]],
        "array_after_frame": X,
        "frame_after_array": df,
    }[case]
    ours, theirs = (est.fit(fit_on, y) for est in both_estimators(kind))
    assert outcome(ours, predict_on) == outcome(theirs, predict_on)
    error, caught = outcome(ours, predict_on)
    if case in ("renamed", "reordered", "fewer"):
        assert error is not None and error[0] is ValueError
        assert "feature" in error[1]
    else:
        assert error is None
        assert [category for category, _ in caught] == [UserWarning]
        assert "feature names" in caught[0][1]


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("case", ["same", "renamed", "array"])
def test_partial_fit_checks_feature_names_as_scikit_learns(pd, kind, case):
    _, X, y = task(kind)
    df = frame(pd, X)
    later = {"same": df, "renamed": df.rename(columns={"beta": "BETA"}), "array": X}[case]
    results = []
    for est in both_estimators(kind):
        extra = {"classes": np.unique(y)} if kind == "classifier" else {}
        est.partial_fit(df, y, **extra)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                est.partial_fit(later, y)
                error = None
            except Exception as exc:   # compared with scikit-learn's
                error = (type(exc), str(exc))
        results.append((error, [(w.category, str(w.message)) for w in caught],
                        list(est.feature_names_in_)))
    assert results[0] == results[1]
    assert results[0][2] == COLUMNS
    assert (results[0][0] is not None) == (case == "renamed")


def test_series_and_frame_targets(pd):
    X, y = classification()
    index = pd.Index(np.arange(1000, 1000 + len(y))[::-1])
    on_series = classifier().fit(frame(pd, X).set_index(index), pd.Series(y, index=index))
    on_array = classifier().fit(frame(pd, X).to_numpy(dtype=np.float64), y)
    assert_same_coefs(on_series, on_array)
    np.testing.assert_array_equal(on_series.classes_, on_array.classes_)

    X, Y = regression(n_outputs=2)
    targets = pd.DataFrame(Y, columns=["first", "second"])
    on_frame = regressor().fit(X, targets)
    assert on_frame.n_outputs_ == 2 and on_frame.predict(X).shape == (len(X), 2)
    assert_same_coefs(on_frame, regressor().fit(X, Y))
    on_series = regressor().fit(X, targets["first"])
    assert on_series.n_outputs_ == 1
    assert_same_coefs(on_series, regressor().fit(X, Y[:, 0]))


def test_dataframe_in_grid_search_and_pipeline(pd):
    X, y = classification()
    df = frame(pd, X)
    labels = pd.Series(np.array(["low", "mid", "high"])[y])
    pipe = make_pipeline(StandardScaler(), classifier()).set_output(transform="pandas")
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1.0]}, cv=3, n_jobs=2)
    search.fit(df, labels)
    serial = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1.0]}, cv=3).fit(df, labels)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(search.best_estimator_[-1].feature_names_in_, COLUMNS)
    assert set(search.predict(df)) <= {"low", "mid", "high"}
    assert_bitwise(search.predict(df), serial.predict(df))


# ------------------------------------------------------------------------------ labels
LABELS = np.array(["zebra", "ant", "mole"])


def labels_of(kind: str, y: np.ndarray):
    if kind == "str":
        return LABELS[y]
    if kind == "object":
        return LABELS[y].astype(object)
    if kind == "binary_str":
        return np.array(["yes", "no"])[y % 2]
    pd = pytest.importorskip("pandas", reason="pandas not installed")
    if kind == "pandas_str":
        return pd.Series(LABELS[y])
    if kind == "categorical":
        return pd.Series(pd.Categorical(LABELS[y], categories=["zebra", "mole", "ant"]))
    if kind == "ordered_categorical":
        return pd.Series(pd.Categorical(LABELS[y], categories=["zebra", "mole", "ant"],
                                        ordered=True))
    if kind == "integer_categorical":
        return pd.Series(pd.Categorical(10 * (2 - y) + 5, categories=[25, 5, 15]))
    if kind == "bool":
        return pd.Series(y == 1)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["str", "object", "binary_str", "pandas_str", "categorical",
                                  "ordered_categorical", "integer_categorical", "bool"])
def test_labels_come_back_as_scikit_learns(kind):
    X, y = classification()
    labels = labels_of(kind, y)
    params = {**SMALL, "max_iter": 10}
    ours = MLPClassifier(**params).fit(X, labels)
    theirs = sklearn_nn.MLPClassifier(**params).fit(X, labels)
    assert ours.classes_.dtype == theirs.classes_.dtype
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert list(ours.classes_) == sorted(ours.classes_)
    predicted = ours.predict(X)
    assert type(predicted) is type(theirs.predict(X))
    assert predicted.dtype == theirs.predict(X).dtype
    np.testing.assert_array_equal(predicted, theirs.predict(X))
    assert set(predicted) <= set(np.asarray(labels))
    # probabilities are in the order of classes_
    np.testing.assert_array_equal(ours.classes_[ours.predict_proba(X).argmax(axis=1)],
                                  predicted)
    assert ours.score(X, labels) == accuracy_score(np.asarray(labels), predicted)
    # partial_fit and a pickle round trip keep the labels
    loaded = pickle.loads(pickle.dumps(ours))
    loaded.partial_fit(X, labels)
    assert set(loaded.predict(X)) <= set(np.asarray(labels))
    np.testing.assert_array_equal(loaded.classes_, theirs.classes_)


def test_string_labels_through_partial_fit_classes():
    X, y = classification()
    ours, theirs = (cls(hidden_layer_sizes=(8,), random_state=0)
                    for cls in (MLPClassifier, sklearn_nn.MLPClassifier))
    for est in (ours, theirs):
        est.partial_fit(X[:60], LABELS[y[:60]], classes=["zebra", "ant", "mole"])
        est.partial_fit(X[60:], LABELS[y[60:]])
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_multilabel_indicator_targets_as_scikit_learns():
    X, Y = multilabel()
    params = {**SMALL, "max_iter": 10}
    ours = MLPClassifier(**params).fit(X, Y)
    theirs = sklearn_nn.MLPClassifier(**params).fit(X, Y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert ours.n_outputs_ == 3
    predicted = ours.predict(X)
    assert predicted.shape == Y.shape and predicted.dtype == theirs.predict(X).dtype
    np.testing.assert_array_equal(predicted, theirs.predict(X))
    proba = ours.predict_proba(X)
    assert proba.shape == Y.shape
    np.testing.assert_allclose(proba, theirs.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(predicted.dtype))
    assert ours.score(X, Y) == accuracy_score(Y, predicted)
    assert 0 < ours.score(X, Y) < 1


# ---------------------------------------------------------------- network_ save, load
@pytest.mark.parametrize("kind", ["classifier", "binary", "regressor", "multioutput",
                                  "multilabel", "lbfgs", "batch_norm_dropout", "float32"])
def test_network_save_and_load_predicts_the_same(kind, tmp_path):
    est, X, y = task(kind)
    est.fit(X, y)
    path = tmp_path / "network.npz"
    est.network_.save(path)
    loaded = fastbp.load(path)
    Xn = np.ascontiguousarray(X, dtype=est.network_.dtype)
    outputs = est.network_.predict(Xn)
    assert outputs.shape == (len(X), est.n_outputs_)
    assert_bitwise(loaded.predict(Xn), outputs)
    assert_bitwise(loaded.params, est.network_.params)
    assert_bitwise(loaded.buffers, est.network_.buffers)
    # the estimator's predictions are the network's outputs after the output activation
    if est.out_activation_ == "identity":
        np.testing.assert_array_equal(est.predict(X), outputs.reshape(est.predict(X).shape))
    elif est.out_activation_ == "softmax":
        np.testing.assert_array_equal(est.predict(X), est.classes_[outputs.argmax(axis=1)])
    else:   # logistic: a probability above 1/2 is a positive logit
        positive = (outputs > 0).astype(int)
        expected = positive if kind == "multilabel" else est.classes_[positive.ravel()]
        np.testing.assert_array_equal(est.predict(X), expected)
