"""Learning-rate schedules: the lr of each epoch (or step) as a function of its index.

A schedule maps the 0-based index t of an epoch (``interval="epoch"``, the default) or of a
training step (``interval="step"``, counted over the whole fit) and the optimizer's initial lr
to the lr used for that epoch or step. `fit(lr_schedule=...)` sets ``optimizer.lr`` from it
before each epoch (or step); the values match torch.optim.lr_scheduler's StepLR, ExponentialLR
and CosineAnnealingLR stepped once per epoch.
"""
from __future__ import annotations

import math

from fastbp._validation import choose, nonnegative_float, positive_float, positive_int

INTERVALS = ("epoch", "step")


def _scaled(base_lr: float, gamma: float, k: int) -> float:
    """base_lr * gamma ** k, computed through logarithms where the power alone would overflow
    (gamma > 1 over many steps): a learning rate beyond float range is refused when it is
    used, as any other lr (see `Scheduler`), never an OverflowError here."""
    try:
        return base_lr * gamma ** k
    except OverflowError:
        return math.inf


class LRSchedule:
    """Base class: subclasses implement `lr(t, base_lr)`.

    Parameters
    ----------
    interval : "epoch" or "step"
        Whether t counts epochs or training steps.
    """

    def __init__(self, interval: str = "epoch") -> None:
        self.interval = choose(interval, "interval", INTERVALS)

    def lr(self, t: int, base_lr: float) -> float:
        """The learning rate at epoch/step t (0-based) for an optimizer created with base_lr."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepDecay(LRSchedule):
    """lr_t = base_lr * gamma ** (t // step_size)   (torch StepLR)."""

    def __init__(self, step_size: int, gamma: float = 0.1, interval: str = "epoch") -> None:
        super().__init__(interval)
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = positive_float(gamma, "gamma")

    def lr(self, t: int, base_lr: float) -> float:
        return _scaled(base_lr, self.gamma, t // self.step_size)


class ExponentialDecay(LRSchedule):
    """lr_t = base_lr * gamma ** t   (torch ExponentialLR)."""

    def __init__(self, gamma: float, interval: str = "epoch") -> None:
        super().__init__(interval)
        self.gamma = positive_float(gamma, "gamma")

    def lr(self, t: int, base_lr: float) -> float:
        return _scaled(base_lr, self.gamma, t)


class CosineAnnealing(LRSchedule):
    """lr_t = min_lr + (base_lr - min_lr) (1 + cos(pi t / t_max)) / 2 for t <= t_max, then min_lr.

    Equal to torch CosineAnnealingLR up to t_max; torch's cosine rises again after t_max, this one
    stays at min_lr.
    """

    def __init__(self, t_max: int, min_lr: float = 0.0, interval: str = "epoch") -> None:
        super().__init__(interval)
        self.t_max = positive_int(t_max, "t_max")
        self.min_lr = nonnegative_float(min_lr, "min_lr")

    def lr(self, t: int, base_lr: float) -> float:
        if t >= self.t_max:
            return self.min_lr
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * t / self.t_max)) / 2


class LinearWarmup(LRSchedule):
    """lr_t = base_lr (t + 1) / warmup for t < warmup; afterwards `then` shifted by warmup.

    After the warm-up the lr is ``then.lr(t - warmup, base_lr)``, or base_lr when `then` is None.
    The warm-up alone equals torch LinearLR(start_factor=1/warmup, total_iters=warmup - 1).
    """

    def __init__(self, warmup: int, then: LRSchedule | None = None,
                 interval: str = "epoch") -> None:
        super().__init__(interval)
        self.warmup = positive_int(warmup, "warmup")
        if then is not None:
            if not isinstance(then, LRSchedule):
                raise TypeError(f"then: expected an LRSchedule or None, got "
                                f"{type(then).__name__}")
            if then.interval != self.interval:
                raise ValueError(f"then: expected a schedule with interval {self.interval!r} "
                                 f"like the warm-up, got interval {then.interval!r}")
        self.then = then

    def lr(self, t: int, base_lr: float) -> float:
        if t < self.warmup:
            return base_lr * (t + 1) / self.warmup
        return base_lr if self.then is None else self.then.lr(t - self.warmup, base_lr)


class Scheduler:
    """Drives ``optimizer.lr`` from a schedule during one fit.

    Call `start_epoch(epoch)` before each epoch (1-based) and, when `per_step`, `step()` before
    each training step. Without a schedule the optimizer's lr is left as it is.
    """

    def __init__(self, schedule: LRSchedule | None, optimizer) -> None:
        if schedule is not None and not isinstance(schedule, LRSchedule):
            raise TypeError(f"lr_schedule: expected an LRSchedule (e.g. fb.StepDecay(10, 0.5)) "
                            f"or None, got {type(schedule).__name__}")
        self.schedule, self.optimizer = schedule, optimizer
        self.base_lr = optimizer.lr
        self.per_step = schedule is not None and schedule.interval == "step"
        self._steps = 0

    def start_epoch(self, epoch: int) -> None:
        if self.schedule is not None and not self.per_step:
            self._set(self.schedule.lr(epoch - 1, self.base_lr), f"epoch {epoch}")

    def step(self) -> None:
        self._set(self.schedule.lr(self._steps, self.base_lr), f"step {self._steps}")
        self._steps += 1

    def _set(self, lr: float, where: str) -> None:
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"lr_schedule: expected a finite lr >= 0, got {lr!r} at {where}")
        self.optimizer.lr = lr
