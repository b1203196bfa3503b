"""Every autograd operation as a case: (id, fastbp function, torch function, input shapes,
input domain), shared by the oracle tests. Broadcasting and keepdims variants are cases of
their own."""
import numpy as np

import fastbp.autograd as ag

try:
    import torch
except ImportError:     # the finite-difference oracle runs without it
    torch = None

ROWS = np.array([0, 2, 2, 1])          # an index given twice: its gradients add up


def cases():
    """The cases; the torch functions (third element) need torch when they are called."""
    def unary(name, ours, theirs, shape=(3, 4), domain="any"):
        return (name, lambda x: ours(x), lambda x: theirs(x), [shape], domain)

    def binary(name, ours, theirs, shapes, domain="any"):
        return (name, ours, theirs, shapes, domain)

    broadcasts = [[(3, 4), (3, 4)], [(3, 4), (4,)], [(3, 1), (1, 4)], [(2, 3, 4), (3, 1)],
                  [(), (3, 4)]]
    cases = []
    for shapes in broadcasts:
        tag = "x".join(map(str, shapes[0])) + "_" + "x".join(map(str, shapes[1]))
        cases += [
            binary(f"add_{tag}", lambda a, b: a + b, lambda a, b: a + b, shapes),
            binary(f"sub_{tag}", lambda a, b: a - b, lambda a, b: a - b, shapes),
            binary(f"mul_{tag}", lambda a, b: a * b, lambda a, b: a * b, shapes),
            binary(f"div_{tag}", lambda a, b: a / b, lambda a, b: a / b, shapes, "positive"),
            binary(f"pow_{tag}", lambda a, b: a ** b, lambda a, b: a ** b, shapes, "positive"),
            binary(f"maximum_{tag}", ag.maximum, lambda a, b: torch.maximum(a, b), shapes),
            binary(f"minimum_{tag}", ag.minimum, lambda a, b: torch.minimum(a, b), shapes),
        ]
    mask = np.array([True, False, True, False])
    cases += [
        binary("where_3x4_4", lambda a, b: ag.where(mask, a, b),
               lambda a, b: torch.where(torch.from_numpy(mask), a, b), [(3, 4), (4,)]),
        unary("neg", lambda x: -x, lambda x: -x),
        unary("pow_scalar", lambda x: x ** 3, lambda x: x ** 3),
        unary("pow_half", lambda x: x ** 0.5, lambda x: x ** 0.5, domain="positive"),
        unary("rpow", lambda x: 2.0 ** x, lambda x: 2.0 ** x),
        unary("rsub_rdiv", lambda x: 1.0 - 3.0 / x, lambda x: 1.0 - 3.0 / x, domain="positive"),
        unary("array_plus_tensor", lambda x: np.arange(4.0) * x + np.ones((2, 1, 1)),
              lambda x: torch.arange(4.0, dtype=torch.float64) * x
              + torch.ones((2, 1, 1), dtype=torch.float64)),
        unary("exp", ag.exp, lambda x: torch.exp(x)),
        unary("log", ag.log, lambda x: torch.log(x), domain="positive"),
        unary("sqrt", ag.sqrt, lambda x: torch.sqrt(x), domain="positive"),
        unary("abs", ag.abs, lambda x: torch.abs(x)),
        unary("tanh", ag.tanh, lambda x: torch.tanh(x)),
        unary("sigmoid", ag.sigmoid, lambda x: torch.sigmoid(x)),
        unary("relu", ag.relu, lambda x: torch.relu(x)),
        unary("clip", lambda x: ag.clip(x, -0.5, 0.7), lambda x: torch.clamp(x, -0.5, 0.7)),
        unary("clip_lo", lambda x: x.clip(lo=0.1), lambda x: torch.clamp(x, min=0.1)),
        binary("matmul_2d_2d", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4, 5)]),
        binary("matmul_1d_2d", lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (4, 5)]),
        binary("matmul_2d_1d", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4,)]),
        binary("matmul_1d_1d", lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (4,)]),
        binary("matmul_batched", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
        binary("matmul_batch_broadcast", lambda a, b: a @ b, lambda a, b: a @ b,
               [(2, 1, 3, 4), (5, 4, 2)]),
        binary("matmul_1d_batched", lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (2, 4, 3)]),
        unary("softmax_last", ag.softmax, lambda x: torch.softmax(x, -1), (2, 3, 4)),
        unary("softmax_axis0", lambda x: ag.softmax(x, axis=0), lambda x: torch.softmax(x, 0)),
        unary("log_softmax_last", ag.log_softmax, lambda x: torch.log_softmax(x, -1)),
        unary("log_softmax_axis1", lambda x: x.log_softmax(axis=1),
              lambda x: torch.log_softmax(x, 1), (2, 3, 4)),
        unary("reshape", lambda x: x.reshape(4, -1) * np.arange(6.0),
              lambda x: x.reshape(4, -1) * torch.arange(6.0, dtype=torch.float64), (2, 3, 4)),
        unary("transpose", lambda x: x.transpose(2, 0, 1), lambda x: x.permute(2, 0, 1),
              (2, 3, 4)),
        unary("T", lambda x: x.T @ x, lambda x: x.T @ x),
        unary("index_slice", lambda x: x[1:, ::2], lambda x: x[1:, ::2]),
        unary("index_int_array", lambda x: x[ROWS], lambda x: x[torch.from_numpy(ROWS)]),
        unary("index_pairs", lambda x: x[ROWS, [0, 1, 1, 3]],
              lambda x: x[torch.from_numpy(ROWS), torch.tensor([0, 1, 1, 3])]),
        unary("index_mask", lambda x: x[x.data > 0],
              lambda x: x[x > 0]),
        unary("index_newaxis", lambda x: x[None, :, 1], lambda x: x[None, :, 1]),
        unary("take_along_axis", lambda x: ag.take_along_axis(x, ROWS[None, :3].T % 4, 1),
              lambda x: torch.take_along_dim(x, torch.from_numpy(ROWS[None, :3].T % 4), 1)),
    ]
    for axis in [None, 0, 1, -1, (0, 2)]:
        for keep in (False, True):
            tag = f"{axis}_{'keep' if keep else 'drop'}".replace(" ", "")
            dim = tuple(range(3)) if axis is None else axis
            cases += [
                unary(f"sum_{tag}", lambda x, a=axis, k=keep: x.sum(axis=a, keepdims=k),
                      lambda x, d=dim, k=keep: torch.sum(x, d, keepdim=k), (2, 3, 4)),
                unary(f"mean_{tag}", lambda x, a=axis, k=keep: ag.mean(x, a, k),
                      lambda x, d=dim, k=keep: torch.mean(x, d, keepdim=k), (2, 3, 4)),
                unary(f"max_{tag}", lambda x, a=axis, k=keep: x.max(axis=a, keepdims=k),
                      lambda x, d=dim, k=keep: torch.amax(x, d, keepdim=k), (2, 3, 4)),
                unary(f"logsumexp_{tag}", lambda x, a=axis, k=keep: ag.logsumexp(x, a, k),
                      lambda x, d=dim, k=keep: torch.logsumexp(x, d, keepdim=k), (2, 3, 4)),
            ]
    return cases


def inputs(shapes, domain, seed):
    """Float64 inputs of `shapes`: standard normal kept 0.1 away from 0 (the kinks of abs and
    relu), or in [0.5, 2] for a positive domain."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        if domain == "positive":
            out.append(rng.uniform(0.5, 2.0, shape))
        else:
            x = rng.standard_normal(shape)
            out.append(np.where(np.abs(x) < 0.1, np.sign(x + 1e-300) * 0.1 + x, x))
    return out
