"""relu, leaky_relu, sigmoid, tanh, softmax, log_softmax vs striate.reference (and PyTorch)."""

import numpy as np
import pytest

from helpers import assert_close, rand, raises, torch_or_skip
from striate import ops
from striate import reference as ref

SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4, 5), (1, 17, 1, 1), (4, 0, 3), (70000,)]
ELEMENTWISE = [
    ("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": -1.5}), ("sigmoid", {}), ("tanh", {}),
]


@pytest.mark.parametrize("name, kwargs", ELEMENTWISE)
@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_matches_reference(name, kwargs, shape):
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    if x.size > 3:
        x.flat[:3] = [0.0, 30.0, -30.0]  # the kink and saturation
    y = getattr(ops, name)(x, **kwargs)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert_close(y, getattr(ref, name)(x, **kwargs), what=name)
    gy = rand(rng, *shape)
    x0 = x.copy()
    (gx,) = getattr(ops, name + "_backward")(gy, x, **kwargs)
    (gx_ref,) = getattr(ref, name + "_backward")(gy, x, **kwargs)
    assert_close(gx, gx_ref, what=name + "_backward")
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_nan_propagates(name):
    x = np.array([np.nan, 1.0, -1.0], np.float32)
    y = getattr(ops, name)(x)
    assert np.isnan(y[0]) and not np.isnan(y[1:]).any()


def test_sigmoid_extremes_do_not_overflow():
    x = np.array([-1e4, -100, 100, 1e4], np.float32)
    with np.errstate(all="raise"):
        y = ops.sigmoid(x)
    assert np.isfinite(y).all()
    assert_close(y, ref.sigmoid(x))
    assert y[0] == 0.0 and y[3] == 1.0


SOFTMAX_CASES = [((5,), 0), ((5,), -1), ((3, 7), 1), ((3, 7), 0), ((2, 3, 4), 1),
                 ((2, 3, 4), -3), ((2, 3, 4, 5), 2), ((4, 1000), 1), ((1, 1), 0), ((), 0), ((), -1)]


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape, dim", SOFTMAX_CASES)
def test_softmax_matches_reference(shape, dim, log):
    name = "log_softmax" if log else "softmax"
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    y = getattr(ops, name)(x, dim)
    assert_close(y, getattr(ref, name)(x, dim), what=name)
    gy = rand(rng, *shape)
    (gx,) = getattr(ops, name + "_backward")(gy, x, dim)
    assert_close(gx, getattr(ref, name + "_backward")(gy, x, dim)[0], what=name + "_backward")


def test_softmax_is_stable_for_large_logits():
    x = np.array([[1000.0, 1000.0, -1000.0], [-1e30, 0.0, 1e30]], np.float32)
    y = ops.softmax(x, 1)
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], atol=1e-7)
    assert np.isfinite(ops.log_softmax(x, 1)[:, :2]).all()


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_bad_input(name):
    x = np.zeros((2, 3), np.float32)
    f, fb = getattr(ops, name), getattr(ops, name + "_backward")
    with raises(ValueError, "dim=2", "(2, 3)"):
        f(x, 2)
    with raises(ValueError, "dim=-3"):
        f(x, -3)
    with raises(TypeError, "dim"):
        f(x, 1.0)
    with raises(TypeError, "dim"):
        f(x, None)
    with raises(ValueError, "grad_out", "(2, 3)", "(3, 2)"):
        fb(np.zeros((3, 2), np.float32), x, 1)


@pytest.mark.parametrize("name, kwargs", ELEMENTWISE)
def test_elementwise_bad_input(name, kwargs):
    f, fb = getattr(ops, name), getattr(ops, name + "_backward")
    with raises(TypeError, "x", "complex"):
        f(np.zeros(3, np.complex64), **kwargs)
    with raises(TypeError, "x", "object"):
        f(np.array([1, "a"], dtype=object), **kwargs)
    with raises(ValueError, "grad_out", "(3,)", "(4,)"):
        fb(np.zeros(4, np.float32), np.zeros(3, np.float32), **kwargs)
    if name == "leaky_relu":
        with raises(TypeError, "negative_slope"):
            f(np.zeros(3, np.float32), negative_slope="0.1")


@pytest.mark.parametrize("name, kwargs", ELEMENTWISE + [("softmax", {"dim": 1}),
                                                        ("log_softmax", {"dim": 0})])
def test_matches_torch(name, kwargs):
    torch = torch_or_skip()
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((4, 6)) * 3).astype(np.float32)
    gy = rand(rng, 4, 6)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx, **kwargs)
    ty.backward(torch.tensor(gy))
    assert_close(getattr(ops, name)(x, **kwargs), ty.detach().numpy())
    assert_close(getattr(ops, name + "_backward")(gy, x, **kwargs)[0], tx.grad.numpy())


def test_sigmoid_elementwise_accuracy_over_its_range():
    # The vectorized exp behind sigmoid is checked per element, not only
    # against the largest magnitude: relative error <= 1e-6 wherever the
    # result is a normal float, exact limits at +-inf, NaN kept.
    x = np.linspace(-87, 87, 400_001).astype(np.float32)
    y = ops.sigmoid(x).astype(np.float64)
    r = ref.sigmoid(x)
    normal = r > np.finfo(np.float32).tiny
    assert np.max(np.abs(y - r)[normal] / r[normal]) <= 1e-6
    np.testing.assert_array_equal(ops.sigmoid(np.array([np.inf, -np.inf], np.float32)), [1.0, 0.0])
    assert np.isnan(ops.sigmoid(np.array([np.nan], np.float32))[0])
