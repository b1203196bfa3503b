"""Input checks that were missing or misleading: hyperparameter ranges, seeds, labels, targets,
flags, sizes and hints. Each error names the argument and the value given."""
import warnings

import numpy as np
import pytest

import fastbp as fb
from fastbp.datasets import train_test_split


@pytest.fixture
def net():
    return fb.mlp([4, 6, 3], seed=0)


@pytest.mark.parametrize("make, message", [
    (lambda n: fb.Adam(n, eps=0.0), r"eps: expected a finite number > 0, got 0.0"),
    (lambda n: fb.AdamW(n, eps=-1e-8), r"eps: expected a finite number > 0"),
    (lambda n: fb.RMSprop(n, eps=0), r"eps: expected a finite number > 0, got 0"),
    (lambda n: fb.Adam(n, betas=(1.0, 0.999)), r"betas\[0\]: expected .* < 1.0, got 1.0"),
    (lambda n: fb.Adam(n, betas=(0.9, -0.1)), r"betas\[1\]: expected a finite number >= 0"),
    (lambda n: fb.Adam(n, betas=(0.9, float("nan"))), r"betas\[1\]: .*got nan"),
    (lambda n: fb.SGD(n, momentum=-0.5), r"momentum: expected a finite number >= 0"),
    (lambda n: fb.SGD(n, weight_decay=-1), r"weight_decay: expected a finite number >= 0"),
    (lambda n: fb.RMSprop(n, alpha=1.5), r"alpha: expected .* < 1.0, got 1.5"),
    (lambda n: fb.RMSprop(n, momentum=float("inf")), r"momentum: .*got inf"),
    (lambda n: fb.Adam(n, lr=float("inf")), r"lr: expected a finite number > 0, got inf"),
    (lambda n: fb.Dropout(1.0), r"p: expected a finite number >= 0 and < 1.0, got 1.0"),
    (lambda n: fb.Dropout(-0.1), r"p: expected a finite number >= 0"),
    (lambda n: fb.BatchNorm(4, eps=0.0), r"eps: expected a finite number > 0, got 0.0"),
    (lambda n: fb.BatchNorm(4, momentum=1.5), r"momentum: expected a number in \[0, 1\]"),
    (lambda n: fb.BatchNorm(4, momentum=-0.1), r"momentum: expected a finite number >= 0"),
])
def test_out_of_range_hyperparameters_are_refused(net, make, message):
    with pytest.raises(ValueError, match=message):
        make(net)


@pytest.mark.parametrize("make, name", [
    (lambda n: fb.SGD(n, momentum=0.9, nesterov="yes"), "nesterov"),
    (lambda n: fb.RMSprop(n, centered=1), "centered"),
    (lambda n: fb.MSE(half="x"), "half"),
    (lambda n: n.forward(np.zeros((2, 4)), training="yes"), "training"),
    (lambda n: n.fit(np.zeros((2, 4)), [0, 1], shuffle="no", verbose=0), "shuffle"),
    (lambda n: fb.gradcheck(n, "mse", np.zeros((2, 4)), np.zeros((2, 3)),
                            raise_on_failure="no"), "raise_on_failure"),
])
def test_flags_must_be_booleans(net, make, name):
    with pytest.raises(TypeError, match=rf"{name}: expected True or False, got"):
        make(net)


@pytest.mark.parametrize("seed", [1.7, True, -1, "3", float("inf"), None])
def test_seeds_are_non_negative_integers(seed):
    message = rf"seed: expected an integer >= 0, got {seed!r}".replace("(", r"\(")
    X, y = np.zeros((4, 2)), np.zeros(4, dtype=int)
    for call in (lambda: fb.mlp([2, 3], seed=seed),
                 lambda: fb.Sequential(fb.Dense(2, 3), seed=seed),
                 lambda: fb.mlp([2, 3]).fit(X, y, seed=seed, verbose=0),
                 lambda: train_test_split(X, y, seed=seed),
                 lambda: fb.gradcheck(fb.mlp([2, 3]), "cross_entropy", X, y, seed=seed)):
        with pytest.raises(ValueError, match=message):
            call()
    assert fb.mlp([2, 3], seed=np.int64(5)).seed == 5


@pytest.mark.parametrize("labels, shown", [
    (np.array([0, 2**64 - 1], dtype=np.uint64), "18446744073709551615"),
    (np.array([0.0, 1e20]), r"1e\+20"),
    (np.array([0, -3], dtype=np.int8), "-3"),
])
def test_out_of_range_labels_are_shown_as_given(net, labels, shown):
    with pytest.raises(ValueError, match=rf"y: expected class labels in \[0, 3\).*got "
                                         rf"(np\.\w+\()?{shown}\)? at position 1"):
        net.fit(np.zeros((2, 4)), labels, verbose=0)


@pytest.mark.parametrize("targets, message", [
    ([[-1.0, 1.0, 1.0], [0.2, 0.3, 0.5]], r"probabilities in \[0, 1\], got -1.0 at row 0"),
    ([[0.5, 0.5, 0.5], [0.2, 0.3, 0.5]], r"rows sum to 1 .*got row 0 summing to 1.5"),
    ([[0.2, 0.3, 0.5], [0.1, 0.1, 0.1]], r"got row 1 summing to 0.3"),
])
def test_cross_entropy_probabilities_must_be_distributions(net, targets, message):
    X, y = np.zeros((2, 4)), np.array(targets)
    for call in (lambda: net.fit(X, y, verbose=0), lambda: net.train_step(X, y),
                 lambda: net.train_step(X.astype(np.float32), y.astype(np.float32)),
                 lambda: fb.SoftmaxCrossEntropy()(np.zeros((2, 3)), y)):
        with pytest.raises(ValueError, match=message):
            call()
    rows = np.array([[0.1, 0.2, 0.7], [1 / 3, 1 / 3, 1 / 3]], dtype=np.float32)
    net.train_step(X.astype(np.float32), rows)          # rounded distributions pass


def test_standardizer_refuses_values_it_cannot_standardise():
    with pytest.raises(ValueError, match=r"X: column 0 holds values too large to standardise"):
        fb.Standardizer().fit([[1e308, 0], [-1e308, 1]])
    with pytest.raises(ValueError, match=r"std: expected finite values, got inf"):
        fb.Standardizer.from_arrays([0.0], [np.inf])


def test_schedules_never_overflow_and_a_huge_lr_is_a_clear_error():
    schedule = fb.ExponentialDecay(1e300, interval="step")
    assert schedule.lr(5, 0.1) == np.inf
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    with pytest.raises(ValueError, match=r"lr_schedule: expected a finite lr >= 0, got inf"):
        fb.mlp([4, 3]).fit(X, y, lr_schedule=schedule, batch_size=8, verbose=0)
    assert fb.StepDecay(1, gamma=1e300).lr(10, 1.0) == np.inf


@pytest.mark.parametrize("name, value", [("atol", -1e-7), ("atol", np.inf), ("rtol", -1.0),
                                         ("rtol", np.nan)])
def test_gradcheck_tolerances_are_finite_and_non_negative(net, name, value):
    with pytest.raises(ValueError, match=rf"{name}: expected a finite number >= 0"):
        fb.gradcheck(net, "mse", np.zeros((2, 4)), np.zeros((2, 3)), **{name: value})


def test_huge_layers_are_refused_before_any_allocation():
    with pytest.raises(ValueError, match=r"in_features: expected at most 2147483647 .*got "
                                         r"4294967296"):
        fb.Dense(2**32, 2**32)
    with pytest.raises(MemoryError, match=r"layers: 10,000,300,002 parameters need .* GiB"):
        fb.Sequential(fb.Dense(100_000, 100_000), fb.Dense(100_000, 2))


def test_networks_larger_than_physical_memory_are_refused_before_allocating(monkeypatch):
    """The system may promise pages it does not have (overcommit): refuse up front."""
    from fastbp.nn import network
    monkeypatch.setattr(network, "_physical_memory", lambda: float(2**20))
    with pytest.raises(MemoryError, match=r"273,418 parameters need 0.0 GiB .*\(0.0 GiB of "
                                          r"memory\)"):
        fb.mlp([256, 1024, 10])


def test_a_one_dimensional_input_suggests_both_reshapes(net):
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\) for a single feature, "
                                         r"X.reshape\(1, -1\) for a single sample"):
        net.predict(np.zeros(4))


def test_values_beyond_float32_are_named_as_such():
    """A finite float64 input too large for a float32 network is not called NaN or Inf, and
    converting it warns of no overflow."""
    net = fb.mlp([2, 3, 1])
    X = np.array([[1.0, 1e300], [0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        message = r"X: expected values within the range of float32 \(magnitude at most "
        with pytest.raises(ValueError, match=message + r"3.403e\+38\), got 1e\+300"):
            net.predict(X)
    with pytest.raises(ValueError, match="expected finite values"):
        net.predict(np.array([[1.0, np.inf], [0.0, 1.0]]))
