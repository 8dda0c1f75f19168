"""Weight initialization, with PyTorch's formulas (``torch.nn.init``).

All functions fill a :class:`striate.nn.Parameter` (or a float32 ndarray) in
place and return it. Random draws come from one generator that
:func:`striate.manual_seed` seeds, so a model built after ``manual_seed(s)``
is the same every time.
"""

import math

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator used by initialization and by dropout's seeds."""
    global _rng
    _rng = np.random.default_rng(seed)


def generator():
    return _rng


def _array(t):
    return t.data if hasattr(t, "data") and not isinstance(t, np.ndarray) else t


def _fans(shape):
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


_GAINS = {"linear": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0)}


def calculate_gain(nonlinearity, param=None):
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")
    return _GAINS[nonlinearity]


def _fill(t, values):
    a = _array(t)
    a[...] = values.astype(np.float32)
    return t


def uniform_(t, a=0.0, b=1.0):
    arr = _array(t)
    return _fill(t, _rng.uniform(a, b, arr.shape))


def normal_(t, mean=0.0, std=1.0):
    arr = _array(t)
    return _fill(t, _rng.normal(mean, std, arr.shape))


def zeros_(t):
    _array(t)[...] = 0.0
    return t


def ones_(t):
    _array(t)[...] = 1.0
    return t


def constant_(t, value):
    _array(t)[...] = value
    return t


def _fan(shape, mode):
    fan_in, fan_out = _fans(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(_array(t).shape, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(_array(t).shape, mode))
    return normal_(t, 0.0, std)


def xavier_uniform_(t, gain=1.0):
    fan_in, fan_out = _fans(_array(t).shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t, gain=1.0):
    fan_in, fan_out = _fans(_array(t).shape)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def default_init_(weight, bias):
    """PyTorch's default for Conv2d and Linear: kaiming_uniform_(a=sqrt(5)) on the
    weight (bound 1/sqrt(fan_in)) and uniform(+-1/sqrt(fan_in)) on the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _fans(_array(weight).shape)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)


__all__ = ["manual_seed", "calculate_gain", "uniform_", "normal_", "zeros_", "ones_", "constant_",
           "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_"]
