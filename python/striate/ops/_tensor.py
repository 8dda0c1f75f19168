"""Tensor ops for building networks: add, mul (with (N, C, 1, 1) gating), cat,
dropout, and the mse_loss."""

import operator

import numpy as np

from .. import _C
from ._util import as_bool, as_float, as_float32, as_int, as_str


def add(a, b):
    """y = a + b, elementwise. a and b must have the same shape (no
    broadcasting: a ValueError names both shapes)."""
    return _C.add(as_float32(a, "a"), as_float32(b, "b"))


def add_backward(grad_out, a, b):
    """Gradients of :func:`add`: ``(grad_out, grad_out)`` as two independent
    float32 copies, so a caller may accumulate into either in place."""
    return _C.add_backward(as_float32(grad_out, "grad_out"), as_float32(a, "a"),
                           as_float32(b, "b"))


def mul(a, b):
    """y = a * b, elementwise, as ``torch.mul`` for two cases: b of a's shape,
    or b with a's leading dims followed by ones, broadcast over the rest --
    e.g. b (N, C, 1, 1) scaling each channel of a (N, C, H, W), as
    squeeze-and-excitation gating does. Other broadcasts are a ValueError."""
    return _C.mul(as_float32(a, "a"), as_float32(b, "b"))


def mul_backward(grad_out, a, b):
    """Gradients of :func:`mul`: ``(grad_out * b, sum(grad_out * a))`` where the
    sum runs over the axes b is broadcast along (H, W for (N, C, 1, 1) gating),
    accumulated in float64 in a fixed order."""
    return _C.mul_backward(as_float32(grad_out, "grad_out"), as_float32(a, "a"),
                           as_float32(b, "b"))


def _arrays(tensors):
    if isinstance(tensors, np.ndarray) or not isinstance(tensors, (list, tuple)):
        raise TypeError("tensors must be a list or tuple of arrays, got "
                        f"{type(tensors).__name__}")
    return [as_float32(t, f"tensors[{k}]") for k, t in enumerate(tensors)]


def cat(tensors, dim=1):
    """Concatenate along ``dim``, as ``torch.cat``: ``tensors`` is a list or tuple
    of >= 1 arrays of equal rank (>= 1) whose shapes agree except along dim
    (negative counts from the end). The default dim=1 is the channel axis of
    NCHW (Inception's branch concat); the copy is one memcpy per input row
    block, threaded over blocks."""
    return _C.cat(_arrays(tensors), as_int(dim, "dim"))


def cat_backward(grad_out, tensors, dim=1):
    """Gradients of :func:`cat`: a tuple with one contiguous slice of grad_out
    per input, in order."""
    return _C.cat_backward(as_float32(grad_out, "grad_out"), _arrays(tensors),
                           as_int(dim, "dim"))


def _seed(seed):
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an int, got bool {seed!r}")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}") from None
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def dropout(x, p=0.5, training=True, seed=0):
    """Dropout, as ``torch.nn.functional.dropout`` but with a reproducible mask:

        y[i] = x[i] * mask[i] / (1 - p),   mask[i] = (u(seed, i) >= p)

    over the flat (C-order) index i, where u(seed, i) in [0, 1) is the top 24
    bits of the (i + 1)-th output of splitmix64 seeded with ``seed`` divided
    by 2**24 (``striate.reference.dropout_uniform`` spells it out). The mask
    depends only on (seed, i) -- not on the thread count -- and the backward
    regenerates it. training=False or p == 0 return a copy of x; p == 1
    gives x * 0 (zeros; NaN/Inf inputs give NaN, as in torch). p must be in
    [0, 1]; seed is an int in [0, 2**64). Use a new seed for every step.
    """
    return _C.dropout(as_float32(x, "x"), as_float(p, "p"), as_bool(training, "training"),
                      _seed(seed))


def dropout_backward(grad_out, x, p=0.5, training=True, seed=0):
    """Gradient of :func:`dropout`: ``(grad_out * mask / (1 - p),)`` with the
    mask regenerated from (seed, index); the identity when not training."""
    return _C.dropout_backward(as_float32(grad_out, "grad_out"), as_float32(x, "x"),
                               as_float(p, "p"), as_bool(training, "training"), _seed(seed))


def mse_loss(input, target, reduction="mean"):
    """Mean squared error, as ``torch.nn.functional.mse_loss``:
    ``(input - target)^2`` elementwise, then its mean ("mean", default) or sum
    ("sum") as a 0-d float32 array, or the elementwise array ("none").
    input and target must have the same shape. The sum accumulates in
    float64 in a fixed order (the same bits for any thread count)."""
    return _C.mse_loss(as_float32(input, "input"), as_float32(target, "target"),
                       as_str(reduction, "reduction"))


def mse_loss_backward(grad_out, input, target, reduction="mean"):
    """Gradients of :func:`mse_loss`: ``(g, -g)`` with
    g = 2 * (input - target) * grad_out, divided by input.size for "mean";
    grad_out is a scalar for "mean"/"sum" and has input's shape for "none"."""
    return _C.mse_loss_backward(as_float32(grad_out, "grad_out"), as_float32(input, "input"),
                                as_float32(target, "target"), as_str(reduction, "reduction"))
