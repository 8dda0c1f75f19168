"""Fully connected layer and cross-entropy loss."""

from .. import _C
from ._util import as_float32, as_int64, as_optional_float32, as_str


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias, as ``torch.nn.functional.linear``.

    x: (*, in_features); weight: (out_features, in_features); bias:
    (out_features,) or None. Result: (*, out_features), float32.
    """
    return _C.linear(as_float32(x, "x"), as_float32(weight, "weight"),
                     as_optional_float32(bias, "bias"))


def linear_backward(grad_out, x, weight, bias=None):
    """Gradients of :func:`linear`: ``(grad_x, grad_weight, grad_bias)``.

    grad_x = g @ weight; grad_weight = g^T @ x (leading axes flattened);
    grad_bias = column sums of g, or None when bias is None.
    """
    return _C.linear_backward(as_float32(grad_out, "grad_out"), as_float32(x, "x"),
                              as_float32(weight, "weight"), as_optional_float32(bias, "bias"))


def matmul(a, b):
    """Matrix product of 2-D arrays: y = a @ b, with striate's own SGEMM
    (packed, register-blocked microkernel of the selected ISA level).

    a: (M, K); b: (K, N); result (M, N) float32.
    """
    return _C.matmul(as_float32(a, "a"), as_float32(b, "b"))


def matmul_backward(grad_out, a, b):
    """Gradients of :func:`matmul`: ``(grad_out @ b.T, a.T @ grad_out)``."""
    return _C.matmul_backward(as_float32(grad_out, "grad_out"), as_float32(a, "a"),
                              as_float32(b, "b"))


def cross_entropy(input, target, reduction="mean"):
    """Cross-entropy of logits against integer class targets, as
    ``torch.nn.functional.cross_entropy``:

    loss_i = logsumexp_c(input[i, c]) - input[i, target[i]]

    input: (N, C) float logits; target: (N,) integers in [0, C) (IndexError
    otherwise; float targets are a TypeError). reduction: "mean" (default,
    mean over the batch), "sum" (both return a 0-d float32 array) or "none"
    (the (N,) losses).
    """
    return _C.cross_entropy(as_float32(input, "input"), as_int64(target, "target"),
                            as_str(reduction, "reduction"))


def cross_entropy_backward(grad_out, input, target, reduction="mean"):
    """Gradient of :func:`cross_entropy`: ``(grad_input, None)``.

    grad_out is a scalar for "mean"/"sum" and an (N,) array for "none";
    grad_input[i] = w_i * (softmax(input[i]) - onehot(target[i])) with
    w_i = grad_out / N, grad_out, or grad_out[i]. The integer target has no
    gradient.
    """
    return _C.cross_entropy_backward(as_float32(grad_out, "grad_out"), as_float32(input, "input"),
                                     as_int64(target, "target"), as_str(reduction, "reduction"))
