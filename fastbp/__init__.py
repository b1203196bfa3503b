"""fastbp: backpropagation training of multilayer networks on multicore CPUs, with a C core."""
from fastbp.gradcheck import GradcheckError, GradcheckReport, gradcheck
from fastbp.io import load
from fastbp.layers import Dense, Identity, Layer, LeakyReLU, ReLU, Sigmoid, Tanh
from fastbp.losses import MSE, BCEWithLogits, Loss, SoftmaxCrossEntropy
from fastbp.network import Sequential, mlp
from fastbp.optim import SGD, Adam, AdamW, Optimizer
from fastbp.threads import _init_threads, get_num_threads, set_num_threads
from fastbp.training import History

__version__ = "0.1.0"

__all__ = [
    "Sequential", "mlp", "Layer", "Dense", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
    "Loss", "SoftmaxCrossEntropy", "MSE", "BCEWithLogits", "Optimizer", "SGD", "Adam", "AdamW",
    "History", "gradcheck", "GradcheckError", "GradcheckReport", "load", "set_num_threads",
    "get_num_threads",
]

_init_threads()
