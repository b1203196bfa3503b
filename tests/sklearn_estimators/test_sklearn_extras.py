"""What fastbp.sklearn adds to scikit-learn's MLP (sample and class weights, dropout, batch
normalisation, fastbp's activations, threads, the validation loss curve, the network), and its
errors: each named, none a crash."""
import contextlib
import io
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed")
import scipy.sparse  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils import gen_batches  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

import fastbp as fb  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from fastbp.sklearn.base import batches  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def classification(n=120, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (classes > 2) * (X[:, 2] > 0.8)
    return X, y


def regression(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    return X, np.sin(X[:, 0]) + 0.3 * X[:, 1]


def assert_same_weights(a, b, rtol=1e-10):
    for name in ("coefs_", "intercepts_"):
        for got, expected in zip(getattr(a, name), getattr(b, name), strict=True):
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_weight_two_is_a_duplicated_row(solver):
    """Full batches, no shuffling: the weighted objective is the duplicated data's."""
    X, y = classification()
    weights = np.ones(len(y))
    weights[:10] = 2
    X2, y2 = np.vstack([X, X[:10]]), np.concatenate([y, y[:10]])
    params = dict(solver=solver, hidden_layer_sizes=(5,), random_state=0, max_iter=20,
                  shuffle=False, alpha=1e-3)      # batch_size "auto": the whole data
    weighted = MLPClassifier(**params).fit(X, y, sample_weight=weights)
    duplicated = MLPClassifier(**params).fit(X2, y2)
    assert_same_weights(weighted, duplicated)
    np.testing.assert_allclose(weighted.loss_curve_ if solver != "lbfgs" else weighted.loss_,
                               duplicated.loss_curve_ if solver != "lbfgs"
                               else duplicated.loss_, rtol=1e-10)


def test_zero_weight_removes_a_row():
    X, y = classification()
    weights = np.ones(len(y))
    weights[-5:] = 0
    params = dict(solver="lbfgs", hidden_layer_sizes=(5,), random_state=0, max_iter=20)
    assert_same_weights(MLPClassifier(**params).fit(X, y, sample_weight=weights),
                        MLPClassifier(**params).fit(X[:-5], y[:-5]))


@pytest.mark.parametrize("class_weight", [{0: 3.0, 1: 0.5, 2: 1.0}, "balanced"])
def test_class_weight_is_a_weight_per_class(class_weight):
    X, y = classification()
    rows = np.random.default_rng(3).uniform(0.5, 2, len(y))
    params = dict(solver="adam", hidden_layer_sizes=(5,), random_state=0, max_iter=5)
    by_class = MLPClassifier(class_weight=class_weight, **params).fit(X, y, sample_weight=rows)
    by_row = MLPClassifier(**params).fit(
        X, y, sample_weight=rows * compute_sample_weight(class_weight, y))
    assert_same_weights(by_class, by_row)
    assert not np.allclose(by_class.coefs_[0],
                           MLPClassifier(**params).fit(X, y, sample_weight=rows).coefs_[0])


def test_balanced_class_weight_refused_by_partial_fit():
    X, y = classification()
    clf = MLPClassifier(class_weight="balanced")
    with pytest.raises(ValueError, match="class_weight: 'balanced' needs the whole data set"):
        clf.partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("weights,match", [
    (-np.ones(120), "Negative values in data passed to `sample_weight`"),
    (np.zeros(120), "Sample weights must contain at least one non-zero number"),
    (np.ones(7), "sample_weight"),
])
def test_bad_sample_weights_are_named(weights, match):
    X, y = classification()
    with pytest.raises(ValueError, match=match):
        MLPClassifier(max_iter=2).fit(X, y, sample_weight=weights)


def test_partial_fit_takes_sample_weights():
    X, y = classification()
    weights = np.where(y == 0, 2.0, 1.0)
    a = MLPClassifier(random_state=0, shuffle=False).partial_fit(X, y, classes=[0, 1, 2],
                                                                  sample_weight=weights)
    b = MLPClassifier(random_state=0, shuffle=False).partial_fit(X, y, classes=[0, 1, 2])
    assert not np.allclose(a.coefs_[0], b.coefs_[0])


def test_dropout_trains_reproducibly_and_predicts_deterministically():
    X, y = classification()
    params = dict(hidden_layer_sizes=(16,), dropout=0.3, random_state=0, max_iter=100,
                  learning_rate_init=0.01)
    a, b = MLPClassifier(**params).fit(X, y), MLPClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))
    assert any(isinstance(layer, fb.Dropout) for layer in a.network_.layers)
    plain = MLPClassifier(**{**params, "dropout": 0.0}).fit(X, y)
    assert not np.allclose(plain.coefs_[0], a.coefs_[0])
    assert a.score(X, y) > 0.8


def test_dropout_refused_with_lbfgs():
    X, y = classification()
    with pytest.raises(ValueError, match="dropout: expected 0 with solver='lbfgs'"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_batch_norm(solver):
    X, y = regression()
    reg = MLPRegressor(hidden_layer_sizes=(16, 8), batch_norm=True, solver=solver,
                       random_state=0, max_iter=200).fit(X * 100, y)
    assert sum(isinstance(layer, fb.BatchNorm) for layer in reg.network_.layers) == 2
    assert reg.score(X * 100, y) > 0.8
    # predictions use the running statistics: rows do not depend on the others in the batch
    np.testing.assert_allclose(reg.predict(X[:7] * 100), reg.predict(X * 100)[:7], rtol=1e-12)


def test_batch_norm_with_a_last_batch_of_one_row():
    X, y = regression(121)
    reg = MLPRegressor(hidden_layer_sizes=(8,), batch_norm=True, batch_size=40, max_iter=3,
                       random_state=0).fit(X, y)
    assert reg.n_iter_ == 3 and reg.t_ == 3 * 121


def test_network_exports_to_onnx():
    pytest.importorskip("onnx", reason="onnx not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    X, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(8,), batch_norm=True, random_state=0,
                        max_iter=10).fit(X.astype(np.float32), y)
    model = clf.network_.to_onnx(None, outputs="softmax")
    session = ort.InferenceSession(model.SerializeToString())
    _, probabilities, _ = session.run(None, {"input": X.astype(np.float32)})
    np.testing.assert_allclose(probabilities, clf.predict_proba(X.astype(np.float32)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "leaky_relu", "elu", "gelu", "softplus"])
def test_fastbp_activations(activation):
    X, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(16,), activation=activation, random_state=0,
                        max_iter=300, learning_rate_init=0.01).fit(X, y)
    assert clf.score(X, y) > 0.85


def test_logistic_is_sigmoid_with_sklearns_initialisation():
    X, y = classification()
    params = dict(hidden_layer_sizes=(5,), random_state=0, max_iter=5)
    assert_same_weights(MLPClassifier(activation="logistic", **params).fit(X, y),
                        MLPClassifier(activation="sigmoid", **params).fit(X, y))


def test_unknown_activation_is_named():
    X, y = classification()
    with pytest.raises(ValueError, match="'activation' parameter of MLPClassifier must be"):
        MLPClassifier(activation="swish").fit(X, y)


def test_n_threads_is_used_and_put_back():
    X, y = classification()
    before = fb.get_num_threads()
    clf = MLPClassifier(n_threads=1, hidden_layer_sizes=(8,), random_state=0,
                        max_iter=5).fit(X, y)
    assert fb.get_num_threads() == before
    clf.predict(X)
    assert fb.get_num_threads() == before
    with pytest.raises(ValueError, match="'n_threads' parameter"):
        MLPClassifier(n_threads=0).fit(X, y)


def test_validation_loss_curve_is_the_loss_on_the_validation_split():
    X, y = regression(200)
    reg = MLPRegressor(hidden_layer_sizes=(6,), early_stopping=True, random_state=0,
                       max_iter=8, alpha=0.0, learning_rate_init=0.01).fit(X, y)
    assert len(reg.validation_loss_curve_) == len(reg.validation_scores_) == reg.n_iter_
    assert np.argmax(reg.validation_scores_) == reg.n_iter_ - 1   # the last epoch is kept
    # the split scikit-learn's MLP makes: its draws come after the initial weights'
    rs = np.random.RandomState(0)
    rs.uniform(size=4 * 6 + 6)
    rs.uniform(size=6 * 1 + 1)
    _, X_val, _, y_val = train_test_split(X, y.reshape(-1, 1), random_state=rs, test_size=0.1)
    expected = 0.5 * np.mean((reg.predict(X_val) - y_val[:, 0]) ** 2)
    assert reg.validation_loss_curve_[-1] == pytest.approx(expected, rel=1e-10)
    assert MLPRegressor(max_iter=2).fit(X, y).validation_loss_curve_ is None


def test_network_gives_the_logits():
    X, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, max_iter=10).fit(X, y)
    assert isinstance(clf.network_, fb.Sequential)
    logits = clf.network_.predict(X)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), expected / expected.sum(axis=1,
                                                                              keepdims=True))
    assert clf.coefs_[0].base is not None
    assert np.shares_memory(clf.coefs_[0], clf.network_.params)


@pytest.mark.parametrize("dtype,expected", [(np.float32, np.float32), (np.float64, np.float64),
                                            (np.int64, np.float64)])
def test_input_dtype_is_kept_as_sklearn_keeps_it(dtype, expected):
    X, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3).fit((X * 3).astype(dtype), y)
    assert clf.network_.dtype == expected
    assert clf.coefs_[0].dtype == expected


def test_sparse_input_is_the_dense_input():
    X, y = classification()
    X[X < 0.5] = 0
    params = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    dense = MLPClassifier(**params).fit(X, y)
    sparse = MLPClassifier(**params).fit(scipy.sparse.csr_matrix(X), y)
    assert_same_weights(dense, sparse, rtol=0)
    np.testing.assert_array_equal(sparse.predict_proba(scipy.sparse.csc_matrix(X)),
                                  dense.predict_proba(X))


def test_coefs_assignment_errors():
    X, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(AttributeError, match="not fitted"):
        _ = clf.coefs_
    clf.fit(X, y)
    with pytest.raises(ValueError, match=r"coefs_\[0\]: expected shape \(4, 4\), got \(3, 4\)"):
        clf.coefs_[0] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"intercepts_\[1\]: expected finite values"):
        clf.intercepts_[1] = np.full(3, np.nan)
    with pytest.raises(TypeError, match=r"coefs_\[1\]: expected a real numeric array"):
        clf.coefs_[1] = np.full((4, 3), "a")
    with pytest.raises(ValueError, match="coefs_: expected 2 arrays"):
        clf.coefs_ = [np.zeros((4, 4))]
    clf.coefs_ = [np.ones((4, 4)), np.ones((4, 3))]
    np.testing.assert_array_equal(clf.network_.layers[0].params["weight"], 1)


def test_warm_start_with_other_layer_widths_is_refused():
    X, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True).fit(X, y)
    clf.set_params(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match=r"hidden_layer_sizes: a warm start or partial_fit "
                                         r"continues the fitted network of layer widths "
                                         r"\[4, 4, 3\]"):
        clf.fit(X, y)


def test_poisson_refuses_negative_targets():
    X, y = regression()
    with pytest.raises(ValueError, match="y: expected targets >= 0 for loss='poisson'"):
        MLPRegressor(loss="poisson").fit(X, y)


def test_diverging_fit_stops_with_finite_parameters():
    X, y = regression()
    reg = MLPRegressor(solver="sgd", learning_rate_init=1e4, momentum=0.99, max_iter=50,
                       random_state=0)
    with pytest.raises(ValueError, match="non-finite"):
        reg.fit(X * 1e3, y * 1e6)
    assert np.isfinite(reg.network_.params).all()


def test_verbose_and_convergence_warning():
    X, y = classification()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLPClassifier(max_iter=2, verbose=True).fit(X, y)
    assert "Iteration 1, loss = " in out.getvalue()
    assert any(issubclass(w.category, ConvergenceWarning) and "Maximum iterations (2)" in
               str(w.message) for w in caught)


@pytest.mark.parametrize("n,batch_size,min_batch_size", [(10, 3, 0), (10, 3, 2), (9, 3, 2),
                                                         (1, 5, 0), (7, 7, 2), (200, 64, 2)])
def test_batches_are_sklearns(n, batch_size, min_batch_size):
    expected = [(b.start, b.stop) for b in gen_batches(n, batch_size,
                                                       min_batch_size=min_batch_size)]
    assert list(batches(n, batch_size, min_batch_size)) == expected


def test_partial_fit_only_for_stochastic_solvers():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPRegressor(solver="sgd"), "partial_fit")
