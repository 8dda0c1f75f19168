"""Pooling: max, average and adaptive average (forward and backward)."""

import numpy as np

from .. import _C
from ._util import as_bool, as_float32, as_int, as_pair


def _stride(stride, kernel_size):
    """stride=None or an empty sequence means kernel_size (as PyTorch)."""
    if stride is None or (isinstance(stride, (tuple, list, np.ndarray)) and len(stride) == 0):
        return kernel_size
    return as_pair(stride, "stride")


def _max_pool2d_args(x, kernel_size, stride, padding, dilation, ceil_mode):
    k = as_pair(kernel_size, "kernel_size")
    return (as_float32(x, "x"), k, _stride(stride, k), as_pair(padding, "padding"),
            as_pair(dilation, "dilation"), as_bool(ceil_mode, "ceil_mode"))


def _avg_pool2d_args(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    k = as_pair(kernel_size, "kernel_size")
    return (as_float32(x, "x"), k, _stride(stride, k), as_pair(padding, "padding"),
            as_bool(ceil_mode, "ceil_mode"), as_bool(count_include_pad, "count_include_pad"))


def _output_size(output_size):
    """int -> (v, v); a pair may hold None ("same as the input") entries."""
    if isinstance(output_size, (tuple, list, np.ndarray)):
        if len(output_size) != 2:
            raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair "
                             f"(entries int or None), got {output_size!r}")
        return tuple(None if v is None else as_int(v, "output_size") for v in output_size)
    v = as_int(output_size, "output_size")
    return v, v


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Output (oh, ow) looks at the input positions

        (oh*sh - ph + i*dh, ow*sw - pw + j*dw)   for 0 <= i < KH, 0 <= j < KW;

    positions outside the input are padding and never selected::

        y[n, c, oh, ow] = max over the valid positions of x[n, c, r, q]

    The window is scanned row-major (i outer, j inner) starting from its
    first valid element, and a value v replaces the running max iff
    ``v > max or isnan(v)``: NaN propagates, and among tied maxima the first
    in scan order is the one selected (this decides where the gradient goes).
    A window lying entirely in the padding (possible with dilation) outputs
    -inf.

    Args:
        x: input, shape (N, C, H, W).
        kernel_size: int or (KH, KW) pair, >= 1.
        stride: int or (sh, sw) pair, >= 1; None (or ``[]``) means kernel_size.
        padding: int or (ph, pw) pair of implicit -inf padding on both sides,
            0 <= ph <= KH // 2 and 0 <= pw <= KW // 2 (PyTorch's rule).
        dilation: int or (dh, dw) pair, >= 1: spacing between window taps.
        ceil_mode: round the output size up instead of down.

    Output: shape (N, C, H_out, W_out) with
    ``H_out = floor((H + 2*ph - dh*(KH-1) - 1 + (sh-1 if ceil_mode else 0)) / sh) + 1``,
    minus one when ceil_mode makes the last window start at or beyond
    ``H + ph`` (likewise W_out); it must be >= 1.

    Arrays that are not float32 C-contiguous are converted (copied) to it;
    the result is float32. Bad arguments raise ValueError/TypeError naming
    the argument.
    """
    return _C.max_pool2d(*_max_pool2d_args(x, kernel_size, stride, padding, dilation, ceil_mode))


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    """Gradient of :func:`max_pool2d`: returns ``(grad_x,)``.

    ``grad_out`` has the shape of max_pool2d's output; the other arguments
    are exactly those of the forward call. Each output gradient is routed to
    the input position selected by the forward's max rule (recomputed from
    ``x``: first occurrence among ties, the NaN selected when there is one);
    contributions of overlapping windows to the same position are summed;
    windows lying entirely in the padding route nothing. Inputs are never
    modified.
    """
    args = _max_pool2d_args(x, kernel_size, stride, padding, dilation, ceil_mode)
    return _C.max_pool2d_backward(as_float32(grad_out, "grad_out"), *args)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    For output row oh: ``hs = oh*sh - ph``, ``he = min(hs + KH, H + ph)``,
    ``pool_h = he - hs`` (before clipping), then ``hs = max(hs, 0)``,
    ``he = min(he, H)``; columns likewise. Then::

        y[n, c, oh, ow] = sum_{hs <= r < he, ws <= q < we} x[n, c, r, q] / divisor
        divisor = pool_h * pool_w              if count_include_pad
                = (he - hs) * (we - ws)        otherwise (the clipped window)

    so zero padding counts in the divisor when count_include_pad, but the
    part of a ceil_mode window beyond ``H + ph`` never does.

    Args:
        x: input, shape (N, C, H, W).
        kernel_size: int or (KH, KW) pair, >= 1.
        stride: int or (sh, sw) pair, >= 1; None (or ``[]``) means kernel_size.
        padding: int or (ph, pw) pair of implicit zero padding on both sides,
            0 <= ph <= KH // 2 and 0 <= pw <= KW // 2 (PyTorch's rule).
        ceil_mode: round the output size up instead of down.
        count_include_pad: include the zero padding in the divisor.

    Output: shape (N, C, H_out, W_out) with
    ``H_out = floor((H + 2*ph - KH + (sh-1 if ceil_mode else 0)) / sh) + 1``,
    minus one when ceil_mode makes the last window start at or beyond
    ``H + ph`` (likewise W_out); it must be >= 1.

    Arrays that are not float32 C-contiguous are converted (copied) to it;
    the result is float32. Bad arguments raise ValueError/TypeError naming
    the argument.
    """
    return _C.avg_pool2d(*_avg_pool2d_args(x, kernel_size, stride, padding, ceil_mode,
                                           count_include_pad))


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of :func:`avg_pool2d`: returns ``(grad_x,)``.

    ``grad_x[n, c, r, q] = sum over the windows (oh, ow) whose clipped range
    contains (r, q) of grad_out[n, c, oh, ow] / divisor[oh, ow]`` (divisor as
    in :func:`avg_pool2d`). ``grad_out`` has the shape of avg_pool2d's output;
    the other arguments are exactly those of the forward call. Inputs are
    never modified.
    """
    args = _avg_pool2d_args(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    return _C.avg_pool2d_backward(as_float32(grad_out, "grad_out"), *args)


def adaptive_avg_pool2d(x, output_size):
    """Adaptive 2-D average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output row i averages the input rows
    ``floor(i*H/OH) <= r < ceil((i+1)*H/OH)`` (bins overlap when OH does not
    divide H), columns likewise::

        y[n, c, i, j] = mean_{r in bin_h(i), q in bin_w(j)} x[n, c, r, q]

    Args:
        x: input, shape (N, C, H, W).
        output_size: int or (OH, OW) pair, >= 1; a pair entry None keeps that
            input size (OH = H or OW = W).

    Output: shape (N, C, OH, OW).

    Arrays that are not float32 C-contiguous are converted (copied) to it;
    the result is float32. Bad arguments raise ValueError/TypeError naming
    the argument.
    """
    return _C.adaptive_avg_pool2d(as_float32(x, "x"), _output_size(output_size))


def adaptive_avg_pool2d_backward(grad_out, x, output_size):
    """Gradient of :func:`adaptive_avg_pool2d`: returns ``(grad_x,)``.

    ``grad_x[n, c, r, q] = sum over bins (i, j) containing (r, q) of
    grad_out[n, c, i, j] / (|bin_h(i)| * |bin_w(j)|)``. ``grad_out`` has the
    shape of adaptive_avg_pool2d's output; the other arguments are exactly
    those of the forward call. Inputs are never modified.
    """
    return _C.adaptive_avg_pool2d_backward(as_float32(grad_out, "grad_out"),
                                           as_float32(x, "x"), _output_size(output_size))
