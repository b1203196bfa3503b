"""fastbp: backpropagation training of multilayer networks on multicore CPUs, with a C core."""
import os

# OpenMP threads that spin after a parallel region steal the cores BLAS threads need next:
# measured on 2 cores, an mnist-sized step went from 2.2 ms to 28 ms. Passive waiting must be
# chosen before the OpenMP runtime loads (it reads the variable once); a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS workers likewise spin for about 2^28 cycles after each product, and the second core is
# then not free for the optimizer update that follows (Adam over 25M floats: 33 ms instead of
# 17 ms on 2 cores). 2^22 cycles (about a millisecond) still bridges the gaps between the
# products of one step. Read when SciPy's OpenBLAS loads, so it applies if fastbp loads it first.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "22")

from fastbp.gradcheck import GradcheckError, GradcheckReport, gradcheck
from fastbp.losses import MSE, BCEWithLogits, Loss, SoftmaxCrossEntropy
from fastbp.nn import (
    ELU,
    GELU,
    BatchNorm,
    Dense,
    Dropout,
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
from fastbp.preprocessing import Standardizer
from fastbp.sequential import Sequential, load, mlp
from fastbp.threads import _init_threads, get_num_threads, set_num_threads
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

__version__ = "0.1.0"

__all__ = [
    "Sequential", "mlp", "Layer", "Dense", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
    "Loss", "SoftmaxCrossEntropy", "MSE", "BCEWithLogits", "Optimizer", "SGD", "Adam", "AdamW",
    "History", "gradcheck", "GradcheckError", "GradcheckReport", "load", "set_num_threads",
    "get_num_threads", "GELU", "Softplus", "ELU", "RMSprop",
    "Callback", "EarlyStopping", "ModelCheckpoint", "Monitor", "TrainingWarning", "Standardizer",
    "LRSchedule", "StepDecay", "ExponentialDecay", "CosineAnnealing", "LinearWarmup",
    "BatchNorm", "Dropout", "Residual",
]

_init_threads()
