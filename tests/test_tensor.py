"""add, mul, cat, dropout and mse_loss vs striate.reference (and PyTorch)."""

import numpy as np
import pytest

from helpers import assert_all_close, assert_close, rand, raises, torch_or_skip
from striate import ops
from striate import reference as ref

SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4, 5), (4, 0, 3), (70001,), (2, 64, 33, 17)]


@pytest.mark.parametrize("shape", SHAPES)
def test_add_matches_reference(shape):
    rng = np.random.default_rng(len(shape))
    a, b, g = rand(rng, *shape), rand(rng, *shape), rand(rng, *shape)
    assert_close(ops.add(a, b), ref.add(a, b))
    ga, gb = ops.add_backward(g, a, b)
    assert_all_close((ga, gb), ref.add_backward(g, a, b))
    # two independent copies: accumulating into one leaves the other alone
    assert ga is not gb and not np.shares_memory(ga, gb) and not np.shares_memory(ga, g)
    ga += 1
    np.testing.assert_array_equal(gb, g)


MUL_CASES = [((2, 3, 4, 5), (2, 3, 1, 1)), ((2, 3, 4, 5), (2, 3, 4, 5)), ((8, 64, 7, 7), (8, 64, 1, 1)),
             ((3, 5), (3, 1)), ((2, 3, 4, 5), (1, 1, 1, 1)), ((2, 3, 4, 5), (2, 3, 4, 1)), ((4, 6, 9), (4, 6, 9)),
             ((2, 3, 0, 0), (2, 3, 1, 1)), ((0, 3, 2, 2), (0, 3, 1, 1)), ((), ()),
             ((1, 1, 5, 5), (1, 1, 1, 1)), ((16, 256, 14, 14), (16, 256, 1, 1)), ((70001,), (70001,))]


@pytest.mark.parametrize("ashape, bshape", MUL_CASES)
def test_mul_matches_reference(ashape, bshape):
    rng = np.random.default_rng(len(ashape) + sum(bshape))
    a, b, g = rand(rng, *ashape), rand(rng, *bshape), rand(rng, *ashape)
    assert_close(ops.mul(a, b), ref.mul(a, b))
    grads = ops.mul_backward(g, a, b)
    assert grads[1].shape == b.shape
    assert_all_close(grads, ref.mul_backward(g, a, b), what="mul_backward")


CAT_CASES = [([(2, 3, 4, 4), (2, 5, 4, 4), (2, 1, 4, 4)], 1), ([(2, 3, 4, 4)], 1),
             ([(3, 4), (5, 4)], 0), ([(3, 4), (3, 2), (3, 7)], -1), ([(2, 3, 4), (2, 3, 0)], 2),
             ([(2, 0, 3), (2, 4, 3)], 1), ([(4,), (9,)], 0), ([(0, 2), (0, 3)], 1),
             ([(8, 64, 28, 28), (8, 128, 28, 28), (8, 32, 28, 28), (8, 32, 28, 28)], 1),
             ([(1, 16, 7, 7)] * 40, 1), ([(2, 3, 5, 6), (2, 3, 2, 6)], -2)]


@pytest.mark.parametrize("shapes, dim", CAT_CASES)
def test_cat_matches_reference(shapes, dim):
    rng = np.random.default_rng(len(shapes))
    xs = [rand(rng, *s) for s in shapes]
    y = ops.cat(xs, dim=dim)
    np.testing.assert_array_equal(y, ref.cat(xs, dim))  # a copy is exact
    g = rand(rng, *y.shape)
    grads = ops.cat_backward(g, tuple(xs), dim=dim)
    assert isinstance(grads, tuple) and len(grads) == len(xs)
    for gk, rk, x in zip(grads, ref.cat_backward(g, xs, dim), xs):
        assert gk.shape == x.shape and gk.flags.c_contiguous
        np.testing.assert_array_equal(gk, rk)


def test_cat_default_dim_is_channels_and_converts_inputs():
    a = np.arange(8, dtype=np.float64).reshape(1, 2, 2, 2)
    b = np.ones((1, 1, 2, 2), np.int32)
    y = ops.cat([a, b])
    assert y.dtype == np.float32 and y.shape == (1, 3, 2, 2)
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=1))


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0, 0.3000001, 2.0**-24, 1 - 2.0**-24])
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 17, 19), (70001,), (0, 3), ()])
def test_dropout_matches_reference_exactly(shape, p):
    rng = np.random.default_rng(len(shape))
    x, g = rand(rng, *shape), rand(rng, *shape)
    for seed in (0, 1, 2**64 - 1, 123456789012345):
        y = ops.dropout(x, p=p, seed=seed)
        yr = ref.dropout(x, p=p, seed=seed)
        # the same mask, element by element
        np.testing.assert_array_equal(y == 0, yr == 0)
        assert_close(y, yr, rtol=1e-7)
        (gx,) = ops.dropout_backward(g, x, p=p, seed=seed)
        np.testing.assert_array_equal(gx == 0, ref.dropout_backward(g, x, p=p, seed=seed)[0] == 0)
        assert_close(gx, ref.dropout_backward(g, x, p=p, seed=seed)[0], rtol=1e-7)


def test_dropout_threshold_is_exact_at_the_uniforms():
    # p equal to one of the 24-bit uniforms keeps that element (u >= p)
    # and drops it for the next float up: the comparison is exact.
    u = ref.dropout_uniform(7, 1000)
    x = np.ones(1000, np.float32)
    for i in (3, 100, 999):
        keep = ops.dropout(x, p=float(u[i]), seed=7) != 0
        assert keep[i]
        np.testing.assert_array_equal(keep, u >= u[i])
        assert not (ops.dropout(x, p=float(np.nextafter(u[i], 1)), seed=7) != 0)[i]


def test_dropout_mask_statistics_and_seeds():
    n, p = 400_000, 0.3
    x = np.ones(n, np.float32)
    y0, y1 = ops.dropout(x, p=p, seed=0), ops.dropout(x, p=p, seed=1)
    for y in (y0, y1):
        frac = float(np.mean(y == 0))
        assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / n)
        np.testing.assert_array_equal(np.unique(y), np.float32([0, np.float32(1) / np.float32(0.7)]))
    # different seeds give (nearly) independent masks
    both = float(np.mean((y0 == 0) & (y1 == 0)))
    assert abs(both - p * p) < 5 * np.sqrt(p * p * (1 - p * p) / n)
    np.testing.assert_array_equal(ops.dropout(x, p=p, seed=0), y0)


def test_dropout_identity_and_zero_cases():
    rng = np.random.default_rng(3)
    x = rand(rng, 4, 6)
    x[0, :3] = [np.nan, np.inf, -np.inf]
    for kw in (dict(training=False), dict(p=0.0), dict(p=0.7, training=False)):
        y = ops.dropout(x, **kw)
        np.testing.assert_array_equal(y, x)
        assert not np.shares_memory(y, x)
        np.testing.assert_array_equal(ops.dropout_backward(x, x, **kw)[0], x)
    y = ops.dropout(x, p=1.0)
    np.testing.assert_array_equal(y[1:], 0 * x[1:])
    assert np.isnan(y[0, :3]).all()


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_dropout_scale_and_special_values_match_torch(p):
    # torch's mask comes from its own generator; given the same mask, the
    # output must be torch's x * (mask / (1 - p)) bit for bit (including
    # NaN for Inf inputs that are dropped).
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    x = rand(rng, 3, 50)
    x[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    y = ops.dropout(x, p=p, seed=9)
    mask = ref.dropout_uniform(9, x.size).reshape(x.shape) >= p
    if p == 0.0:
        expected = torch.nn.functional.dropout(torch.tensor(x), p=0.0)
    elif p == 1.0:
        expected = torch.nn.functional.dropout(torch.tensor(x), p=1.0)
    else:
        expected = torch.tensor(x) * torch.tensor(mask).float().div_(1 - p)
    np.testing.assert_array_equal(y, expected.numpy())
    np.testing.assert_array_equal(ops.dropout(x, p=p, training=False),
                                  torch.nn.functional.dropout(torch.tensor(x), p, False).numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(), (1,), (7, 3), (2, 3, 5, 5), (300_001,), (0, 4)])
def test_mse_loss_matches_reference(shape, reduction):
    rng = np.random.default_rng(len(shape))
    x, t = rand(rng, *shape), rand(rng, *shape)
    loss = ops.mse_loss(x, t, reduction=reduction)
    expected = ref.mse_loss(x, t, reduction=reduction)
    assert loss.dtype == np.float32
    if reduction != "none" and x.size == 0:
        assert (np.isnan(loss) if reduction == "mean" else loss == 0)
    else:
        assert_close(loss, expected, rtol=1e-6 if reduction != "none" else 1e-4)
    g = rand(rng, *shape) if reduction == "none" else np.float32(0.7)
    x0 = x.copy()
    grads = ops.mse_loss_backward(g, x, t, reduction=reduction)
    assert_all_close(grads, ref.mse_loss_backward(g, x, t, reduction=reduction))
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x, t = rand(rng, 6, 7, 3), rand(rng, 6, 7, 3)
    tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
    ty = torch.nn.functional.mse_loss(tx, tt, reduction=reduction)
    g = rand(rng, *x.shape) if reduction == "none" else np.float32(1.3)
    ty.backward(torch.tensor(g))
    assert_close(ops.mse_loss(x, t, reduction=reduction), ty.detach().numpy(), rtol=1e-6)
    assert_all_close(ops.mse_loss_backward(g, x, t, reduction=reduction),
                     (tx.grad.numpy(), tt.grad.numpy()), rtol=1e-6)


def test_mul_add_cat_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    a, s, c = rand(rng, 4, 8, 5, 6), rand(rng, 4, 8, 1, 1), rand(rng, 4, 3, 5, 6)
    ta, ts, tc = (torch.tensor(v, requires_grad=True) for v in (a, s, c))
    ty = torch.cat([torch.mul(ta, ts) + ta, tc], dim=1)
    g = rand(rng, *ty.shape)
    ty.backward(torch.tensor(g))
    m = ops.mul(a, s)
    y = ops.cat([ops.add(m, a), c], dim=1)
    assert_close(y, ty.detach().numpy())
    gsum, gc = ops.cat_backward(g, [m, c], dim=1)
    gm, ga_direct = ops.add_backward(gsum, m, a)
    ga, gs = ops.mul_backward(gm, a, s)
    assert_all_close((ga + ga_direct, gs, gc), (ta.grad.numpy(), ts.grad.numpy(), tc.grad.numpy()))


def test_backward_does_not_mutate_inputs():
    rng = np.random.default_rng(8)
    a, b, g = rand(rng, 2, 3, 4, 4), rand(rng, 2, 3, 1, 1), rand(rng, 2, 3, 4, 4)
    saved = [v.copy() for v in (a, b, g)]
    ops.mul_backward(g, a, b)
    ops.add_backward(g, a, a.copy())
    ops.cat_backward(np.concatenate([g, g], 1), [a, a])
    ops.dropout_backward(g, a, 0.5, True, 3)
    for v, s in zip((a, b, g), saved):
        np.testing.assert_array_equal(v, s)


Z = np.zeros


@pytest.mark.parametrize("call, exc, fragments", [
    (lambda: ops.add(Z((2, 3)), Z((3, 2))), ValueError, ("a", "b", "(2, 3)", "(3, 2)")),
    (lambda: ops.add(Z((2, 3)), Z((1, 3))), ValueError, ("(2, 3)", "(1, 3)", "broadcast")),
    (lambda: ops.add_backward(Z((2, 2)), Z((2, 3)), Z((2, 3))), ValueError, ("grad_out", "(2, 3)")),
    (lambda: ops.add(Z(2, bool), Z(2)), TypeError, ("a",)),
    (lambda: ops.add(Z(2), "b"), TypeError, ("b",)),
    (lambda: ops.mul(Z((2, 3, 4, 4)), Z((2, 1, 4, 4))), ValueError, ("b", "(2, 1, 4, 4)")),
    (lambda: ops.mul(Z((2, 3, 4, 4)), Z((1, 3, 1, 1))), ValueError, ("b", "(1, 3, 1, 1)")),
    (lambda: ops.mul(Z((2, 3, 4, 4)), Z((2, 3))), ValueError, ("b", "(2, 3)", "(2, 3, 4, 4)")),
    (lambda: ops.mul(Z((2, 3, 4, 4)), Z((2, 3, 1, 4))), ValueError, ("b", "(2, 3, 1, 4)")),
    (lambda: ops.mul_backward(Z((2, 3)), Z((2, 3, 4, 4)), Z((2, 3, 1, 1))), ValueError, ("grad_out",)),
    (lambda: ops.mul(Z((2, 3)), Z((2, 3), complex)), TypeError, ("b",)),
    (lambda: ops.cat([]), ValueError, ("tensors", "non-empty")),
    (lambda: ops.cat(Z((2, 3))), TypeError, ("tensors",)),
    (lambda: ops.cat([Z((2, 3)), Z((3, 3))], dim=1), ValueError, ("tensors[1]", "(3, 3)", "dim 1")),
    (lambda: ops.cat([Z((2, 3)), Z((2, 3, 1))], dim=0), ValueError, ("tensors[1]", "(2, 3, 1)")),
    (lambda: ops.cat([Z((2, 3)), Z((2, 3))], dim=2), ValueError, ("dim", "2")),
    (lambda: ops.cat([Z((2, 3)), Z((2, 3))], dim=-3), ValueError, ("dim", "-3")),
    (lambda: ops.cat([np.float32(1)], dim=0), ValueError, ("tensors[0]", "0-d")),
    (lambda: ops.cat([Z(2), "x"], dim=0), TypeError, ("tensors[1]",)),
    (lambda: ops.cat([Z(2)], dim=0.0), TypeError, ("dim",)),
    (lambda: ops.cat_backward(Z(4), [Z(2), Z(3)], dim=0), ValueError, ("grad_out", "(5,)")),
    (lambda: ops.dropout(Z(3), p=1.5), ValueError, ("p", "1.5")),
    (lambda: ops.dropout(Z(3), p=-0.1), ValueError, ("p", "-0.1")),
    (lambda: ops.dropout(Z(3), p=float("nan")), ValueError, ("p", "nan")),
    (lambda: ops.dropout(Z(3), p="0.5"), TypeError, ("p",)),
    (lambda: ops.dropout(Z(3), training=1), TypeError, ("training",)),
    (lambda: ops.dropout(Z(3), seed=-1), ValueError, ("seed", "-1")),
    (lambda: ops.dropout(Z(3), seed=2**64), ValueError, ("seed", str(2**64))),
    (lambda: ops.dropout(Z(3), seed=1.0), TypeError, ("seed",)),
    (lambda: ops.dropout(Z(3), seed=True), TypeError, ("seed",)),
    (lambda: ops.dropout_backward(Z(4), Z(3)), ValueError, ("grad_out", "(3,)")),
    (lambda: ops.dropout_backward(Z(3), Z(3), seed=-5), ValueError, ("seed",)),
    (lambda: ops.mse_loss(Z((2, 3)), Z((2, 1))), ValueError, ("target", "(2, 1)", "(2, 3)")),
    (lambda: ops.mse_loss(Z(3), Z(3), reduction="avg"), ValueError, ("reduction", "avg")),
    (lambda: ops.mse_loss(Z(3), Z(3), reduction=None), TypeError, ("reduction",)),
    (lambda: ops.mse_loss(Z(3), [1, "a", 2]), TypeError, ("target",)),
    (lambda: ops.mse_loss_backward(Z(3), Z(3), Z(3)), ValueError, ("grad_out", "()")),
    (lambda: ops.mse_loss_backward(1.0, Z(3), Z(3), reduction="none"), ValueError,
     ("grad_out", "(3,)")),
])
def test_bad_input(call, exc, fragments):
    with raises(exc, *fragments):
        call()
