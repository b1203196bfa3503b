"""Optimizer updates against their published formulas (torch.optim semantics) and against PyTorch.

The references are the update rules of the torch.optim.SGD / Adam / AdamW documentation written out
in float64 NumPy.
"""
import numpy as np
import pytest
from thread_helpers import num_threads

import fastbp as fb
from fastbp import _core as K

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 1023, 40_001]


# ------------------------------------------------------------------------- NumPy references
def ref_sgd_step(p, g, buf, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """torch.optim.SGD, dampening 0; buf starts at zeros (first step: buf = g)."""
    d = g + weight_decay * p
    if momentum != 0.0:
        buf = momentum * buf + d
        d = d + momentum * buf if nesterov else buf
    return p - lr * d, buf


def ref_adam_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """torch.optim.Adam (L2 added to the gradient) / AdamW (decoupled decay), step t >= 1."""
    if decoupled:
        p = p * (1.0 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    m_hat = m / (1.0 - beta1 ** t)
    v_hat = v / (1.0 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def f64(a):
    """A float64 copy (never a view of a float64 input that a kernel then updates)."""
    return np.array(a, dtype=np.float64, copy=True)


# --------------------------------------------------------------------------- sgd_step kernel
SGD_CASES = [
    {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
    {"momentum": 0.0, "nesterov": False, "weight_decay": 0.05},
    {"momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
    {"momentum": 0.5, "nesterov": True, "weight_decay": 0.01},
]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", SGD_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in
                                                                     c.items()))
def test_sgd_step(dtype, threads, n, case):
    rng = np.random.default_rng(n)
    p = rng.standard_normal(n).astype(dtype)
    buf = np.zeros(n, dtype=dtype) if case["momentum"] else None
    ref_p, ref_buf = f64(p), np.zeros(n)
    lr = 0.05
    for _ in range(5):
        g = rng.standard_normal(n).astype(dtype)
        g0 = g.copy()
        assert K.sgd_step(p, g, buf, lr, **case) is None
        np.testing.assert_array_equal(g, g0)
        ref_p, ref_buf = ref_sgd_step(ref_p, f64(g), ref_buf, lr, **case)
        np.testing.assert_allclose(p, ref_p, **tol(dtype))
        if buf is not None:
            np.testing.assert_allclose(buf, ref_buf, **tol(dtype))


def test_sgd_step_plain_is_p_minus_lr_g(dtype):
    p = np.array([1.0, -2.0, 3.0], dtype=dtype)
    g = np.array([0.5, 0.5, -1.0], dtype=dtype)
    K.sgd_step(p, g, None, 0.1)
    np.testing.assert_allclose(p, [0.95, -2.05, 3.1], **tol(dtype))


# -------------------------------------------------------------------------- adam_step kernel
ADAM_CASES = [
    {"decoupled": False, "weight_decay": 0.0},
    {"decoupled": False, "weight_decay": 0.1},
    {"decoupled": True, "weight_decay": 0.0},
    {"decoupled": True, "weight_decay": 0.1},
]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", ADAM_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in
                                                                      c.items()))
@pytest.mark.parametrize("hyper", [(1e-3, 0.9, 0.999, 1e-8), (0.05, 0.8, 0.95, 1e-3)],
                         ids=["defaults", "custom"])
def test_adam_step(dtype, threads, n, case, hyper):
    lr, beta1, beta2, eps = hyper
    rng = np.random.default_rng(n + 1)
    p = rng.standard_normal(n).astype(dtype)
    m, v = np.zeros(n, dtype=dtype), np.zeros(n, dtype=dtype)
    ref_p, ref_m, ref_v = f64(p), np.zeros(n), np.zeros(n)
    for t in range(1, 7):
        g = rng.standard_normal(n).astype(dtype)
        g0 = g.copy()
        assert K.adam_step(p, g, m, v, t, lr, beta1, beta2, eps, case["weight_decay"],
                           case["decoupled"]) is None
        np.testing.assert_array_equal(g, g0)
        ref_p, ref_m, ref_v = ref_adam_step(ref_p, f64(g), ref_m, ref_v, t, lr, beta1, beta2,
                                            eps, **case)
        np.testing.assert_allclose(p, ref_p, **tol(dtype))
        np.testing.assert_allclose(m, ref_m, **tol(dtype))
        np.testing.assert_allclose(v, ref_v, **tol(dtype))


def test_adam_first_step_moves_by_lr(dtype):
    """Step 1 with bias correction: |update| = lr * |g| / (|g| + eps) ~ lr, sign of g."""
    p = np.zeros(4, dtype=dtype)
    g = np.array([3.0, -0.5, 1e-2, -100.0], dtype=dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    K.adam_step(p, g, m, v, 1, 0.01, 0.9, 0.999, 1e-8, 0.0, False)
    np.testing.assert_allclose(p, -0.01 * np.sign(g), rtol=1e-5)


def test_adam_eps_added_after_sqrt(dtype):
    """A large eps tells where it is added: lr * m_hat / (sqrt(v_hat) + eps)."""
    p = np.zeros(1, dtype=dtype)
    g = np.array([1.0], dtype=dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    K.adam_step(p, g, m, v, 1, 1.0, 0.9, 0.999, 1.0, 0.0, False)
    # m_hat = 1, v_hat = 1: -1 / (1 + 1) = -0.5 (eps inside the sqrt would give -1/sqrt(2)).
    np.testing.assert_allclose(p, [-0.5], **tol(dtype))


def test_adamw_decay_is_decoupled(dtype):
    """With zero gradient, AdamW only shrinks p by (1 - lr wd); Adam's L2 term moves it by lr."""
    p = np.array([2.0, -4.0], dtype=dtype)
    zeros = np.zeros_like(p)
    m, v = zeros.copy(), zeros.copy()
    K.adam_step(p, zeros, m, v, 1, 0.1, 0.9, 0.999, 1e-8, 0.5, True)
    np.testing.assert_allclose(p, [2.0 * 0.95, -4.0 * 0.95], **tol(dtype))
    np.testing.assert_array_equal(m, 0.0)

    p = np.array([2.0, -4.0], dtype=dtype)
    m, v = zeros.copy(), zeros.copy()
    K.adam_step(p, zeros, m, v, 1, 0.1, 0.9, 0.999, 1e-8, 0.5, False)
    np.testing.assert_allclose(p, [1.9, -3.9], rtol=1e-6)


def test_optimizer_kernels_are_deterministic(dtype):
    rng = np.random.default_rng(5)
    n = 300_001
    p0, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    results = []
    for threads in (1, 2):
        with num_threads(threads):
            p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
            K.adam_step(p, g, m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.01, True)
            q, buf = p0.copy(), np.zeros_like(p0)
            K.sgd_step(q, g, buf, 0.1, 0.9, True, 0.01)
        results.append((p, m, v, q, buf))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------ public optimizers
def small_net(dtype):
    return fb.mlp([5, 7, 3], activation="tanh", dtype=np.dtype(dtype).name, seed=0)


def _check_views(net):
    for name, value, grad in net.named_parameters():
        assert np.shares_memory(value, net.params), name
        assert np.shares_memory(grad, net.grads), name


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("cls,decoupled", [("Adam", False), ("AdamW", True)])
def test_public_adam(dtype, cls, decoupled, weight_decay):
    net = small_net(dtype)
    params = net.params
    lr, betas, eps = 0.01, (0.8, 0.99), 1e-6
    opt = getattr(fb, cls)(net, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    rng = np.random.default_rng(6)
    ref_p, ref_m, ref_v = f64(net.params), np.zeros(net.params.size), np.zeros(net.params.size)
    for t in range(1, 6):
        net.grads[...] = rng.standard_normal(net.grads.size)
        g = f64(net.grads)
        opt.step()
        ref_p, ref_m, ref_v = ref_adam_step(ref_p, g, ref_m, ref_v, t, lr, *betas, eps,
                                            weight_decay, decoupled)
        np.testing.assert_allclose(net.params, ref_p, **tol(dtype))
        np.testing.assert_array_equal(net.grads, g.astype(dtype))  # step leaves grads alone
    assert net.params is params and net.params.dtype == dtype
    _check_views(net)


@pytest.mark.parametrize("case", SGD_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in
                                                                     c.items()))
def test_public_sgd(dtype, case):
    net = small_net(dtype)
    lr = 0.1
    opt = fb.SGD(net, lr=lr, **case)
    rng = np.random.default_rng(7)
    ref_p, ref_buf = f64(net.params), np.zeros(net.params.size)
    for _ in range(5):
        net.grads[...] = rng.standard_normal(net.grads.size)
        g = f64(net.grads)
        opt.step()
        ref_p, ref_buf = ref_sgd_step(ref_p, g, ref_buf, lr, **case)
        np.testing.assert_allclose(net.params, ref_p, **tol(dtype))
    _check_views(net)


def test_public_sgd_positional_lr(dtype):
    net = small_net(dtype)
    p0 = f64(net.params)
    net.grads[...] = 1.0
    fb.SGD(net, 0.5).step()
    np.testing.assert_allclose(net.params, p0 - 0.5, **tol(dtype))


def test_step_updates_layer_views(dtype):
    """The layers see the update: named_parameters are views of the flat buffer."""
    net = small_net(dtype)
    before = {name: value.copy() for name, value, _ in net.named_parameters()}
    for _, _, grad in net.named_parameters():
        grad[...] = 1.0
    fb.SGD(net, lr=0.25).step()
    for name, value, _ in net.named_parameters():
        np.testing.assert_allclose(value, before[name] - 0.25, **tol(dtype))


# --------------------------------------------------------------------- PyTorch trajectories
def _torch():
    return pytest.importorskip("torch")


def torch_twin(torch, net, dtype):
    """nn.Sequential(Linear(5, 7), Tanh(), Linear(7, 3)) with net's weights."""
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    model = model.to(torch.float64 if dtype == np.float64 else torch.float32)
    tparams = dict(model.named_parameters())
    names = [name for name, _, _ in net.named_parameters()]
    assert sorted(names) == sorted(tparams), names
    with torch.no_grad():
        for name, value, _ in net.named_parameters():
            assert tuple(value.shape) == tuple(tparams[name].shape), name
            tparams[name].copy_(torch.from_numpy(np.array(value)))
    return model


def make_data(rng, loss_name, n, dtype):
    X = rng.standard_normal((n, 5)).astype(dtype)
    if loss_name == "cross_entropy":
        y = rng.integers(0, 3, size=n).astype(np.int64)
    elif loss_name == "mse":
        y = rng.standard_normal((n, 3)).astype(dtype)
    else:
        y = rng.integers(0, 2, size=(n, 3)).astype(dtype)
    return X, y


def fb_loss(loss_name):
    return {"cross_entropy": fb.SoftmaxCrossEntropy(), "mse": fb.MSE(half=False),
            "bce": fb.BCEWithLogits()}[loss_name]


def torch_loss(torch, loss_name):
    F = torch.nn.functional
    return {"cross_entropy": F.cross_entropy, "mse": F.mse_loss,
            "bce": F.binary_cross_entropy_with_logits}[loss_name]


def traj_tol(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}


@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse", "bce"])
def test_forward_backward_match_torch(dtype, loss_name):
    torch = _torch()
    net = small_net(dtype)
    model = torch_twin(torch, net, dtype)
    X, y = make_data(np.random.default_rng(8), loss_name, 16, dtype)

    out = net.forward(X, training=True)
    value, dout = fb_loss(loss_name)(out, y)
    net.backward(dout)

    t_out = model(torch.from_numpy(X))
    t_loss = torch_loss(torch, loss_name)(t_out, torch.from_numpy(y))
    t_loss.backward()

    close = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}
    np.testing.assert_allclose(out, t_out.detach().numpy(), **close)
    np.testing.assert_allclose(float(value), t_loss.item(), **close)
    tparams = dict(model.named_parameters())
    for name, _, grad in net.named_parameters():
        np.testing.assert_allclose(grad, tparams[name].grad.numpy(), **close, err_msg=name)


OPTIMIZERS = {
    "adam": (lambda net: fb.Adam(net, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
             lambda torch, ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                                                weight_decay=0.0)),
    "adam_l2": (lambda net: fb.Adam(net, lr=0.01, betas=(0.9, 0.99), eps=1e-8,
                                    weight_decay=0.05),
                lambda torch, ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.99), eps=1e-8,
                                                   weight_decay=0.05)),
    "adamw": (lambda net: fb.AdamW(net, lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                                   weight_decay=0.01),
              lambda torch, ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                                                  weight_decay=0.01)),
    "sgd_nesterov": (lambda net: fb.SGD(net, lr=0.05, momentum=0.9, nesterov=True,
                                        weight_decay=0.0),
                     lambda torch, ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                                       weight_decay=0.0)),
    "sgd_momentum_wd": (lambda net: fb.SGD(net, lr=0.05, momentum=0.9, nesterov=False,
                                           weight_decay=0.01),
                        lambda torch, ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9,
                                                          weight_decay=0.01)),
}


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_trajectory_matches_torch(dtype, opt_name, loss_name):
    """20 steps (forward, loss, backward, step) on fresh batches: same parameters as PyTorch."""
    torch = _torch()
    net = small_net(dtype)
    model = torch_twin(torch, net, dtype)
    make_fb, make_torch = OPTIMIZERS[opt_name]
    opt, t_opt = make_fb(net), make_torch(torch, model.parameters())
    loss, t_loss_fn = fb_loss(loss_name), torch_loss(torch, loss_name)
    rng = np.random.default_rng(9)
    tparams = dict(model.named_parameters())
    for step in range(20):
        X, y = make_data(rng, loss_name, 16, dtype)
        value, dout = loss(net.forward(X, training=True), y)
        net.backward(dout)
        opt.step()

        t_opt.zero_grad()
        t_loss = t_loss_fn(model(torch.from_numpy(X)), torch.from_numpy(y))
        t_loss.backward()
        t_opt.step()

        np.testing.assert_allclose(float(value), t_loss.item(), **traj_tol(dtype),
                                   err_msg=f"loss at step {step}")
    for name, value, _ in net.named_parameters():
        np.testing.assert_allclose(value, tparams[name].detach().numpy(), **traj_tol(dtype),
                                   err_msg=name)
