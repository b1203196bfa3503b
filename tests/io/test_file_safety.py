"""Model files against hostile and careless use: what save may replace, modes, temporary files,
what load opens and reads before it trusts a file, and what it may raise."""
import io
import json
import os
import stat
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastbp as fb
from fastbp import archive


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.npz"
    fb.mlp([3, 4, 2], seed=0).save(path)
    return path


def members(path):
    with zipfile.ZipFile(path) as z:
        return {name[:-4]: z.read(name) for name in z.namelist()}


def description(path):
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["fastbp"]))


def rewritten(path, change=None, **arrays):
    """A copy of a model file with its description changed by `change` and arrays replaced."""
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    if change is not None:
        desc = json.loads(str(data["fastbp"]))
        change(desc)
        data["fastbp"] = np.array(json.dumps(desc))
    data.update(arrays)
    out = path.with_name("changed.npz")
    np.savez(out, **data)
    return out


# ----------------------------------------------------------------------------------- saving
def test_save_refuses_paths_that_are_not_regular_files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    net = fb.mlp([3, 2])
    with pytest.raises(ValueError, match=r"fifo' exists and is not a regular file \(a FIFO\)"):
        net.save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(ValueError, match=r"not a regular file \(a directory\)"):
        net.save(tmp_path)
    (tmp_path / "to-fifo").symlink_to(fifo)
    with pytest.raises(ValueError, match=r"to-fifo' exists and is not a regular file"):
        net.save(tmp_path / "to-fifo")
    assert sorted(os.listdir(tmp_path)) == ["fifo", "to-fifo"]


def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path, model):
    link = tmp_path / "link.npz"
    link.symlink_to(model)
    net = fb.mlp([3, 4, 2], seed=5)
    net.save(link)
    assert link.is_symlink() and os.readlink(link) == str(model)
    np.testing.assert_array_equal(fb.load(model).params, net.params)


def test_saved_files_get_the_mode_open_gives(tmp_path):
    old = os.umask(0o027)
    try:
        fb.mlp([3, 2]).save(tmp_path / "new.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o640
    existing = tmp_path / "existing.npz"
    existing.write_bytes(b"")
    existing.chmod(0o604)
    fb.mlp([3, 2]).save(existing)
    assert stat.S_IMODE(os.stat(existing).st_mode) == 0o604     # replacing keeps the mode


def test_a_save_removes_temporaries_of_earlier_interrupted_saves_of_its_target(tmp_path):
    stale = [tmp_path / ".m.npz.fastbp-0123456789abcdef.tmp", tmp_path / ".m.npz.fastbp-x.tmp"]
    kept = [tmp_path / ".other.npz.fastbp-0123.tmp", tmp_path / "notes.tmp"]
    for path in stale + kept:
        path.write_bytes(b"partial")
        os.utime(path, (1e9, 1e9))
    fb.mlp([3, 2]).save(tmp_path / "m.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz"] + [p.name for p in kept])


def test_a_failed_save_leaves_no_temporary_and_names_the_users_path(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(archive.np, "savez", full)
    with pytest.raises(OSError, match=r"No space left on device: '.*m\.npz'") as info:
        fb.mlp([3, 2]).save(tmp_path / "m.npz")
    assert info.value.filename == str(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_save_into_a_missing_directory_names_the_users_path(tmp_path):
    target = tmp_path / "missing" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        fb.mlp([3, 2]).save(target)
    assert info.value.filename == str(target) and ".tmp" not in str(info.value)


# ---------------------------------------------------------------------------------- loading
def test_load_opens_regular_files_only(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is a FIFO, not a fastbp model file"):
        fb.load(fifo)                                   # and does not block
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="is a character device, not a fastbp model file"):
        fb.load(tmp_path / "zero")
    with pytest.raises(ValueError, match="is a directory"):
        fb.load(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_permission_error(model):
    model.chmod(0)
    with pytest.raises(PermissionError):
        fb.load(model)


def test_a_huge_description_over_small_arrays_allocates_nothing(model):
    def huge(desc):
        desc["layers"] = [{"type": "Dense", "in_features": 8000, "out_features": 8000}]
    path = rewritten(model, huge)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"params of shape \(26,\).*needs \(64008000,\)"):
            fb.load(path)
        assert tracemalloc.get_traced_memory()[1] < 4 << 20
    finally:
        tracemalloc.stop()


def test_unexpected_members_are_refused_unread(model, tmp_path):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members(model).items():
            z.writestr(name + ".npy", data)
        with z.open("unused.npy", "w") as member:
            block = bytes(1 << 20)
            for _ in range(64):
                member.write(block)
    assert os.path.getsize(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="unexpected member 'unused.npy'"):
            fb.load(bomb)
        assert tracemalloc.get_traced_memory()[1] < 4 << 20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("elements", [2**31, 2**40])
def test_headers_claiming_more_than_the_file_holds_are_refused(model, tmp_path, elements):
    header = {"descr": "<f4", "fortran_order": False, "shape": (elements,)}
    lying = tmp_path / "lying.npz"
    with zipfile.ZipFile(lying, "w") as z:
        for name, data in members(model).items():
            if name == "params":
                buf = io.BytesIO()
                np.lib.format.write_array_header_2_0(buf, header)
                data = buf.getvalue() + bytes(16)
            z.writestr(name + ".npy", data)
    with pytest.raises(ValueError, match="shorter than its header declares"):
        fb.load(lying)


def test_loading_a_valid_model_takes_little_more_than_the_model(tmp_path):
    path = tmp_path / "big.npz"
    net = fb.mlp([500, 1000, 10], seed=0)
    net.save(path, include_optimizer=False)
    size = net.params.nbytes
    tracemalloc.start()
    try:
        loaded = fb.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(loaded.params, net.params)
    assert peak < 2 * size + (1 << 20), (peak, size)    # params and grads, nothing else


def _deeply_nested(path, depth):
    """A copy of the model file whose first layer is `depth` Residual blocks, one in another
    (written as text: deeper than Python's JSON encoder can go)."""
    text = json.dumps(description(path))
    dense = '{"type": "Dense", "in_features": 3, "out_features": 3}'
    nested = '{"type": "Residual", "layers": [' * depth + dense + "]}" * depth
    return rewritten(path, fastbp=np.array(text.replace('"layers": [', f'"layers": [{nested}, ',
                                                        1)))


@pytest.mark.parametrize("change, arrays, message", [
    (lambda d: d.update(optimizer={"type": "Adam", "step": -1, "lr": 0.001}), "adam",
     r"optimizer step: expected an integer >= 0, got -1"),
    (None, {"params": np.full(26, np.nan, np.float32)}, r"params: expected finite values"),
    (lambda d: d.update(metadata="text"), {}, r"metadata: expected a JSON object, got str"),
    (lambda d: d.update(loss={"name": "mse", "half": False, "extra": 1}), {},
     r"malformed architecture: TypeError: .*extra"),
    (lambda d: d.update(optimizer={"type": "SGD", "step": 0, "lr": 0.1, "extra": 1}), {},
     r"malformed architecture: TypeError: .*extra"),
    (lambda d: d.update(seed=float("inf")), {}, r"malformed description: expected finite "
                                                r"numbers, got Infinity"),
    (lambda d: d.update(seed=1.5), {}, r"seed: expected an integer >= 0, got 1.5"),
    (lambda d: d.update(layers={}), {}, r"layers: expected a non-empty list of layers"),
    (lambda d: d.update(layers=[{"type": "ReLU"}] * 20_000), {}, r"more than 10000 layers"),
    (lambda d: d.update(dtype="object"), {}, r"dtype: expected one of"),
])
def test_hostile_contents_are_clear_value_errors(model, change, arrays, message):
    if arrays == "adam":
        arrays = {"optimizer.m": np.zeros(26, np.float32), "optimizer.v": np.zeros(26, np.float32)}
    with pytest.raises(ValueError, match=rf"path: .*changed.npz.*{message}"):
        fb.load(rewritten(model, change, **arrays))


def test_deep_nesting_is_refused_before_any_layer_is_built(model):
    with pytest.raises(ValueError, match=r"changed.npz.*blocks nested more than 32 deep"):
        fb.load(_deeply_nested(model, 40))
    with pytest.raises(ValueError, match=r"changed.npz.*nested too deeply"):
        fb.load(_deeply_nested(model, 3000))


def test_a_negative_running_variance_is_refused(tmp_path):
    path = tmp_path / "bn.npz"
    net = fb.Sequential(fb.Dense(3, 4), fb.BatchNorm(4), fb.Dense(4, 2))
    net.save(path)
    buffers = net.buffers.copy()
    buffers[-1] = -1.0
    with pytest.raises(ValueError, match=r"running_var: expected values >= 0, got -1.0"):
        fb.load(rewritten(path, buffers=buffers))


def _mutations(value, rng, depth=0):
    """A randomly damaged copy of a JSON value."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = list(value)[rng.integers(len(value))]
        damaged = dict(value)
        roll = rng.random()
        if roll < 0.2:
            del damaged[key]
        elif roll < 0.3:
            damaged[f"extra{depth}"] = 1
        else:
            damaged[key] = _mutations(value[key], rng, depth + 1)
        return damaged
    if isinstance(value, list) and value and rng.random() < 0.8:
        damaged = list(value)
        i = rng.integers(len(value))
        damaged[i] = _mutations(value[i], rng, depth + 1)
        return damaged
    choices = [None, True, -1, 0, 2**70, 1e308, -0.5, "x", "", [], {}, [1, 2], {"a": 1},
               "Dense", "float64", 10**6]
    return choices[rng.integers(len(choices))]


def test_randomly_damaged_descriptions_raise_only_value_or_os_errors(tmp_path):
    path = tmp_path / "m.npz"
    net = fb.Sequential(fb.Dense(3, 4), fb.BatchNorm(4), fb.ReLU(), fb.Dropout(0.2),
                        fb.Residual(fb.Dense(4, 4), fb.Tanh()), fb.Dense(4, 2))
    net.standardizer = fb.Standardizer().fit(np.random.default_rng(0).normal(size=(5, 3)))
    net.fit(np.ones((4, 3)), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    net.save(path, include_optimizer=True)
    original = description(path)
    rng = np.random.default_rng(0)
    for _ in range(200):
        damaged = _mutations(original, rng)
        out = rewritten(path, fastbp=np.array(json.dumps(damaged)))
        try:
            fb.load(out)
        except (ValueError, OSError):
            pass
