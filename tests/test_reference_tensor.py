"""Tests of the oracle's tensor ops, dropout, mse_loss and optimizer updates:
backward by finite differences (tests/test_reference.py's machinery), the
dropout hash against splitmix64's published outputs, and the optimizer
formulas against closed forms."""

import numpy as np
import pytest

from striate import reference as ref
from test_reference import check_backward


def r(rng, *shape):
    return rng.standard_normal(shape)


def test_add_backward():
    rng = np.random.default_rng(0)
    check_backward(ref.add, ref.add_backward, [r(rng, 2, 3), r(rng, 2, 3)])


@pytest.mark.parametrize("ashape, bshape", [((2, 3, 2, 3), (2, 3, 1, 1)), ((3, 4), (3, 4)),
                                            ((2, 3, 2), (1, 1, 1)), ((2, 2, 3), (2, 2, 1))])
def test_mul_backward(ashape, bshape):
    rng = np.random.default_rng(1)
    check_backward(ref.mul, ref.mul_backward, [r(rng, *ashape), r(rng, *bshape)])


def test_mul_forward_broadcasts_per_channel():
    a = np.arange(8.0).reshape(1, 2, 2, 2)
    y = ref.mul(a, np.array([2.0, -1.0]).reshape(1, 2, 1, 1))
    np.testing.assert_array_equal(y, [[[[0, 2], [4, 6]], [[-4, -5], [-6, -7]]]])
    with pytest.raises(ValueError):
        ref.mul(a, np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("shapes, dim", [([(2, 1, 2), (2, 3, 2), (2, 2, 2)], 1),
                                         ([(1, 3), (2, 3)], 0), ([(2, 2), (2, 1)], -1)])
def test_cat_backward(shapes, dim):
    rng = np.random.default_rng(2)
    arrays = [r(rng, *s) for s in shapes]

    def fwd(*xs, dim):
        return ref.cat(list(xs), dim)

    def bwd(g, *xs, dim):
        return ref.cat_backward(g, list(xs), dim)

    check_backward(fwd, bwd, arrays, dict(dim=dim))


def test_dropout_uniform_is_splitmix64():
    # Published splitmix64 outputs for seed 1234567 (Vigna's splitmix64.c).
    outputs = [6457827717110365317, 3203168211198807973, 9817491932198370423,
               4593380528125082431, 16408922859458223821]
    u = ref.dropout_uniform(1234567, 5)
    np.testing.assert_array_equal(u * 2**24, [o >> 40 for o in outputs])
    big = ref.dropout_uniform(2**64 - 1, 10_000)
    assert big.min() >= 0 and big.max() < 1 and abs(big.mean() - 0.5) < 0.02


@pytest.mark.parametrize("p, training", [(0.4, True), (0.0, True), (0.4, False), (1.0, True)])
def test_dropout_backward(p, training):
    rng = np.random.default_rng(3)
    check_backward(ref.dropout, ref.dropout_backward, [r(rng, 3, 4)],
                   dict(p=p, training=training, seed=11))


def test_dropout_forward_keeps_where_uniform_at_least_p():
    x = np.arange(1.0, 7.0)
    u = ref.dropout_uniform(5, 6)
    y = ref.dropout(x, p=0.5, seed=5)
    np.testing.assert_array_equal(y, np.where(u >= 0.5, 2 * x, 0.0))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_backward(reduction):
    rng = np.random.default_rng(4)
    grad_out = None if reduction == "none" else np.float64(0.8)
    check_backward(ref.mse_loss, ref.mse_loss_backward, [r(rng, 2, 5), r(rng, 2, 5)],
                   dict(reduction=reduction), grad_out=grad_out)


def test_mse_loss_values():
    x, t = np.array([1.0, 2.0, 4.0]), np.array([0.0, 2.0, 1.0])
    assert ref.mse_loss(x, t) == pytest.approx(10.0 / 3)
    assert ref.mse_loss(x, t, "sum") == 10.0
    np.testing.assert_array_equal(ref.mse_loss(x, t, "none"), [1.0, 0.0, 9.0])


def test_sgd_update_closed_forms():
    # Constant gradient g, heavy ball, no dampening: buf_k = g * sum_{j<k} m^j.
    g, m, lr = np.array([0.5, -2.0]), 0.9, 0.1
    p, buf = np.zeros(2), None
    for k in range(1, 5):
        p, buf = ref.sgd_update(p, g, buf, lr=lr, momentum=m, first_step=k == 1)
        np.testing.assert_allclose(buf, g * (1 - m**k) / (1 - m))
    np.testing.assert_allclose(p, -lr * g * sum((1 - m**k) / (1 - m) for k in range(1, 5)))
    # Nesterov uses g + m * buf; weight decay adds wd * param to the gradient.
    p1, b1 = ref.sgd_update(np.ones(2), g, None, lr=lr, momentum=m, nesterov=True,
                            weight_decay=0.5, first_step=True)
    np.testing.assert_allclose(b1, g + 0.5)
    np.testing.assert_allclose(p1, 1 - lr * (1 + m) * (g + 0.5))


def test_adam_update_closed_forms():
    # Constant gradient: the bias-corrected moments are g and g^2 at every
    # step, so each step moves by lr * g / (|g| + eps).
    g, lr, eps = np.array([0.5, -2.0]), 0.01, 1e-3
    p, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    for k in range(1, 4):
        p, m, v = ref.adam_update(p, g, m, v, step=k, lr=lr, eps=eps)
        np.testing.assert_allclose(m, (1 - 0.9**k) * g)
        np.testing.assert_allclose(v, (1 - 0.999**k) * g * g)
    np.testing.assert_allclose(p, -3 * lr * g / (np.abs(g) + eps))
    # AdamW shrinks the parameter before the step; Adam adds wd * p to g.
    pw, _, _ = ref.adam_update(np.ones(2), g, np.zeros(2), np.zeros(2), step=1, lr=lr, eps=0.0,
                               weight_decay=0.1, decoupled_weight_decay=True)
    np.testing.assert_allclose(pw, (1 - lr * 0.1) - lr * np.sign(g))
    pa, ma, _ = ref.adam_update(np.ones(2), g, np.zeros(2), np.zeros(2), step=1, lr=lr, eps=0.0,
                                weight_decay=0.1)
    np.testing.assert_allclose(ma, 0.1 * (g + 0.1))
    np.testing.assert_allclose(pa, 1 - lr * np.sign(g + 0.1))
