"""striate.ops: the low-level API on NumPy arrays.

Names, argument order, defaults and semantics follow ``torch.nn.functional``;
activations are NCHW and convolution weights OIHW. Every op ``F`` has a
``F_backward(grad_out, *args, **kwargs)`` that takes the gradient of F's
output followed by exactly the arguments of the forward call and returns a
tuple with one entry per array argument of F, in order (None where that
argument is None or not differentiable). Backward never mutates its inputs.

Arrays that are not float32 C-contiguous are converted to float32 (a copy);
results are float32. Invalid arguments raise ValueError or TypeError (and
IndexError for class targets out of range) whose message names the argument.
"""

from ._activation import (leaky_relu, leaky_relu_backward, log_softmax, log_softmax_backward,
                          relu, relu_backward, sigmoid, sigmoid_backward, softmax,
                          softmax_backward, tanh, tanh_backward)
from ._conv import conv2d, conv2d_algorithm, conv2d_algorithms, conv2d_backward
from ._linear import (cross_entropy, cross_entropy_backward, linear, linear_backward, matmul,
                      matmul_backward)
from ._norm import (batch_norm, batch_norm_backward, local_response_norm,
                    local_response_norm_backward)
from ._pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d,
                    avg_pool2d_backward, max_pool2d, max_pool2d_backward)
from ._optim import adam_update, sgd_update
from ._tensor import (add, add_backward, cat, cat_backward, dropout, dropout_backward, mse_loss,
                      mse_loss_backward, mul, mul_backward)

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_algorithm", "conv2d_algorithms",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "batch_norm", "batch_norm_backward", "local_response_norm", "local_response_norm_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
    "linear", "linear_backward", "matmul", "matmul_backward", "cross_entropy", "cross_entropy_backward",
    "add", "add_backward", "mul", "mul_backward", "cat", "cat_backward",
    "dropout", "dropout_backward", "mse_loss", "mse_loss_backward", "sgd_update", "adam_update",
]
