"""Layers with PyTorch's names, constructor arguments and initialization.

Each layer calls ``striate.ops`` for its arithmetic (so the same graph runs
on any device the ops support) and keeps only references to what its
backward needs. ``name=`` (every layer) names it in a functional model and
in state-dict keys; left out, the model picks one.
"""

import math
import numbers

import numpy as np

from .. import init, ops
from ..ops._util import as_bool, as_float, as_int, as_pair
from .module import Module, Parameter, accumulate, inference_active

# As the op layer: a size beyond this describes no tensor that fits in memory.
_MAX_SIZE = 2**40


def _pair(v, what, minimum=1):
    """An int or a pair of ints -> (int, int), each in [minimum, 2**40]; checked
    here so a bad constructor argument fails at construction, naming itself
    (int() would truncate 2.5 and accept "3")."""
    pair = as_pair(v, what)
    for e in pair:
        if not minimum <= e <= _MAX_SIZE:
            raise ValueError(f"{what} must be an int or a pair of ints in [{minimum}, 2**40], "
                             f"got {v!r}")
    return pair


def _finite(v, what, minimum=None):
    v = as_float(v, what)
    if not math.isfinite(v) or (minimum is not None and v < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{what} must be a finite number{bound}, got {v!r}")
    return v


def _check_positive_int(v, what, minimum=1):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not minimum <= v <= _MAX_SIZE:
        raise ValueError(f"{what} must be an integer in [{minimum}, 2**40], got {v!r}")
    return int(v)


class Layer(Module):
    """A module with a name and a config (its constructor arguments, for checkpoints)."""

    def __init__(self, name=None):
        super().__init__()
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_ctx", None)

    def get_config(self):
        return {}

    # What the backward needs, saved by the forward on the layer. Inference
    # saves nothing: threads sharing a model would overwrite each other's
    # inputs (and those of a training step between its forward and
    # backward), and a finished inference should not keep every activation alive.
    @property
    def _ctx(self):
        return self.__dict__.get("_saved_ctx")

    @_ctx.setter
    def _ctx(self, value):
        if not inference_active():
            self.__dict__["_saved_ctx"] = value

    def _expect_rank(self, in_shape, rank, what):
        if len(in_shape) != rank:
            raise ValueError(f"{self._label()} expects {what} per sample, got shape {tuple(in_shape)}")

    def _saved(self):
        if self._ctx is None:
            raise RuntimeError(f"{self._label()}: backward called without a forward")
        return self._ctx


def _conv_out(size, k, s, p_lo, p_hi, d):
    return (size + p_lo + p_hi - d * (k - 1) - 1) // s + 1


class Conv2d(Layer):
    """2-D convolution (``torch.nn.Conv2d``); ``algorithm`` as :func:`striate.ops.conv2d`.

    ``activation="relu"`` is Conv2d followed by ReLU in one kernel call (the
    epilogue of :func:`striate.ops.conv2d`); :func:`striate.nn.fuse_for_inference`
    builds such layers. Its backward masks the gradient by the saved output
    (y > 0 exactly where the pre-activation is > 0), so it trains too."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, algorithm="auto", activation=None, name=None):
        super().__init__(name)
        if activation not in (None, "relu"):
            raise ValueError(f"Conv2d: activation must be None or 'relu', got {activation!r}")
        self.activation = activation
        self.in_channels = _check_positive_int(in_channels, "in_channels")
        self.out_channels = _check_positive_int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if padding == "same" and self.stride != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride={stride!r}")
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation")
        self.groups = _check_positive_int(groups, "groups")
        if not isinstance(algorithm, str):
            raise TypeError(f"algorithm must be a string, got {type(algorithm).__name__}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.algorithm = algorithm
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size,
                                         np.float32))
        self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
        init.default_init_(self.weight, self.bias)

    def get_config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=self.padding if isinstance(self.padding, str) else list(self.padding),
                    dilation=list(self.dilation), groups=self.groups, bias=self.bias is not None,
                    algorithm=self.algorithm, activation=self.activation)

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, algorithm=self.algorithm)

    def output_shape(self, in_shape):
        self._expect_rank(in_shape, 3, "a (C, H, W) input")
        c, h, w = in_shape
        if c != self.in_channels:
            raise ValueError(f"{self._label()} expects {self.in_channels} input channels, "
                             f"got input shape {tuple(in_shape)}")
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        if self.padding == "same":
            th, tw = dh * (kh - 1), dw * (kw - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        elif self.padding == "valid":
            pads = (0, 0, 0, 0)
        else:
            pads = (self.padding[0],) * 2 + (self.padding[1],) * 2
        ho = _conv_out(h, kh, sh, pads[0], pads[1], dh)
        wo = _conv_out(w, kw, sw, pads[2], pads[3], dw)
        if ho < 1 or wo < 1:
            raise ValueError(f"{self._label()}: the {kh}x{kw} kernel does not fit the input shape "
                             f"{tuple(in_shape)} (output would be {ho}x{wo})")
        return (self.out_channels, ho, wo)

    def forward(self, x, training=None):
        b = None if self.bias is None else self.bias.data
        y = ops.conv2d(x, self.weight.data, b, activation=self.activation, **self._kw())
        self._ctx = (x, y if self.activation else None)  # y only for the ReLU mask
        return y

    def backward(self, grad_out):
        x, y = self._saved()
        if self.activation == "relu":
            grad_out = ops.relu_backward(grad_out, y)[0]
        b = None if self.bias is None else self.bias.data
        gx, gw, gb = ops.conv2d_backward(grad_out, x, self.weight.data, b, **self._kw())
        accumulate(self.weight, gw)
        if self.bias is not None:
            accumulate(self.bias, gb)
        return gx

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
        return s + ("" if self.bias is not None else ", bias=False")


def _pool_out(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # PyTorch: the last window must start inside the input or left padding
    return out


class _Pool2d(Layer):
    def _pool_shape(self, in_shape, dilation=(1, 1)):
        self._expect_rank(in_shape, 3, "a (C, H, W) input")
        c, h, w = in_shape
        ho = _pool_out(h, self.kernel_size[0], self.stride[0], self.padding[0], dilation[0],
                       self.ceil_mode)
        wo = _pool_out(w, self.kernel_size[1], self.stride[1], self.padding[1], dilation[1],
                       self.ceil_mode)
        if ho < 1 or wo < 1:
            raise ValueError(f"{self._label()}: the {self.kernel_size} window does not fit the "
                             f"input shape {tuple(in_shape)}")
        return (c, ho, wo)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, name=None):
        super().__init__(name)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation")
        self.ceil_mode = as_bool(ceil_mode, "ceil_mode")

    def get_config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), dilation=list(self.dilation),
                    ceil_mode=self.ceil_mode)

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    ceil_mode=self.ceil_mode)

    def output_shape(self, in_shape):
        return self._pool_shape(in_shape, self.dilation)

    def forward(self, x, training=None):
        self._ctx = x
        return ops.max_pool2d(x, self.kernel_size, **self._kw())

    def backward(self, grad_out):
        return ops.max_pool2d_backward(grad_out, self._saved(), self.kernel_size, **self._kw())[0]


class AvgPool2d(_Pool2d):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 name=None):
        super().__init__(name)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding", 0)
        self.ceil_mode = as_bool(ceil_mode, "ceil_mode")
        self.count_include_pad = as_bool(count_include_pad, "count_include_pad")

    def get_config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad)

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad)

    def output_shape(self, in_shape):
        return self._pool_shape(in_shape)

    def forward(self, x, training=None):
        self._ctx = x
        return ops.avg_pool2d(x, self.kernel_size, **self._kw())

    def backward(self, grad_out):
        return ops.avg_pool2d_backward(grad_out, self._saved(), self.kernel_size, **self._kw())[0]


class AdaptiveAvgPool2d(Layer):
    def __init__(self, output_size, name=None):
        super().__init__(name)
        if isinstance(output_size, (tuple, list)):
            if len(output_size) != 2:
                raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
            self.output_size = tuple(None if v is None else _check_positive_int(
                as_int(v, "output_size"), "output_size") for v in output_size)
        else:
            v = _check_positive_int(as_int(output_size, "output_size"), "output_size")
            self.output_size = (v, v)

    def get_config(self):
        return dict(output_size=list(self.output_size))

    def output_shape(self, in_shape):
        self._expect_rank(in_shape, 3, "a (C, H, W) input")
        c, h, w = in_shape
        oh, ow = self.output_size
        return (c, h if oh is None else oh, w if ow is None else ow)

    def forward(self, x, training=None):
        self._ctx = x
        return ops.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad_out):
        return ops.adaptive_avg_pool2d_backward(grad_out, self._saved(), self.output_size)[0]

    def extra_repr(self):
        return f"output_size={self.output_size}"


class BatchNorm2d(Layer):
    """Batch norm over (N, C, H, W) per channel; running statistics as PyTorch
    (``momentum=None`` is the cumulative average)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 name=None):
        super().__init__(name)
        self.num_features = _check_positive_int(num_features, "num_features")
        self.eps = _finite(eps, "eps", 0.0)
        self.momentum = None if momentum is None else _finite(momentum, "momentum", 0.0)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(np.ones(num_features, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, np.float32)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, np.float32))
            self.register_buffer("running_var", np.ones(num_features, np.float32))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))

    def get_config(self):
        return dict(num_features=self.num_features, eps=self.eps, momentum=self.momentum,
                    affine=self.affine, track_running_stats=self.track_running_stats)

    def output_shape(self, in_shape):
        if len(in_shape) < 1 or in_shape[0] != self.num_features:
            raise ValueError(f"{self._label()} expects {self.num_features} channels, got input "
                             f"shape {tuple(in_shape)}")
        return tuple(in_shape)

    def _args(self, training):
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        rm = self.running_mean if self.track_running_stats else None
        rv = self.running_var if self.track_running_stats else None
        use_batch = training or not self.track_running_stats
        return rm, rv, w, b, use_batch

    def forward(self, x, training=None):
        training = self._mode(training)
        rm, rv, w, b, use_batch = self._args(training)
        momentum = 0.0
        if training and self.track_running_stats:
            self.num_batches_tracked[...] += 1
            momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                        else self.momentum)
        self._ctx = (x, use_batch)
        return ops.batch_norm(x, rm, rv, w, b, training=use_batch,
                              momentum=momentum, eps=self.eps)

    def backward(self, grad_out):
        x, use_batch = self._saved()
        rm, rv, w, b, _ = self._args(use_batch)
        gx, _, _, gw, gb = ops.batch_norm_backward(grad_out, x, rm, rv, w, b, training=use_batch,
                                                   eps=self.eps)
        if self.affine:
            accumulate(self.weight, gw)
            accumulate(self.bias, gb)
        return gx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class LocalResponseNorm(Layer):
    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0, name=None):
        super().__init__(name)
        self.size = _check_positive_int(size, "size")
        self.alpha, self.beta, self.k = (_finite(alpha, "alpha"), _finite(beta, "beta"),
                                         _finite(k, "k"))

    def get_config(self):
        return dict(size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)

    def forward(self, x, training=None):
        self._ctx = x
        return ops.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def backward(self, grad_out):
        return ops.local_response_norm_backward(grad_out, self._saved(), self.size, self.alpha,
                                                self.beta, self.k)[0]

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class _Elementwise(Layer):
    _op = _op_backward = None

    def forward(self, x, training=None):
        self._ctx = x
        return type(self)._op(x, *self._extra())

    def backward(self, grad_out):
        return type(self)._op_backward(grad_out, self._saved(), *self._extra())[0]

    def _extra(self):
        return ()


class ReLU(_Elementwise):
    _op, _op_backward = staticmethod(ops.relu), staticmethod(ops.relu_backward)

    def __init__(self, inplace=False, name=None):
        super().__init__(name)  # inplace is accepted for PyTorch compatibility; results are new arrays


class LeakyReLU(_Elementwise):
    _op, _op_backward = staticmethod(ops.leaky_relu), staticmethod(ops.leaky_relu_backward)

    def __init__(self, negative_slope=0.01, inplace=False, name=None):
        super().__init__(name)
        self.negative_slope = as_float(negative_slope, "negative_slope")

    def get_config(self):
        return dict(negative_slope=self.negative_slope)

    def _extra(self):
        return (self.negative_slope,)


class Sigmoid(_Elementwise):
    _op, _op_backward = staticmethod(ops.sigmoid), staticmethod(ops.sigmoid_backward)


class Tanh(_Elementwise):
    _op, _op_backward = staticmethod(ops.tanh), staticmethod(ops.tanh_backward)


class Softmax(_Elementwise):
    _op, _op_backward = staticmethod(ops.softmax), staticmethod(ops.softmax_backward)

    def __init__(self, dim=1, name=None):
        super().__init__(name)
        self.dim = as_int(dim, "dim")

    def get_config(self):
        return dict(dim=self.dim)

    def _extra(self):
        return (self.dim,)


class LogSoftmax(Softmax):
    _op, _op_backward = staticmethod(ops.log_softmax), staticmethod(ops.log_softmax_backward)


class Linear(Layer):
    """y = x W^T + b (``torch.nn.Linear``) on (N, in_features) inputs."""

    def __init__(self, in_features, out_features, bias=True, name=None):
        super().__init__(name)
        self.in_features = _check_positive_int(in_features, "in_features")
        self.out_features = _check_positive_int(out_features, "out_features")
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        self.bias = Parameter(np.empty(out_features, np.float32)) if bias else None
        init.default_init_(self.weight, self.bias)

    def get_config(self):
        return dict(in_features=self.in_features, out_features=self.out_features,
                    bias=self.bias is not None)

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.in_features,):
            hint = " (add a Flatten before it)" if len(in_shape) > 1 else ""
            raise ValueError(f"{self._label()} expects input shape ({self.in_features},), got "
                             f"{tuple(in_shape)}{hint}")
        return (self.out_features,)

    def forward(self, x, training=None):
        self._ctx = x
        return ops.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_out):
        x = self._saved()
        gx, gw, gb = ops.linear_backward(grad_out, x, self.weight.data,
                                         None if self.bias is None else self.bias.data)
        accumulate(self.weight, gw)
        if self.bias is not None:
            accumulate(self.bias, gb)
        return gx

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Layer):
    """Reshape (N, d1, d2, ...) to (N, d1*d2*...) -- a view, no copy (start_dim=1)."""

    def __init__(self, start_dim=1, end_dim=-1, name=None):
        super().__init__(name)
        self.start_dim, self.end_dim = as_int(start_dim, "start_dim"), as_int(end_dim, "end_dim")
        if self.start_dim != 1 or self.end_dim != -1:
            raise ValueError("Flatten supports start_dim=1, end_dim=-1 (flatten per sample)")

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, x, training=None):
        x = np.asarray(x)
        self._ctx = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out):
        return np.asarray(grad_out).reshape(self._saved())


class Dropout(Layer):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p).

    The mask is a counter-based hash of (seed, index): a fresh seed is drawn
    from striate's generator (:func:`striate.manual_seed`) on every training
    forward and reused by the backward, so nothing is stored.
    """

    def __init__(self, p=0.5, inplace=False, name=None):
        super().__init__(name)
        p = as_float(p, "p")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def get_config(self):
        return dict(p=self.p)

    def forward(self, x, training=None):
        training = self._mode(training)
        seed = int(init.generator().integers(0, 2**63)) if training else 0
        self._ctx = (x, training, seed)
        if not training or self.p == 0.0:
            return x
        return ops.dropout(x, self.p, training=True, seed=seed)

    def backward(self, grad_out):
        x, training, seed = self._saved()
        if not training or self.p == 0.0:
            return grad_out
        return ops.dropout_backward(grad_out, x, self.p, training=True, seed=seed)[0]

    def extra_repr(self):
        return f"p={self.p}"


class Identity(Layer):
    def __init__(self, *args, name=None, **kwargs):
        super().__init__(name)

    def forward(self, x, training=None):
        return x

    def backward(self, grad_out):
        return grad_out


class Add(Layer):
    """Sum of several same-shape inputs (a residual connection): ``Add()([a, b])``."""

    def output_shape(self, in_shapes):
        shapes = [tuple(s) for s in in_shapes]
        if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
            raise ValueError(f"{self._label()} needs >= 2 inputs of one shape, got {shapes}")
        return shapes[0]

    def forward(self, xs, training=None):
        self._ctx = len(xs)
        y = xs[0]
        for x in xs[1:]:
            y = ops.add(y, x)
        return y

    def backward(self, grad_out):
        return tuple(grad_out for _ in range(self._saved()))


class Concat(Layer):
    """Concatenation along channels (Inception's filter concat): ``Concat()([a, b, c])``."""

    def __init__(self, dim=1, name=None):
        super().__init__(name)
        if as_int(dim, "dim") != 1:
            raise ValueError(f"Concat: only dim=1 (channels) is supported, got {dim}")
        self.dim = 1

    def get_config(self):
        return dict(dim=self.dim)

    def output_shape(self, in_shapes):
        shapes = [tuple(s) for s in in_shapes]
        if len(shapes) < 1 or any(len(s) != len(shapes[0]) or s[1:] != shapes[0][1:]
                                  for s in shapes):
            raise ValueError(f"{self._label()} needs inputs that differ only in channels, got "
                             f"{shapes}")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]

    def forward(self, xs, training=None):
        self._ctx = xs
        return ops.cat(xs, dim=1)

    def backward(self, grad_out):
        return tuple(ops.cat_backward(grad_out, self._saved(), dim=1))


LAYERS = {cls.__name__: cls for cls in (
    Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, LocalResponseNorm, ReLU,
    LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax, Linear, Flatten, Dropout, Identity, Add, Concat)}
