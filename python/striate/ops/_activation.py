"""Activations: relu, leaky_relu, sigmoid, tanh (elementwise, any shape) and
softmax / log_softmax (along one axis)."""

from .. import _C
from ._util import as_float, as_float32, as_int

_A = _C.Activation


def relu(x):
    """relu(x) = max(x, 0), elementwise (NaN propagates). Any shape; result float32."""
    return _C.activation(_A.relu, as_float32(x, "x"))


def relu_backward(grad_out, x):
    """Gradient of :func:`relu`: ``(grad_out * [x > 0],)`` (0 at x == 0)."""
    return _C.activation_backward(_A.relu, as_float32(grad_out, "grad_out"), as_float32(x, "x"))


def leaky_relu(x, negative_slope=0.01):
    """leaky_relu(x) = x if x > 0 else negative_slope * x, elementwise."""
    return _C.activation(_A.leaky_relu, as_float32(x, "x"),
                         as_float(negative_slope, "negative_slope"))


def leaky_relu_backward(grad_out, x, negative_slope=0.01):
    """Gradient of :func:`leaky_relu`: ``(grad_out * (1 if x > 0 else negative_slope),)``."""
    return _C.activation_backward(_A.leaky_relu, as_float32(grad_out, "grad_out"),
                                  as_float32(x, "x"), as_float(negative_slope, "negative_slope"))


def sigmoid(x):
    """sigmoid(x) = 1 / (1 + exp(-x)), elementwise, evaluated without overflow."""
    return _C.activation(_A.sigmoid, as_float32(x, "x"))


def sigmoid_backward(grad_out, x):
    """Gradient of :func:`sigmoid`: ``(grad_out * s * (1 - s),)`` with s = sigmoid(x)."""
    return _C.activation_backward(_A.sigmoid, as_float32(grad_out, "grad_out"), as_float32(x, "x"))


def tanh(x):
    """tanh(x), elementwise."""
    return _C.activation(_A.tanh, as_float32(x, "x"))


def tanh_backward(grad_out, x):
    """Gradient of :func:`tanh`: ``(grad_out * (1 - tanh(x)^2),)``."""
    return _C.activation_backward(_A.tanh, as_float32(grad_out, "grad_out"), as_float32(x, "x"))


def softmax(x, dim):
    """softmax along axis ``dim`` (negative counts from the end), any shape:

    y_i = exp(x_i - max_j x_j) / sum_k exp(x_k - max_j x_j)

    Sums are accumulated in float64; the result is float32.
    """
    return _C.softmax(as_float32(x, "x"), as_int(dim, "dim"), False)


def softmax_backward(grad_out, x, dim):
    """Gradient of :func:`softmax`: ``(y * (g - sum_dim(g * y)),)`` with y = softmax(x, dim)."""
    return _C.softmax_backward(as_float32(grad_out, "grad_out"), as_float32(x, "x"),
                               as_int(dim, "dim"), False)


def log_softmax(x, dim):
    """log_softmax along axis ``dim``: y_i = x_i - max - log(sum_k exp(x_k - max))."""
    return _C.softmax(as_float32(x, "x"), as_int(dim, "dim"), True)


def log_softmax_backward(grad_out, x, dim):
    """Gradient of :func:`log_softmax`: ``(g - softmax(x, dim) * sum_dim(g),)``."""
    return _C.softmax_backward(as_float32(grad_out, "grad_out"), as_float32(x, "x"),
                               as_int(dim, "dim"), True)
