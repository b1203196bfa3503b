"""Learning-rate schedules: their values (against the formulas and torch.optim.lr_scheduler) and
their use by fit (the optimizer really trains with them; the lr is in the history)."""
import math

import numpy as np
import pytest

import fastbp as fb

BASE = 0.1
EPOCHS = 25


def torch_lrs(make_scheduler, epochs=EPOCHS, base=BASE):
    """The lr torch uses in each of `epochs` epochs, the scheduler stepped once per epoch."""
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    scheduler = make_scheduler(torch.optim.lr_scheduler, opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def ours(schedule, epochs=EPOCHS, base=BASE):
    return [schedule.lr(t, base) for t in range(epochs)]


# ---------------------------------------------------------------------------------- values
def test_step_decay_values():
    assert ours(fb.StepDecay(3, 0.5), 8) == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], rel=1e-15)


def test_exponential_decay_values():
    assert ours(fb.ExponentialDecay(0.9), 4) == pytest.approx([0.1, 0.09, 0.081, 0.0729])


def test_cosine_annealing_values():
    schedule = fb.CosineAnnealing(4, min_lr=0.02)
    expected = [0.02 + 0.08 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert ours(schedule, 5) == pytest.approx(expected, rel=1e-15)
    assert schedule.lr(4, BASE) == 0.02 and schedule.lr(100, BASE) == 0.02   # stays at min_lr


def test_linear_warmup_alone_then_constant():
    assert ours(fb.LinearWarmup(4), 6) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_linear_warmup_composed_with_another_schedule():
    schedule = fb.LinearWarmup(2, then=fb.StepDecay(2, 0.1))
    assert ours(schedule, 7) == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001])
    cosine = fb.LinearWarmup(3, then=fb.CosineAnnealing(10))
    assert ours(cosine, 14)[3:] == pytest.approx(ours(fb.CosineAnnealing(10), 11), rel=1e-15)


@pytest.mark.parametrize("ours_, theirs", [
    (fb.StepDecay(4, 0.5), lambda s, o: s.StepLR(o, step_size=4, gamma=0.5)),
    (fb.StepDecay(1, 0.9), lambda s, o: s.StepLR(o, step_size=1, gamma=0.9)),
    (fb.ExponentialDecay(0.8), lambda s, o: s.ExponentialLR(o, gamma=0.8)),
    (fb.CosineAnnealing(EPOCHS - 1), lambda s, o: s.CosineAnnealingLR(o, T_max=EPOCHS - 1)),
    (fb.CosineAnnealing(10, min_lr=0.01),
     lambda s, o: s.CosineAnnealingLR(o, T_max=10, eta_min=0.01)),
    (fb.LinearWarmup(5), lambda s, o: s.LinearLR(o, start_factor=1 / 5, total_iters=4)),
], ids=["step4", "step1", "exponential", "cosine", "cosine_min", "warmup"])
def test_matches_torch(ours_, theirs):
    epochs = 11 if isinstance(ours_, fb.CosineAnnealing) and ours_.t_max == 10 else EPOCHS
    np.testing.assert_allclose(ours(ours_, epochs), torch_lrs(theirs, epochs), rtol=1e-12)


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("make, name", [
    (lambda: fb.StepDecay(0), "step_size"),
    (lambda: fb.StepDecay(2.5), "step_size"),
    (lambda: fb.StepDecay(2, gamma=0), "gamma"),
    (lambda: fb.ExponentialDecay(-0.5), "gamma"),
    (lambda: fb.CosineAnnealing(0), "t_max"),
    (lambda: fb.CosineAnnealing(5, min_lr=-1), "min_lr"),
    (lambda: fb.LinearWarmup(0), "warmup"),
    (lambda: fb.StepDecay(2, interval="batch"), "interval"),
    (lambda: fb.LinearWarmup(2, then=fb.StepDecay(2, interval="step")), "then"),
])
def test_bad_arguments_are_named(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_then_must_be_a_schedule():
    with pytest.raises(TypeError, match="then"):
        fb.LinearWarmup(2, then=0.5)


def test_fit_refuses_a_non_schedule():
    X, y = np.zeros((4, 2)), np.zeros(4, dtype=int)
    with pytest.raises(TypeError, match="lr_schedule"):
        fb.mlp([2, 2]).fit(X, y, epochs=1, verbose=0, lr_schedule=lambda t: 0.1)


def test_repr_names_the_arguments():
    assert repr(fb.StepDecay(3, 0.5)) == "StepDecay(interval='epoch', step_size=3, gamma=0.5)"


# ------------------------------------------------------------------------------------- fit
def regression(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, np.tanh(X @ rng.standard_normal((3, 2)))


def test_fit_trains_with_the_scheduled_lr_each_epoch():
    """SGD has no state: epochs at lr 0.1, 0.05, 0.025 equal three one-epoch fits."""
    X, Y = regression()
    net = fb.mlp([3, 6, 2], activation="tanh", dtype="float64", seed=1)
    hist = net.fit(X, Y, loss="mse", optimizer="sgd", lr=0.1, epochs=3, batch_size=8,
                   shuffle=False, verbose=0, lr_schedule=fb.ExponentialDecay(0.5))
    assert hist["lr"] == pytest.approx([0.1, 0.05, 0.025], rel=1e-15)
    manual = fb.mlp([3, 6, 2], activation="tanh", dtype="float64", seed=1)
    for lr in (0.1, 0.05, 0.025):
        manual.fit(X, Y, loss="mse", optimizer="sgd", lr=lr, epochs=1, batch_size=8,
                   shuffle=False, verbose=0)
    np.testing.assert_allclose(net.params, manual.params, rtol=1e-13, atol=1e-15)


def test_fit_with_a_per_step_schedule_sets_the_lr_before_every_step():
    X, Y = regression()
    schedule = fb.LinearWarmup(4, then=fb.ExponentialDecay(0.9, interval="step"),
                               interval="step")
    net = fb.mlp([3, 6, 2], activation="tanh", dtype="float64", seed=2)
    hist = net.fit(X, Y, loss="mse", optimizer="sgd", lr=0.2, epochs=2, batch_size=8,
                   shuffle=False, verbose=0, lr_schedule=schedule)
    manual = fb.mlp([3, 6, 2], activation="tanh", dtype="float64", seed=2)
    opt = fb.SGD(manual, lr=0.2)
    lrs = [schedule.lr(t, 0.2) for t in range(6)]      # 3 steps per epoch, 2 epochs
    for t, lr in enumerate(lrs):
        opt.lr = lr
        rows = slice(8 * (t % 3), 8 * (t % 3) + 8)
        manual.train_step(X[rows], Y[rows], loss="mse", optimizer=opt)
    np.testing.assert_allclose(net.params, manual.params, rtol=1e-13, atol=1e-15)
    assert hist["lr"] == pytest.approx([lrs[2], lrs[5]], rel=1e-15)   # each epoch's last step


def test_scheduled_lr_applies_to_a_given_optimizer_and_adam():
    X, Y = regression(seed=3)
    net = fb.mlp([3, 6, 2], seed=3)
    opt = fb.Adam(net, lr=0.01)
    hist = net.fit(X, Y, loss="mse", optimizer=opt, epochs=4, verbose=0,
                   lr_schedule=fb.StepDecay(2, 0.1))
    assert hist["lr"] == pytest.approx([0.01, 0.01, 0.001, 0.001], rel=1e-12)
    assert opt.lr == pytest.approx(0.001)


def test_no_schedule_no_lr_entry():
    X, Y = regression()
    hist = fb.mlp([3, 4, 2]).fit(X, Y, loss="mse", epochs=2, verbose=0)
    assert "lr" not in hist.history


def test_cosine_to_zero_is_allowed():
    X, Y = regression()
    hist = fb.mlp([3, 4, 2]).fit(X, Y, loss="mse", epochs=3, verbose=0,
                                 lr_schedule=fb.CosineAnnealing(2))
    assert hist["lr"][-1] == 0.0


def test_a_custom_schedule_returning_a_bad_lr_is_reported():
    class Broken(fb.LRSchedule):
        def lr(self, t, base_lr):
            return float("nan") if t == 1 else base_lr

    X, Y = regression()
    with pytest.raises(ValueError, match="lr_schedule.*epoch 2"):
        fb.mlp([3, 4, 2]).fit(X, Y, loss="mse", epochs=3, verbose=0, lr_schedule=Broken())
