"""Optimizers: one fused C pass over the flat parameter, gradient and state buffers per step.

Each follows its torch.optim counterpart exactly (same formulas, same defaults).
"""
from __future__ import annotations

import numpy as np

from fastbp import _core
from fastbp._validation import boolean, check_finite, nonnegative_float, positive_float
from fastbp.nn.network import Network
from fastbp.registry import OPTIMIZERS


class Optimizer:
    """Base class: updates `net.params` from `net.grads` in place.

    Built-in optimizers join the registry with ``@OPTIMIZERS.register(name)`` and run their
    update inside the compiled training step too: `fused_update` describes it, and
    `fused_update_done` counts it once the step has made it.
    """

    # Name in OPTIMIZERS of the update the compiled training step runs for this class, if any.
    fused_kind: str | None = None

    def __init__(self, net, lr: float) -> None:
        if not isinstance(net, Network):
            raise TypeError(f"net: expected a fastbp Sequential, got {type(net).__name__}")
        self.net = net
        self.lr = positive_float(lr, "lr")
        self.step_count = 0

    def step(self) -> None:
        """Apply one update with the current gradients."""
        raise NotImplementedError

    def fused_update(self) -> tuple | None:
        """The next update (step `step_count + 1`) as the compiled training step runs it:
        a tuple (kind, step, lr, weight_decay, the kind's scalars, its state arrays) that
        `fastbp._core.TrainingPlan.train_step` describes (a tuple: it is built every step).
        None: it cannot."""
        return None

    def fused_update_done(self) -> None:
        """Count the update that the compiled step made from `fused_update()`."""
        self.step_count += 1

    def hyperparameters(self) -> dict:
        return {"lr": self.lr}

    def state(self) -> dict[str, np.ndarray]:
        """The state buffers, by name (flat, like net.params)."""
        return {}

    def config(self) -> dict:
        return {"type": type(self).__name__, "step": self.step_count, **self.hyperparameters()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    d = g + weight_decay p;  buf = momentum buf + d;  d = d + momentum buf (nesterov) or buf;
    p -= lr d   (torch.optim.SGD with dampening 0).
    """

    fused_kind = "sgd"

    def __init__(self, net, lr: float = 1e-2, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(net, lr)
        self.momentum = nonnegative_float(momentum, "momentum")
        self.nesterov = boolean(nesterov, "nesterov")
        self.weight_decay = nonnegative_float(weight_decay, "weight_decay")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: Nesterov momentum requires momentum > 0, got momentum=0")
        self.momentum_buffer = (np.zeros_like(net.params) if self.momentum else None)

    def step(self) -> None:
        self.step_count += 1
        _core.sgd_step(self.net.params, self.net.grads, self.momentum_buffer, self.lr,
                       self.momentum, self.nesterov, self.weight_decay)

    def fused_update(self) -> tuple:
        return ("sgd", self.step_count + 1, self.lr, self.weight_decay, self.momentum,
                self.nesterov, self.momentum_buffer)

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.momentum_buffer is None else {"momentum_buffer": self.momentum_buffer}


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam (Kingma & Ba), as torch.optim.Adam: L2 weight decay added to the gradient.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    decoupled = False
    fused_kind = "adam"

    def __init__(self, net, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(net, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        self.betas = (nonnegative_float(betas[0], "betas[0]", upper=1.0),
                      nonnegative_float(betas[1], "betas[1]", upper=1.0))
        self.eps = positive_float(eps, "eps")      # eps = 0 divides 0 by 0 where v = 0
        self.weight_decay = nonnegative_float(weight_decay, "weight_decay")
        self.m = np.zeros_like(net.params)
        self.v = np.zeros_like(net.params)

    def step(self) -> None:
        self.step_count += 1
        _core.adam_step(self.net.params, self.net.grads, self.m, self.v, self.step_count,
                        self.lr, self.betas[0], self.betas[1], self.eps, self.weight_decay,
                        self.decoupled)

    def fused_update(self) -> tuple:
        return ("adam", self.step_count + 1, self.lr, self.weight_decay, self.betas[0],
                self.betas[1], self.eps, self.decoupled, self.m, self.v)

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}

    def state(self) -> dict[str, np.ndarray]:
        return {"m": self.m, "v": self.v}


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay, as torch.optim.AdamW: p *= 1 - lr weight_decay first.

    Default weight_decay 0.01 as in PyTorch.
    """

    decoupled = True

    def __init__(self, net, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(net, lr, betas, eps, weight_decay)


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """RMSprop (Hinton), as torch.optim.RMSprop: L2 weight decay added to the gradient.

    g += weight_decay p;  v = alpha v + (1 - alpha) g^2;  centered: m = alpha m + (1 - alpha) g
    and avg = sqrt(v - m^2) + eps, otherwise avg = sqrt(v) + eps (eps outside the sqrt);
    momentum > 0: buf = momentum buf + g / avg, p -= lr buf;  otherwise p -= lr g / avg.
    State (flat, like net.params): square_avg v, grad_avg m (centered), momentum_buffer.
    """

    fused_kind = "rmsprop"

    def __init__(self, net, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0,
                 centered: bool = False) -> None:
        super().__init__(net, lr)
        self.alpha = nonnegative_float(alpha, "alpha", upper=1.0)
        self.eps = positive_float(eps, "eps")      # eps = 0 divides 0 by 0 where v = 0
        self.momentum = nonnegative_float(momentum, "momentum")
        self.weight_decay = nonnegative_float(weight_decay, "weight_decay")
        self.centered = boolean(centered, "centered")
        self.square_avg = np.zeros_like(net.params)
        self.grad_avg = np.zeros_like(net.params) if self.centered else None
        self.momentum_buffer = np.zeros_like(net.params) if self.momentum else None

    def step(self) -> None:
        self.step_count += 1
        _core.rmsprop_step(self.net.params, self.net.grads, self.square_avg, self.grad_avg,
                           self.momentum_buffer, self.lr, self.alpha, self.eps,
                           self.momentum, self.centered, self.weight_decay)

    def fused_update(self) -> tuple:
        return ("rmsprop", self.step_count + 1, self.lr, self.weight_decay, self.alpha,
                self.eps, self.momentum, self.centered, self.square_avg, self.grad_avg,
                self.momentum_buffer)

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "centered": self.centered}

    def state(self) -> dict[str, np.ndarray]:
        buffers = {"square_avg": self.square_avg, "grad_avg": self.grad_avg,
                   "momentum_buffer": self.momentum_buffer}
        return {name: buf for name, buf in buffers.items() if buf is not None}


def get_optimizer(optimizer, net, lr: float | None = None) -> Optimizer:
    """An optimizer for `net`: an Optimizer bound to it, or a name in OPTIMIZERS built with
    `lr` (the class's default lr when None)."""
    if isinstance(optimizer, Optimizer):
        if optimizer.net is not net:
            raise ValueError("optimizer: expected an optimizer built for this network")
        return optimizer
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        cls = OPTIMIZERS[optimizer]
        return cls(net) if lr is None else cls(net, lr=lr)
    raise ValueError(f"optimizer: expected a fastbp Optimizer or one of {OPTIMIZERS.names()}, "
                     f"got {optimizer!r}")


def optimizer_from_config(config: dict, net, state: dict[str, np.ndarray]) -> Optimizer:
    """Rebuild an optimizer for `net` from its `config()` and `state()`."""
    kwargs = dict(config)
    kind = kwargs.pop("type", None)
    step = kwargs.pop("step", 0)
    classes = {cls.__name__: cls for cls in OPTIMIZERS.classes()}
    if kind not in classes:
        raise ValueError(f"optimizer type: expected one of {sorted(classes)}, got {kind!r}")
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"optimizer step: expected an integer >= 0, got {step!r}")
    opt = classes[kind](net, **kwargs)
    opt.step_count = step
    for name, buf in opt.state().items():
        if name not in state or state[name].shape != buf.shape:
            raise ValueError(f"optimizer state: expected array {name!r} of shape {buf.shape}")
        check_finite(state[name], f"optimizer state {name}")
        buf[...] = state[name]
    if set(state) != set(opt.state()):
        raise ValueError(f"optimizer state: expected arrays {sorted(opt.state())}, got "
                         f"{sorted(state)}")
    return opt
