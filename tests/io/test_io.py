"""Saving and loading: round trips, atomic writes, refusal of foreign or damaged files."""
import os
import zipfile

import numpy as np
import pytest

import fastbp as fb


def every_layer_net(dtype):
    return fb.Sequential(fb.Dense(5, 8, init="he"), fb.ReLU(), fb.Dense(8, 7), fb.Sigmoid(),
                         fb.Dense(7, 6, init="lecun"), fb.Tanh(), fb.Identity(),
                         fb.Dense(6, 4, bias=False), fb.LeakyReLU(0.2), fb.Dense(4, 3),
                         dtype=dtype, seed=3)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 5)), rng.integers(0, 3, 64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predicts_bit_for_bit(tmp_path, data, dtype):
    X, y = data
    net = every_layer_net(dtype)
    net.fit(X, y, epochs=2, batch_size=16, verbose=0)
    net.metadata = {"classes": ["a", "b", "c"], "note": 1.5}
    net.save(tmp_path / "m.npz")
    loaded = fb.load(tmp_path / "m.npz")
    assert loaded.dtype == net.dtype
    assert [layer.config() for layer in loaded.layers] == [layer.config() for layer in net.layers]
    assert loaded.metadata == net.metadata
    assert np.array_equal(loaded.params, net.params)
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert loaded.evaluate(X, y) == net.evaluate(X, y)     # the fit's loss is saved too


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_optimizer_state_round_trip_resumes_identically(tmp_path, data, optimizer):
    X, y = data
    net = fb.mlp([5, 8, 3], seed=1)
    if optimizer == "sgd":
        opt = fb.SGD(net, lr=0.05, momentum=0.9, nesterov=True)
    else:
        opt = {"adam": fb.Adam, "adamw": fb.AdamW}[optimizer](net, lr=0.01)
    net.fit(X, y, optimizer=opt, epochs=2, batch_size=16, verbose=0)
    net.save(tmp_path / "m.npz", include_optimizer=True)
    loaded = fb.load(tmp_path / "m.npz")
    assert type(loaded.optimizer) is type(opt)
    assert loaded.optimizer.step_count == opt.step_count
    for name, buf in opt.state().items():
        assert np.array_equal(loaded.optimizer.state()[name], buf)
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=16, seed=5, verbose=0)
    loaded.fit(X, y, optimizer=loaded.optimizer, epochs=1, batch_size=16, seed=5, verbose=0)
    assert np.array_equal(loaded.params, net.params)


def test_include_optimizer_without_fit_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="include_optimizer"):
        fb.mlp([2, 2]).save(tmp_path / "m.npz", include_optimizer=True)


def test_save_overwrites_atomically_and_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    first = fb.mlp([3, 4, 2], seed=0)
    first.save(path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        fb.mlp([3, 4, 2], seed=1).save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]        # no temporary file left behind
    monkeypatch.undo()
    second = fb.mlp([3, 4, 2], seed=1)
    second.save(path)
    assert np.array_equal(fb.load(path).params, second.params)
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    fb.mlp([3, 2], seed=0).save(path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        fb.mlp([3, 2], seed=1).save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_truncated_file(tmp_path):
    path = tmp_path / "m.npz"
    fb.mlp([6, 16, 3]).save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="fastbp model file"):
        fb.load(tmp_path / "cut.npz")


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 50, b"a,b\n1,2\n"])
def test_foreign_bytes(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a fastbp model file") as info:
        fb.load(path)
    assert "pickle" not in str(info.value)


def test_plain_npz_without_description(tmp_path):
    np.savez(tmp_path / "plain.npz", params=np.zeros(3))
    with pytest.raises(ValueError, match="no fastbp description"):
        fb.load(tmp_path / "plain.npz")


def test_pickled_object_array_is_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    np.savez(tmp_path / "evil.npz", fastbp=np.array("{}"),
             params=np.array([Boom()], dtype=object))
    with pytest.raises(ValueError, match="not a readable fastbp model file"):
        fb.load(tmp_path / "evil.npz")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such file"):
        fb.load("/nonexistent/dir/model.npz")


def rewrite(path, **changes):
    """Copy of a model file with some arrays replaced."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    out = path.with_name("changed.npz")
    np.savez(out, **arrays)
    return out


def test_wrong_params_size_or_dtype(tmp_path):
    path = tmp_path / "m.npz"
    net = fb.mlp([3, 4, 2])
    net.save(path)
    with pytest.raises(ValueError, match="params of shape"):
        fb.load(rewrite(path, params=np.zeros(net.params.size + 1, np.float32)))
    with pytest.raises(ValueError, match="params of shape"):
        fb.load(rewrite(path, params=net.params.astype(np.float64)))


@pytest.mark.parametrize("header, message", [
    ("not json", "malformed description"),
    ('{"format": "other"}', "not a fastbp model file"),
    ('{"format": "fastbp", "version": 99}', "format version 99"),
    ('{"format": "fastbp", "version": 1, "layers": [{"type": "Conv"}], "dtype": "float32",'
     ' "seed": 0}', "layer type"),
    ('{"format": "fastbp", "version": 1, "dtype": "float32", "seed": 0}', "malformed"),
])
def test_malformed_descriptions(tmp_path, header, message):
    path = tmp_path / "m.npz"
    fb.mlp([3, 2]).save(path)
    with pytest.raises(ValueError, match=message):
        fb.load(rewrite(path, fastbp=np.array(header)))


def test_custom_layer_cannot_be_saved(tmp_path):
    class Doubler(fb.Layer):
        def forward(self, X, training=True):
            return 2 * X

    net = fb.Sequential(fb.Dense(2, 2), Doubler())
    with pytest.raises(TypeError, match="Doubler cannot be saved"):
        net.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_metadata_must_be_json(tmp_path):
    net = fb.mlp([2, 2])
    net.metadata = {"array": np.zeros(2)}
    with pytest.raises(TypeError, match="metadata"):
        net.save(tmp_path / "m.npz")


def test_file_is_a_zip_of_arrays(tmp_path):
    """The format is inspectable with NumPy alone: a description and the arrays."""
    path = tmp_path / "m.npz"
    fb.mlp([3, 4, 2]).save(path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as f:
        assert set(f.files) == {"fastbp", "params"}
