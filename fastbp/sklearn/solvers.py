"""scikit-learn's MLP solvers over a fastbp network's flat buffers: its Adam and momentum SGD
(one C pass per update, `fastbp._core.adam_folded_step` / `velocity_sgd_step`), their
learning-rate schedules and stopping rules, and L-BFGS-B through SciPy."""
from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from fastbp import _core


class AdamSolver:
    """sklearn.neural_network's AdamOptimizer: the bias corrections folded into the step size,
    eps added to sqrt(v). `learning_rate` is the step size of the latest update."""

    def __init__(self, params: np.ndarray, learning_rate_init: float, beta_1: float,
                 beta_2: float, epsilon: float) -> None:
        self.learning_rate_init = self.learning_rate = float(learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.m, self.v = np.zeros_like(params), np.zeros_like(params)

    def update(self, params: np.ndarray, grads: np.ndarray, backup: np.ndarray) -> None:
        """One update; `backup` receives the parameters from before it."""
        self.t += 1
        _core.adam_folded_step(params, grads, self.m, self.v, self.t, self.learning_rate_init,
                               self.beta_1, self.beta_2, self.epsilon, backup)
        self.learning_rate = (self.learning_rate_init * np.sqrt(1 - self.beta_2 ** self.t)
                              / (1 - self.beta_1 ** self.t))

    def iteration_ends(self, time_step: int) -> None:
        """After each epoch (time_step: samples seen so far): nothing for Adam."""

    def trigger_stopping(self, msg: str, verbose: bool) -> bool:
        """Whether to stop when no improvement was seen for n_iter_no_change epochs."""
        if verbose:
            print(msg + " Stopping.")
        return True


class SGDSolver:
    """sklearn.neural_network's SGDOptimizer: velocity-form (Nesterov) momentum, and the
    schedules "constant", "invscaling" (lr_init / (t + 1)^power_t, t the samples seen) and
    "adaptive" (lr / 5 when stuck, stopping once lr <= 1e-6)."""

    def __init__(self, params: np.ndarray, learning_rate_init: float, lr_schedule: str,
                 momentum: float, nesterov: bool, power_t: float) -> None:
        self.learning_rate_init = self.learning_rate = float(learning_rate_init)
        self.lr_schedule, self.momentum, self.nesterov = lr_schedule, momentum, nesterov
        self.power_t = power_t
        self.velocity = np.zeros_like(params)

    def update(self, params: np.ndarray, grads: np.ndarray, backup: np.ndarray) -> None:
        """One update; `backup` receives the parameters from before it."""
        _core.velocity_sgd_step(params, grads, self.velocity, self.learning_rate,
                                self.momentum, self.nesterov, backup)

    def iteration_ends(self, time_step: int) -> None:
        if self.lr_schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose: bool) -> bool:
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(f"{msg} Setting learning rate to {self.learning_rate:f}")
        return False


def _scipy_below_1_15() -> bool:
    major, minor = (int(part) for part in scipy.__version__.split(".")[:2])
    return (major, minor) < (1, 15)


def minimize_lbfgs(objective, params: np.ndarray, grads: np.ndarray, max_iter: int,
                   max_fun: int, tol: float, verbose: bool) -> tuple[int, float]:
    """Minimise `objective()` (which computes the loss at the current `params` and writes its
    gradient into `grads`) with SciPy's L-BFGS-B, as scikit-learn's MLP does; leaves the
    solution in `params`. Returns (iterations, final loss); warns ConvergenceWarning when
    L-BFGS-B stopped before converging."""
    def loss_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        params[...] = x
        value = objective()
        return value, grads.astype(np.float64)

    options = {"maxfun": max_fun, "maxiter": max_iter, "gtol": tol}
    if verbose and _scipy_below_1_15():
        options["iprint"] = 1       # SciPy 1.15 dropped this option of L-BFGS-B
    result = scipy.optimize.minimize(loss_and_grad, params.astype(np.float64),
                                     method="L-BFGS-B", jac=True, options=options)
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        message = (f"lbfgs failed to converge after {n_iter} iteration(s) "
                   f"(status={result.status}):\n{result.message}\n")
        if n_iter == max_iter:
            message += (f"\nIncrease the number of iterations to improve the convergence "
                        f"(max_iter={max_iter}).")
        message += ("\nYou might also want to scale the data as shown in:\n"
                    "    https://scikit-learn.org/stable/modules/preprocessing.html")
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
    params[...] = result.x
    return n_iter, float(result.fun)
