"""Placeholder: this op family is being written."""


def max_pool2d(*args, **kwargs):
    raise NotImplementedError("max_pool2d")


def max_pool2d_backward(*args, **kwargs):
    raise NotImplementedError("max_pool2d_backward")


def avg_pool2d(*args, **kwargs):
    raise NotImplementedError("avg_pool2d")


def avg_pool2d_backward(*args, **kwargs):
    raise NotImplementedError("avg_pool2d_backward")


def adaptive_avg_pool2d(*args, **kwargs):
    raise NotImplementedError("adaptive_avg_pool2d")


def adaptive_avg_pool2d_backward(*args, **kwargs):
    raise NotImplementedError("adaptive_avg_pool2d_backward")
