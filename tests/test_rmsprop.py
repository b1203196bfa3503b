"""RMSprop: the fused kernel against the torch.optim.RMSprop update rule written in NumPy, against
PyTorch itself (one tensor, and a network trained step by step), state save and load."""
import numpy as np
import pytest
from thread_helpers import num_threads

import fastbp as fb
from fastbp import _core as K
from fastbp.optim import OPTIMIZERS, get_optimizer, optimizer_from_config

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 1023, 40_001]

CASES = [
    {},
    {"weight_decay": 0.05},
    {"momentum": 0.9},
    {"centered": True},
    {"centered": True, "momentum": 0.5, "weight_decay": 0.01},
    {"alpha": 0.9, "eps": 1e-3, "momentum": 0.8},
    {"alpha": 0.3, "centered": True},
]
CASE_IDS = ["plain", "wd", "momentum", "centered", "centered_momentum_wd", "alpha_eps_momentum",
            "alpha0.3_centered"]


def ref_rmsprop_step(p, g, state, lr, alpha=0.99, eps=1e-8, momentum=0.0, centered=False,
                     weight_decay=0.0):
    """torch.optim.RMSprop (_single_tensor_rmsprop) in float64; state holds v, m, buf (zeros)."""
    g = g + weight_decay * p
    state["v"] = alpha * state["v"] + (1.0 - alpha) * g * g
    if centered:
        state["m"] = state["m"] + (1.0 - alpha) * (g - state["m"])
        avg = np.sqrt(state["v"] - state["m"] ** 2) + eps
    else:
        avg = np.sqrt(state["v"]) + eps
    if momentum > 0:
        state["buf"] = momentum * state["buf"] + g / avg
        return p - lr * state["buf"]
    return p - lr * g / avg


def tol(dtype):
    """g / avg reaches ~10 at the first steps: float32 sums of such terms carry ~1e-6 absolute
    error."""
    return {"rtol": 2e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-11,
                                                                      "atol": 1e-12}


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def buffers(n, dtype, case):
    square_avg = np.zeros(n, dtype=dtype)
    grad_avg = np.zeros(n, dtype=dtype) if case.get("centered") else None
    buf = np.zeros(n, dtype=dtype) if case.get("momentum") else None
    return square_avg, grad_avg, buf


# ----------------------------------------------------------------------------------- kernel
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_kernel_matches_reference(dtype, threads, n, case):
    rng = np.random.default_rng(n)
    p = rng.standard_normal(n).astype(dtype)
    square_avg, grad_avg, buf = buffers(n, dtype, case)
    ref_p = p.astype(np.float64)
    state = {"v": np.zeros(n), "m": np.zeros(n), "buf": np.zeros(n)}
    lr = 0.01
    for _ in range(6):
        g = rng.standard_normal(n).astype(dtype)
        g0 = g.copy()
        assert K.rmsprop_step(p, g, square_avg, grad_avg, buf, lr, **case) is None
        np.testing.assert_array_equal(g, g0)
        ref_p = ref_rmsprop_step(ref_p, g.astype(np.float64), state, lr, **case)
        np.testing.assert_allclose(p, ref_p, **tol(dtype))
        np.testing.assert_allclose(square_avg, state["v"], **tol(dtype))
        if grad_avg is not None:
            np.testing.assert_allclose(grad_avg, state["m"], **tol(dtype))
        if buf is not None:
            np.testing.assert_allclose(buf, state["buf"], **tol(dtype))


def test_eps_is_added_outside_the_sqrt(dtype):
    """alpha = 0 makes v = g^2: p -= lr g / (|g| + eps) (eps inside the sqrt would give
    g / sqrt(g^2 + eps))."""
    p = np.zeros(2, dtype=dtype)
    g = np.array([3.0, -1.0], dtype=dtype)
    K.rmsprop_step(p, g, np.zeros_like(p), None, None, 1.0, alpha=0.0, eps=1.0)
    np.testing.assert_allclose(p, [-3.0 / 4.0, 1.0 / 2.0], rtol=1e-6)


def test_first_plain_step_is_lr_g_over_sqrt_of_one_minus_alpha_g2(dtype):
    p = np.zeros(3, dtype=dtype)
    g = np.array([2.0, -0.5, 1e-3], dtype=dtype)
    K.rmsprop_step(p, g, np.zeros_like(p), None, None, 0.1, alpha=0.99, eps=0.0)
    np.testing.assert_allclose(p, -0.1 * np.sign(g) / np.sqrt(0.01), rtol=1e-5)


def test_centered_variance_never_becomes_nan(dtype):
    """v - m^2 >= 0 in exact arithmetic; if rounding (here: a state made inconsistent on purpose)
    makes it negative, the update uses 0 and stays finite."""
    p = np.zeros(1, dtype=dtype)
    square_avg, grad_avg = np.zeros(1, dtype=dtype), np.ones(1, dtype=dtype)
    K.rmsprop_step(p, np.ones(1, dtype=dtype), square_avg, grad_avg, None, 1e-3, eps=1e-2,
                   centered=True)
    np.testing.assert_allclose(p, [-1e-3 / 1e-2], rtol=1e-5)


def test_kernel_is_deterministic_across_threads(dtype):
    n = 100_003
    rng = np.random.default_rng(1)
    p0, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    results = []
    for threads in (1, 2):
        with num_threads(threads):
            p, sq, m, buf = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
            K.rmsprop_step(p, g, sq, m, buf, 0.01, momentum=0.9, centered=True,
                           weight_decay=0.01)
        results.append((p, sq, m, buf))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_kernel_argument_errors():
    p, g = np.zeros(4), np.zeros(4)
    with pytest.raises(TypeError, match="grad_avg: expected a numpy.ndarray, got NoneType"):
        K.rmsprop_step(p, g, np.zeros(4), None, None, 0.1, centered=True)
    with pytest.raises(TypeError, match="momentum_buf: expected a numpy.ndarray"):
        K.rmsprop_step(p, g, np.zeros(4), None, None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="square_avg: expected shape"):
        K.rmsprop_step(p, g, np.zeros(3), None, None, 0.1)
    with pytest.raises(TypeError, match="square_avg: expected dtype float64"):
        K.rmsprop_step(p, g, np.zeros(4, dtype=np.float32), None, None, 0.1)
    with pytest.raises(ValueError, match="momentum: expected a number >= 0"):
        K.rmsprop_step(p, g, np.zeros(4), None, None, 0.1, momentum=-0.5)
    readonly = np.zeros(4)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="square_avg: expected a writeable array"):
        K.rmsprop_step(p, g, readonly, None, None, 0.1)


# ----------------------------------------------------------------------------- public class
def small_net(dtype):
    return fb.mlp([5, 7, 3], activation="tanh", dtype=np.dtype(dtype).name, seed=0)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_public_rmsprop(dtype, case):
    net = small_net(dtype)
    opt = fb.RMSprop(net, lr=0.02, **case)
    state = {"v": np.zeros(net.params.size), "m": np.zeros(net.params.size),
             "buf": np.zeros(net.params.size)}
    ref_p = net.params.astype(np.float64)
    rng = np.random.default_rng(3)
    for _ in range(5):
        net.grads[...] = rng.standard_normal(net.grads.size)
        opt.step()
        ref_p = ref_rmsprop_step(ref_p, net.grads.astype(np.float64), state, 0.02, **case)
        np.testing.assert_allclose(net.params, ref_p, **tol(dtype))
    assert opt.step_count == 5
    expected_state = {"square_avg"} | ({"grad_avg"} if case.get("centered") else set()) | (
        {"momentum_buffer"} if case.get("momentum") else set())
    assert set(opt.state()) == expected_state
    for name, value, _ in net.named_parameters():
        assert np.shares_memory(value, net.params), name


def test_defaults_and_registration():
    net = small_net(np.float32)
    opt = fb.RMSprop(net)
    assert opt.hyperparameters() == {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0,
                                     "weight_decay": 0.0, "centered": False}
    assert OPTIMIZERS["rmsprop"] is fb.RMSprop
    assert type(get_optimizer("rmsprop", net)) is fb.RMSprop
    assert get_optimizer("rmsprop", net, lr=0.5).lr == 0.5
    assert repr(opt).startswith("RMSprop(lr=0.01, alpha=0.99")


@pytest.mark.parametrize("kwargs,message", [
    ({"lr": 0.0}, "lr: expected a finite number > 0"),
    ({"alpha": 1.0}, r"alpha: expected a finite number >= 0 and < 1.0"),
    ({"alpha": -0.1}, "alpha"),
    ({"eps": -1e-8}, "eps"),
    ({"momentum": -0.9}, "momentum"),
    ({"weight_decay": float("nan")}, "weight_decay"),
])
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fb.RMSprop(small_net(np.float64), **kwargs)


def test_unknown_optimizer_lists_rmsprop():
    with pytest.raises(ValueError, match=r"optimizer: expected .*'rmsprop'.*got 'adagrad'"):
        get_optimizer("adagrad", small_net(np.float64))


def test_fit_and_train_step_by_name():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((60, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    net = small_net(np.float64)
    first = net.evaluate(X, y, loss="cross_entropy")["loss"]
    hist = net.fit(X, y, optimizer="rmsprop", lr=0.01, epochs=15, batch_size=20, verbose=0)
    assert type(net.optimizer) is fb.RMSprop and net.optimizer.step_count == 45
    assert hist["loss"][-1] < 0.7 * first
    twin = small_net(np.float64)
    twin.train_step(X[:20], y[:20], optimizer="rmsprop")
    assert type(twin.optimizer) is fb.RMSprop and twin.optimizer.lr == 0.01


@pytest.mark.parametrize("case", [CASES[0], CASES[4]], ids=[CASE_IDS[0], CASE_IDS[4]])
def test_state_save_and_load_resumes_identically(tmp_path, case):
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, size=40)
    net = small_net(np.float32)
    opt = fb.RMSprop(net, lr=0.01, **case)
    net.fit(X, y, optimizer=opt, epochs=2, batch_size=16, verbose=0)
    net.save(tmp_path / "m.npz", include_optimizer=True)
    loaded = fb.load(tmp_path / "m.npz")
    assert type(loaded.optimizer) is fb.RMSprop
    assert loaded.optimizer.config() == opt.config()
    for name, buf in opt.state().items():
        np.testing.assert_array_equal(loaded.optimizer.state()[name], buf)
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=16, seed=5, verbose=0)
    loaded.fit(X, y, optimizer=loaded.optimizer, epochs=1, batch_size=16, seed=5, verbose=0)
    np.testing.assert_array_equal(loaded.params, net.params)


def test_optimizer_from_config_checks_state():
    net = small_net(np.float64)
    config = fb.RMSprop(net, centered=True).config()
    with pytest.raises(ValueError, match="optimizer state: expected array 'grad_avg'"):
        optimizer_from_config(config, net, {"square_avg": np.zeros(net.params.size)})


# --------------------------------------------------------------------------------- PyTorch
def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_kernel_matches_torch_rmsprop(dtype, case):
    """Ten steps on one tensor: the same parameters and state as torch.optim.RMSprop."""
    torch = _torch()
    rng = np.random.default_rng(6)
    n = 1000
    p = rng.standard_normal(n).astype(dtype)
    square_avg, grad_avg, buf = buffers(n, dtype, case)
    t_p = torch.nn.Parameter(torch.from_numpy(p.copy()))
    t_opt = torch.optim.RMSprop([t_p], lr=0.01, **case)
    for _ in range(10):
        g = rng.standard_normal(n).astype(dtype)
        K.rmsprop_step(p, g, square_avg, grad_avg, buf, 0.01, **case)
        t_p.grad = torch.from_numpy(g.copy())
        t_opt.step()
    t_state = t_opt.state[t_p]
    np.testing.assert_allclose(p, t_p.detach().numpy(), **tol(dtype))
    np.testing.assert_allclose(square_avg, t_state["square_avg"].numpy(), **tol(dtype))
    if grad_avg is not None:
        np.testing.assert_allclose(grad_avg, t_state["grad_avg"].numpy(), **tol(dtype))
    if buf is not None:
        np.testing.assert_allclose(buf, t_state["momentum_buffer"].numpy(), **tol(dtype))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_training_trajectory_matches_torch(dtype, case):
    """Forward, loss, backward, step for 15 batches: the same losses and parameters."""
    torch = _torch()
    net = small_net(dtype)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    model = model.to(torch.float32 if dtype == np.float32 else torch.float64)
    tparams = dict(model.named_parameters())
    with torch.no_grad():
        for name, value, _ in net.named_parameters():
            tparams[name].copy_(torch.from_numpy(np.array(value)))
    opt = fb.RMSprop(net, lr=0.01, **case)
    t_opt = torch.optim.RMSprop(model.parameters(), lr=0.01, **case)
    loss = fb.SoftmaxCrossEntropy()
    rng = np.random.default_rng(7)
    close = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10,
                                                                      "atol": 1e-10}
    for step in range(15):
        X = rng.standard_normal((16, 5)).astype(dtype)
        y = rng.integers(0, 3, size=16)
        value, dout = loss(net.forward(X), y)
        net.backward(dout, input_grad=False)
        opt.step()
        t_opt.zero_grad()
        t_loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(X)),
                                                   torch.from_numpy(y))
        t_loss.backward()
        t_opt.step()
        np.testing.assert_allclose(value, t_loss.item(), **close, err_msg=f"step {step}")
    for name, value, _ in net.named_parameters():
        np.testing.assert_allclose(value, tparams[name].detach().numpy(), **close, err_msg=name)
