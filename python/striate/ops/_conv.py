"""Convolution."""

from .. import _C
from .. import _autotune
from ._util import as_bool, as_float32, as_int, as_optional_float32, as_pair, as_str


def _conv2d_args(x, weight, bias, stride, padding, dilation, groups, algorithm):
    x = as_float32(x, "x")
    weight = as_float32(weight, "weight")
    bias = as_optional_float32(bias, "bias")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        mode, pad = padding, (0, 0)
    else:
        mode, pad = "explicit", as_pair(padding, "padding")
    return (x, weight, bias, as_pair(stride, "stride"), mode, pad,
            as_pair(dilation, "dilation"), as_int(groups, "groups"),
            as_str(algorithm, "algorithm"))


def _activation(activation):
    if activation is None:
        return "none"
    activation = as_str(activation, "activation")
    if activation not in ("relu", "none"):
        raise ValueError(f"conv2d: activation must be None or 'relu', got {activation!r}")
    return activation


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto",
           activation=None):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    y[n, o, i, j] = bias[o] + sum_{c, p, q} weight[o, c, p, q] *
                    x_pad[n, g*C/groups + c, i*sh + p*dh, j*sw + q*dw]

    Args:
        x: input, shape (N, C_in, H, W).
        weight: filters, shape (C_out, C_in/groups, KH, KW).
        bias: optional, shape (C_out,).
        stride, dilation: int or (h, w) pair, >= 1.
        padding: int or (h, w) pair of zero padding on both sides, or
            ``"valid"`` (no padding) or ``"same"`` (output size = input size;
            stride 1 only; total padding d*(k-1), the low side getting half
            rounded down, as PyTorch).
        groups: input and output channels are split into this many groups
            (``groups == C_in`` is a depthwise convolution).
        algorithm: ``"auto"`` (heuristic, measured side by side with
            PyTorch, src/ops/conv2d.cpp: direct for depthwise-like layers,
            C_in/groups * C_out/groups <= 4; on AVX2, for stride-1 ungrouped
            non-1x1 layers: 3x3 with tiny channel products or small planes
            direct, else Winograd F(4x4,3x3) forward and F(4x4)/F(2x2)
            backward by plane size; 5x5 F(2x2,5x5) from 16 channels on
            planes >= 28x28 or from 32x32 channels (backward only where the
            tile sum is deep, else im2col / direct); 7x7 and larger direct;
            strided layers with 3x3 / 5x5 stride phases by Winograd on the
            space-to-depth input where the rewritten layer would use it
            (never those with 2x2 phases, the 3x3/2 downsampling);
            on AVX-512, for stride-1 ungrouped non-1x1 layers: 3x3 below 16
            channels direct forward (im2col backward), else Winograd F(4x4)
            forward and, backward, direct for 16x16 channels, F(4x4) up to
            64x64 channels, on planes >= 28x28 and for >= 256x512 channels
            over >= 64 tiles, F(2x2) otherwise; 5x5 as on AVX2; 2x2 forward
            F(4x4,2x2) from 16 channels on planes >= 14x14; strided layers
            on < 16 input channels (the ResNet stem) direct forward; other
            layers im2col; on the portable baseline ISA im2col only when
            C_in/groups*KH*KW >= 64 and H_out*W_out < 784, else direct;
            :func:`conv2d_algorithm` tells which, ``backward=True`` for
            :func:`conv2d_backward`'s pick),
            ``"direct"`` (on AVX-512, ungrouped layers with >= 16 output
            channels and width stride 1 or 2: output channels in the SIMD
            lanes, kernels/cpu/conv2d_direct_ocv.h; other stride-1
            ungrouped layers: register-blocked flat
            planes, kernels/cpu/conv2d_direct_s1.h; depthwise layers:
            kernels/cpu/conv2d_depthwise.h; others: strided loops;
            inputs holding Inf/NaN always take the strided loops, whose
            NaN pattern is PyTorch's), ``"im2col"``,
            ``"winograd_f2"`` / ``"winograd_f4"`` (Winograd with a 2x2 / 4x4
            output tile: F(2x2,3x3) and F(4x4,3x3) for 3x3 kernels,
            F(2x2,5x5) for 5x5 ones (``"winograd_f2"`` only), F(4x4,2x2)
            for 2x2 ones (``"winograd_f4"`` only); dilation 1,
            groups 1, any padding; stride 1, or a stride that splits the
            kernel into 2x2 / 3x3 / 5x5 phases (ceil(k / stride), e.g. a
            3x3/2 layer or AlexNet's 11x11/4), run as the equivalent
            stride-1 convolution over the space-to-depth input
            (docs/winograd.md); 2.25x / 4x / 2.8x / 2.56x fewer
            multiplies than direct; error ~1e-6 (F(2,3)) to ~2e-5 (F(4,3),
            F(2,5), F(4,2), C=512) of the largest output, see docs/winograd.md;
            transformed filters are cached while the weights are unchanged)
            and ``"winograd"`` (picks the tile: F(2x2,5x5) for 5x5,
            F(4x4,2x2) for 2x2; for 3x3
            F4 when the output is at least 56x56, or 28x28 with fewer than
            512 input channels, else F2). ValueError where Winograd cannot
            apply. The backward of a Winograd call computes grad_x and
            grad_weight through the same transforms.

        activation: ``None`` or ``"relu"``: a fused epilogue, y = max(0, conv
            + bias), applied by the kernel while each output block is still
            in cache (saves a pass over y; equals ``relu(conv2d(...))``
            exactly). Forward only: for training call :func:`relu` on the
            output so its backward sees the mask.

    With ``striate.set_autotune(True)``, ``algorithm="auto"`` times every
    algorithm :func:`conv2d_algorithms` lists on the first call with a given
    configuration and uses the fastest from then on (see
    :func:`striate.set_autotune`).

    Output: shape (N, C_out, H_out, W_out) with
    H_out = floor((H + pad_top + pad_bottom - dh*(KH-1) - 1) / sh) + 1.

    Arrays that are not float32 C-contiguous are converted (copied) to it;
    the result is float32. Bad arguments raise ValueError/TypeError naming
    the argument.
    """
    args = _conv2d_args(x, weight, bias, stride, padding, dilation, groups, algorithm)
    act = _activation(activation)
    if args[-1] == "auto" and _autotune.enabled():
        args = args[:-1] + (_autotune.pick("forward", args, _C.conv2d_algorithms(*args[:-1]),
                                           lambda a: _C.conv2d(*a, act)),)
    return _C.conv2d(*args, act)


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto"):
    """Gradients of :func:`conv2d`: returns ``(grad_x, grad_weight, grad_bias)``.

    ``grad_out`` has the shape of conv2d's output; the other arguments are
    exactly those of the forward call. ``grad_bias`` is None when ``bias``
    is None. Inputs are never modified.
    """
    args = _conv2d_args(x, weight, bias, stride, padding, dilation, groups, algorithm)
    gy = as_float32(grad_out, "grad_out")
    if args[-1] == "auto" and _autotune.enabled():
        _C.conv2d_backward(gy, *args)  # validates grad_out before timing anything
        args = args[:-1] + (_autotune.pick("backward", args, _C.conv2d_algorithms(*args[:-1]),
                                           lambda a: _C.conv2d_backward(gy, *a)),)
    return _C.conv2d_backward(gy, *args)


def conv2d_algorithm(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                     algorithm="auto", backward=False):
    """The name of the algorithm :func:`conv2d` runs for these arguments
    (``backward=True``: the one :func:`conv2d_backward` runs; ``"auto"`` may
    pick differently for the backward passes).

    With autotuning on, this is the cached winner when the configuration has
    been tuned already, else the heuristic's choice (nothing is timed here).
    """
    args = _conv2d_args(x, weight, bias, stride, padding, dilation, groups, algorithm)
    backward = as_bool(backward, "backward")
    if args[-1] == "auto" and _autotune.enabled():
        tuned = _autotune.lookup("backward" if backward else "forward", args)
        if tuned is not None:
            return tuned
    return _C.conv2d_algorithm(*args, backward)


def conv2d_algorithms(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The algorithms that can run :func:`conv2d` with these arguments, as a list
    of names in a fixed order: ``"direct"`` and ``"im2col"`` always, then
    ``"winograd_f2"`` and ``"winograd_f4"`` where Winograd applies (dilation 1,
    groups 1; 3x3 kernels both, 5x5 kernels ``"winograd_f2"``, i.e.
    F(2x2,5x5); stride 1, or strides whose phases ceil(k / stride) are 3x3 or
    5x5). Invalid arguments raise as conv2d does."""
    args = _conv2d_args(x, weight, bias, stride, padding, dilation, groups, "auto")
    return list(_C.conv2d_algorithms(*args[:-1]))
