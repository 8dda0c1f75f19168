"""linear and cross_entropy vs striate.reference (and PyTorch)."""

import numpy as np
import pytest

from helpers import assert_all_close, assert_close, rand, raises, torch_or_skip
from striate import ops
from striate import reference as ref

LINEAR_CASES = [((4, 5), 3, True), ((1, 1), 1, False), ((7,), 9, True), ((2, 3, 17), 5, True),
                ((0, 4), 3, True), ((33, 300), 65, False), ((128, 400), 120, True)]


@pytest.mark.parametrize("xshape, out, has_bias", LINEAR_CASES)
def test_linear_matches_reference(xshape, out, has_bias):
    rng = np.random.default_rng(xshape[-1])
    x, w = rand(rng, *xshape), rand(rng, out, xshape[-1])
    b = rand(rng, out) if has_bias else None
    y = ops.linear(x, w, b)
    assert_close(y, ref.linear(x, w, b))
    gy = rand(rng, *y.shape)
    grads = ops.linear_backward(gy, x, w, b)
    assert_all_close(grads, ref.linear_backward(gy, x, w, b), what="linear_backward")
    if not has_bias:
        assert grads[2] is None


@pytest.mark.parametrize("args, exc, fragments", [
    ((np.zeros((2, 4)), np.zeros((3, 5))), ValueError, ("x", "last dimension", "4", "in_features", "5")),
    ((np.zeros((2, 4)), np.zeros((3, 4, 1))), ValueError, ("weight", "2-D")),
    ((np.zeros((2, 4)), np.zeros((3, 4)), np.zeros(4)), ValueError, ("bias", "(3,)", "(4,)")),
    ((np.float32(1), np.zeros((3, 1))), ValueError, ("x", "0-d")),
    ((np.zeros((2, 4)), "w"), TypeError, ("weight",)),
])
def test_linear_bad_input(args, exc, fragments):
    with raises(exc, *fragments):
        ops.linear(*args)
    with raises(exc, *fragments):
        ops.linear_backward(np.zeros((2, 3)), *args)


def test_linear_backward_bad_grad_shape():
    with raises(ValueError, "grad_out", "(2, 3)"):
        ops.linear_backward(np.zeros((3, 2)), np.zeros((2, 4)), np.zeros((3, 4)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n, c", [(1, 1), (5, 7), (64, 10), (3, 1000)])
def test_cross_entropy_matches_reference(n, c, reduction):
    rng = np.random.default_rng(n * c)
    z = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    t = rng.integers(0, c, n)
    loss = ops.cross_entropy(z, t, reduction=reduction)
    assert_close(loss, ref.cross_entropy(z, t, reduction=reduction))
    g = rand(rng, n) if reduction == "none" else 0.7
    z0 = z.copy()
    gz, gt = ops.cross_entropy_backward(g, z, t, reduction=reduction)
    assert gt is None
    assert_close(gz, ref.cross_entropy_backward(g, z, t, reduction=reduction)[0])
    np.testing.assert_array_equal(z, z0)


def test_cross_entropy_default_is_mean_and_targets_any_int_dtype():
    z = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0]], np.float32)
    for t in (np.array([0, 2]), np.array([0, 2], np.uint8), [0, 2]):
        assert_close(ops.cross_entropy(z, t), ref.cross_entropy(z, np.array([0, 2])))


@pytest.mark.parametrize("args, kwargs, exc, fragments", [
    ((np.zeros((2, 3)), [0, 3]), {}, IndexError, ("target[1]", "3", "3 classes")),
    ((np.zeros((2, 3)), [-1, 0]), {}, IndexError, ("target[0]", "-1")),
    ((np.zeros((2, 3)), np.array([0, 2**63 - 1], np.uint64)), {}, IndexError, ("target",)),
    ((np.zeros((2, 3)), [0.0, 1.0]), {}, TypeError, ("target", "integer")),
    ((np.zeros((2, 3)), [0, 1, 2]), {}, ValueError, ("target", "(2,)", "(3,)")),
    ((np.zeros(3), [0]), {}, ValueError, ("input", "2-D")),
    ((np.zeros((2, 0)), [0, 0]), {}, ValueError, ("input", "class")),
    ((np.zeros((2, 3)), [0, 1]), dict(reduction="avg"), ValueError, ("reduction", "avg")),
    ((np.zeros((2, 3)), [0, 1]), dict(reduction=None), TypeError, ("reduction",)),
])
def test_cross_entropy_bad_input(args, kwargs, exc, fragments):
    with raises(exc, *fragments):
        ops.cross_entropy(*args, **kwargs)
    with raises(exc, *fragments):
        ops.cross_entropy_backward(1.0, *args, **kwargs)


def test_cross_entropy_backward_bad_grad_shape():
    z, t = np.zeros((2, 3)), [0, 1]
    with raises(ValueError, "grad_out", "(2,)"):
        ops.cross_entropy_backward(np.ones(3), z, t, reduction="none")
    with raises(ValueError, "grad_out", "()"):
        ops.cross_entropy_backward(np.ones(2), z, t)


def test_linear_and_cross_entropy_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x, w, b = rand(rng, 8, 20), rand(rng, 10, 20), rand(rng, 10)
    t = rng.integers(0, 10, 8)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tz = torch.nn.functional.linear(tx, tw, tb)
    tz.retain_grad()
    tl = torch.nn.functional.cross_entropy(tz, torch.tensor(t))
    tl.backward()
    z = ops.linear(x, w, b)
    assert_close(z, tz.detach().numpy())
    assert_close(ops.cross_entropy(z, t), tl.detach().numpy())
    gz, _ = ops.cross_entropy_backward(1.0, z, t)
    assert_close(gz, tz.grad.numpy())
    assert_all_close(ops.linear_backward(gz, x, w, b), (tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()))
