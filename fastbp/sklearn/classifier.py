"""fastbp.sklearn.MLPClassifier: scikit-learn's MLPClassifier, trained by fastbp's C core."""
from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from fastbp.sklearn.base import BaseMLP


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: a drop-in for sklearn.neural_network.MLPClassifier.

    The same parameters, defaults, fitted attributes, methods, stopping rules and warnings as
    scikit-learn's (see its documentation); the same mathematics (initialisation, log loss, L2
    term alpha / (2 W) sum ||coefs||^2, Adam and momentum SGD in its forms, learning-rate
    schedules, L-BFGS-B through SciPy), computed by fastbp's C core on its threads. Binary and
    multilabel outputs are logistic, multiclass ones softmax. X of dtype float32 is fitted in
    float32, anything else in float64; sparse X is densified.

    Beyond scikit-learn's:

    - ``activation``: also any fastbp activation ("sigmoid", "leaky_relu", "elu", "gelu",
      "softplus"; "logistic" is "sigmoid").
    - ``class_weight``: None, a dict {class: weight} (a list of dicts for multilabel y), or
      "balanced" (n / (n_classes * count of each class); not with partial_fit); multiplies
      the sample weights.
    - ``fit(X, y, sample_weight=...)`` and ``partial_fit``: a weighted mean of the rows' losses
      (weights >= 0 with a positive sum; a row of weight 2 counts as that row twice).
    - ``dropout``: the drop probability after each hidden activation (not with lbfgs);
      ``batch_norm``: BatchNorm before each hidden activation.
    - ``n_threads``: threads of fit and predict (None: fastbp's current setting).
    - ``validation_loss_curve_``: with early_stopping, the loss of each epoch on the
      validation split, alongside ``validation_scores_``.
    - ``network_``: the fastbp network (outputs logits), to save, load or export to ONNX.
      ``coefs_`` and ``intercepts_`` are views of its parameters in scikit-learn's layout:
      writing into them (then ``warm_start=True``) continues from those weights.
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, dropout=0.0, batch_norm=False, n_threads=None) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss="log_loss", shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            dropout=dropout, batch_norm=batch_norm, n_threads=n_threads)
        self.class_weight = class_weight

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        """X, the binarized y (n, n_outputs) and the class weights of its rows (or None)."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        row_weights = None
        if self.class_weight is not None:
            if incremental and self.class_weight == "balanced":
                raise ValueError("class_weight: 'balanced' needs the whole data set, which "
                                 "partial_fit does not see; give a dict of class weights")
            row_weights = compute_sample_weight(self.class_weight, y)
        return X, self._label_binarizer.transform(y).astype(bool), row_weights

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _target(self, y: np.ndarray) -> np.ndarray:
        """What the C loss takes: class indices for softmax outputs, else 0/1 floats."""
        if self.out_activation_ == "softmax":
            return np.ascontiguousarray(np.argmax(y, axis=1), dtype=np.int64)
        return np.ascontiguousarray(y, dtype=self.network_.dtype)

    def _scored_targets(self, y: np.ndarray):
        return self._label_binarizer.inverse_transform(y)

    def predict(self, X):
        """The predicted classes of X, (n,) (or (n, n_classes) indicators, multilabel)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input: bool = True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None) -> float:
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing the fit; `classes` (every class y will ever have)
        is required on the first call. Only for the stochastic solvers."""
        self._validate_params()
        if _first_partial_fit(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X) -> np.ndarray:
        """The log of predict_proba."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of X, (n, n_classes), in the order of classes_."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _first_partial_fit(clf, classes) -> bool:
    """Whether this is the first partial_fit call (which then sets classes_), as
    scikit-learn's partial_fit checks it."""
    if getattr(clf, "classes_", None) is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is None:
        return False
    if getattr(clf, "classes_", None) is not None:
        if not np.array_equal(clf.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {clf.classes_!r}")
        return False
    clf.classes_ = unique_labels(classes)
    return True
