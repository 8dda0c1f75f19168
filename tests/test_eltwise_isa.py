"""The per-ISA elementwise / normalization kernels (kernels/cpu/eltwise_*.cpp) at every
ISA level this machine runs: activations, softmax, cross-entropy, batch norm, LRN and
max-pool backward against the float64 reference, with shapes that cross the kernels'
lane, block and chunk boundaries, plus per-element accuracy of the vectorized tanh."""

import numpy as np
import pytest

from helpers import assert_all_close, assert_close, rand
from striate import ops
from striate import reference as ref



def _check(name, args, kwargs, grad_shape=None, rng=None):
    y = getattr(ops, name)(*args, **kwargs)
    assert_close(y, getattr(ref, name)(*args, **kwargs), what=name)
    g = rand(rng, *(grad_shape or y.shape))
    assert_all_close(getattr(ops, name + "_backward")(g, *args, **kwargs),
                     getattr(ref, name + "_backward")(g, *args, **kwargs), what=name + "_backward")


# 16 lanes, 16K-element chunks: sizes below, at and across both.
@pytest.mark.parametrize("n", [1, 15, 16, 17, 16384 + 3, 3 * 16384])
@pytest.mark.parametrize("name, kwargs", [("relu", {}), ("leaky_relu", {"negative_slope": 0.1}),
                                          ("sigmoid", {}), ("tanh", {})])
def test_activations(isa, name, kwargs, n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    _check(name, (x,), kwargs, rng=rng)


def test_tanh_elementwise_accuracy(isa):
    # Relative error per element, including tiny |x| where 1 - 2/(e^2x + 1)
    # would cancel, and the switch between the two formulas at |x| = 0.625.
    x = np.concatenate([np.linspace(-12, 12, 200_001), np.geomspace(1e-30, 0.7, 20_001),
                        -np.geomspace(1e-30, 0.7, 20_001)]).astype(np.float32)
    y = ops.tanh(x).astype(np.float64)
    r = np.tanh(x.astype(np.float64))
    nz = r != 0
    assert np.max(np.abs(y - r)[nz] / np.abs(r[nz])) <= 4e-7
    np.testing.assert_array_equal(ops.tanh(np.array([np.inf, -np.inf, 0.0], np.float32)),
                                  [1.0, -1.0, 0.0])
    assert np.isnan(ops.tanh(np.array([np.nan], np.float32))[0])
    g = ops.tanh_backward(np.ones(3, np.float32), np.array([np.nan, 100.0, -100.0], np.float32))[0]
    assert np.isnan(g[0]) and g[1] == 0.0 and g[2] == 0.0


def test_sigmoid_backward_elementwise_accuracy(isa):
    # s(1 - s) from e = exp(-|x|): accurate also where s rounds to 1.
    x = np.linspace(-80, 80, 100_001).astype(np.float32)
    g = ops.sigmoid_backward(np.ones_like(x), x)[0].astype(np.float64)
    e = np.exp(-np.abs(x.astype(np.float64)))
    r = e / (1 + e) ** 2
    assert np.max(np.abs(g - r) / r) <= 1e-6


def test_tanh_backward_elementwise_accuracy(isa):
    # 1 - tanh^2 as 4u / (1 + u)^2, u = exp(-2|x|): accurate also where tanh rounds to +-1.
    x = np.linspace(-40, 40, 100_001).astype(np.float32)
    g = ops.tanh_backward(np.ones_like(x), x)[0].astype(np.float64)
    u = np.exp(-2 * np.abs(x.astype(np.float64)))
    r = 4 * u / (1 + u) ** 2
    assert np.max(np.abs(g - r) / r) <= 1e-6


# Rows (inner == 1) with dims around the 16 lanes; channels with inner around
# the 64-lane block (ragged last block, several blocks).
@pytest.mark.parametrize("shape, dim", [((3, 1), 1), ((5, 17), 1), ((2, 1000), 1), ((7, 33), 0),
                                        ((2, 5, 64), 1), ((2, 9, 130), 1), ((3, 4, 5, 7), 1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax(isa, name, shape, dim):
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    _check(name, (x,), {"dim": dim}, rng=rng)


@pytest.mark.parametrize("inner", [1, 70])
def test_softmax_nonfinite_lanes(isa, inner):
    # A NaN, an all -inf lane or a +inf entry makes exactly its own lane NaN (as in
    # PyTorch); the other lanes are untouched.
    x = np.zeros((4, 6, inner), np.float32)
    x[0, 2, 0] = np.nan
    x[1, :, 0] = -np.inf
    x[2, 3, 0] = np.inf
    for f in (ops.softmax, ops.log_softmax):
        y = f(x, 1)
        assert np.isnan(y[:3, :, 0]).all()
        np.testing.assert_allclose(y[3], f(np.zeros((1, 6, inner), np.float32), 1)[0])
        if inner > 1:
            assert np.isfinite(y[:, :, 1:]).all()


@pytest.mark.parametrize("n, c", [(1, 1), (3, 17), (40, 1000)])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy(isa, n, c, reduction):
    rng = np.random.default_rng(c)
    z = (rng.standard_normal((n, c)) * 4).astype(np.float32)
    t = rng.integers(0, c, n)
    kw = dict(reduction=reduction)
    assert_close(ops.cross_entropy(z, t, **kw), ref.cross_entropy(z, t, **kw))
    g = np.float32(0.7) if reduction == "mean" else rand(rng, n)
    assert_close(ops.cross_entropy_backward(g, z, t, **kw)[0],
                 ref.cross_entropy_backward(g, z, t, **kw)[0])


def test_cross_entropy_nonfinite_logit_is_nan(isa):
    # PyTorch: log_softmax of a row holding +inf or NaN is NaN everywhere.
    z = np.zeros((3, 4), np.float32)
    z[0, 1], z[1, 2] = np.inf, np.nan
    loss = ops.cross_entropy(z, np.array([0, 0, 0]), reduction="none")
    assert np.isnan(loss[:2]).all() and np.isclose(loss[2], np.log(4))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 17), (2, 4, 9, 9)])
def test_batch_norm(isa, training, shape):
    rng = np.random.default_rng(shape[-1])
    x = rand(rng, *shape) * 3 + 10
    c = shape[1]
    w, b = rand(rng, c), rand(rng, c)
    rm, rv = rand(rng, c), np.abs(rand(rng, c)) + 0.5
    rm2, rv2 = rm.copy(), rv.copy()
    y = ops.batch_norm(x, rm, rv, w, b, training=training)
    assert_close(y, ref.batch_norm(x, rm2, rv2, w, b, training=training))
    g = rand(rng, *shape)
    assert_all_close(ops.batch_norm_backward(g, x, rm, rv, w, b, training=training),
                     ref.batch_norm_backward(g, x, rm, rv, w, b, training=training))


@pytest.mark.parametrize("shape, size", [((2, 7, 9, 17), 5), ((1, 20, 70), 3), ((2, 5, 3), 9),
                                         ((1, 3, 130), 1)])
def test_local_response_norm(isa, shape, size):
    rng = np.random.default_rng(size)
    x = rand(rng, *shape) * 2
    _check("local_response_norm", (x, size), dict(alpha=0.5, beta=0.75, k=1.0), rng=rng)


def test_local_response_norm_window_larger_than_the_stack_ring(isa):
    # min(size, C) > 4096 rows do not fit the backward's stack ring.
    rng = np.random.default_rng(0)
    x = rand(rng, 1, 4200, 2)
    kw = dict(alpha=2.0, beta=0.75, k=1.0)
    _check("local_response_norm", (x, 8191), kw, rng=rng)


@pytest.mark.parametrize("shape, kw", [
    ((2, 3, 9, 150), dict(kernel_size=3, stride=2, padding=1)),   # > 64 outputs per row
    ((2, 2, 8, 8), dict(kernel_size=2, stride=2)),
    ((1, 2, 7, 9), dict(kernel_size=(2, 3), stride=1, padding=1, dilation=(1, 2))),
    ((1, 2, 10, 11), dict(kernel_size=3, stride=3, padding=1, ceil_mode=True)),
])
def test_max_pool2d_backward(isa, shape, kw):
    rng = np.random.default_rng(shape[-1])
    x = rng.integers(-2, 3, size=shape).astype(np.float32)  # many exact ties
    x.flat[::37] = np.nan
    x.flat[5::41] = -np.inf
    y = ops.max_pool2d(x, **kw)
    y_ref = ref.max_pool2d(x, **kw)
    np.testing.assert_array_equal(y, y_ref)
    g = rand(rng, *y.shape)
    assert_close(ops.max_pool2d_backward(g, x, **kw)[0], ref.max_pool2d_backward(g, x, **kw)[0])
