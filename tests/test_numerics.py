"""NaN and Inf propagation (issue 6, part 5): every op, forward and backward, on
inputs holding NaN, +Inf and -Inf at random positions, against PyTorch (float32)
at every ISA level. The NaN, +Inf and -Inf positions of each output must equal
torch's exactly; the finite values must agree to the usual 1e-4 of max|torch|.

Rules decided here (also in docs/robustness.md, "Numerics"):
- Winograd convolution mixes a tile's inputs in its transforms, so one Inf
  can turn the other outputs of its tile into NaN (as oneDNN's and cuDNN's
  Winograd do): there the non-finite outputs must be a superset of torch's,
  each within the 4x4 / 6x6 tile of an input torch's receptive field sees.
- sigmoid/tanh backward compute the derivative from x (accurate where the
  float output has saturated to 0 or +-1): an infinite grad_out there gives
  +-Inf where torch's y * (1 - y) = 0 gives NaN. Tested with unsaturated x.
"""

import numpy as np
import pytest

from helpers import assert_close, rand, torch_or_skip
from striate import ops

SPECIALS = (np.nan, np.inf, -np.inf)


def poison(rng, a, frac=0.08):
    """A copy of a with NaN, +Inf and -Inf (in turn) at a random fraction of positions."""
    a = np.array(a, dtype=np.float32, copy=True)
    flat = a.reshape(-1)
    k = max(3, int(frac * flat.size))
    idx = rng.choice(flat.size, size=min(k, flat.size), replace=False)
    for j, i in enumerate(idx):
        flat[i] = SPECIALS[j % 3]
    return a


def to_np(t):
    return None if t is None else t.detach().numpy()


def assert_same_nonfinite(actual, expected, what, rtol=1e-4):
    """NaN / +Inf / -Inf masks equal, finite values close."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    for name, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        ma, me = test(actual), test(expected)
        if not np.array_equal(ma, me):
            diff = np.argwhere(ma != me)
            first = tuple(int(i) for i in diff[0])
            raise AssertionError(
                f"{what}: {name} positions differ at {len(diff)} element(s), first {first}: "
                f"striate {actual[first]!r}, torch {expected[first]!r}")
    fin = np.isfinite(expected)
    if fin.any():
        assert_close(actual[fin], expected[fin].astype(np.float64), rtol, what)


def assert_nonfinite_superset(actual, expected, allowed, what, rtol=1e-4):
    """Where an algorithm may turn more outputs non-finite than torch (see the
    module docstring): every non-finite torch output is non-finite here, the
    extra ones lie inside `allowed`, and the outputs finite in both are close."""
    bad, bad_ref = ~np.isfinite(actual), ~np.isfinite(expected)
    assert not (bad_ref & ~bad).any(), f"{what}: an output non-finite in torch is finite here"
    assert not (bad & ~bad_ref & ~allowed).any(), f"{what}: non-finite outside the allowed region"
    ok = ~bad
    if ok.any():
        assert_close(actual[ok], expected[ok].astype(np.float64), rtol, what)


def tt(torch, a, grad=True):
    return None if a is None else torch.from_numpy(np.array(a, np.float32)).requires_grad_(grad)


# ---- elementwise activations -------------------------------------------------

@pytest.mark.parametrize("name,kw", [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
                                     ("leaky_relu", {"negative_slope": 0.0}),
                                     ("sigmoid", {}), ("tanh", {})])
def test_activation(isa, name, kw):
    torch = torch_or_skip()
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    # 1000 elements: the SIMD body and the scalar tail of every level.
    x = poison(rng, rand(rng, 1000))
    g = poison(rng, rand(rng, 1000))
    xt = tt(torch, x)
    tfn = getattr(torch, name) if name in ("sigmoid", "tanh") else getattr(F, name)
    yt = tfn(xt, **kw)
    yt.backward(tt(torch, g, False))
    assert_same_nonfinite(getattr(ops, name)(x, **kw), to_np(yt), f"{name} {isa}")
    (gx,) = getattr(ops, name + "_backward")(g, x, **kw)
    assert_same_nonfinite(gx, to_np(xt.grad), f"{name}_backward {isa}")


def test_activation_limits_are_exact(isa):
    x = np.array([np.inf, -np.inf, 1e30, -1e30, 100.0, -100.0, np.nan], np.float32)
    x = np.tile(x, 37)  # vector body and tail
    t = ops.tanh(x)
    s = ops.sigmoid(x)
    np.testing.assert_array_equal(t[:6], [1, -1, 1, -1, 1, -1])
    np.testing.assert_array_equal(s[:6], [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(ops.relu(x)[:6], np.where(x[:6] > 0, x[:6], 0))
    for y in (t, s, ops.relu(x), ops.leaky_relu(x)):
        np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    one = np.ones_like(x)
    for name in ("tanh", "sigmoid"):
        (gx,) = getattr(ops, name + "_backward")(one, x)
        np.testing.assert_array_equal(gx[:4], 0.0)
        np.testing.assert_array_equal(np.isnan(gx), np.isnan(x))


# ---- softmax family and losses -----------------------------------------------

def _softmax_input(rng, shape, dim):
    x = poison(rng, rand(rng, *shape), 0.03)
    # Lanes along dim that are all -Inf, hold one +Inf, one -Inf, or one NaN.
    xm = np.moveaxis(x, dim, -1)
    xm[(0,) * (xm.ndim - 1)] = -np.inf
    xm[(1,) + (0,) * (xm.ndim - 2)][3] = np.inf
    xm[(2,) + (0,) * (xm.ndim - 2)][1] = -np.inf
    xm[(3,) + (0,) * (xm.ndim - 2)][2] = np.nan
    return x


@pytest.mark.parametrize("shape,dim", [((6, 37), -1), ((6, 37), 0), ((5, 9, 3, 4), 1)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax(isa, shape, dim, log):
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    x = _softmax_input(rng, shape, dim)
    g = poison(rng, rand(rng, *shape), 0.03)
    name = "log_softmax" if log else "softmax"
    xt = tt(torch, x)
    yt = getattr(torch, name)(xt, dim)
    yt.backward(tt(torch, g, False))
    assert_same_nonfinite(getattr(ops, name)(x, dim), to_np(yt), f"{name} {isa}")
    (gx,) = getattr(ops, name + "_backward")(g, x, dim)
    assert_same_nonfinite(gx, to_np(xt.grad), f"{name}_backward {isa}")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy(isa, reduction):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    n, c = 12, 40
    target = rng.integers(0, c, n)
    z = rand(rng, n, c)
    z[0, 5] = np.nan
    z[1, (target[1] + 1) % c] = np.inf
    z[2, target[2]] = np.inf
    z[3, target[3]] = -np.inf   # loss +Inf
    z[4, (target[4] + 1) % c] = -np.inf  # harmless
    z[5, :] = -np.inf
    xt = tt(torch, z)
    yt = torch.nn.functional.cross_entropy(xt, torch.from_numpy(target), reduction=reduction)
    g = np.full(yt.shape, 0.5, np.float32)
    if reduction == "none":
        g[7] = np.nan
        g[8] = np.inf
    yt.backward(tt(torch, g, False))
    assert_same_nonfinite(ops.cross_entropy(z, target, reduction), to_np(yt),
                          f"cross_entropy {reduction} {isa}")
    (gz, gt) = ops.cross_entropy_backward(g, z, target, reduction)
    assert gt is None
    assert_same_nonfinite(gz, to_np(xt.grad), f"cross_entropy_backward {reduction} {isa}")
    # Finite rows only: a reduced loss is finite and its gradient too.
    ok = z[6:].copy()
    okt = tt(torch, ok)
    lt = torch.nn.functional.cross_entropy(okt, torch.from_numpy(target[6:]), reduction=reduction)
    assert_same_nonfinite(ops.cross_entropy(ok, target[6:], reduction), to_np(lt),
                          f"cross_entropy finite {reduction}")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mse_loss(reduction):
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    a, b = poison(rng, rand(rng, 4, 9)), poison(rng, rand(rng, 4, 9))
    at, bt = tt(torch, a), tt(torch, b)
    yt = torch.nn.functional.mse_loss(at, bt, reduction=reduction)
    g = np.ones(yt.shape, np.float32)
    yt.backward(tt(torch, g, False))
    assert_same_nonfinite(ops.mse_loss(a, b, reduction), to_np(yt), "mse_loss")
    ga, gb = ops.mse_loss_backward(g, a, b, reduction)
    assert_same_nonfinite(ga, to_np(at.grad), "mse_loss_backward input")
    assert_same_nonfinite(gb, to_np(bt.grad), "mse_loss_backward target")


# ---- pooling -----------------------------------------------------------------

POOLS = [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=2)),
    ("max_pool2d", dict(kernel_size=3, stride=1, padding=1)),
    ("max_pool2d", dict(kernel_size=(2, 3), stride=(1, 3), padding=(1, 0), dilation=(2, 1))),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=2, count_include_pad=False, padding=1)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 5))),
    ("adaptive_avg_pool2d", dict(output_size=1)),
]


@pytest.mark.parametrize("name,kw", POOLS)
@pytest.mark.parametrize("w", [13, 70])  # one chunk / several chunks per output row
def test_pool(isa, name, kw, w):
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x = poison(rng, rand(rng, 2, 3, 9, w), 0.04)
    x[0, 0, 2:5, 2:5] = np.nan  # several NaNs in one window (the last one wins)
    x[0, 1, :3, :3] = -np.inf    # a window of -Inf only
    xt = tt(torch, x)
    yt = getattr(torch.nn.functional, name)(xt, **kw)
    g = poison(rng, rand(rng, *yt.shape), 0.04)
    yt.backward(tt(torch, g, False))
    assert_same_nonfinite(getattr(ops, name)(x, **kw), to_np(yt), f"{name} {kw} {isa}")
    (gx,) = getattr(ops, name + "_backward")(g, x, **kw)
    assert_same_nonfinite(gx, to_np(xt.grad), f"{name}_backward {kw} {isa}")


# ---- normalization -----------------------------------------------------------

@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shape", [(4, 6, 5, 7), (8, 6)])
def test_batch_norm(isa, training, shape):
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    c = shape[1]
    x = rand(rng, *shape)
    x[1, 0] = np.nan       # channel 0: NaN
    x[2, 1] = np.inf       # channel 1: +Inf
    x[0, 2] = -np.inf      # channel 2: -Inf (channels 3.. finite)
    rm, rv = rand(rng, c), np.abs(rand(rng, c)) + 0.5
    rm[4] = np.nan         # eval: a NaN running mean poisons its channel
    w, b = rand(rng, c), rand(rng, c)
    g = rand(rng, *shape)
    g[3, 5] = np.inf
    rm_t, rv_t = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    xt, wt, bt = tt(torch, x), tt(torch, w), tt(torch, b)
    yt = torch.nn.functional.batch_norm(xt, rm_t, rv_t, wt, bt, training=training)
    yt.backward(tt(torch, g, False))
    rm_s, rv_s = rm.copy(), rv.copy()
    y = ops.batch_norm(x, rm_s, rv_s, w, b, training=training)
    assert_same_nonfinite(y, to_np(yt), f"batch_norm training={training} {isa}")
    assert_same_nonfinite(rm_s, rm_t.numpy(), "running_mean")
    assert_same_nonfinite(rv_s, rv_t.numpy(), "running_var")
    gx, _, _, gw, gb = ops.batch_norm_backward(g, x, rm, rv, w, b, training=training)
    assert_same_nonfinite(gx, to_np(xt.grad), f"batch_norm_backward x {isa}")
    assert_same_nonfinite(gw, to_np(wt.grad), f"batch_norm_backward weight {isa}")
    assert_same_nonfinite(gb, to_np(bt.grad), f"batch_norm_backward bias {isa}")


@pytest.mark.parametrize("size", [3, 4])
def test_local_response_norm(isa, size):
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    x = poison(rng, rand(rng, 2, 9, 5, 6), 0.03)
    g = poison(rng, rand(rng, *x.shape), 0.03)
    xt = tt(torch, x)
    yt = torch.nn.functional.local_response_norm(xt, size, alpha=0.5, beta=0.75, k=1.0)
    yt.backward(tt(torch, g, False))
    y = ops.local_response_norm(x, size, alpha=0.5, beta=0.75, k=1.0)
    assert_same_nonfinite(y, to_np(yt), f"local_response_norm {isa}")
    (gx,) = ops.local_response_norm_backward(g, x, size, alpha=0.5, beta=0.75, k=1.0)
    assert_same_nonfinite(gx, to_np(xt.grad), f"local_response_norm_backward {isa}")


# ---- convolution -------------------------------------------------------------

def _conv_case(rng, poisoned):
    x, w, b = rand(rng, 2, 16, 12, 13), rand(rng, 16, 16, 3, 3) * 0.2, rand(rng, 16)
    if poisoned == "x":
        x = poison(rng, x, 0.004)
    if poisoned == "weight":
        w = poison(rng, w, 0.004)
    if poisoned == "bias":
        b = poison(rng, b, 0.2)
    return x, w, b


def _torch_conv(torch, x, w, b, gy, padding, relu=False):
    xt, wt, bt = tt(torch, x), tt(torch, w), tt(torch, b)
    yt = torch.nn.functional.conv2d(xt, wt, bt, padding=padding)
    if relu:
        yt = torch.relu(yt)
    yt.backward(tt(torch, gy, False))
    return to_np(yt), to_np(xt.grad), to_np(wt.grad), to_np(bt.grad)


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
@pytest.mark.parametrize("poisoned", ["x", "weight", "bias", "grad"])
@pytest.mark.parametrize("padding", [0, 1])
def test_conv2d_exact(isa, algorithm, poisoned, padding):
    torch = torch_or_skip()
    rng = np.random.default_rng(8)
    x, w, b = _conv_case(rng, poisoned)
    ho, wo = 12 - 2 + 2 * padding, 13 - 2 + 2 * padding
    gy = rand(rng, 2, 16, ho, wo)
    if poisoned == "grad":
        gy = poison(rng, gy, 0.004)
    yt, gxt, gwt, gbt = _torch_conv(torch, x, w, b, gy, padding)
    kw = dict(padding=padding, algorithm=algorithm)
    what = f"conv2d {algorithm} {poisoned} pad={padding} {isa}"
    y = ops.conv2d(x, w, b, **kw)
    gx, gw, gb = ops.conv2d_backward(gy, x, w, b, **kw)
    assert_same_nonfinite(gx, gxt, what + " grad x")
    assert_same_nonfinite(gb, gbt, what + " grad bias")
    if algorithm == "im2col" and padding and poisoned in ("weight", "grad"):
        # The column matrix holds the padding as zeros, which the GEMM
        # multiplies: 0 * Inf = NaN, on the border outputs (weight) and in
        # the weight gradient (grad_out); torch's kernel skips the padding.
        border = np.ones(y.shape, bool)
        border[:, :, padding:-padding, padding:-padding] = False
        assert_nonfinite_superset(y, yt, border, what)
        assert_nonfinite_superset(gw, gwt, np.ones(gw.shape, bool), what + " grad weight")
        return
    assert_same_nonfinite(y, yt, what)
    assert_same_nonfinite(gw, gwt, what + " grad weight")


@pytest.mark.parametrize("algorithm", ["direct", "im2col", "winograd_f2"])
def test_conv2d_fused_relu_keeps_nan(isa, algorithm):
    torch = torch_or_skip()
    rng = np.random.default_rng(9)
    x, w, b = _conv_case(rng, "x")
    yt, *_ = _torch_conv(torch, x, w, b, np.ones((2, 16, 12, 13), np.float32), 1, relu=True)
    y = ops.conv2d(x, w, b, padding=1, algorithm=algorithm, activation="relu")
    if algorithm.startswith("winograd"):
        assert np.isnan(y[np.isnan(yt)]).all()
    else:
        assert_same_nonfinite(y, yt, f"conv2d relu {algorithm} {isa}")


def _near(mask_in, reach):
    """Outputs within `reach` rows/columns of a non-finite input (any channel)."""
    m = mask_in.any(axis=1, keepdims=True)
    out = np.zeros_like(m)
    h, w = m.shape[2:]
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            out[:, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
                m[:, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


@pytest.mark.parametrize("algorithm", ["winograd_f2", "winograd_f4"])
def test_conv2d_winograd_confines_nonfinite_to_tiles(isa, algorithm):
    """Every output torch makes non-finite is non-finite here too; the extra
    ones (an Inf mixed into NaN by the transforms) lie within one tile plus
    the 3x3 window of a non-finite input; finite outputs are close."""
    torch = torch_or_skip()
    rng = np.random.default_rng(10)
    m = 2 if algorithm == "winograd_f2" else 4
    for poisoned in ("x", "grad"):
        x, w, b = _conv_case(rng, poisoned)
        gy = rand(rng, 2, 16, 12, 13)
        if poisoned == "grad":
            gy = poison(rng, gy, 0.004)
        yt, gxt, gwt, _ = _torch_conv(torch, x, w, b, gy, 1)
        y = ops.conv2d(x, w, b, padding=1, algorithm=algorithm)
        gx, gw, _ = ops.conv2d_backward(gy, x, w, b, padding=1, algorithm=algorithm)
        if poisoned == "x":
            ours, ref, src, what = y, yt, x, "y"
            # A non-finite Winograd weight gradient is recomputed by im2col.
            assert_same_nonfinite(gw, gwt, f"{algorithm} grad weight")
        else:
            ours, ref, src, what = gx, gxt, gy, "grad x"
            # Weight gradient by im2col with padding: see test_conv2d_exact.
            assert_nonfinite_superset(gw, gwt, np.ones(gw.shape, bool), "grad weight")
        near = np.broadcast_to(_near(~np.isfinite(src), 2 * m), ours.shape)
        assert_nonfinite_superset(ours, ref, near, f"{algorithm} {what} {isa}")


# ---- linear algebra and tensor ops -------------------------------------------

@pytest.mark.parametrize("poisoned", ["x", "weight", "grad"])
def test_linear(isa, poisoned):
    torch = torch_or_skip()
    rng = np.random.default_rng(11)
    x, w, b = rand(rng, 37, 70), rand(rng, 45, 70), rand(rng, 45)
    gy = rand(rng, 37, 45)
    if poisoned == "x":
        x = poison(rng, x, 0.003)
    elif poisoned == "weight":
        w = poison(rng, w, 0.003)
    else:
        gy = poison(rng, gy, 0.003)
    xt, wt, bt = tt(torch, x), tt(torch, w), tt(torch, b)
    yt = torch.nn.functional.linear(xt, wt, bt)
    yt.backward(tt(torch, gy, False))
    assert_same_nonfinite(ops.linear(x, w, b), to_np(yt), f"linear {poisoned} {isa}")
    gx, gw, gb = ops.linear_backward(gy, x, w, b)
    assert_same_nonfinite(gx, to_np(xt.grad), f"linear grad x {poisoned} {isa}")
    assert_same_nonfinite(gw, to_np(wt.grad), f"linear grad weight {poisoned} {isa}")
    assert_same_nonfinite(gb, to_np(bt.grad), f"linear grad bias {poisoned} {isa}")
    assert_same_nonfinite(ops.matmul(x, w.T), to_np(xt @ wt.T), f"matmul {poisoned} {isa}")


def test_add_mul_cat():
    torch = torch_or_skip()
    rng = np.random.default_rng(12)
    a, b = poison(rng, rand(rng, 2, 3, 4, 5)), poison(rng, rand(rng, 2, 3, 4, 5))
    gate = poison(rng, rand(rng, 2, 3, 1, 1), 0.3)
    g = poison(rng, rand(rng, 2, 3, 4, 5))
    at, bt, gt = tt(torch, a), tt(torch, b), tt(torch, gate)
    for name, tb, nb in (("add", bt, b), ("mul", bt, b), ("mul", gt, gate)):
        at.grad = tb.grad = None
        yt = getattr(torch, name)(at, tb)
        yt.backward(tt(torch, g, False))
        assert_same_nonfinite(getattr(ops, name)(a, nb), to_np(yt), name)
        ga, gb = getattr(ops, name + "_backward")(g, a, nb)
        assert_same_nonfinite(ga, to_np(at.grad), name + " grad a")
        assert_same_nonfinite(gb, to_np(tb.grad), name + " grad b")
    y = ops.cat([a, b], dim=1)
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=1))


def test_dropout_multiplies_like_torch():
    """torch computes input * mask / (1 - p): a dropped Inf or NaN is NaN, not 0."""
    torch = torch_or_skip()
    x = np.tile(np.array([np.inf, -np.inf, np.nan, 1.0], np.float32), 250)
    torch.manual_seed(0)
    yt = torch.nn.functional.dropout(torch.from_numpy(x), 0.5, training=True).numpy()
    assert np.isnan(yt[0::4]).any() and np.isposinf(yt[0::4]).any()
    factor = ops.dropout(np.ones_like(x), 0.5, seed=3)
    with np.errstate(invalid="ignore"):
        expected = x * factor
    assert_same_nonfinite(ops.dropout(x, 0.5, seed=3), expected, "dropout")
    (gx,) = ops.dropout_backward(x, x, 0.5, seed=3)
    assert_same_nonfinite(gx, expected, "dropout_backward")


# ---- optimizer updates -------------------------------------------------------

@pytest.mark.parametrize("kind,kw", [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.01, weight_decay=0.1)),
    ("adamw", dict(lr=0.01, weight_decay=0.1)),
])
def test_optimizer_updates(kind, kw):
    torch = torch_or_skip()
    rng = np.random.default_rng(13)
    p0 = poison(rng, rand(rng, 300), 0.02)
    grads = [poison(rng, rand(rng, 300), 0.02) for _ in range(2)]
    pt = torch.from_numpy(p0.copy()).requires_grad_(True)
    topt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW}[kind]([pt], **kw)
    p = p0.copy()
    buf, m, v = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for step, g in enumerate(grads, 1):
        pt.grad = torch.from_numpy(g.copy())
        topt.step()
        if kind == "sgd":
            ops.sgd_update(p, g, buf, first_step=step == 1, **kw)
        else:
            ops.adam_update(p, g, m, v, step=step, decoupled_weight_decay=kind == "adamw", **kw)
        assert_same_nonfinite(p, pt.detach().numpy(), f"{kind} {kw} step {step}")


# ---- scalar arguments and fit ------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda x: ops.dropout(x, p=float("nan")),
    lambda x: ops.batch_norm(x, None, None, training=True, eps=float("nan")),
    lambda x: ops.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32),
                             training=True, momentum=float("inf")),
    lambda x: ops.local_response_norm(x, 2, alpha=float("nan")),
    lambda x: ops.local_response_norm(x, 2, beta=float("inf")),
    lambda x: ops.sgd_update(x.copy(), x, None, lr=float("nan")),
    lambda x: ops.adam_update(x.copy(), x, np.zeros_like(x), np.zeros_like(x), step=1,
                              eps=float("nan")),
    lambda x: ops.adam_update(x.copy(), x, np.zeros_like(x), np.zeros_like(x), step=1,
                              beta1=float("nan")),
])
def test_nan_scalar_arguments_are_value_errors(call):
    """A NaN or Inf hyper-parameter is rejected up front, never used as a size
    or a loop bound."""
    x = np.ones((2, 3, 4, 4), np.float32)
    with pytest.raises(ValueError):
        call(x)


def _nan_data():
    from striate import nn, optim
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    X[13, 0, 1, 2] = np.nan  # batch 2 of 3 with batch_size=8 and shuffle=False
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    return X, y, model, optim.SGD(model.parameters(), lr=0.1)


def test_fit_stops_on_nan_before_the_bad_update():
    X, y, model, opt = _nan_data()
    before = [p.data.copy() for p in model.parameters()]
    model.fit(X[:8], y[:8], optimizer=opt, epochs=1, batch_size=8, shuffle=False,
              progress=False)
    after_first = [p.data.copy() for p in model.parameters()]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after_first))
    with pytest.raises(FloatingPointError) as e:
        model.fit(X, y, optimizer=opt, epochs=2, batch_size=8, shuffle=False, progress=False)
    msg = str(e.value)
    assert "loss became nan" in msg and "epoch 1, step 2" in msg and "stop_on_nan=False" in msg
    # Only the first batch of that epoch was applied: the weights are finite.
    assert all(np.isfinite(p.data).all() for p in model.parameters())


def test_fit_goes_on_through_nan_when_asked():
    X, y, model, opt = _nan_data()
    h = model.fit(X, y, optimizer=opt, epochs=2, batch_size=8, shuffle=False, progress=False,
                  stop_on_nan=False)
    assert len(h["loss"]) == 2 and np.isnan(h["loss"]).all()
    # The NaN reached the weights through the gradient, as in a torch loop.
    assert any(np.isnan(p.data).any() for p in model.parameters())
