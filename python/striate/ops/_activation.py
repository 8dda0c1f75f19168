"""Placeholder: this op family is being written."""


def relu(*args, **kwargs):
    raise NotImplementedError("relu")


def relu_backward(*args, **kwargs):
    raise NotImplementedError("relu_backward")


def leaky_relu(*args, **kwargs):
    raise NotImplementedError("leaky_relu")


def leaky_relu_backward(*args, **kwargs):
    raise NotImplementedError("leaky_relu_backward")


def sigmoid(*args, **kwargs):
    raise NotImplementedError("sigmoid")


def sigmoid_backward(*args, **kwargs):
    raise NotImplementedError("sigmoid_backward")


def tanh(*args, **kwargs):
    raise NotImplementedError("tanh")


def tanh_backward(*args, **kwargs):
    raise NotImplementedError("tanh_backward")


def softmax(*args, **kwargs):
    raise NotImplementedError("softmax")


def softmax_backward(*args, **kwargs):
    raise NotImplementedError("softmax_backward")


def log_softmax(*args, **kwargs):
    raise NotImplementedError("log_softmax")


def log_softmax_backward(*args, **kwargs):
    raise NotImplementedError("log_softmax_backward")
