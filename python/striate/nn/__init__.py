"""striate.nn: layers, Sequential and functional models, training loops.

PyTorch's layer names, constructor arguments, NCHW layout and state-dict
keys; Keras's comfort: ``summary()``, ``fit()`` with a progress bar,
``evaluate()``, ``predict()``, ``save()``.
"""

from .graph import Input, Model, Network, Node, Sequential
from .layers import (LAYERS, Add, AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Concat, Conv2d,
                     Dropout, Flatten, Identity, Layer, LeakyReLU, Linear, LocalResponseNorm,
                     LogSoftmax, MaxPool2d, ReLU, Sigmoid, Softmax, Tanh)
from .fuse import fuse_for_inference
from .module import Module, Parameter
from .training import StopTraining, evaluate, fit, predict

__all__ = ["Module", "Parameter", "Layer", "Network", "Sequential", "Model", "Input", "Node",
           "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d",
           "LocalResponseNorm", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Linear", "Flatten", "Dropout", "Identity", "Add", "Concat", "fit", "evaluate",
           "predict", "StopTraining", "LAYERS", "fuse_for_inference"]
