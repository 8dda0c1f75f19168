"""In-place optimizer updates with the formulas of torch.optim (single-tensor
path, maximize=False, amsgrad=False), for one parameter array at a time."""

import numpy as np

from .. import _C
from ._util import as_bool, as_float, as_float32, as_int


def _inplace(a, name):
    """An array the update writes into: it must already be a writeable float32
    C-contiguous ndarray, since updating a converted copy would lose the step."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (it is updated in place), "
                        f"got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be a float32 array (it is updated in place), "
                        f"got dtype {a.dtype}")
    if not a.flags.c_contiguous:
        raise TypeError(f"{name} must be C-contiguous (it is updated in place)")
    if not a.flags.writeable:
        raise ValueError(f"{name} must be writeable (it is updated in place)")
    return a


def _no_overlap(written, others):
    for name, a in written:
        for other_name, b in others:
            if b is not None and other_name != name and np.may_share_memory(a, b):
                raise ValueError(f"{name} and {other_name} must not share memory "
                                 "(both are read while it is updated in place)")


def sgd_update(param, grad, momentum_buffer, *, lr, momentum=0.0, dampening=0.0,
               nesterov=False, weight_decay=0.0, first_step=False):
    """One ``torch.optim.SGD`` step on ``param``, in place (returns None)::

        g = grad + weight_decay * param
        if momentum != 0:
            buf = g                                  (first_step)
            buf = momentum * buf + (1 - dampening) * g  (later steps)
            g = g + momentum * buf if nesterov else buf
        param = param - lr * g

    param and momentum_buffer are updated in place and must be writeable
    float32 C-contiguous ndarrays of grad's shape (TypeError / ValueError
    otherwise); momentum_buffer may be None when momentum == 0 (it is
    ignored then). first_step=True is torch's first step, where the buffer
    is initialized to g (its previous contents are ignored). As torch:
    lr, momentum, weight_decay >= 0; nesterov needs momentum > 0 and
    dampening == 0. Computed in float32 in torch's order of operations.
    """
    param = _inplace(param, "param")
    if momentum_buffer is not None:
        momentum_buffer = _inplace(momentum_buffer, "momentum_buffer")
    grad = as_float32(grad, "grad")
    arrays = [("param", param), ("grad", grad), ("momentum_buffer", momentum_buffer)]
    _no_overlap([a for a in arrays if a[0] != "grad" and a[1] is not None], arrays)
    _C.sgd_update(param, grad, momentum_buffer, as_float(lr, "lr"), as_float(momentum, "momentum"),
                  as_float(dampening, "dampening"), as_bool(nesterov, "nesterov"),
                  as_float(weight_decay, "weight_decay"), as_bool(first_step, "first_step"))


def adam_update(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
                eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False):
    """One ``torch.optim.Adam`` (or, with decoupled_weight_decay=True,
    ``torch.optim.AdamW``) step on ``param``, in place (returns None)::

        if decoupled_weight_decay: param = param * (1 - lr * weight_decay)
        else:                      g = grad + weight_decay * param
        exp_avg    = exp_avg + (1 - beta1) * (g - exp_avg)     (torch's lerp)
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g^2
        denom = sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps
        param = param - lr / (1 - beta1^step) * exp_avg / denom

    ``step`` is the 1-based count of this update (torch's state["step"]
    after its increment); start exp_avg and exp_avg_sq at zeros. param,
    exp_avg and exp_avg_sq are updated in place and must be writeable
    float32 C-contiguous ndarrays of grad's shape. As torch: lr, eps,
    weight_decay >= 0 and 0 <= beta1, beta2 < 1. Note AdamW's torch default
    weight_decay is 1e-2; here it is 0.0 for both.
    """
    param = _inplace(param, "param")
    exp_avg = _inplace(exp_avg, "exp_avg")
    exp_avg_sq = _inplace(exp_avg_sq, "exp_avg_sq")
    grad = as_float32(grad, "grad")
    arrays = [("param", param), ("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)]
    _no_overlap([a for a in arrays if a[0] != "grad"], arrays)
    _C.adam_update(param, grad, exp_avg, exp_avg_sq, as_int(step, "step"), as_float(lr, "lr"),
                   as_float(beta1, "beta1"), as_float(beta2, "beta2"), as_float(eps, "eps"),
                   as_float(weight_decay, "weight_decay"),
                   as_bool(decoupled_weight_decay, "decoupled_weight_decay"))
