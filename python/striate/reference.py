"""Plain-NumPy reference implementations ("the oracle") of every striate op.

Role
----
* **Oracle.**  The test-suite and the benchmark compare striate's kernels
  against these functions.  Everything here is computed in float64 (inputs
  are converted with ``np.asarray(a, dtype=np.float64)``) and every function
  returns float64 arrays, so differences seen in a comparison are the
  kernel's, not the oracle's.
* **Documentation of semantics.**  Each docstring states the exact formula,
  including the edge cases (padding, ``ceil_mode``, divisors, ties, NaN).
  The semantics are exactly those of PyTorch's ``torch.nn.functional`` for
  the argument subset implemented here; where PyTorch rejects an input
  (e.g. pooling padding larger than half the kernel), so does this module,
  with a ``ValueError``.

The code is meant to be read: no cleverness, but vectorised over the batch,
channel and output-pixel axes (loops run only over kernel taps or bins), so
it is fast enough at test and benchmark sizes.  Only NumPy is imported.

Layouts
-------
Activations are NCHW (batch, channels, height, width).  Convolution weights
are OIHW: (out_channels, in_channels // groups, kernel_h, kernel_w).

Backward contract
-----------------
For every forward op ``F`` there is ``F_backward(grad_out, *args, **kwargs)``:
it takes the gradient of the loss with respect to ``F``'s output, followed by
exactly the same arguments as the forward call (same names and defaults), and
returns a tuple with one entry per *array* argument of ``F``, in order.  An
entry is ``None`` where that argument is ``None`` or is not differentiable
(running statistics, integer targets).  Backward functions never mutate their
inputs; ``batch_norm_backward(..., training=True)`` recomputes the batch
statistics from ``x`` and does not touch the running statistics.

Example::

    gx, gw, gb = conv2d_backward(gy, x, w, b, stride=2, padding=1)
    (gx,) = max_pool2d_backward(gy, x, 3, 2, 1)
    gx, _, _, gg, gb = batch_norm_backward(gy, x, rm, rv, g, b, training=True)
"""

import operator

import numpy as np

__all__ = [
    "conv2d_output_size",
    "pool2d_output_size",
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "local_response_norm",
    "local_response_norm_backward",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "log_softmax_backward",
    "linear",
    "linear_backward",
    "matmul",
    "matmul_backward",
    "cross_entropy",
    "cross_entropy_backward",
]


# ---------------------------------------------------------------------------
# Small private helpers
# ---------------------------------------------------------------------------

def _f64(a):
    """``a`` as a float64 ndarray (no copy when it already is one)."""
    return np.asarray(a, dtype=np.float64)


def _pair(v, name):
    """An int or a length-2 sequence of ints -> a tuple ``(v_h, v_w)``."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        return operator.index(v[0]), operator.index(v[1])
    v = operator.index(v)
    return v, v


def _check_nchw(x, name="x"):
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {x.shape}")


def _grad(grad_out, shape):
    """``grad_out`` as float64, checked to have the forward output's shape."""
    g = _f64(grad_out)
    if g.shape != tuple(shape):
        raise ValueError(f"grad_out has shape {g.shape}, expected {tuple(shape)}")
    return g


def _taps(kernel, stride, dilation, out):
    """Yield ``(i, j, rows, cols)`` for every kernel tap, row-major (i outer).

    ``rows``/``cols`` are strided slices selecting, from a *padded* input,
    the element that tap (i, j) reads for every output pixel:
    output (oh, ow) reads padded position (oh*s_h + i*d_h, ow*s_w + j*d_w).
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            yield i, j, rows, cols


def _pad_hw(x, top, bottom, left, right, value=0.0):
    """Pad the two trailing (H, W) axes of an NCHW array with ``value``."""
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)),
                  constant_values=value)


# ---------------------------------------------------------------------------
# Output-size rules
# ---------------------------------------------------------------------------

def conv2d_output_size(n, k, stride, pad_lo, pad_hi, dilation):
    """Convolution output length along one spatial dimension.

    ``out = floor((n + pad_lo + pad_hi - dilation*(k - 1) - 1) / stride) + 1``

    (May be < 1 for impossible configurations; ``conv2d`` rejects those.)
    """
    return (n + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1


def pool2d_output_size(n, k, stride, pad, dilation, ceil_mode):
    """Pooling output length along one spatial dimension (PyTorch's rule).

    ``out = floor((n + 2*pad - dilation*(k - 1) - 1 + (stride - 1 if ceil_mode else 0)) / stride) + 1``

    and, with ``ceil_mode``, if the last window would start at or beyond the
    end of the input plus the low-side padding, i.e. ``(out - 1)*stride >= n + pad``,
    it is dropped: ``out -= 1``.
    """
    out = (n + 2 * pad - dilation * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= n + pad:
        out -= 1
    return out


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------

def _conv_padding(padding, kernel, stride, dilation):
    """Resolve ``padding`` to four pads ``(top, bottom, left, right)``.

    * int ``p`` or pair ``(ph, pw)``: symmetric, ``(ph, ph, pw, pw)``.
    * ``"valid"``: no padding.
    * ``"same"`` (stride 1 only): per dimension the total pad is
      ``d*(k - 1)``; the low side gets ``total // 2`` and the high side the
      rest, so an even kernel pads one more row/column at the bottom/right.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return tuple(pads)
        raise ValueError(f"padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError("padding must be non-negative")
    return ph, ph, pw, pw


def _conv_setup(x, weight, bias, stride, padding, dilation, groups):
    """Validate conv2d arguments; return everything forward/backward need."""
    x, w = _f64(x), _f64(weight)
    _check_nchw(x)
    _check_nchw(w, "weight")
    b = None if bias is None else _f64(bias)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    G = operator.index(groups)
    if G < 1 or C % G or O % G:
        raise ValueError(f"groups={G} must divide in_channels={C} and out_channels={O}")
    if Cg != C // G:
        raise ValueError(f"weight has {Cg} input channels per group, expected {C // G}")
    if b is not None and b.shape != (O,):
        raise ValueError(f"bias must have shape ({O},), got {b.shape}")
    s, d = _pair(stride, "stride"), _pair(dilation, "dilation")
    if min(s) < 1 or min(d) < 1:
        raise ValueError("stride and dilation must be >= 1")
    pads = _conv_padding(padding, (kh, kw), s, d)
    out = (conv2d_output_size(H, kh, s[0], pads[0], pads[1], d[0]),
           conv2d_output_size(W, kw, s[1], pads[2], pads[3], d[1]))
    if min(out) < 1:
        raise ValueError(f"conv2d output size {out} is too small")
    return x, w, b, G, s, pads, d, out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation (``torch.nn.functional.conv2d``).

    x: (N, C, H, W); weight: (O, C/groups, kh, kw); bias: (O,) or None.
    With pads (top, bottom, left, right) = (pt, pb, pl, pr) and x zero-padded
    to xp (so xp[.., r, c] = x[.., r - pt, c - pl] inside, 0 outside), the
    output has OH = floor((H + pt + pb - dh*(kh-1) - 1)/sh) + 1 rows (same
    for OW, see ``conv2d_output_size``) and, for output channel o in group
    g = o // (O/groups)::

        y[n, o, oh, ow] = bias[o] + sum_{c, i, j} weight[o, c, i, j]
                          * xp[n, g*(C/groups) + c, oh*sh + i*dh, ow*sw + j*dw]

    stride, dilation: int or pair.  padding: int, pair (ph, pw), "valid"
    (no padding) or "same" (stride 1 only; total pad d*(k-1) per dimension,
    low side total//2, high side the rest).
    """
    x, w, b, G, s, (pt, pb, pl, pr), d, (oh, ow) = _conv_setup(
        x, weight, bias, stride, padding, dilation, groups)
    N, C, _, _ = x.shape
    O, Cg, kh, kw = w.shape
    xp = _pad_hw(x, pt, pb, pl, pr)
    # Per group: y[n, g] (O/G, OH*OW) += w_tap[g] (O/G, C/G) @ x_tap[n, g] (C/G, OH*OW)
    wg = w.reshape(G, O // G, Cg, kh, kw)
    y = np.zeros((N, G, O // G, oh * ow))
    for i, j, rows, cols in _taps((kh, kw), s, d, (oh, ow)):
        x_tap = xp[:, :, rows, cols].reshape(N, G, Cg, oh * ow)
        y += np.matmul(wg[:, :, :, i, j], x_tap)
    y = y.reshape(N, O, oh, ow)
    if b is not None:
        y += b[None, :, None, None]
    return y


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of ``conv2d``; returns ``(grad_x, grad_weight, grad_bias)``.

    With gy = grad_out and the indexing of ``conv2d``::

        grad_weight[o, c, i, j] = sum_{n, oh, ow} gy[n, o, oh, ow] * xp[n, g*C/G + c, oh*sh + i*dh, ow*sw + j*dw]
        grad_xp[n, g*C/G + c, oh*sh + i*dh, ow*sw + j*dw] += sum_{o in group g} weight[o, c, i, j] * gy[n, o, oh, ow]
        grad_x = grad_xp with the padding cropped off
        grad_bias[o] = sum_{n, oh, ow} gy[n, o, oh, ow]      (None if bias is None)
    """
    x, w, b, G, s, (pt, pb, pl, pr), d, (oh, ow) = _conv_setup(
        x, weight, bias, stride, padding, dilation, groups)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    gy = _grad(grad_out, (N, O, oh, ow))
    xp = _pad_hw(x, pt, pb, pl, pr)
    gxp = np.zeros_like(xp)
    wg = w.reshape(G, O // G, Cg, kh, kw)
    gwg = np.zeros_like(wg)
    gyg = gy.reshape(N, G, O // G, oh * ow)
    for i, j, rows, cols in _taps((kh, kw), s, d, (oh, ow)):
        x_tap = xp[:, :, rows, cols].reshape(N, G, Cg, oh * ow)
        # (N, G, O/G, P) @ (N, G, P, C/G) summed over n -> (G, O/G, C/G)
        gwg[:, :, :, i, j] = np.matmul(gyg, x_tap.transpose(0, 1, 3, 2)).sum(axis=0)
        # (G, C/G, O/G) @ (N, G, O/G, P) -> (N, G, C/G, P); within one tap the
        # slice positions are distinct, so += on the strided view is exact.
        gx_tap = np.matmul(wg[:, :, :, i, j].transpose(0, 2, 1), gyg)
        gxp[:, :, rows, cols] += gx_tap.reshape(N, C, oh, ow)
    gx = gxp[:, :, pt:pt + H, pl:pl + W].copy()
    gb = None if b is None else gy.sum(axis=(0, 2, 3))
    return gx, gwg.reshape(O, Cg, kh, kw), gb


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

def _pool_setup(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate pooling arguments (PyTorch's checks); return k, s, p, d, out."""
    _check_nchw(x)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None else _pair(stride, "stride")
    p, d = _pair(padding, "padding"), _pair(dilation, "dilation")
    if min(k) < 1 or min(s) < 1 or min(d) < 1 or min(p) < 0:
        raise ValueError("kernel_size, stride, dilation must be >= 1 and padding >= 0")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"padding {p} must be at most half of kernel_size {k}")
    H, W = x.shape[2:]
    out = (pool2d_output_size(H, k[0], s[0], p[0], d[0], ceil_mode),
           pool2d_output_size(W, k[1], s[1], p[1], d[1], ceil_mode))
    if min(out) < 1:
        raise ValueError(f"pooling output size {out} is too small")
    return k, s, p, d, out


def _pool_pads(n, k, s, p, d, out):
    """(low, high) pads so that every window of ``out`` outputs is in range.

    The low pad is ``p``; the high pad is whatever the last window needs
    (with ``ceil_mode`` it may reach past ``n + p``).
    """
    needed = (out - 1) * s + d * (k - 1) + 1
    return p, max(0, needed - n - p)


def _max_pool_argmax(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Forward pass of max pooling; also returns which tap won per output.

    Returns (y, arg, geometry) where arg[n, c, oh, ow] is the row-major tap
    index t = i*kw + j of the chosen element, or -1 for windows that contain
    no input element at all.
    """
    k, s, p, d, (oh, ow) = _pool_setup(x, kernel_size, stride, padding, dilation, ceil_mode)
    N, C, H, W = x.shape
    (pt, pb), (pl, pr) = _pool_pads(H, k[0], s[0], p[0], d[0], oh), _pool_pads(W, k[1], s[1], p[1], d[1], ow)
    xp = _pad_hw(x, pt, pb, pl, pr, value=-np.inf)
    inside = np.zeros(xp.shape[2:], dtype=bool)
    inside[pt:pt + H, pl:pl + W] = True
    best = np.full((N, C, oh, ow), -np.inf)
    arg = np.full((N, C, oh, ow), -1)
    for i, j, rows, cols in _taps(k, s, d, (oh, ow)):
        v = xp[:, :, rows, cols]
        # PyTorch: the first valid element is the initial candidate (its max
        # starts at -inf with the index of the first valid element); a later
        # element replaces it iff  v > max  or  isnan(v).
        take = inside[rows, cols] & ((arg < 0) | (v > best) | np.isnan(v))
        best = np.where(take, v, best)
        arg = np.where(take, i * k[1] + j, arg)
    return best, arg, (k, s, d, (oh, ow), (pt, pb, pl, pr))


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """2-D max pooling (``torch.nn.functional.max_pool2d``).

    kernel_size, stride (None -> kernel_size), padding, dilation: int or pair.
    Output size per dimension: see ``pool2d_output_size`` (incl. ceil_mode).
    PyTorch requires padding <= kernel_size // 2 (ValueError otherwise).

    Output (oh, ow) looks at input positions
    (oh*sh - ph + i*dh, ow*sw - pw + j*dw) for i < kh, j < kw; positions
    outside the input are padding (-inf, never selected).  The window is
    scanned row-major (i outer, j inner) and a value v becomes the running
    max iff ``v > max or isnan(v)``.  Hence NaN propagates (the last NaN in
    scan order is the one selected), and among tied maxima the FIRST one in
    scan order wins (this matters for the backward pass).  A window with
    only -inf inputs selects its first input element; a window lying
    entirely in the padding outputs -inf.
    """
    y, _, _ = _max_pool_argmax(_f64(x), kernel_size, stride, padding, dilation, ceil_mode)
    return y


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Gradient of ``max_pool2d``; returns ``(grad_x,)``.

    Each output gradient is routed to the input position chosen by the max
    rule of ``max_pool2d``; contributions to the same input position from
    overlapping windows are summed.  Windows lying entirely in the padding
    contribute nothing.
    """
    x = _f64(x)
    y, arg, (k, s, d, out, (pt, pb, pl, pr)) = _max_pool_argmax(
        x, kernel_size, stride, padding, dilation, ceil_mode)
    gy = _grad(grad_out, y.shape)
    N, C, H, W = x.shape
    gxp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    for i, j, rows, cols in _taps(k, s, d, out):
        gxp[:, :, rows, cols] += np.where(arg == i * k[1] + j, gy, 0.0)
    return (gxp[:, :, pt:pt + H, pl:pl + W].copy(),)


def _avg_pool_divisors(n, k, s, p, out, count_include_pad):
    """Per-output divisor factor along one dimension (PyTorch's rule).

    Window start hs = o*s - p, end he = min(hs + k, n + p);
    pool_size = he - hs (before clipping); then hs = max(hs, 0),
    he = min(he, n).  Divisor factor = pool_size if count_include_pad else
    he - hs (after clipping).
    """
    hs = np.arange(out) * s - p
    he = np.minimum(hs + k, n + p)
    pool_size = he - hs
    clipped = np.minimum(he, n) - np.maximum(hs, 0)
    return pool_size if count_include_pad else clipped


def _avg_pool_setup(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    k, s, p, d, (oh, ow) = _pool_setup(x, kernel_size, stride, padding, 1, ceil_mode)
    H, W = x.shape[2:]
    # Divisor = (factor along h) * (factor along w).  With padding <= k // 2
    # (enforced above) every window contains at least one input element, so
    # divisors are >= 1.
    div = np.outer(_avg_pool_divisors(H, k[0], s[0], p[0], oh, count_include_pad),
                   _avg_pool_divisors(W, k[1], s[1], p[1], ow, count_include_pad)).astype(np.float64)
    pads = _pool_pads(H, k[0], s[0], p[0], 1, oh) + _pool_pads(W, k[1], s[1], p[1], 1, ow)
    return k, s, d, (oh, ow), pads, div


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """2-D average pooling (``torch.nn.functional.avg_pool2d``).

    kernel_size, stride (None -> kernel_size), padding: int or pair; output
    size per dimension: see ``pool2d_output_size`` (dilation 1, incl.
    ceil_mode).  PyTorch requires padding <= kernel_size // 2.

    For output row oh: hs = oh*sh - ph, he = min(hs + kh, H + ph),
    pool_h = he - hs (before clipping), then clip hs = max(hs, 0),
    he = min(he, H); likewise for columns.  Then::

        y[n, c, oh, ow] = sum_{hs <= r < he, ws <= q < we} x[n, c, r, q] / divisor
        divisor = pool_h * pool_w              if count_include_pad
                = (he - hs) * (we - ws)        otherwise (clipped window)

    So the padding counts in the divisor when count_include_pad, but the part
    of a ceil_mode window beyond H + ph never does.
    """
    x = _f64(x)
    k, s, d, out, (pt, pb, pl, pr), div = _avg_pool_setup(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    xp = _pad_hw(x, pt, pb, pl, pr)  # zeros: summing them changes nothing
    total = np.zeros(x.shape[:2] + out)
    for _, _, rows, cols in _taps(k, s, d, out):
        total += xp[:, :, rows, cols]
    return total / div


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of ``avg_pool2d``; returns ``(grad_x,)``.

    grad_x[n, c, r, q] = sum over windows (oh, ow) containing (r, q) of
    grad_out[n, c, oh, ow] / divisor[oh, ow]   (divisor as in ``avg_pool2d``).
    """
    x = _f64(x)
    k, s, d, out, (pt, pb, pl, pr), div = _avg_pool_setup(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    N, C, H, W = x.shape
    g = _grad(grad_out, (N, C) + out) / div
    gxp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    for _, _, rows, cols in _taps(k, s, d, out):
        gxp[:, :, rows, cols] += g
    return (gxp[:, :, pt:pt + H, pl:pl + W].copy(),)


def _adaptive_matrix(n, out):
    """(out, n) averaging matrix of adaptive pooling along one dimension.

    Row i averages input indices start <= r < end with
    start = floor(i*n/out), end = ceil((i+1)*n/out).
    """
    m = np.zeros((out, n))
    for i in range(out):
        start = (i * n) // out
        end = -((-(i + 1) * n) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _adaptive_setup(x, output_size):
    _check_nchw(x)
    H, W = x.shape[2:]
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
        oh, ow = output_size
        oh = H if oh is None else operator.index(oh)
        ow = W if ow is None else operator.index(ow)
    else:
        oh = ow = operator.index(output_size)
    return _adaptive_matrix(H, oh), _adaptive_matrix(W, ow)


def adaptive_avg_pool2d(x, output_size):
    """Adaptive 2-D average pooling (``torch.nn.functional.adaptive_avg_pool2d``).

    output_size: int or pair (OH, OW); an entry None means "same as input".
    Output row i averages input rows floor(i*H/OH) <= r < ceil((i+1)*H/OH)
    (bins may overlap when H is not divisible by OH), columns likewise::

        y[n, c, i, j] = mean_{r in bin_h(i), q in bin_w(j)} x[n, c, r, q]
                      = sum_{r, q} A_h[i, r] * x[n, c, r, q] * A_w[j, q]

    with A_h[i, r] = 1/|bin_h(i)| for r in bin_h(i), else 0.
    """
    x = _f64(x)
    ah, aw = _adaptive_setup(x, output_size)
    return np.einsum("ir,ncrq,jq->ncij", ah, x, aw)


def adaptive_avg_pool2d_backward(grad_out, x, output_size):
    """Gradient of ``adaptive_avg_pool2d``; returns ``(grad_x,)``.

    grad_x[n, c, r, q] = sum_{i, j} A_h[i, r] * grad_out[n, c, i, j] * A_w[j, q].
    """
    x = _f64(x)
    ah, aw = _adaptive_setup(x, output_size)
    g = _grad(grad_out, x.shape[:2] + (ah.shape[0], aw.shape[0]))
    return (np.einsum("ir,ncij,jq->ncrq", ah, g, aw),)


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------

def _bn_setup(x, running_mean, running_var, weight, bias, training):
    """Statistics and broadcast helpers shared by batch_norm forward/backward.

    Returns (x, axes, bshape, mean, var, count, gamma, beta) where mean and
    var are the values used for normalising (batch statistics, var biased,
    when training; running statistics otherwise).
    """
    x = _f64(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm input must be (N, C) or (N, C, *), got shape {x.shape}")
    C = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))          # every axis but the channel axis
    bshape = (1, C) + (1,) * (x.ndim - 2)          # per-channel vectors broadcast like this
    count = x.size // C
    if training:
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input shape {x.shape}")
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)                     # biased: divide by count
    else:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean and running_var are required when training=False")
        mean, var = _f64(running_mean), _f64(running_var)
    gamma = np.ones(C) if weight is None else _f64(weight)
    beta = np.zeros(C) if bias is None else _f64(bias)
    for name, v in (("mean", mean), ("var", var), ("weight", gamma), ("bias", beta)):
        if v.shape != (C,):
            raise ValueError(f"batch_norm {name} must have shape ({C},), got {v.shape}")
    return x, axes, bshape, mean, var, count, gamma, beta


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation (``torch.nn.functional.batch_norm``).

    x: (N, C) or (N, C, *); statistics are per channel c over all other axes
    (m = x.size / C values each).  weight/bias (gamma/beta): (C,) or None
    (meaning 1 / 0)::

        y = (x - mean) / sqrt(var + eps) * gamma + beta

    * training=True: mean = batch mean, var = BIASED batch variance
      (sum (x - mean)^2 / m).  If given, running_mean / running_var (arrays,
      possibly float32) are updated IN PLACE::

          running_mean = (1 - momentum) * running_mean + momentum * mean
          running_var  = (1 - momentum) * running_var  + momentum * var_unbiased

      with var_unbiased = sum (x - mean)^2 / (m - 1).  Requires m > 1.
    * training=False: mean, var = running_mean, running_var (required).
    """
    x, axes, bshape, mean, var, count, gamma, beta = _bn_setup(
        x, running_mean, running_var, weight, bias, training)
    if training:
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * _f64(running_mean) + momentum * mean
        if running_var is not None:
            var_unbiased = var * count / (count - 1)
            running_var[...] = (1 - momentum) * _f64(running_var) + momentum * var_unbiased
    xhat = (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + eps)
    return xhat * gamma.reshape(bshape) + beta.reshape(bshape)


def batch_norm_backward(grad_out, x, running_mean, running_var, weight=None, bias=None,
                        training=False, momentum=0.1, eps=1e-5):
    """Gradients of ``batch_norm``; returns ``(gx, None, None, gweight, gbias)``.

    With xhat = (x - mean) / sqrt(var + eps), g = grad_out, sums/means over
    the m values of each channel::

        gbias   = sum g                            (None if bias is None)
        gweight = sum g * xhat                     (None if weight is None)
        gx = gamma / sqrt(var + eps) * g                             (eval)
        gx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))   (training)

    Training mode differentiates through the batch statistics (which are
    recomputed from x); the running statistics are neither used nor updated.
    Eval mode treats running_mean / running_var as constants.
    """
    x, axes, bshape, mean, var, count, gamma, beta = _bn_setup(
        x, running_mean, running_var, weight, bias, training)
    g = _grad(grad_out, x.shape)
    inv_std = 1.0 / np.sqrt(var.reshape(bshape) + eps)
    xhat = (x - mean.reshape(bshape)) * inv_std
    if training:
        g_mean = g.mean(axis=axes, keepdims=True)
        gxhat_mean = (g * xhat).mean(axis=axes, keepdims=True)
        gx = gamma.reshape(bshape) * inv_std * (g - g_mean - xhat * gxhat_mean)
    else:
        gx = gamma.reshape(bshape) * inv_std * g
    gw = None if weight is None else (g * xhat).sum(axis=axes)
    gb = None if bias is None else g.sum(axis=axes)
    return gx, None, None, gw, gb


def _channel_window_sum(a, lo, hi):
    """s[:, c] = sum_{c' = c - lo}^{c + hi} a[:, c'], with a[:, c'] = 0 outside [0, C)."""
    C = a.shape[1]
    pad = [(0, 0)] * a.ndim
    pad[1] = (lo, hi)
    ap = np.pad(a, pad)
    return sum(ap[:, t:t + C] for t in range(lo + hi + 1))


def _lrn_setup(x, size):
    x = _f64(x)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm input must be (N, C, *) with >= 3 dims, got {x.shape}")
    size = operator.index(size)
    if size < 1:
        raise ValueError("size must be >= 1")
    return x, size


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels (``torch.nn.functional.local_response_norm``).

    x: (N, C, *) (normally NCHW); for every channel c::

        d_c = k + alpha / size * sum_{c' = c - size//2}^{c + (size-1)//2} x_{c'}^2
        y_c = x_c / d_c^beta

    Channels c' outside [0, C) contribute 0 and the divisor is always
    ``size`` (even near the edges or when C < size).
    """
    x, size = _lrn_setup(x, size)
    d = k + alpha / size * _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    return x / d ** beta


def local_response_norm_backward(grad_out, x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Gradient of ``local_response_norm``; returns ``(grad_x,)``.

    With d_c as in the forward pass and g = grad_out::

        grad_x_j = g_j * d_j^(-beta)
                   - 2*alpha*beta/size * x_j * sum_{c : j in window(c)} g_c * x_c * d_c^(-beta-1)

    where window(c) = [c - size//2, c + (size-1)//2], so j is in window(c)
    iff j - (size-1)//2 <= c <= j + size//2 (the transposed window).
    """
    x, size = _lrn_setup(x, size)
    g = _grad(grad_out, x.shape)
    d = k + alpha / size * _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    t = g * x * d ** (-beta - 1)
    back = _channel_window_sum(t, (size - 1) // 2, size // 2)
    return (g * d ** (-beta) - 2.0 * alpha * beta / size * x * back,)


# ---------------------------------------------------------------------------
# Element-wise activations
# ---------------------------------------------------------------------------

def relu(x):
    """relu(x) = max(x, 0) (NaN propagates)."""
    return np.maximum(_f64(x), 0.0)


def relu_backward(grad_out, x):
    """Gradient of ``relu``: grad_x = grad_out * [x > 0] (0 at x == 0); returns ``(grad_x,)``."""
    x = _f64(x)
    return (np.where(x > 0, _grad(grad_out, x.shape), 0.0),)


def leaky_relu(x, negative_slope=0.01):
    """leaky_relu(x) = x if x > 0 else negative_slope * x."""
    x = _f64(x)
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(grad_out, x, negative_slope=0.01):
    """Gradient of ``leaky_relu``: grad_out * (1 if x > 0 else negative_slope); returns ``(grad_x,)``."""
    x = _f64(x)
    return (_grad(grad_out, x.shape) * np.where(x > 0, 1.0, negative_slope),)


def sigmoid(x):
    """sigmoid(x) = 1 / (1 + exp(-x)), evaluated without overflow:
    with e = exp(-|x|): 1/(1 + e) for x >= 0, e/(1 + e) for x < 0."""
    x = _f64(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def sigmoid_backward(grad_out, x):
    """Gradient of ``sigmoid``: grad_out * s * (1 - s), s = sigmoid(x); returns ``(grad_x,)``."""
    s = sigmoid(x)
    return (_grad(grad_out, s.shape) * s * (1.0 - s),)


def tanh(x):
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x)."""
    return np.tanh(_f64(x))


def tanh_backward(grad_out, x):
    """Gradient of ``tanh``: grad_out * (1 - tanh(x)^2); returns ``(grad_x,)``."""
    t = tanh(x)
    return (_grad(grad_out, t.shape) * (1.0 - t * t),)


def softmax(x, dim):
    """softmax along axis ``dim`` (negative allowed)::

        y_i = exp(x_i - max_j x_j) / sum_k exp(x_k - max_j x_j)

    (subtracting the max changes nothing mathematically and avoids overflow).
    """
    x = _f64(x)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def softmax_backward(grad_out, x, dim):
    """Gradient of ``softmax``: grad_x = y * (g - sum_dim(g * y)), y = softmax(x, dim); returns ``(grad_x,)``."""
    y = softmax(x, dim)
    g = _grad(grad_out, y.shape)
    return (y * (g - (g * y).sum(axis=dim, keepdims=True)),)


def log_softmax(x, dim):
    """log_softmax along axis ``dim`` (negative allowed)::

        y_i = x_i - m - log(sum_k exp(x_k - m)),   m = max_j x_j
    """
    x = _f64(x)
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def log_softmax_backward(grad_out, x, dim):
    """Gradient of ``log_softmax``: grad_x = g - softmax(x, dim) * sum_dim(g); returns ``(grad_x,)``."""
    x = _f64(x)
    g = _grad(grad_out, x.shape)
    return (g - softmax(x, dim) * g.sum(axis=dim, keepdims=True),)


# ---------------------------------------------------------------------------
# Linear layer and loss
# ---------------------------------------------------------------------------

def linear(x, weight, bias=None):
    """Fully connected layer (``torch.nn.functional.linear``).

    x: (*, in_features); weight: (out_features, in_features); bias:
    (out_features,) or None::

        y = x @ weight^T + bias          shape (*, out_features)
    """
    x, w = _f64(x), _f64(weight)
    y = x @ w.T
    if bias is not None:
        y = y + _f64(bias)
    return y


def linear_backward(grad_out, x, weight, bias=None):
    """Gradients of ``linear``; returns ``(grad_x, grad_weight, grad_bias)``.

    With g = grad_out (*, out) and all leading axes flattened into rows::

        grad_x      = g @ weight                   shape (*, in)
        grad_weight = g^T @ x                      shape (out, in)
        grad_bias   = sum over rows of g           (None if bias is None)
    """
    x, w = _f64(x), _f64(weight)
    out_features, in_features = w.shape
    g = _grad(grad_out, x.shape[:-1] + (out_features,))
    g2, x2 = g.reshape(-1, out_features), x.reshape(-1, in_features)
    gb = None if bias is None else g2.sum(axis=0)
    return g @ w, g2.T @ x2, gb


def matmul(a, b):
    """Matrix product of 2-D arrays: y[i, j] = sum_k a[i, k] * b[k, j]."""
    return _f64(a) @ _f64(b)


def matmul_backward(grad_out, a, b):
    """Gradients of ``matmul``; returns ``(grad_out @ b^T, a^T @ grad_out)``."""
    a, b = _f64(a), _f64(b)
    g = _grad(grad_out, (a.shape[0], b.shape[1]))
    return g @ b.T, a.T @ g


def _ce_setup(input, target, reduction):
    z = _f64(input)
    t = np.asarray(target)
    if z.ndim != 2:
        raise ValueError(f"cross_entropy input must be (N, C), got shape {z.shape}")
    if t.shape != (z.shape[0],) or t.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy target must be integer class indices of shape ({z.shape[0]},)")
    if t.size and (t.min() < 0 or t.max() >= z.shape[1]):
        raise ValueError(f"cross_entropy target out of range [0, {z.shape[1]})")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return z, t


def cross_entropy(input, target, reduction="mean"):
    """Cross-entropy loss on logits (``torch.nn.functional.cross_entropy``).

    input: (N, C) logits; target: (N,) integer class indices in [0, C)::

        loss_i = -log_softmax(input, dim=1)[i, target_i]
               = logsumexp_c(input[i, c]) - input[i, target_i]

    reduction "mean": mean_i loss_i (np.float64 scalar); "sum": sum_i loss_i
    (np.float64 scalar); "none": the (N,) array of loss_i.
    """
    z, t = _ce_setup(input, target, reduction)
    losses = -log_softmax(z, 1)[np.arange(z.shape[0]), t]
    if reduction == "mean":
        return np.float64(losses.mean())
    if reduction == "sum":
        return np.float64(losses.sum())
    return losses


def cross_entropy_backward(grad_out, input, target, reduction="mean"):
    """Gradient of ``cross_entropy``; returns ``(grad_input, None)``.

    grad_out is a scalar for "mean"/"sum" and an (N,) array for "none"::

        grad_input[i, c] = w_i * (softmax(input, dim=1)[i, c] - [c == target_i])

    with w_i = grad_out / N ("mean"), grad_out ("sum"), grad_out[i] ("none").
    The target (integer indices) gets no gradient.
    """
    z, t = _ce_setup(input, target, reduction)
    N = z.shape[0]
    if reduction == "none":
        w = _grad(grad_out, (N,))[:, None]
    else:
        w = _grad(grad_out, ())
        if reduction == "mean":
            w = w / N
    p = softmax(z, 1)
    p[np.arange(N), t] -= 1.0
    return w * p, None


# ---------------------------------------------------------------------------
# Tensor ops (add, mul, cat), dropout, mse_loss, optimizer updates
# ---------------------------------------------------------------------------

__all__ += [
    "add", "add_backward", "mul", "mul_backward", "cat", "cat_backward",
    "dropout_uniform", "dropout", "dropout_backward", "mse_loss", "mse_loss_backward",
    "sgd_update", "adam_update",
]


def add(a, b):
    """Elementwise sum of two arrays of the same shape (no broadcasting)::

        y = a + b
    """
    a, b = _f64(a), _f64(b)
    if a.shape != b.shape:
        raise ValueError(f"add: a and b must have the same shape, got {a.shape} and {b.shape}")
    return a + b


def add_backward(grad_out, a, b):
    """Gradients of ``add``: ``(grad_out, grad_out)`` (two separate copies)."""
    g = _grad(grad_out, add(a, b).shape)
    return g.copy(), g.copy()


def _mul_axes(a, b):
    """The axes along which b (a's leading dims, then ones) is broadcast."""
    if a.ndim != b.ndim:
        raise ValueError(f"mul: a {a.shape} and b {b.shape} must have the same rank")
    last = max([i for i in range(b.ndim) if b.shape[i] != 1], default=-1)
    if a.shape[:last + 1] != b.shape[:last + 1]:
        raise ValueError(f"mul: b {b.shape} must be a's shape {a.shape} or its leading dims "
                         "followed by ones")
    return tuple(range(last + 1, a.ndim))


def mul(a, b):
    """Elementwise product; b has a's shape or a's leading dims followed by
    ones (e.g. (N, C, 1, 1) against (N, C, H, W)), broadcast over the rest::

        y[n, c, h, w] = a[n, c, h, w] * b[n, c, 0, 0]
    """
    a, b = _f64(a), _f64(b)
    _mul_axes(a, b)
    return a * b


def mul_backward(grad_out, a, b):
    """Gradients of ``mul``: ``(grad_out * b, sum_{broadcast axes}(grad_out * a))``,
    the second with b's shape (summed over H, W for (N, C, 1, 1) gating)."""
    a, b = _f64(a), _f64(b)
    axes = _mul_axes(a, b)
    g = _grad(grad_out, a.shape)
    return g * b, np.sum(g * a, axis=axes, keepdims=True).reshape(b.shape)


def cat(tensors, dim=1):
    """Concatenation along ``dim`` (``torch.cat``): all shapes equal except along dim."""
    arrays = [_f64(t) for t in tensors]
    if not arrays:
        raise ValueError("cat: tensors must be a non-empty sequence")
    return np.concatenate(arrays, axis=dim)


def cat_backward(grad_out, tensors, dim=1):
    """Gradients of ``cat``: grad_out split along dim into one slice per input
    (a tuple, in order)."""
    arrays = [_f64(t) for t in tensors]
    g = _grad(grad_out, cat(arrays, dim).shape)
    bounds = np.cumsum([a.shape[dim] for a in arrays])[:-1]
    return tuple(np.ascontiguousarray(s) for s in np.split(g, bounds, axis=dim))


_SPLITMIX_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def dropout_uniform(seed, n):
    """Dropout's counter-based uniforms u(seed, i) in [0, 1), i = 0 .. n-1.

    u(seed, i) = (splitmix64(seed, i) >> 40) / 2^24: the top 24 bits of the
    (i + 1)-th output of splitmix64 seeded with ``seed``, where (all uint64,
    wrapping)::

        z = seed + (i + 1) * 0x9E3779B97F4A7C15
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
        splitmix64(seed, i) = z ^ (z >> 31)

    Returned as float64 (exact: multiples of 2^-24).
    """
    i = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + i * _SPLITMIX_GAMMA
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / 2.0**24


def _dropout_factor(shape, p, training, seed):
    """mask / (1 - p) over the flat C-order index (1 where not training or p == 0)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return np.ones(shape)
    if p == 1.0:
        return np.zeros(shape)
    keep = dropout_uniform(seed, int(np.prod(shape))) >= p
    return (keep / (1.0 - p)).reshape(shape)


def dropout(x, p=0.5, training=True, seed=0):
    """Dropout with a reproducible mask (striate's definition)::

        y[i] = x[i] * mask[i] / (1 - p),   mask[i] = dropout_uniform(seed, n)[i] >= p

    over the flat index i; x unchanged when not training or p == 0, x * 0
    when p == 1 (NaN/Inf inputs give NaN there, as in torch).
    """
    x = _f64(x)
    with np.errstate(invalid="ignore"):
        return x * _dropout_factor(x.shape, p, training, seed)


def dropout_backward(grad_out, x, p=0.5, training=True, seed=0):
    """Gradient of ``dropout``: ``(grad_out * mask / (1 - p),)``, same mask."""
    x = _f64(x)
    g = _grad(grad_out, x.shape)
    with np.errstate(invalid="ignore"):
        return (g * _dropout_factor(x.shape, p, training, seed),)


def _mse_setup(input, target, reduction):
    x, t = _f64(input), _f64(target)
    if x.shape != t.shape:
        raise ValueError(f"mse_loss: target {t.shape} must have input's shape {x.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return x, t


def mse_loss(input, target, reduction="mean"):
    """Mean squared error (``torch.nn.functional.mse_loss``, same shapes)::

        l = (input - target)^2     elementwise ("none"); mean(l) ("mean"); sum(l) ("sum")
    """
    x, t = _mse_setup(input, target, reduction)
    sq = (x - t) ** 2
    if reduction == "mean":
        return np.float64(sq.mean()) if sq.size else np.float64(np.nan)
    if reduction == "sum":
        return np.float64(sq.sum())
    return sq


def mse_loss_backward(grad_out, input, target, reduction="mean"):
    """Gradients of ``mse_loss``: ``(g, -g)`` with
    g = 2 * (input - target) * grad_out, / input.size for "mean"; grad_out is
    a scalar for "mean"/"sum" and has input's shape for "none"."""
    x, t = _mse_setup(input, target, reduction)
    go = _grad(grad_out, x.shape if reduction == "none" else ())
    g = 2.0 * (x - t) * go
    if reduction == "mean" and x.size:
        g = g / x.size
    return g, -g


def sgd_update(param, grad, momentum_buffer, *, lr, momentum=0.0, dampening=0.0,
               nesterov=False, weight_decay=0.0, first_step=False):
    """One ``torch.optim.SGD`` step; returns new ``(param, momentum_buffer)``
    (the buffer None when momentum == 0) and mutates nothing::

        g = grad + weight_decay * param
        buf = g if first_step else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf      (when momentum != 0)
        param = param - lr * g
    """
    p, g = _f64(param), _f64(grad)
    g = g + weight_decay * p
    buf = None
    if momentum != 0:
        buf = g.copy() if first_step else momentum * _f64(momentum_buffer) + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


def adam_update(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
                eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False):
    """One ``torch.optim.Adam`` / ``AdamW`` step (step = 1, 2, ...); returns new
    ``(param, exp_avg, exp_avg_sq)`` and mutates nothing::

        AdamW: param = param * (1 - lr * weight_decay);  Adam: g = grad + weight_decay * param
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        param = param - lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
    """
    p, g = _f64(param), _f64(grad)
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = beta1 * _f64(exp_avg) + (1 - beta1) * g
    v = beta2 * _f64(exp_avg_sq) + (1 - beta2) * g * g
    denom = np.sqrt(v) / np.sqrt(1 - beta2**step) + eps
    return p - lr / (1 - beta1**step) * m / denom, m, v
