"""Pooling ops (max_pool2d, avg_pool2d, adaptive_avg_pool2d), forward and
backward, against the NumPy oracle ``striate.reference`` (and PyTorch when it
is installed)."""


import numpy as np
import pytest

from helpers import assert_all_close, assert_close, rand, raises, torch_or_skip
from striate import ops
from striate import reference as ref

N_RANDOM = 40
CHANNELS = (1, 3, 5, 17)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _maybe_pair(rng, v):
    """An (h, w) pair as an int when square (sometimes), else a tuple or list."""
    if v[0] == v[1] and rng.random() < 0.5:
        return v[0]
    return tuple(v) if rng.random() < 0.5 else list(v)


def _draw_pool(rng, with_dilation):
    """A random valid pooling configuration: (x shape, kwargs)."""
    while True:
        k = [int(rng.integers(1, 5)) for _ in range(2)]
        s = [int(rng.integers(1, 4)) for _ in range(2)]
        p = [int(rng.integers(0, kk // 2 + 1)) for kk in k]
        d = [int(rng.integers(1, 4)) for _ in range(2)] if with_dilation else [1, 1]
        ceil_mode = bool(rng.integers(2))
        n = 1 if rng.random() < 0.5 else int(rng.integers(2, 4))
        c = int(rng.choice(CHANNELS))
        h, w = (1, 1) if rng.random() < 0.1 else (int(rng.integers(1, 11)), int(rng.integers(1, 11)))
        out = [ref.pool2d_output_size(nn, k[i], s[i], p[i], d[i], ceil_mode)
               for i, nn in enumerate((h, w))]
        if min(out) < 1:
            continue
        kw = {"kernel_size": _maybe_pair(rng, k), "padding": _maybe_pair(rng, p),
              "ceil_mode": ceil_mode}
        if s == k and rng.random() < 0.5:
            kw["stride"] = None if rng.random() < 0.7 else []
        else:
            kw["stride"] = _maybe_pair(rng, s)
        if with_dilation:
            kw["dilation"] = _maybe_pair(rng, d)
        else:
            kw["count_include_pad"] = bool(rng.integers(2))
        return (n, c, h, w), kw


def _check_op(name, x, *args, rng=None, **kwargs):
    """Forward and backward of ops.<name> against ref.<name>; returns (y, gx)."""
    rng = rng or np.random.default_rng(0)
    fwd, bwd = getattr(ops, name), getattr(ops, name + "_backward")
    # the oracle spells "stride = kernel_size" only as None and takes plain pairs
    ref_kwargs = dict(kwargs)
    if isinstance(ref_kwargs.get("stride"), list) and not ref_kwargs["stride"]:
        ref_kwargs["stride"] = None
    ref_args = [tuple(a.tolist()) if isinstance(a, np.ndarray) else a for a in args]
    y = fwd(x, *args, **kwargs)
    y_ref = getattr(ref, name)(x, *ref_args, **ref_kwargs)
    assert y.dtype == np.float32
    assert_close(y, y_ref, what=f"{name} forward")
    g = rand(rng, *y.shape)
    x_before, g_before = x.copy(), g.copy()
    grads = bwd(g, x, *args, **kwargs)
    grads_ref = getattr(ref, name + "_backward")(g, x, *ref_args, **ref_kwargs)
    assert isinstance(grads, tuple) and len(grads) == 1
    assert grads[0].dtype == np.float32
    assert_all_close(grads, grads_ref, what=f"{name} backward")
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(g, g_before)
    return y, grads[0]


# ---------------------------------------------------------------------------
# Randomized comparisons with the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_max_pool2d_random(seed):
    rng = np.random.default_rng(1000 + seed)
    shape, kw = _draw_pool(rng, with_dilation=True)
    _check_op("max_pool2d", rand(rng, *shape), rng=rng, **kw)


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_avg_pool2d_random(seed):
    rng = np.random.default_rng(2000 + seed)
    shape, kw = _draw_pool(rng, with_dilation=False)
    _check_op("avg_pool2d", rand(rng, *shape), rng=rng, **kw)


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_adaptive_avg_pool2d_random(seed):
    rng = np.random.default_rng(3000 + seed)
    n, c = int(rng.integers(1, 4)), int(rng.choice(CHANNELS))
    h, w = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    oh, ow = int(rng.integers(1, h + 3)), int(rng.integers(1, w + 3))
    r = rng.random()
    if r < 0.2:
        output_size = oh
    elif r < 0.4:
        output_size = (None, ow) if rng.random() < 0.5 else [oh, None]
    else:
        output_size = (oh, ow)
    _check_op("adaptive_avg_pool2d", rand(rng, n, c, h, w), output_size, rng=rng)


# ---------------------------------------------------------------------------
# Fixed cases: pairs, 1x1 images, adaptive bins that do not divide
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape, kw", [
    ((2, 3, 9, 7), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1))),
    ((1, 5, 8, 8), dict(kernel_size=(3, 1), stride=(3, 1), padding=(1, 0), ceil_mode=True)),
    ((1, 1, 1, 1), dict(kernel_size=1)),
    ((1, 3, 1, 1), dict(kernel_size=2, stride=2, padding=1)),
    ((1, 3, 1, 1), dict(kernel_size=3, stride=1, padding=1, dilation=1)),
    ((1, 3, 1, 1), dict(kernel_size=(1, 3), stride=2, padding=(0, 1), ceil_mode=True)),
    ((2, 17, 6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 5, 6), dict(kernel_size=[4, 2], stride=[], padding=[2, 1], ceil_mode=True)),
])
def test_max_pool2d_cases(shape, kw):
    _check_op("max_pool2d", rand(np.random.default_rng(1), *shape), **kw)


@pytest.mark.parametrize("shape, kw", [
    ((2, 3, 9, 7), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0))),
    ((1, 5, 8, 8), dict(kernel_size=(3, 1), stride=(3, 1), padding=(1, 0), ceil_mode=True)),
    ((1, 1, 1, 1), dict(kernel_size=1)),
    ((1, 3, 1, 1), dict(kernel_size=2, stride=2, padding=1, count_include_pad=False)),
    ((1, 3, 1, 1), dict(kernel_size=2, stride=2, padding=1, count_include_pad=True)),
    ((2, 17, 6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                         count_include_pad=False)),
    ((1, 2, 5, 6), dict(kernel_size=[4, 2], stride=None, padding=[2, 1], ceil_mode=True)),
    ((1, 4, 7, 7), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True,
                        count_include_pad=True)),
])
def test_avg_pool2d_cases(shape, kw):
    _check_op("avg_pool2d", rand(np.random.default_rng(2), *shape), **kw)


@pytest.mark.parametrize("shape, output_size, expected", [
    ((2, 3, 7, 7), 3, (3, 3)),
    ((1, 5, 5, 5), (2, 4), (2, 4)),
    ((1, 3, 6, 7), (None, 3), (6, 3)),
    ((1, 3, 6, 7), [4, None], (4, 7)),
    ((2, 17, 14, 14), 1, (1, 1)),
    ((1, 2, 3, 2), 5, (5, 5)),
    ((1, 1, 1, 1), (2, 3), (2, 3)),
    ((1, 3, 9, 10), np.array([4, 3]), (4, 3)),
])
def test_adaptive_avg_pool2d_cases(shape, output_size, expected):
    y, _ = _check_op("adaptive_avg_pool2d", rand(np.random.default_rng(3), *shape), output_size)
    assert y.shape == shape[:2] + expected


# ---------------------------------------------------------------------------
# Max-pool selection rule: ties, -inf, windows in the padding, NaN
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=2, stride=1, dilation=2, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True),
])
def test_max_pool2d_ties_go_to_first(kw):
    rng = np.random.default_rng(4)
    x = rng.integers(-1, 2, size=(2, 3, 7, 6)).astype(np.float32)  # many exact ties
    _check_op("max_pool2d", x, **kw)
    # constant input: every gradient goes to each window's first valid element
    x = np.ones((1, 1, 4, 4), np.float32)
    (gx,) = ops.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), x, 2)
    np.testing.assert_array_equal(gx[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0],
                                             [1, 0, 1, 0], [0, 0, 0, 0]])


def test_max_pool2d_all_neg_inf():
    x = np.full((1, 2, 5, 5), -np.inf, np.float32)
    kw = dict(kernel_size=3, stride=2, padding=1)
    y = ops.max_pool2d(x, **kw)
    np.testing.assert_array_equal(y, ref.max_pool2d(x, **kw))
    assert np.all(y == -np.inf)
    g = rand(np.random.default_rng(5), *y.shape)
    (gx,) = ops.max_pool2d_backward(g, x, **kw)
    assert_close(gx, ref.max_pool2d_backward(g, x, **kw)[0])
    # window (0, 0) covers input rows/cols 0..1: its first valid element is (0, 0)
    assert gx[0, 0, 0, 0] == g[0, 0, 0, 0]


def test_max_pool2d_window_in_padding():
    # taps at rows/cols o*s - 1 and o*s + 2 (dilation 3): with H = 2 the only
    # row window holds no input element, so the output is -inf, no gradient.
    x = rand(np.random.default_rng(6), 1, 2, 2, 5)
    kw = dict(kernel_size=2, stride=(2, 1), padding=1, dilation=3)
    y = ops.max_pool2d(x, **kw)
    np.testing.assert_array_equal(y, ref.max_pool2d(x, **kw))
    assert y.shape == (1, 2, 1, 4) and np.all(y == -np.inf)
    (gx,) = ops.max_pool2d_backward(np.ones_like(y), x, **kw)
    np.testing.assert_array_equal(gx, 0.0)
    # (With padding <= kernel_size // 2 such a window needs kernel 2, padding 1
    # and dilation > the input size, which leaves a single window on that axis:
    # the whole output is -inf then.)
    x = rand(np.random.default_rng(7), 2, 3, 6, 2)
    kw = dict(kernel_size=2, stride=1, padding=1, dilation=3, ceil_mode=True)
    y = ops.max_pool2d(x, **kw)
    np.testing.assert_array_equal(y, ref.max_pool2d(x, **kw))
    assert y.shape == (2, 3, 5, 1) and np.all(y == -np.inf)
    g = rand(np.random.default_rng(8), *y.shape)
    (gx,) = ops.max_pool2d_backward(g, x, **kw)
    np.testing.assert_array_equal(gx, ref.max_pool2d_backward(g, x, **kw)[0])
    np.testing.assert_array_equal(gx, 0.0)


def test_max_pool2d_nan_propagates():
    rng = np.random.default_rng(9)
    x = rand(rng, 2, 3, 8, 8)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 2, 3] = x[0, 1, 3, 3] = np.nan  # two NaNs in one window: the last wins
    x[1, 2, 0, 0] = -np.inf
    x[1, 2, 7, 7] = np.inf
    for kw in (dict(kernel_size=3, stride=2, padding=1),
               dict(kernel_size=2, stride=1, dilation=2, ceil_mode=True)):
        y, y_ref = ops.max_pool2d(x, **kw), ref.max_pool2d(x, **kw)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref))
        assert np.isnan(y).any()
        np.testing.assert_array_equal(y[~np.isnan(y)], y_ref[~np.isnan(y_ref)])
        g = rand(rng, *y.shape)
        (gx,) = ops.max_pool2d_backward(g, x, **kw)
        assert_close(gx, ref.max_pool2d_backward(g, x, **kw)[0])


# ---------------------------------------------------------------------------
# Conversions, immutability, determinism
# ---------------------------------------------------------------------------

_OPS = [
    ("max_pool2d", (3,), dict(stride=2, padding=1, dilation=1, ceil_mode=True)),
    ("avg_pool2d", ((3, 2),), dict(stride=(2, 1), padding=1, count_include_pad=False)),
    ("adaptive_avg_pool2d", ((3, None),), {}),
]


@pytest.mark.parametrize("name, args, kw", _OPS)
def test_float64_and_noncontiguous_inputs(name, args, kw):
    rng = np.random.default_rng(10)
    base = rng.standard_normal((3, 2, 9, 8))  # float64
    x = base.transpose(1, 0, 3, 2)  # (2, 3, 8, 9), non-contiguous float64
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    fwd, bwd = getattr(ops, name), getattr(ops, name + "_backward")
    y = fwd(x, *args, **kw)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, fwd(x32, *args, **kw))
    assert_close(y, getattr(ref, name)(x32, *args, **kw))
    g = rng.standard_normal(y.shape[::-1]).T  # non-contiguous float64 grad_out
    g32 = np.ascontiguousarray(g, dtype=np.float32)
    x_before, g_before = x.copy(), g.copy()
    (gx,) = bwd(g, x, *args, **kw)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(g, g_before)
    np.testing.assert_array_equal(gx, bwd(g32, x32, *args, **kw)[0])
    # integer input is converted too
    xi = rng.integers(-5, 5, size=(1, 2, 6, 6))
    assert_close(fwd(xi, *args, **kw), getattr(ref, name)(xi, *args, **kw))


@pytest.mark.parametrize("name, args, kw", _OPS)
def test_grad_out_wrong_shape(name, args, kw):
    x = rand(np.random.default_rng(11), 2, 3, 8, 9)
    y = getattr(ops, name)(x, *args, **kw)
    bwd = getattr(ops, name + "_backward")
    for shape in (y.shape[:3] + (y.shape[3] + 1,), y.shape[1:], x.shape):
        with raises(ValueError, "grad_out", str(tuple(y.shape))):
            bwd(np.zeros(shape, np.float32), x, *args, **kw)


def test_raw_binding_rejects_wrong_dtype():
    from striate import _C
    x = np.zeros((1, 1, 4, 4))
    with raises(TypeError, "x", "float32"):
        _C.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    with raises(TypeError, "x", "float32"):
        _C.adaptive_avg_pool2d(x, (2, None))


# ---------------------------------------------------------------------------
# Invalid arguments
# ---------------------------------------------------------------------------

def _x(*shape):
    return np.zeros(shape, np.float32)


def test_max_pool2d_errors():
    x = _x(1, 2, 6, 6)
    with raises(ValueError, "x", "4-D", "(2, 6, 6)"):
        ops.max_pool2d(_x(2, 6, 6), 2)
    with raises(ValueError, "x", "(1, 0, 6, 6)"):
        ops.max_pool2d(_x(1, 0, 6, 6), 2)
    with raises(ValueError, "kernel_size", "0"):
        ops.max_pool2d(x, 0)
    with raises(ValueError, "kernel_size"):
        ops.max_pool2d(x, (2, -1))
    with raises(ValueError, "stride", "0"):
        ops.max_pool2d(x, 2, stride=0)
    with raises(ValueError, "dilation", "0"):
        ops.max_pool2d(x, 2, dilation=(1, 0))
    with raises(ValueError, "padding", "-1"):
        ops.max_pool2d(x, 2, padding=-1)
    with raises(ValueError, "padding", "kernel_size", "(3, 3)"):
        ops.max_pool2d(x, 3, padding=2)
    with raises(ValueError, "padding", "kernel_size", "(4, 2)"):
        ops.max_pool2d(x, (4, 2), padding=(2, 2))
    with raises(ValueError, "output size"):
        ops.max_pool2d(x, 4, dilation=2)
    with raises(ValueError, "kernel_size", "absurdly large"):
        ops.max_pool2d(x, 2**50)
    with raises(ValueError, "kernel_size"):
        ops.max_pool2d(x, (2, 2, 2))
    with raises(TypeError, "kernel_size", "float"):
        ops.max_pool2d(x, 2.0)
    with raises(TypeError, "stride"):
        ops.max_pool2d(x, 2, stride=1.5)
    with raises(TypeError, "padding"):
        ops.max_pool2d(x, 2, padding=True)
    with raises(TypeError, "ceil_mode"):
        ops.max_pool2d(x, 2, ceil_mode=1)
    with raises(TypeError, "x"):
        ops.max_pool2d(np.zeros((1, 1, 4, 4), complex), 2)
    # backward validates the same way
    with raises(ValueError, "padding", "kernel_size"):
        ops.max_pool2d_backward(_x(1, 2, 3, 3), x, 3, padding=2)
    with raises(ValueError, "x", "(6, 6)"):
        ops.max_pool2d_backward(_x(1, 2, 3, 3), _x(6, 6), 2)


def test_avg_pool2d_errors():
    x = _x(1, 2, 6, 6)
    with raises(ValueError, "x", "4-D", "(1, 2, 6, 6, 1)"):
        ops.avg_pool2d(_x(1, 2, 6, 6, 1), 2)
    with raises(ValueError, "kernel_size", "0"):
        ops.avg_pool2d(x, (0, 2))
    with raises(ValueError, "stride"):
        ops.avg_pool2d(x, 2, stride=(1, 0))
    with raises(ValueError, "padding", "-2"):
        ops.avg_pool2d(x, 2, padding=-2)
    with raises(ValueError, "padding", "kernel_size", "(2, 2)"):
        ops.avg_pool2d(x, 2, padding=(0, 2))
    with raises(ValueError, "output size"):
        ops.avg_pool2d(_x(1, 2, 2, 6), 3)
    with raises(TypeError, "kernel_size"):
        ops.avg_pool2d(x, (2, 2.5))
    with raises(TypeError, "count_include_pad"):
        ops.avg_pool2d(x, 2, count_include_pad="no")
    with raises(TypeError, "ceil_mode"):
        ops.avg_pool2d(x, 2, ceil_mode=None)
    with raises(TypeError):
        ops.avg_pool2d(x, 2, dilation=1)  # avg_pool2d has no dilation (as torch)
    with raises(ValueError, "output size"):
        ops.avg_pool2d_backward(_x(1, 2, 1, 1), _x(1, 2, 2, 6), 3)


def test_adaptive_avg_pool2d_errors():
    x = _x(1, 2, 6, 6)
    with raises(ValueError, "x", "4-D", "(6, 6)"):
        ops.adaptive_avg_pool2d(_x(6, 6), 2)
    with raises(ValueError, "x", "(1, 2, 0, 6)"):
        ops.adaptive_avg_pool2d(_x(1, 2, 0, 6), 2)
    with raises(ValueError, "output_size", "0"):
        ops.adaptive_avg_pool2d(x, 0)
    with raises(ValueError, "output_size", "-1"):
        ops.adaptive_avg_pool2d(x, (None, -1))
    with raises(ValueError, "output_size"):
        ops.adaptive_avg_pool2d(x, (1, 2, 3))
    with raises(ValueError, "output_size", "absurdly large"):
        ops.adaptive_avg_pool2d(x, (2**45, 1))
    with raises(TypeError, "output_size"):
        ops.adaptive_avg_pool2d(x, 2.0)
    with raises(TypeError, "output_size"):
        ops.adaptive_avg_pool2d(x, None)
    with raises(TypeError, "output_size"):
        ops.adaptive_avg_pool2d(x, (2, "3"))
    with raises(ValueError, "output_size", "0"):
        ops.adaptive_avg_pool2d_backward(_x(1, 2, 1, 1), x, (0, 1))


# ---------------------------------------------------------------------------
# PyTorch (skipped when it is not installed)
# ---------------------------------------------------------------------------

def test_matches_torch():
    torch = torch_or_skip()
    F = torch.nn.functional
    rng = np.random.default_rng(12)
    x = rand(rng, 2, 5, 11, 10)
    x[0, 1, 2, 2] = np.nan
    x[1, 0, 3:6, 4:7] = 1.0  # ties
    cases = [
        ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)),
        ("max_pool2d", dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1))),
        ("max_pool2d", dict(kernel_size=3, stride=None, padding=1, dilation=3, ceil_mode=True)),
        ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                            count_include_pad=True)),
        ("avg_pool2d", dict(kernel_size=(4, 2), stride=(3, 1), padding=(2, 1), ceil_mode=True,
                            count_include_pad=False)),
        ("adaptive_avg_pool2d", dict(output_size=(3, None))),
        ("adaptive_avg_pool2d", dict(output_size=4)),
    ]
    for name, kw in cases:
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        yt = getattr(F, name)(xt, **kw)
        y = getattr(ops, name)(x, **kw)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(yt.detach().numpy()))
        finite = ~np.isnan(y)
        assert_close(y[finite], yt.detach().numpy()[finite], what=name)
        g = rand(rng, *y.shape)
        yt.backward(torch.from_numpy(g))
        (gx,) = getattr(ops, name + "_backward")(g, x, **kw)
        assert_close(gx, xt.grad.numpy(), what=name + " backward")
