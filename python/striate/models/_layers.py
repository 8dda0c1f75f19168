"""Layers only the zoo needs: the CIFAR ResNets' parameter-free shortcut and
squeeze-and-excitation's channel gating. Registered in ``striate.nn.layers.LAYERS``
at import so checkpoints can rebuild the models that use them."""

import numpy as np

from .. import ops
from ..nn.layers import LAYERS, Layer, _check_positive_int
from ..ops._util import as_int


class ShortcutA(Layer):
    """He et al.'s "option A" identity shortcut: subsample by ``stride`` and
    zero-pad channels from ``in_channels`` to ``out_channels`` (half the padding
    on each side, as the common CIFAR implementation), so no parameters."""

    def __init__(self, in_channels, out_channels, stride=2, name=None):
        super().__init__(name)
        # as_int, not int(): 1.5 or "2" must not quietly become a valid size.
        self.in_channels = _check_positive_int(as_int(in_channels, "in_channels"), "in_channels")
        self.out_channels = _check_positive_int(as_int(out_channels, "out_channels"),
                                                "out_channels")
        self.stride = _check_positive_int(as_int(stride, "stride"), "stride")
        if self.out_channels < self.in_channels:
            raise ValueError(f"ShortcutA: out_channels must be >= in_channels ({in_channels}), "
                             f"got {out_channels}")

    def get_config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    stride=self.stride)

    def _lo(self):
        return (self.out_channels - self.in_channels) // 2

    def output_shape(self, in_shape):
        self._expect_rank(in_shape, 3, "a (C, H, W) input")
        c, h, w = in_shape
        if c != self.in_channels:
            raise ValueError(f"{self._label()} expects {self.in_channels} channels, got input "
                             f"shape {tuple(in_shape)}")
        s = self.stride
        return (self.out_channels, -(-h // s), -(-w // s))

    def forward(self, x, training=None):
        x = np.asarray(x, np.float32)
        self._ctx = x.shape
        s, lo = self.stride, self._lo()
        sub = x[:, :, ::s, ::s]
        y = np.zeros((x.shape[0], self.out_channels) + sub.shape[2:], np.float32)
        y[:, lo:lo + self.in_channels] = sub
        return y

    def backward(self, grad_out):
        shape = self._saved()
        s, lo = self.stride, self._lo()
        gx = np.zeros(shape, np.float32)
        gx[:, :, ::s, ::s] = np.asarray(grad_out)[:, lo:lo + self.in_channels]
        return gx

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class ChannelMul(Layer):
    """``ChannelMul()([x, s])``: x (C, H, W) scaled per channel by s (C, 1, 1) --
    the excitation step of a squeeze-and-excitation block."""

    def output_shape(self, in_shapes):
        shapes = [tuple(s) for s in in_shapes]
        if (len(shapes) != 2 or len(shapes[0]) != 3
                or shapes[1] != (shapes[0][0], 1, 1)):
            raise ValueError(f"{self._label()} needs [(C, H, W), (C, 1, 1)] inputs, got {shapes}")
        return shapes[0]

    def forward(self, xs, training=None):
        x, s = xs
        self._ctx = (x, s)
        return ops.mul(x, s)

    def backward(self, grad_out):
        x, s = self._saved()
        return tuple(ops.mul_backward(grad_out, x, s))


for _cls in (ShortcutA, ChannelMul):
    LAYERS[_cls.__name__] = _cls
