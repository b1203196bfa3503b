"""Callbacks: the protocol fit follows, EarlyStopping and ModelCheckpoint."""
import numpy as np
import pytest

import fastbp as fb


def blobs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return centers[y] + 0.8 * rng.standard_normal((n, 2)), y


class Recorder(fb.Callback):
    """Records every call, the logs and the parameters after each epoch."""

    def __init__(self, stop_at=None):
        self.calls, self.logs, self.params, self.stop_at = [], [], [], stop_at

    def on_train_begin(self, net):
        self.calls.append("begin")
        self.net = net

    def on_epoch_end(self, epoch, logs):
        self.calls.append(epoch)
        self.logs.append(logs)
        self.params.append(self.net.params.copy())
        return self.stop_at is not None and epoch >= self.stop_at

    def on_train_end(self, net):
        self.calls.append("end")


# -------------------------------------------------------------------------------- protocol
def test_hooks_are_called_in_order_with_the_epoch_logs():
    X, y = blobs()
    rec = Recorder()
    hist = fb.mlp([2, 8, 3], seed=1).fit(X, y, epochs=3, batch_size=16, verbose=0,
                                         validation_data=blobs(30, seed=1), callbacks=[rec])
    assert rec.calls == ["begin", 1, 2, 3, "end"]
    for epoch, logs in enumerate(rec.logs):
        assert set(logs) == {"loss", "accuracy", "val_loss", "val_accuracy", "time"}
        assert logs["val_loss"] == hist["val_loss"][epoch]


def test_returning_true_stops_after_that_epoch_and_every_callback_sees_it():
    X, y = blobs()
    stopper, watcher = Recorder(stop_at=2), Recorder()
    hist = fb.mlp([2, 8, 3]).fit(X, y, epochs=10, verbose=0, callbacks=[stopper, watcher])
    assert hist.epochs == 2
    assert watcher.calls == ["begin", 1, 2, "end"]


def test_a_diverging_fit_raises_without_on_train_end():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    Y = X @ rng.standard_normal((4, 1))
    rec = Recorder()
    with pytest.raises(FloatingPointError):
        fb.mlp([4, 16, 1], activation="tanh").fit(X, Y, loss="mse", optimizer="sgd", lr=2.0,
                                                  epochs=20, batch_size=8, verbose=0,
                                                  callbacks=[rec])
    assert rec.calls[0] == "begin" and "end" not in rec.calls


def test_the_base_callback_does_nothing():
    X, y = blobs()
    a, b = fb.mlp([2, 8, 3], seed=2), fb.mlp([2, 8, 3], seed=2)
    a.fit(X, y, epochs=2, verbose=0)
    b.fit(X, y, epochs=2, verbose=0, callbacks=[fb.Callback()])
    np.testing.assert_array_equal(a.params, b.params)


def test_callbacks_must_be_a_list_of_callbacks():
    X, y = blobs()
    with pytest.raises(TypeError, match="callbacks"):
        fb.mlp([2, 3]).fit(X, y, epochs=1, verbose=0, callbacks=fb.Callback())
    with pytest.raises(TypeError, match=r"callbacks\[1\].*Callback.*got str"):
        fb.mlp([2, 3]).fit(X, y, epochs=1, verbose=0, callbacks=[fb.Callback(), "stop"])


# --------------------------------------------------------------------------- EarlyStopping
def run_scripted(values, stopper, key="val_loss", epochs=None):
    """Fit with `stopper` seeing `values` as `key`; returns (history, recorder)."""
    class Feed(fb.Callback):
        def on_train_begin(self, net):
            stopper.on_train_begin(net)

        def on_epoch_end(self, epoch, logs):
            return stopper.on_epoch_end(epoch, {**logs, key: values[epoch - 1]})

        def on_train_end(self, net):
            stopper.on_train_end(net)

    X, y = blobs()
    rec = Recorder()
    net = fb.mlp([2, 8, 3], seed=3)
    hist = net.fit(X, y, epochs=epochs or len(values), batch_size=16, verbose=0,
                   callbacks=[rec, Feed()])
    return net, hist, rec


def test_early_stopping_waits_patience_epochs_then_restores_the_best():
    stopper = fb.EarlyStopping(patience=2)
    net, hist, rec = run_scripted([1.0, 0.5, 0.6, 0.4, 0.45, 0.41, 0.9, 0.1], stopper)
    assert hist.epochs == 6 and stopper.stopped_epoch == 6
    assert stopper.best == 0.4 and stopper.best_epoch == 4
    np.testing.assert_array_equal(net.params, rec.params[3])       # epoch 4's parameters


def test_early_stopping_without_restore_keeps_the_last_parameters():
    stopper = fb.EarlyStopping(patience=1, restore_best=False)
    net, hist, rec = run_scripted([1.0, 2.0, 0.5], stopper)
    assert hist.epochs == 2
    np.testing.assert_array_equal(net.params, rec.params[-1])


def test_early_stopping_min_delta():
    stopper = fb.EarlyStopping(patience=2, min_delta=0.1)
    _, hist, _ = run_scripted([1.0, 0.95, 0.92, 0.5], stopper)
    assert hist.epochs == 3 and stopper.best_epoch == 1


def test_early_stopping_maximises_accuracies_in_auto_mode():
    stopper = fb.EarlyStopping(monitor="val_accuracy", patience=2)
    assert stopper.mode == "max"
    net, hist, rec = run_scripted([0.5, 0.8, 0.7, 0.75, 0.9], stopper, key="val_accuracy")
    assert hist.epochs == 4 and stopper.best == 0.8
    np.testing.assert_array_equal(net.params, rec.params[1])
    assert fb.EarlyStopping(monitor="val_accuracy", mode="min").mode == "min"


def test_early_stopping_never_stopping_restores_the_best_at_the_end():
    stopper = fb.EarlyStopping(patience=10)
    net, hist, rec = run_scripted([3.0, 1.0, 2.0], stopper)
    assert hist.epochs == 3 and stopper.stopped_epoch is None
    np.testing.assert_array_equal(net.params, rec.params[1])


def test_early_stopping_on_real_validation_loss():
    X, y = blobs(120)
    Xv, yv = blobs(60, seed=5)
    stopper = fb.EarlyStopping(patience=3)
    net = fb.mlp([2, 16, 3], seed=4)
    hist = net.fit(X, y, epochs=200, batch_size=8, lr=0.05, validation_data=(Xv, yv),
                   verbose=0, callbacks=[stopper])
    assert hist.epochs < 200                          # it stopped
    assert min(hist["val_loss"]) == stopper.best
    assert net.evaluate(Xv, yv)["loss"] == pytest.approx(stopper.best, rel=1e-6)


def test_missing_monitor_key_lists_the_available_ones():
    X, y = blobs()
    with pytest.raises(ValueError, match=r"'val_loss' is not in the epoch logs.*validation_data"
                                         r".*\['accuracy', 'loss', 'time'\]"):
        fb.mlp([2, 3]).fit(X, y, epochs=2, verbose=0, callbacks=[fb.EarlyStopping()])


@pytest.mark.parametrize("kwargs, name", [
    ({"patience": 0}, "patience"), ({"patience": 1.5}, "patience"),
    ({"min_delta": -0.1}, "min_delta"), ({"mode": "up"}, "mode"),
])
def test_early_stopping_arguments_are_validated(kwargs, name):
    with pytest.raises(ValueError, match=name):
        fb.EarlyStopping(**kwargs)
    with pytest.raises(TypeError, match="monitor"):
        fb.EarlyStopping(monitor=3)


# ------------------------------------------------------------------------- ModelCheckpoint
def test_checkpoint_saves_the_best_epoch(tmp_path):
    path = tmp_path / "best.npz"
    checkpoint = fb.ModelCheckpoint(path)
    net, hist, rec = run_scripted([1.0, 0.5, 0.7, 0.6], checkpoint)
    assert checkpoint.saved_epochs == [1, 2]
    best = fb.load(path)
    np.testing.assert_array_equal(best.params, rec.params[1])
    assert not [p for p in tmp_path.iterdir() if p.name != "best.npz"]   # no temporary left


def test_checkpoint_every_epoch_keeps_the_last(tmp_path):
    path = tmp_path / "last.npz"
    checkpoint = fb.ModelCheckpoint(str(path), save_best_only=False, include_optimizer=True)
    net, hist, rec = run_scripted([1.0, 2.0, 3.0], checkpoint)
    assert checkpoint.saved_epochs == [1, 2, 3]
    last = fb.load(path)
    np.testing.assert_array_equal(last.params, net.params)
    assert last.optimizer is not None


def test_checkpoint_with_accuracy_and_real_logs(tmp_path):
    X, y = blobs()
    checkpoint = fb.ModelCheckpoint(tmp_path / "m.npz", monitor="accuracy")
    net = fb.mlp([2, 8, 3], seed=6)
    hist = net.fit(X, y, epochs=4, verbose=0, callbacks=[checkpoint])
    best_epoch = checkpoint.saved_epochs[-1]
    assert hist["accuracy"][best_epoch - 1] == max(hist["accuracy"])


def test_checkpoint_refuses_a_missing_directory_before_training(tmp_path):
    X, y = blobs()
    net = fb.mlp([2, 3])
    before = net.params.copy()
    with pytest.raises(ValueError, match="no such directory"):
        net.fit(X, y, epochs=1, verbose=0,
                callbacks=[fb.ModelCheckpoint(tmp_path / "nope" / "m.npz")])
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(TypeError, match="path"):
        fb.ModelCheckpoint(3.5)
