"""Layers, the layer protocol and the network core.

Importing this package registers every built-in layer (`fastbp.registry.LAYERS`), so that
`layer_from_config` can rebuild any of them.
"""
from fastbp.nn.activations import (
    ACTIVATIONS,
    ELU,
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softplus,
    Tanh,
)
from fastbp.nn.batchnorm import BatchNorm
from fastbp.nn.dense import Dense
from fastbp.nn.dropout import Dropout
from fastbp.nn.function_layer import FunctionLayer
from fastbp.nn.layer import Layer, Workspace, chain_widths, layer_from_config
from fastbp.nn.network import Network
from fastbp.nn.residual import Residual

__all__ = ["ACTIVATIONS", "Activation", "BatchNorm", "Dense", "Dropout", "ELU", "GELU",
           "FunctionLayer", "Identity", "Layer", "LeakyReLU", "Network", "ReLU", "Residual",
           "Sigmoid", "Softplus", "Tanh", "Workspace", "chain_widths", "layer_from_config"]
