"""Normalization: batch_norm and local_response_norm."""

import numpy as np

from .. import _C
from ._util import as_bool, as_float, as_float32, as_int, as_optional_float32


def _describe(a):
    if isinstance(a, np.ndarray):
        flags = []
        if not a.flags.c_contiguous:
            flags.append("not C-contiguous")
        if not a.flags.writeable:
            flags.append("read-only")
        extra = f" ({', '.join(flags)})" if flags else ""
        return f"a {a.dtype} ndarray{extra}"
    return type(a).__name__


def _running_stat_inplace(a, name):
    """A running statistic updated in place: it must already be float32, C-contiguous, writeable."""
    if a is None:
        return None
    if (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous
            and a.flags.writeable):
        return a
    raise TypeError(
        f"{name} must be a writeable float32 C-contiguous ndarray in training mode, because it is "
        f"updated in place (a converted copy would silently lose the update); got {_describe(a)}")


def _bn_args(x, running_mean, running_var, weight, bias, training, momentum, eps, inplace):
    training = as_bool(training, "training")
    x = as_float32(x, "x")
    if training and inplace:
        running_mean = _running_stat_inplace(running_mean, "running_mean")
        running_var = _running_stat_inplace(running_var, "running_var")
    else:
        running_mean = as_optional_float32(running_mean, "running_mean")
        running_var = as_optional_float32(running_var, "running_var")
    return (x, running_mean, running_var, as_optional_float32(weight, "weight"),
            as_optional_float32(bias, "bias"), training, as_float(momentum, "momentum"),
            as_float(eps, "eps"))


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization, as ``torch.nn.functional.batch_norm``.

    ``x`` has shape (N, C) or (N, C, *); statistics are per channel ``c``
    over the batch and every trailing axis (m = N * prod(*) values each)::

        y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]

    (``weight`` None means 1, ``bias`` None means 0).

    * ``training=True``: ``mean`` and ``var`` are the batch statistics, with
      the BIASED variance ``sum (x - mean)^2 / m``; m must be > 1
      (ValueError otherwise). ``running_mean`` / ``running_var``, when given,
      are UPDATED IN PLACE::

          running_mean = (1 - momentum) * running_mean + momentum * mean
          running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)

      (the running variance tracks the unbiased estimate). They must then be
      writeable float32 C-contiguous ndarrays -- anything else is a TypeError,
      never a silently updated copy. Either may be None (it is not updated).
    * ``training=False``: ``mean``, ``var`` = ``running_mean``,
      ``running_var``, which are required (ValueError if None), only read,
      and converted like any other input.

    Args:
        x: input, (N, C) or (N, C, *).
        running_mean, running_var: shape (C,) or None.
        weight, bias: shape (C,) or None.
        training: bool.
        momentum: running-average factor, finite and >= 0 (PyTorch's
            ``momentum=None`` cumulative average is not supported).
        eps: added to the variance, finite and >= 0.

    Statistics are accumulated in double. Arrays other than training-mode
    running statistics that are not float32 C-contiguous are converted
    (copied); the result is float32 with the shape of ``x``. Bad arguments
    raise ValueError/TypeError naming the argument.
    """
    return _C.batch_norm(*_bn_args(x, running_mean, running_var, weight, bias, training,
                                   momentum, eps, inplace=True))


def batch_norm_backward(grad_out, x, running_mean, running_var, weight=None, bias=None,
                        training=False, momentum=0.1, eps=1e-5):
    """Gradients of :func:`batch_norm`: ``(grad_x, None, None, grad_weight, grad_bias)``.

    ``grad_out`` (g) has the shape of ``x``; the other arguments are exactly
    those of the forward call. With xhat = (x - mean) / sqrt(var + eps) and
    sums / means over the m values of each channel::

        grad_bias   = sum g                      (None if bias is None)
        grad_weight = sum g * xhat               (None if weight is None)
        grad_x = weight / sqrt(var + eps) * g                                   (eval)
        grad_x = weight / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))  (training)

    ``training=True`` differentiates through the batch statistics, which are
    recomputed from ``x``; the running statistics are neither used nor
    updated. ``training=False`` treats ``running_mean`` / ``running_var`` as
    constants. Inputs are never modified (so running statistics are only
    read here and may be converted).
    """
    args = _bn_args(x, running_mean, running_var, weight, bias, training, momentum, eps,
                    inplace=False)
    return _C.batch_norm_backward(as_float32(grad_out, "grad_out"), *args)


def _lrn_args(x, size, alpha, beta, k):
    return (as_float32(x, "x"), as_int(size, "size"), as_float(alpha, "alpha"),
            as_float(beta, "beta"), as_float(k, "k"))


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels, as ``torch.nn.functional.local_response_norm``.

    ``x`` has shape (N, C, *) with at least 3 dimensions (normally NCHW).
    For every channel c::

        d_c = k + alpha / size * sum_{c' = c - size//2}^{c + (size-1)//2} x_{c'}^2
        y_c = x_c / d_c^beta

    Channels c' outside [0, C) contribute 0 and the divisor is always
    ``size``, also near the edges and when C < size.

    Args:
        x: input, (N, C, *).
        size: number of channels in the window, >= 1.
        alpha, beta, k: finite numbers (stored as float32).

    The window sums are accumulated in double. An input that is not float32
    C-contiguous is converted (copied); the result is float32 with the shape
    of ``x``. Bad arguments raise ValueError/TypeError naming the argument.
    """
    return _C.local_response_norm(*_lrn_args(x, size, alpha, beta, k))


def local_response_norm_backward(grad_out, x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Gradient of :func:`local_response_norm`: returns ``(grad_x,)``.

    With d_c as in the forward pass and g = ``grad_out`` (shape of ``x``)::

        grad_x_j = g_j * d_j^(-beta)
                   - 2 * alpha * beta / size * x_j * sum_{c : j in window(c)} g_c * x_c * d_c^(-beta-1)

    where window(c) = [c - size//2, c + (size-1)//2]. The other arguments are
    exactly those of the forward call; inputs are never modified.
    """
    args = _lrn_args(x, size, alpha, beta, k)
    return _C.local_response_norm_backward(as_float32(grad_out, "grad_out"), *args)
