"""Tests of the NumPy oracle ``striate.reference``.

* Every ``*_backward`` is checked against central finite differences of
  ``sum(F(...) * g)`` in float64 for a random ``g``.
* Forward semantics are pinned by hand-computed values and by naive
  per-pixel loop implementations written independently of the oracle.
"""

import itertools

import numpy as np
import pytest

from striate import reference as ref

EPS = 1e-6


# ---------------------------------------------------------------------------
# Finite-difference machinery
# ---------------------------------------------------------------------------

def numerical_grad(f, a, eps=EPS):
    """Central-difference gradient of the scalar function f() w.r.t. array a (modified in place, then restored)."""
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        orig = a[idx]
        a[idx] = orig + eps
        fp = f()
        a[idx] = orig - eps
        fm = f()
        a[idx] = orig
        grad[idx] = (fp - fm) / (2 * eps)
    return grad


def check_backward(fwd, bwd, args, kwargs=None, grad_out=None, rng=None, wrt=None):
    """Compare bwd(g, *args, **kwargs) with finite differences of sum(fwd(*args) * g).

    ``args`` are float64 arrays / None / other values; gradients are checked
    for every float64 ndarray argument (or the positions in ``wrt``).
    """
    kwargs = kwargs or {}
    rng = rng or np.random.default_rng(0)
    args = list(args)
    y = fwd(*args, **kwargs)
    if grad_out is None:
        g = np.where(np.isfinite(y), rng.standard_normal(np.shape(y)), 0.0)
    else:
        g = grad_out
    snapshot = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    grads = bwd(g, *args, **kwargs)
    # backward must not mutate anything
    for a, s in zip(args, snapshot):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, s)
    assert isinstance(grads, tuple)
    array_positions = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    if wrt is None:
        wrt = [i for i in array_positions if args[i].dtype == np.float64]

    def loss():
        # outputs that are not finite (max-pool windows lying entirely in the
        # padding give -inf) are excluded by giving them a zero weight
        with np.errstate(invalid="ignore"):
            return float(np.sum(np.where(g != 0, fwd(*args, **kwargs) * g, 0.0)))

    for i in wrt:
        analytic = grads[i]
        assert analytic is not None, f"gradient {i} is None"
        assert analytic.shape == args[i].shape
        numeric = numerical_grad(loss, args[i])
        scale = max(1.0, float(np.max(np.abs(numeric))))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7 * scale,
                                   err_msg=f"gradient of argument {i}")
    return grads


# ---------------------------------------------------------------------------
# Naive per-pixel forward implementations (independent of the oracle)
# ---------------------------------------------------------------------------

def naive_conv2d(x, w, b, stride, pads, dilation, groups):
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    pt, pb, pl, pr = pads
    oh = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((N, O, oh, ow))
    og = O // groups
    for n, o, r, c in itertools.product(range(N), range(O), range(oh), range(ow)):
        g = o // og
        acc = 0.0 if b is None else b[o]
        for ci, i, j in itertools.product(range(Cg), range(kh), range(kw)):
            hr, wc = r * sh + i * dh - pt, c * sw + j * dw - pl
            if 0 <= hr < H and 0 <= wc < W:
                acc += w[o, ci, i, j] * x[n, g * Cg + ci, hr, wc]
        y[n, o, r, c] = acc
    return y


def naive_pool(x, k, s, p, d, out, mode, count_include_pad=True):
    N, C, H, W = x.shape
    y = np.zeros((N, C) + out)
    for n, c, r, q in itertools.product(range(N), range(C), range(out[0]), range(out[1])):
        hs, ws = r * s[0] - p[0], q * s[1] - p[1]
        if mode == "max":
            best = -np.inf
            for i, j in itertools.product(range(k[0]), range(k[1])):
                hr, wc = hs + i * d[0], ws + j * d[1]
                if 0 <= hr < H and 0 <= wc < W:
                    best = max(best, x[n, c, hr, wc])
            y[n, c, r, q] = best
        else:
            he, we = min(hs + k[0], H + p[0]), min(ws + k[1], W + p[1])
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
            if not count_include_pad:
                size = (he - hs) * (we - ws)
            y[n, c, r, q] = x[n, c, hs:he, ws:we].sum() / size
    return y


def distinct(rng, shape):
    """Random values that are pairwise >= 0.1 apart (no ties, safe for finite differences of max)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - 0.05 * n).reshape(shape) + rng.uniform(-0.01, 0.01, shape)


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------

# (x shape, weight shape, bias?, kwargs)
CONV_CASES = [
    ((2, 3, 6, 7), (4, 3, 3, 3), True, {}),
    ((2, 3, 7, 7), (4, 3, 3, 3), False, dict(stride=2, padding=1)),
    ((1, 2, 8, 7), (3, 2, 3, 3), True, dict(dilation=2, padding=(2, 1))),
    ((2, 4, 6, 6), (6, 2, 3, 3), True, dict(groups=2, padding=1)),
    ((1, 4, 6, 6), (8, 1, 3, 3), True, dict(groups=4, stride=2, padding=1)),  # depthwise x2
    ((1, 3, 5, 5), (3, 1, 3, 3), False, dict(groups=3, padding="same")),      # depthwise
    ((1, 2, 6, 7), (3, 2, 2, 3), True, dict(stride=(2, 1), padding=(0, 1))),
    ((1, 2, 6, 7), (3, 2, 4, 2), True, dict(padding="same", dilation=(1, 2))),
    ((2, 3, 5, 6), (2, 3, 2, 2), False, dict(padding="valid")),
    ((2, 3, 5, 5), (4, 3, 1, 1), True, dict(stride=2)),
]


@pytest.mark.parametrize("xs,ws,has_bias,kw", CONV_CASES)
def test_conv2d_backward(xs, ws, has_bias, kw):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if has_bias else None
    gx, gw, gb = check_backward(ref.conv2d, ref.conv2d_backward, [x, w, b], kw, rng=rng)
    assert (gb is None) == (b is None)


@pytest.mark.parametrize("xs,ws,has_bias,kw", CONV_CASES)
def test_conv2d_matches_naive(xs, ws, has_bias, kw):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if has_bias else None
    s, d = kw.get("stride", 1), kw.get("dilation", 1)
    s = (s, s) if isinstance(s, int) else s
    d = (d, d) if isinstance(d, int) else d
    p = kw.get("padding", 0)
    if p == "valid":
        pads = (0, 0, 0, 0)
    elif p == "same":
        th, tw = d[0] * (ws[2] - 1), d[1] * (ws[3] - 1)
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        p = (p, p) if isinstance(p, int) else p
        pads = (p[0], p[0], p[1], p[1])
    expected = naive_conv2d(x, w, b, s, pads, d, kw.get("groups", 1))
    np.testing.assert_allclose(ref.conv2d(x, w, b, **kw), expected, rtol=1e-12, atol=1e-12)


def test_conv2d_output_size():
    assert ref.conv2d_output_size(7, 3, 2, 1, 1, 1) == 4
    assert ref.conv2d_output_size(224, 7, 2, 3, 3, 1) == 112
    assert ref.conv2d_output_size(8, 3, 1, 0, 0, 2) == 4      # effective kernel 5
    assert ref.conv2d_output_size(6, 2, 2, 0, 1, 1) == 3
    x = np.zeros((1, 1, 7, 9))
    assert ref.conv2d(x, np.zeros((2, 1, 3, 3)), stride=2, padding=1).shape == (1, 2, 4, 5)


def test_conv2d_hand_values_and_same_padding():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    y = ref.conv2d(x, np.ones((1, 1, 2, 2)), bias=np.array([0.5]))
    np.testing.assert_array_equal(y[0, 0], [[8.5, 12.5], [20.5, 24.5]])
    # "same" with an even kernel (4, 2): pads top 1, bottom 2, left 0, right 1
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((3, 2, 4, 2))
    y = ref.conv2d(x, w, padding="same")
    assert y.shape == (1, 3, 5, 6)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)))
    np.testing.assert_allclose(y, ref.conv2d(xp, w), rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError):
        ref.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError):
        ref.conv2d(x, np.zeros((3, 1, 3, 3)))           # wrong in-channels per group


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

MAXPOOL_CASES = [
    ((2, 2, 6, 6), dict(kernel_size=2)),
    ((1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 6, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ((1, 2, 8, 7), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 1))),
    ((1, 1, 7, 6), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    ((1, 1, 5, 5), dict(kernel_size=3, stride=1, padding=1)),          # heavy overlap
    ((1, 1, 2, 4), dict(kernel_size=2, stride=1, padding=1, dilation=3)),  # has all-padding windows
]


def _pool_params(kw):
    k = kw["kernel_size"]
    k = (k, k) if isinstance(k, int) else k
    s = kw.get("stride", k)
    s = (s, s) if isinstance(s, int) else s
    p = kw.get("padding", 0)
    p = (p, p) if isinstance(p, int) else p
    d = kw.get("dilation", 1)
    d = (d, d) if isinstance(d, int) else d
    return k, s, p, d


@pytest.mark.parametrize("xs,kw", MAXPOOL_CASES)
def test_max_pool2d_backward(xs, kw):
    rng = np.random.default_rng(4)
    x = distinct(rng, xs)
    check_backward(ref.max_pool2d, ref.max_pool2d_backward, [x], kw, rng=rng)


@pytest.mark.parametrize("xs,kw", MAXPOOL_CASES)
def test_max_pool2d_matches_naive(xs, kw):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs)
    k, s, p, d = _pool_params(kw)
    y = ref.max_pool2d(x, **kw)
    np.testing.assert_array_equal(y, naive_pool(x, k, s, p, d, y.shape[2:], "max"))


def test_pool2d_output_size():
    assert ref.pool2d_output_size(5, 2, 2, 0, 1, False) == 2
    assert ref.pool2d_output_size(5, 2, 2, 0, 1, True) == 3
    assert ref.pool2d_output_size(112, 3, 2, 1, 1, False) == 56
    assert ref.pool2d_output_size(7, 3, 2, 1, 2, False) == 3
    # ceil_mode drops a last window that would start at or beyond H + pad
    assert ref.pool2d_output_size(6, 2, 3, 0, 1, True) == 2
    assert ref.pool2d_output_size(6, 2, 3, 0, 1, False) == 2
    assert ref.pool2d_output_size(7, 2, 3, 0, 1, True) == 3
    assert ref.max_pool2d(np.zeros((1, 1, 6, 5)), 3, 2, ceil_mode=True).shape == (1, 1, 3, 2)


def test_max_pool2d_ties_nan_and_padding_windows():
    # tie: the first maximum in row-major order receives the gradient
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    assert ref.max_pool2d(x, 2)[0, 0, 0, 0] == 3.0
    (gx,) = ref.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)
    np.testing.assert_array_equal(gx[0, 0], [[0, 1], [0, 0]])
    # NaN propagates and takes the gradient
    x = np.array([[[[1.0, np.nan], [5.0, 2.0]]]])
    assert np.isnan(ref.max_pool2d(x, 2)[0, 0, 0, 0])
    (gx,) = ref.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)
    np.testing.assert_array_equal(gx[0, 0], [[0, 1], [0, 0]])
    # H = 2, k = 2, dilation 3, pad 1: the only window row reads rows {-1, 2}: all padding
    x = np.arange(1.0, 9.0).reshape(1, 1, 2, 4)
    y = ref.max_pool2d(x, 2, stride=1, padding=1, dilation=3)
    assert y.shape == (1, 1, 1, 3)
    assert np.all(np.isneginf(y))
    (gx,) = ref.max_pool2d_backward(np.ones(y.shape), x, 2, stride=1, padding=1, dilation=3)
    np.testing.assert_array_equal(gx, 0)
    # windows of -inf inputs select their first input element
    x = np.full((1, 1, 2, 2), -np.inf)
    (gx,) = ref.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)
    np.testing.assert_array_equal(gx[0, 0], [[1, 0], [0, 0]])
    with pytest.raises(ValueError):
        ref.max_pool2d(np.zeros((1, 1, 5, 5)), 2, padding=2)   # pad > kernel/2


AVGPOOL_CASES = [
    ((2, 2, 6, 6), dict(kernel_size=2)),
    ((1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 6, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ((1, 2, 4, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 1, 6, 7), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True)),
    ((1, 1, 5, 5), dict(kernel_size=3, stride=1, padding=1)),
]


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("xs,kw", AVGPOOL_CASES)
def test_avg_pool2d_backward(xs, kw, count_include_pad):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(xs)
    check_backward(ref.avg_pool2d, ref.avg_pool2d_backward, [x],
                   dict(kw, count_include_pad=count_include_pad), rng=rng)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("xs,kw", AVGPOOL_CASES)
def test_avg_pool2d_matches_naive(xs, kw, count_include_pad):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(xs)
    k, s, p, d = _pool_params(kw)
    y = ref.avg_pool2d(x, **kw, count_include_pad=count_include_pad)
    expected = naive_pool(x, k, s, p, d, y.shape[2:], "avg", count_include_pad)
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-14)


def test_avg_pool2d_divisors():
    x = np.ones((1, 1, 4, 4))
    # corner window of k=3, s=2, p=1 covers 2x2 real elements of 3x3
    assert ref.avg_pool2d(x, 3, 2, 1)[0, 0, 0, 0] == pytest.approx(4 / 9)
    assert ref.avg_pool2d(x, 3, 2, 1, count_include_pad=False)[0, 0, 0, 0] == 1.0
    # ceil_mode: last window starts at row 3, ends at min(6, H + p = 5): pool size 2 per dim
    y = ref.avg_pool2d(x, 3, 2, 1, ceil_mode=True)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 2, 2] == pytest.approx(1 / 4)
    assert y[0, 0, 0, 2] == pytest.approx(2 / 6)
    assert ref.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)[0, 0, 2, 2] == 1.0


@pytest.mark.parametrize("xs,out", [
    ((2, 2, 7, 7), 3),
    ((1, 3, 5, 6), (2, 4)),
    ((1, 2, 5, 6), (None, 4)),
    ((1, 2, 3, 4), (5, 7)),       # output larger than input: overlapping bins
    ((1, 1, 6, 6), 1),            # global average
    ((1, 1, 4, 6), (4, 6)),       # identity
])
def test_adaptive_avg_pool2d_backward(xs, out):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(xs)
    check_backward(ref.adaptive_avg_pool2d, ref.adaptive_avg_pool2d_backward, [x],
                   dict(output_size=out), rng=rng)


def test_adaptive_avg_pool2d_bins():
    x = np.arange(7.0).reshape(1, 1, 1, 7)
    # 7 -> 3: bins [0, 3), [2, 5), [4, 7)
    y = ref.adaptive_avg_pool2d(x, (1, 3))
    np.testing.assert_allclose(y[0, 0, 0], [1.0, 3.0, 5.0])
    # 5 -> 2: bins [0, 3), [2, 5)
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    np.testing.assert_allclose(ref.adaptive_avg_pool2d(x, (2, None))[0, 0, :, 0], [1.0, 3.0])
    x = np.random.default_rng(9).standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(ref.adaptive_avg_pool2d(x, 1)[..., 0, 0], x.mean(axis=(2, 3)))


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------

def _bn_no_update(x, running_mean, running_var, weight=None, bias=None, **kw):
    """batch_norm without touching the caller's running stats (for finite differences)."""
    rm = None if running_mean is None else running_mean.copy()
    rv = None if running_var is None else running_var.copy()
    return ref.batch_norm(x, rm, rv, weight, bias, **kw)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("xs", [(6, 3), (3, 2, 4, 3), (4, 3, 5)])
def test_batch_norm_backward(xs, affine, training):
    rng = np.random.default_rng(10)
    C = xs[1]
    x = rng.standard_normal(xs) * 2.0 + 0.5
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    w = rng.uniform(0.5, 1.5, C) if affine else None
    b = rng.standard_normal(C) if affine else None
    rm0, rv0 = rm.copy(), rv.copy()
    grads = check_backward(_bn_no_update, ref.batch_norm_backward, [x, rm, rv, w, b],
                           dict(training=training, momentum=0.1, eps=1e-5),
                           rng=rng, wrt=[0] + ([3, 4] if affine else []))
    gx, grm, grv, gw, gb = grads
    assert grm is None and grv is None
    assert (gw is None) == (not affine) and (gb is None) == (not affine)
    np.testing.assert_array_equal(rm, rm0)
    np.testing.assert_array_equal(rv, rv0)
    if training:  # gradient through batch statistics: sums to zero per channel
        axes = (0,) + tuple(range(2, x.ndim))
        np.testing.assert_allclose(gx.sum(axis=axes), 0, atol=1e-10)


def test_batch_norm_running_stats_update():
    x = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [6.0, 60.0]])
    rm = np.array([0.5, -1.0], dtype=np.float32)
    rv = np.array([1.0, 2.0], dtype=np.float32)
    rm_id, rv_id = id(rm), id(rv)
    y = ref.batch_norm(x, rm, rv, training=True, momentum=0.25, eps=0.0)
    mean = np.array([3.0, 30.0])
    var_unbiased = np.array([14.0 / 3.0, 1400.0 / 3.0])   # sum of squares 14 (and 1400) / (4 - 1)
    assert id(rm) == rm_id and id(rv) == rv_id and rm.dtype == np.float32
    np.testing.assert_allclose(rm, 0.75 * np.array([0.5, -1.0]) + 0.25 * mean, rtol=1e-6)
    np.testing.assert_allclose(rv, 0.75 * np.array([1.0, 2.0]) + 0.25 * var_unbiased, rtol=1e-6)
    # normalisation itself uses the biased variance (14 / 4)
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - 3.0) / np.sqrt(3.5))
    np.testing.assert_allclose(y[:, 1], y[:, 0])
    # eval mode uses the running statistics and does not change them
    rm2, rv2 = rm.astype(np.float64), rv.astype(np.float64)
    y = ref.batch_norm(x, rm, rv, np.array([2.0, 1.0]), np.array([0.0, 1.0]), eps=1e-5)
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - rm2[0]) / np.sqrt(rv2[0] + 1e-5) * 2.0, rtol=1e-12)
    np.testing.assert_array_equal(rm, rm2)
    np.testing.assert_array_equal(rv, rv2)
    # training without running stats is fine
    ref.batch_norm(x, None, None, training=True)
    with pytest.raises(ValueError):
        ref.batch_norm(x[:1], None, None, training=True)   # one value per channel


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("C", [3, 7])
def test_local_response_norm_backward(size, C):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, C, 3, 2))
    # large alpha so the normalising term matters in the gradient
    check_backward(ref.local_response_norm, ref.local_response_norm_backward, [x],
                   dict(size=size, alpha=0.5, beta=0.75, k=1.5), rng=rng)


def test_local_response_norm_backward_3d_input():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 5, 4))
    check_backward(ref.local_response_norm, ref.local_response_norm_backward, [x],
                   dict(size=3, alpha=0.3, beta=0.6, k=2.0), rng=rng)


def test_local_response_norm_hand_values():
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    # size 2: window of channel c is [c - 1, c]
    y = ref.local_response_norm(x, 2, alpha=1.0, beta=1.0, k=1.0)[0, :, 0, 0]
    np.testing.assert_allclose(y, [1 / (1 + 1 / 2), 2 / (1 + 5 / 2), 3 / (1 + 13 / 2)])
    # size 5 > C: every window holds all three channels, divisor still 5
    y = ref.local_response_norm(x, 5, alpha=1.0, beta=0.5, k=2.0)[0, :, 0, 0]
    np.testing.assert_allclose(y, np.array([1.0, 2.0, 3.0]) / np.sqrt(2 + 14 / 5))


# ---------------------------------------------------------------------------
# Activations, softmax
# ---------------------------------------------------------------------------

def _away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5
    return x


@pytest.mark.parametrize("name,kw", [
    ("relu", {}), ("leaky_relu", {}), ("leaky_relu", dict(negative_slope=0.2)),
    ("sigmoid", {}), ("tanh", {}),
])
def test_activation_backward(name, kw):
    rng = np.random.default_rng(13)
    x = _away_from_zero(rng, (3, 4, 5)) * 3.0
    check_backward(getattr(ref, name), getattr(ref, name + "_backward"), [x], kw, rng=rng)


def test_activation_hand_values():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(ref.relu(x), [0, 0, 3])
    np.testing.assert_array_equal(ref.relu_backward(np.ones(3), x)[0], [0, 0, 1])
    np.testing.assert_allclose(ref.leaky_relu(x), [-0.02, 0, 3])
    np.testing.assert_allclose(ref.leaky_relu_backward(np.ones(3), x, 0.2)[0], [0.2, 0.2, 1])
    np.testing.assert_allclose(ref.sigmoid(x), 1 / (1 + np.exp(-x)))
    with np.errstate(over="raise", invalid="raise"):
        np.testing.assert_allclose(ref.sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])
    np.testing.assert_allclose(ref.tanh(x), np.tanh(x))


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2])
def test_softmax_backward(fn, dim):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 4, 5)) * 2.0
    check_backward(getattr(ref, fn), getattr(ref, fn + "_backward"), [x], dict(dim=dim), rng=rng)


def test_softmax_semantics():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3, 4, 5))
    for dim in (0, 1, 2, -1):
        np.testing.assert_allclose(ref.softmax(x, dim).sum(axis=dim), 1.0, rtol=1e-14)
        np.testing.assert_allclose(ref.log_softmax(x, dim), np.log(ref.softmax(x, dim)), atol=1e-14)
    big = np.array([[1000.0, 1000.0, 0.0]])
    np.testing.assert_allclose(ref.softmax(big, 1), [[0.5, 0.5, 0.0]])
    np.testing.assert_allclose(ref.log_softmax(big, -1)[0, :2], np.log(0.5))


# ---------------------------------------------------------------------------
# Linear and cross-entropy
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("xs", [(4, 5), (2, 3, 5), (5,)])
@pytest.mark.parametrize("has_bias", [True, False])
def test_linear_backward(xs, has_bias):
    rng = np.random.default_rng(16)
    x, w = rng.standard_normal(xs), rng.standard_normal((3, 5))
    b = rng.standard_normal(3) if has_bias else None
    gx, gw, gb = check_backward(ref.linear, ref.linear_backward, [x, w, b], rng=rng)
    assert (gb is None) == (not has_bias)
    np.testing.assert_allclose(ref.linear(x, w, b), x @ w.T + (0 if b is None else b), rtol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_backward(reduction):
    rng = np.random.default_rng(17)
    z = rng.standard_normal((5, 4)) * 2.0
    t = np.array([0, 3, 1, 1, 2])
    g = rng.standard_normal(5) if reduction == "none" else 0.7
    gz, gt = check_backward(ref.cross_entropy, ref.cross_entropy_backward, [z, t],
                            dict(reduction=reduction), grad_out=g, rng=rng, wrt=[0])
    assert gt is None


def test_cross_entropy_values():
    z = np.zeros((3, 4))
    t = np.array([0, 1, 3])
    loss = ref.cross_entropy(z, t)
    assert isinstance(loss, np.float64) and loss == pytest.approx(np.log(4))
    assert ref.cross_entropy(z, t, reduction="sum") == pytest.approx(3 * np.log(4))
    np.testing.assert_allclose(ref.cross_entropy(z, t, reduction="none"), np.full(3, np.log(4)))
    z = np.array([[2.0, 0.0], [0.0, 1000.0]])
    np.testing.assert_allclose(ref.cross_entropy(z, [1, 1], reduction="none"),
                               [2.0 + np.log1p(np.exp(-2.0)), 0.0], atol=1e-12)
    with pytest.raises(ValueError):
        ref.cross_entropy(z, [0, 2])


# ---------------------------------------------------------------------------
# Backward functions do not mutate their inputs
# ---------------------------------------------------------------------------

def test_backward_does_not_mutate():
    rng = np.random.default_rng(18)
    x = rng.standard_normal((2, 3, 5, 5))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    rm = np.zeros(3, dtype=np.float32)
    rv = np.ones(3, dtype=np.float32)
    g, beta = rng.standard_normal(3), rng.standard_normal(3)
    saved = [a.copy() for a in (x, w, b, rm, rv, g, beta)]
    gy = rng.standard_normal((2, 4, 3, 3))
    gy0 = gy.copy()
    ref.conv2d_backward(gy, x, w, b)
    gy2 = rng.standard_normal(x.shape)
    gy20 = gy2.copy()
    ref.batch_norm_backward(gy2, x, rm, rv, g, beta, training=True)
    ref.batch_norm_backward(gy2, x, rm, rv, g, beta, training=False)
    ref.max_pool2d_backward(rng.standard_normal((2, 3, 2, 2)), x, 2)
    ref.avg_pool2d_backward(rng.standard_normal((2, 3, 3, 3)), x, 3, 2, 1)
    ref.local_response_norm_backward(gy2, x, 3)
    ref.softmax_backward(gy2, x, 1)
    for a, s in zip((x, w, b, rm, rv, g, beta), saved):
        np.testing.assert_array_equal(a, s)
    np.testing.assert_array_equal(gy, gy0)
    np.testing.assert_array_equal(gy2, gy20)
