"""fastbp: backpropagation training of multilayer networks on multicore CPUs, with a C core."""
from fastbp._runtime import core_not_built, environment_while_loading, own_symbols_first

with environment_while_loading(), own_symbols_first():
    try:
        import fastbp._core  # noqa: F401  (loads OpenMP and SciPy's OpenBLAS)
    except ModuleNotFoundError as exc:
        if exc.name != "fastbp._core":
            raise
        raise core_not_built(exc) from None

from fastbp import autograd as autograd
from fastbp import distributed as distributed
from fastbp._version import __version__ as __version__
from fastbp.gradcheck import GradcheckError, GradcheckReport, gradcheck
from fastbp.losses import MSE, BCEWithLogits, Loss, SoftmaxCrossEntropy
from fastbp.nn import (
    ELU,
    GELU,
    BatchNorm,
    Dense,
    Dropout,
    FunctionLayer,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Residual,
    Sigmoid,
    Softplus,
    Tanh,
)
from fastbp.optim import SGD, Adam, AdamW, Optimizer, RMSprop
from fastbp.parallel import _init_threads, get_num_threads, set_num_threads, threads
from fastbp.preprocessing import Standardizer
from fastbp.sequential import Sequential, load, mlp
from fastbp.train.callbacks import Callback, EarlyStopping, ModelCheckpoint
from fastbp.train.diagnostics import Monitor, TrainingWarning
from fastbp.train.history import History
from fastbp.train.schedules import (
    CosineAnnealing,
    ExponentialDecay,
    LinearWarmup,
    LRSchedule,
    StepDecay,
)

__all__ = [
    "Sequential", "mlp", "Layer", "Dense", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
    "Loss", "SoftmaxCrossEntropy", "MSE", "BCEWithLogits", "Optimizer", "SGD", "Adam", "AdamW",
    "History", "gradcheck", "GradcheckError", "GradcheckReport", "load", "set_num_threads",
    "get_num_threads", "threads", "GELU", "Softplus", "ELU", "RMSprop",
    "Callback", "EarlyStopping", "ModelCheckpoint", "Monitor", "TrainingWarning", "Standardizer",
    "LRSchedule", "StepDecay", "ExponentialDecay", "CosineAnnealing", "LinearWarmup",
    "BatchNorm", "Dropout", "Residual", "FunctionLayer",
]

_init_threads()
