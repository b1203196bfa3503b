"""The compiled training step (fastbp.engine / fastbp._core) against the layer-by-layer path."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastbp as fb
from fastbp.losses import get_loss
from fastbp.train.step import CompiledStep, LayerStep, make_step


class Doubler(fb.Layer):
    """A custom layer (y = 2x) the plan cannot compile."""

    def forward(self, X, training=True):
        return 2 * X

    def backward(self, dout, input_grad=True, accumulate=False):
        return 2 * dout if input_grad else None


def _net(dtype, activation="Tanh", seed=3):
    return fb.Sequential(fb.Dense(5, 7), getattr(fb, activation)(), fb.Dense(7, 6, bias=False),
                         fb.ReLU(), fb.Dense(6, 3), dtype=dtype, seed=seed)


def _data(dtype, loss, n=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)).astype(dtype)
    if loss == "cross_entropy":
        return X, rng.integers(0, 3, n)
    if loss == "cross_entropy_probs":
        p = rng.random((n, 3))
        return X, (p / p.sum(axis=1, keepdims=True)).astype(dtype)
    if loss == "bce":
        return X, rng.integers(0, 2, (n, 3)).astype(dtype)
    return X, rng.standard_normal((n, 3)).astype(dtype)


def _layer_path(net, loss, opt, labels):
    return LayerStep(net, get_loss(loss), opt)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["cross_entropy", "cross_entropy_probs", "mse", "bce"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd_momentum", "rmsprop"])
@pytest.mark.parametrize("activation", ["Tanh", "Sigmoid", "LeakyReLU", "GELU", "Softplus",
                                        "ELU"])
def test_compiled_step_equals_layer_path_bit_for_bit(dtype, loss, optimizer, activation):
    loss_name = "cross_entropy" if loss == "cross_entropy_probs" else loss
    nets = [_net(dtype, activation), _net(dtype, activation)]
    opts = {"adam": lambda n: fb.Adam(n, lr=1e-2, weight_decay=0.1),
            "adamw": lambda n: fb.AdamW(n, lr=1e-2),
            "sgd_momentum": lambda n: fb.SGD(n, lr=1e-2, momentum=0.9, nesterov=True),
            "rmsprop": lambda n: fb.RMSprop(n, momentum=0.5, centered=True, weight_decay=0.1)}
    steps = []
    for net in nets:
        opt = opts[optimizer](net)
        labels = loss == "cross_entropy"
        steps.append(make_step(net, get_loss(loss_name), opt, labels))
    steps[1] = _layer_path(nets[1], loss_name, steps[1].optimizer, loss == "cross_entropy")
    assert isinstance(steps[0], CompiledStep)
    for k in range(4):
        X, y = _data(dtype, loss, seed=k)
        values = [step.step(X, y) for step in steps]
        assert values[0] == values[1]
        np.testing.assert_array_equal(nets[0].params, nets[1].params)
        np.testing.assert_array_equal(nets[0].grads, nets[1].grads)
    assert steps[0].optimizer.step_count == 4


class PassThrough(fb.Layer):
    """A custom identity layer: it sends a network down the layer-by-layer path."""

    def forward(self, X, training=True):
        return X

    def backward(self, dout, input_grad=True, accumulate=False):
        return dout


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["cross_entropy", "cross_entropy_probs", "bce"])
def test_fit_gathers_batches_like_the_layer_path(dtype, loss):
    """Same parameters, losses and accuracies (counted in C by the plan, by the loss's own
    accuracy on the layer path)."""
    X, y = _data(dtype, loss, n=50)
    net = _net(dtype)
    twin = fb.Sequential(PassThrough(), *_net(dtype).layers, dtype=dtype, seed=3)
    assert isinstance(make_step(twin, get_loss("cross_entropy"), fb.Adam(twin), True), LayerStep)
    loss = "bce" if loss == "bce" else "cross_entropy"
    options = dict(loss=loss, epochs=3, batch_size=16, verbose=0, clip_norm=0.5,
                   clip_value=0.05)
    hist = net.fit(X, y, **options)
    hist_twin = twin.fit(X, y, **options)
    np.testing.assert_array_equal(net.params, twin.params)
    assert hist["loss"] == hist_twin["loss"]
    assert hist["accuracy"] == hist_twin["accuracy"]


def test_custom_layer_runs_on_the_layer_path():
    net = fb.Sequential(fb.Dense(5, 4), Doubler(), fb.Dense(4, 3))
    X, y = _data("float32", "cross_entropy")
    assert isinstance(make_step(net, get_loss("cross_entropy"), fb.Adam(net), True), LayerStep)
    before = net.params.copy()
    assert np.isfinite(net.train_step(X, y))
    assert not np.array_equal(before, net.params)


def test_custom_optimizer_updates_after_the_compiled_gradients():
    class HalfSGD(fb.SGD):
        def step(self):
            self.step_count += 1
            self.net.params -= 0.5 * self.lr * self.net.grads

    net, twin = _net("float64"), _net("float64")
    X, y = _data("float64", "cross_entropy")
    net.train_step(X, y, "cross_entropy", HalfSGD(net, lr=0.1))
    twin.train_step(X, y, "cross_entropy", fb.SGD(twin, lr=0.05))
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-12, atol=1e-15)


def test_train_step_reuses_and_recompiles():
    net = _net("float32")
    X, y = _data("float32", "cross_entropy")
    net.train_step(X, y)
    first = net._train_step
    net.train_step(X, y)
    assert net._train_step is first and net.optimizer.step_count == 2
    Xp, p = _data("float32", "cross_entropy_probs")
    net.train_step(Xp, p)  # probability targets: another plan, the same optimizer
    assert net._train_step is not first and net.optimizer.step_count == 3
    net.train_step(X, y, optimizer=fb.SGD(net, lr=0.1))
    assert isinstance(net.optimizer, fb.SGD)


def test_workspaces_grow_with_the_batch():
    net, twin = _net("float64"), _net("float64")
    for n in (3, 40, 7):
        X, y = _data("float64", "mse", n=n, seed=n)
        a = net.train_step(X, y, "mse")
        b = _layer_path(twin, "mse", twin.optimizer or fb.Adam(twin), False)
        twin.optimizer = b.optimizer
        assert a == b.step(X, y)
        np.testing.assert_array_equal(net.params, twin.params)


def test_inputs_of_other_types_are_converted():
    net, twin = _net("float32"), _net("float32")
    X, y = _data("float64", "cross_entropy")
    a = net.train_step(np.asfortranarray(X), y.astype(np.int32).tolist())
    b = twin.train_step(X.astype(np.float32), y)
    assert a == b


@pytest.mark.parametrize("bad, match", [
    (lambda X, y: (np.where(X > 1, np.nan, X), y), "X: expected finite"),
    (lambda X, y: (X, np.where(y == 1, 3, y)), r"y: expected class labels in \[0, 3\)"),
    (lambda X, y: (X, -y - 1), r"y: expected class labels in \[0, 3\)"),
    (lambda X, y: (X[:, :4], y), "X"),
    (lambda X, y: (X, y[:-1]), "y"),
])
def test_bad_batches_get_clear_errors(bad, match):
    net = _net("float32")
    X, y = _data("float32", "cross_entropy")
    before = net.params.copy()
    with pytest.raises(ValueError, match=match):
        net.train_step(*bad(X, y))
    np.testing.assert_array_equal(before, net.params)


@pytest.mark.parametrize("loss, target, match", [
    ("bce", 1.5, r"\[0, 1\]"), ("bce", np.nan, r"\[0, 1\]|finite"), ("mse", np.inf, "finite")])
def test_bad_float_targets_get_clear_errors(loss, target, match):
    net = _net("float64")
    X, y = _data("float64", loss)
    y[2, 1] = target
    with pytest.raises(ValueError, match=match):
        net.train_step(X, y, loss)


def test_non_finite_loss_raises_before_any_update():
    net = _net("float32")
    X, y = _data("float32", "mse")
    net.train_step(X, y, "mse")
    net.params[...] = np.float32(1e30)  # the last layer's output overflows to inf
    before, step_count = net.params.copy(), net.optimizer.step_count
    with pytest.raises(FloatingPointError, match="no update"):
        net.train_step(X, y, "mse")
    np.testing.assert_array_equal(before, net.params)
    assert net.optimizer.step_count == step_count


def test_astype_gets_its_own_plan():
    net = _net("float32")
    X, y = _data("float32", "cross_entropy")
    net.train_step(X, y)
    twin = net.astype("float64")
    before = net.params.copy()
    twin.train_step(X.astype(np.float64), y)
    np.testing.assert_array_equal(before, net.params)
    assert twin._train_step.params is twin.params


def test_plan_refuses_foreign_views():
    from fastbp import _core
    net = _net("float32")
    W = np.zeros((7, 5), np.float32)
    stages = [{"kind": "dense", "in_features": 5, "out_features": 7, "weight": W,
               "weight_grad": net.layers[0].grads["weight"], "activation": 0, "params": {}}]
    with pytest.raises(ValueError, match="views into params, grads or buffers"):
        _core.TrainingPlan(net.params, net.grads, net.buffers, stages, "mse")


def test_plan_refuses_a_residual_block_it_cannot_hold():
    from fastbp import _core
    from fastbp.train.step import plan_stages
    net = fb.Sequential(fb.Dense(5, 4), fb.Residual(fb.Dense(4, 4), fb.ReLU()), fb.Dense(4, 3))
    stages, _ = plan_stages(net)
    assert [s["kind"] for s in stages] == ["dense", "dense", "residual", "dense"]
    assert stages[2]["block_stages"] == 1
    for bad in (0, 3):
        stages[2]["block_stages"] = bad
        with pytest.raises(ValueError, match=r"stages\[2\]: expected a residual block of 1 to 2"):
            _core.TrainingPlan(net.params, net.grads, net.buffers, stages, "mse")
    stages[2]["block_stages"] = 2      # the block would start at the input, of width 5
    with pytest.raises(ValueError, match="keeps the width 4, got input width 5"):
        _core.TrainingPlan(net.params, net.grads, net.buffers, stages, "mse")


def test_train_gathered_checks_the_batch_bounds():
    net = _net("float32")
    X, y = _data("float32", "cross_entropy", n=10)
    step = make_step(net, get_loss("cross_entropy"), fb.Adam(net), True)
    order = np.arange(10, dtype=np.int64)
    with pytest.raises(ValueError):
        step.gathered(X, y, order, 5, 11)
    order[3] = 10
    with pytest.raises(ValueError, match="order"):
        step.gathered(X, y, order, 0, 5)


def test_activation_outputs_after_a_compiled_step():
    net, twin = _net("float64"), _net("float64")
    X, y = _data("float64", "cross_entropy")
    net.train_step(X, y)
    twin.forward(X)
    compiled, layered = net.activation_outputs(), twin.activation_outputs()
    assert [(i, name) for i, name, _ in compiled] == [(1, "tanh"), (3, "relu")]
    for (_, _, A), (_, _, B) in zip(compiled, layered, strict=True):
        np.testing.assert_array_equal(A, B)
    with pytest.raises(RuntimeError, match="forward"):
        net.backward(np.ones((9, 3)))  # the compiled step leaves no layer state behind


def test_standardizer_applies_on_the_compiled_step():
    rng = np.random.default_rng(1)
    X, y = 5 + 3 * rng.standard_normal((9, 5)), rng.integers(0, 3, 9)
    net, twin = _net("float64"), _net("float64")
    net.standardizer = fb.Standardizer().fit(X)
    a = net.train_step(X, y)
    b = twin.train_step((X - X.mean(axis=0)) / X.std(axis=0), y)
    assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-10)


def test_concurrent_steps_on_one_network_are_refused_not_crashed():
    """The plan's buffers are used without the GIL: a second thread gets a clear error."""
    import threading
    net = fb.mlp([256, 512, 512, 10], seed=0)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((n, 256)).astype(np.float32), rng.integers(0, 10, n))
               for n in (64, 512, 128, 1024)]  # growing batches also regrow the workspaces
    errors = []

    def train():
        for _ in range(10):
            for X, y in batches:
                try:
                    net.train_step(X, y)
                except RuntimeError as exc:
                    errors.append(exc)

    workers = [threading.Thread(target=train) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all("another thread" in str(e) for e in errors)
    assert np.isfinite(net.params).all()


# --------------------------------------------------------------------- property-based checks
batch_arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.float16]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    elements=None)
label_arrays = hnp.arrays(
    dtype=st.sampled_from([np.int64, np.int32, np.float32]),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=6),
    elements=st.integers(-2, 4))


@settings(max_examples=120, deadline=None)
@given(X=batch_arrays, y=st.one_of(label_arrays, batch_arrays),
       loss=st.sampled_from(["cross_entropy", "mse", "bce"]),
       dtype=st.sampled_from(["float32", "float64"]))
def test_compiled_train_step_gives_a_result_or_a_clear_error(X, y, loss, dtype):
    """Whatever reaches the compiled step's own checks: a finite loss, or ValueError/TypeError
    with no update made, never a crash."""
    net = fb.mlp([4, 5, 3], dtype=dtype, seed=0)
    before = net.params.copy()
    try:
        value = net.train_step(X, y, loss)
    except (ValueError, TypeError):
        np.testing.assert_array_equal(before, net.params)
        return
    except FloatingPointError:     # e.g. float64 inputs too large for float32 parameters
        np.testing.assert_array_equal(before, net.params)
        return
    assert np.isfinite(value)


# ------------------------------------------------------------ BatchNorm, Dropout, activations
def _normed(dtype, p=0.25):
    """Dense, BatchNorm, standalone activations and Dropout: all compiled."""
    return fb.Sequential(fb.Dense(5, 8), fb.BatchNorm(8), fb.ReLU(), fb.Dropout(p),
                         fb.Dense(8, 8, bias=False), fb.BatchNorm(8), fb.GELU(), fb.Tanh(),
                         fb.Dense(8, 3), dtype=dtype, seed=4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("frozen", [False, True])
def test_batchnorm_and_dropout_compile_and_match_the_layer_path(dtype, loss, frozen):
    net, twin = _normed(dtype), _normed(dtype)
    if frozen:
        net.layers[3].freeze_mask()
        twin.layers[3].freeze_mask()
    compiled = make_step(net, get_loss(loss), fb.Adam(net, lr=1e-2), loss == "cross_entropy")
    layered = _layer_path(twin, loss, fb.Adam(twin, lr=1e-2), loss == "cross_entropy")
    assert isinstance(compiled, CompiledStep)
    for k in range(4):
        X, y = _data(dtype, loss, n=9 + k, seed=k)
        assert compiled.step(X, y) == layered.step(X, y)
        np.testing.assert_array_equal(net.grads, twin.grads)
        np.testing.assert_array_equal(net.params, twin.params)
        np.testing.assert_array_equal(net.buffers, twin.buffers)   # running statistics
    assert net.layers[3]._draws == twin.layers[3]._draws            # the same masks drawn
    X, _ = _data(dtype, loss, seed=9)
    np.testing.assert_array_equal(net.predict(X), twin.predict(X))   # evaluation mode


@pytest.mark.parametrize("segments", [2, 3, 9])
def test_checkpointing_replays_batchnorm_and_dropout_in_the_plan(segments):
    plain, checkpointed = _normed("float64"), _normed("float64")
    for k in range(3):
        X, y = _data("float64", "cross_entropy", seed=k)
        assert plain.train_step(X, y) == checkpointed.train_step(
            X, y, checkpoint_segments=segments)
        np.testing.assert_array_equal(plain.params, checkpointed.params)
        np.testing.assert_array_equal(plain.buffers, checkpointed.buffers)
    assert isinstance(checkpointed._train_step, CompiledStep)


def test_compiled_batchnorm_refuses_a_batch_of_one():
    net = _normed("float32")
    X, y = _data("float32", "cross_entropy", n=1)
    before = net.params.copy(), net.buffers.copy()
    with pytest.raises(ValueError, match="BatchNorm: expected at least 2 samples"):
        net.train_step(X, y)
    np.testing.assert_array_equal(before[0], net.params)
    np.testing.assert_array_equal(before[1], net.buffers)


def test_a_failed_compiled_step_keeps_the_running_statistics():
    net = _normed("float64")
    X, _ = _data("float64", "mse")
    buffers = net.buffers.copy()
    with pytest.raises(FloatingPointError, match="no update"):
        net.train_step(X, np.full((9, 3), 1e200), "mse")   # (1e200)^2 overflows
    np.testing.assert_array_equal(net.buffers, buffers)


def test_monitoring_reads_the_compiled_stages_like_the_layer_path():
    X, y = _data("float64", "cross_entropy", n=40)
    net = _normed("float64", p=0.0)
    twin = fb.Sequential(PassThrough(), *_normed("float64", p=0.0).layers, dtype="float64",
                         seed=4)                   # the same network, run layer by layer
    assert isinstance(make_step(net, get_loss("cross_entropy"), fb.Adam(net), True),
                      CompiledStep)
    hists = [n.fit(X, y, epochs=2, batch_size=8, verbose=0, monitor=True) for n in (net, twin)]
    np.testing.assert_array_equal(hists[0]["dead_fraction"], hists[1]["dead_fraction"])
    np.testing.assert_array_equal(hists[0]["grad_norm"], hists[1]["grad_norm"])
    np.testing.assert_array_equal(net.params, twin.params)


def test_plan_checks_every_stage_description():
    from fastbp import _core
    net = _net("float32")
    W, dW = net.layers[0].params["weight"], net.layers[0].grads["weight"]
    dense = {"kind": "dense", "in_features": 5, "out_features": 7, "weight": W,
             "weight_grad": dW, "activation": 0, "params": {}}
    bad = [({**dense, "in_features": 6}, "weight of shape"),
           ({**dense, "weight_grad": None}, "'weight_grad'"),
           ({**dense, "bias": net.layers[0].params["bias"]}, "bias and bias_grad"),
           ({"kind": "activation", "in_features": 5, "out_features": 6, "activation": 0,
             "params": {}}, "equal unless Dense"),
           ({"kind": "batchnorm", "in_features": 7, "out_features": 7, "momentum": 0.1,
             "eps": 1e-5}, "'weight'")]
    for stage, match in bad:
        with pytest.raises(ValueError, match=match):
            _core.TrainingPlan(net.params, net.grads, net.buffers, [stage], "mse")


# ------------------------------------------------------------------------- Residual blocks
def _residual(dtype):
    """Residual blocks compiled: one at the network input, one starting with BatchNorm, nested
    blocks starting at the same layer, Dropout and a standalone activation inside."""
    return fb.Sequential(
        fb.Residual(fb.Dense(5, 5), fb.Tanh()),
        fb.Dense(5, 8), fb.ReLU(),
        fb.Residual(fb.BatchNorm(8), fb.Dense(8, 8), fb.GELU(), fb.Dropout(0.3)),
        fb.Residual(fb.Residual(fb.Dense(8, 8), fb.Sigmoid()), fb.Dense(8, 8)),
        fb.Dense(8, 3), dtype=dtype, seed=6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_residual_blocks_compile_and_match_the_layer_path(dtype):
    net = _residual(dtype)
    twin = fb.Sequential(PassThrough(), *_residual(dtype).layers, dtype=dtype, seed=6)
    compiled = make_step(net, get_loss("cross_entropy"), fb.Adam(net, lr=1e-2), True)
    layered = make_step(twin, get_loss("cross_entropy"), fb.Adam(twin, lr=1e-2), True)
    assert isinstance(compiled, CompiledStep) and isinstance(layered, LayerStep)
    for k in range(4):
        X, y = _data(dtype, "cross_entropy", n=9 + k, seed=k)
        assert compiled.step(X, y) == layered.step(X, y)
        np.testing.assert_array_equal(net.grads, twin.grads)
        np.testing.assert_array_equal(net.params, twin.params)
        np.testing.assert_array_equal(net.buffers, twin.buffers)


@pytest.mark.parametrize("segments", [2, 3, 5, 8])
def test_checkpointing_segments_may_cut_residual_blocks(segments):
    """Segment ends fall inside blocks: block inputs keep their own buffers."""
    plain, checkpointed = _residual("float64"), _residual("float64")
    for k in range(3):
        X, y = _data("float64", "cross_entropy", seed=k)
        assert plain.train_step(X, y) == checkpointed.train_step(
            X, y, checkpoint_segments=segments)
        np.testing.assert_array_equal(plain.params, checkpointed.params)
        np.testing.assert_array_equal(plain.buffers, checkpointed.buffers)


class NoUpdate(fb.Optimizer):
    """Leaves the parameters alone: the compiled step then only computes gradients."""

    def step(self):
        self.step_count += 1


def test_compiled_residual_gradients_are_the_checked_ones():
    """The compiled step's gradients equal the layer path's, which gradcheck checks against
    finite differences."""
    net = _residual("float64")
    net.layers[3].layers[3].freeze_mask()
    X, y = _data("float64", "cross_entropy")
    net.train_step(X, y, optimizer=NoUpdate(net, lr=1.0))
    compiled = net.grads.copy()
    dout = fb.SoftmaxCrossEntropy()(net.forward(X, training=True), y)[1]
    net.backward(dout)
    np.testing.assert_allclose(compiled, net.grads, rtol=1e-12, atol=1e-15)
    fb.gradcheck(net, "cross_entropy", X, y)
