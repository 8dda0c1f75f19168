"""local_response_norm forward and backward against striate.reference (and PyTorch when installed)."""

import time

import numpy as np
import pytest

from helpers import assert_close, rand, raises, torch_or_skip
from striate import ops
from striate import reference as ref


def random_lrn_case(rng):
    """A random valid configuration: (x shape, size, alpha, beta, k)."""
    size = int(rng.integers(1, 8))
    c = int(rng.choice([1, 2, 3, 5, 8, 17]))  # smaller and larger than size
    rank = int(rng.choice([3, 4, 4, 5]))
    trailing = tuple(int(v) for v in rng.integers(1, 7, size=rank - 2))
    n = int(rng.integers(1, 4))
    alpha = float(rng.choice([1e-4, 0.01, 0.5, 2.0]))
    beta = float(rng.choice([0.5, 0.75, 1.0, 2.0]))
    k = float(rng.choice([0.5, 1.0, 2.0]))
    return (n, c) + trailing, size, alpha, beta, k


CASES = [random_lrn_case(np.random.default_rng(3000 + i)) for i in range(30)]
# Edge cases: several spatial blocks with a ragged tail, one spatial column,
# size far larger than C, AlexNet's layer, size 1 (pointwise), k = 0.
CASES += [
    ((2, 7, 9, 17), 5, 1e-4, 0.75, 2.0),  # 153 columns: 3 blocks
    ((3, 6, 1), 3, 0.5, 0.75, 1.0),
    ((2, 3, 4, 4), 7, 1.0, 0.75, 1.0),
    ((1, 4, 3, 3), 2, 1.0, 1.5, 0.0),
    ((2, 5, 4, 4), 1, 0.3, 0.75, 1.0),
    ((1, 16, 13, 13), 5, 1e-4, 0.75, 2.0),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_local_response_norm_matches_reference(case):
    shape, size, alpha, beta, k = CASES[case]
    rng = np.random.default_rng(case)
    x = rand(rng, *shape) * 2.0
    kw = dict(alpha=alpha, beta=beta, k=k)
    what = f"local_response_norm {shape} size={size} {kw}"
    y = ops.local_response_norm(x, size, **kw)
    assert y.dtype == np.float32
    assert_close(y, ref.local_response_norm(x, size, **kw), what=what)

    gy = rand(rng, *shape)
    copies = [a.copy() for a in (gy, x)]
    grads = ops.local_response_norm_backward(gy, x, size, **kw)
    assert isinstance(grads, tuple) and len(grads) == 1
    assert grads[0].dtype == np.float32
    assert_close(grads[0], ref.local_response_norm_backward(gy, x, size, **kw)[0],
                 what=f"{what} backward")
    for a, c in zip((gy, x), copies):
        np.testing.assert_array_equal(a, c)  # backward never mutates its inputs


def test_default_arguments():
    rng = np.random.default_rng(1)
    x = rand(rng, 2, 6, 5, 5) * 30.0  # large enough for alpha=1e-4 to matter
    assert_close(ops.local_response_norm(x, 3), ref.local_response_norm(x, 3))
    gy = rand(rng, *x.shape)
    assert_close(ops.local_response_norm_backward(gy, x, 3)[0],
                 ref.local_response_norm_backward(gy, x, 3)[0])


def test_mixed_magnitudes_across_channels():
    # Sliding window sums in double: a huge channel leaving the window must
    # not swamp the small ones after it.
    rng = np.random.default_rng(2)
    x = rand(rng, 2, 9, 3, 5)
    x[:, 2] *= 1e4
    x[:, 6] *= 1e-3
    kw = dict(alpha=1.0, beta=0.75, k=1e-3)
    assert_close(ops.local_response_norm(x, 3, **kw)[:, 5:], ref.local_response_norm(x, 3, **kw)[:, 5:])
    gy = rand(rng, *x.shape)
    assert_close(ops.local_response_norm_backward(gy, x, 3, **kw)[0][:, 6:],
                 ref.local_response_norm_backward(gy, x, 3, **kw)[0][:, 6:])


def _assert_close_nonfinite(actual, expected, what=""):
    """Same NaN / +-Inf pattern, finite entries close."""
    expected = np.asarray(expected)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"{what}: NaN")
    fin = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~fin & ~np.isnan(expected)],
                                  expected[~fin & ~np.isnan(expected)], err_msg=f"{what}: Inf")
    assert_close(actual[fin], expected[fin], what=what)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nonfinite_input_affects_only_its_windows(bad):
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 8, 3, 30)
    x[0, 2, 1, 4] = bad
    x[1, 5, 0, 0] = bad
    kw = dict(alpha=0.5, beta=0.75, k=1.0)
    y = ops.local_response_norm(x, 3, **kw)
    with np.errstate(invalid="ignore"):
        y_ref = ref.local_response_norm(x, 3, **kw)
    assert np.isfinite(y_ref[0, 5:, 1, 4]).all()  # channels past the window stay finite
    _assert_close_nonfinite(y, y_ref, "forward")
    gy = rand(rng, *x.shape)
    with np.errstate(invalid="ignore"):
        g_ref = ref.local_response_norm_backward(gy, x, 3, **kw)[0]
    _assert_close_nonfinite(ops.local_response_norm_backward(gy, x, 3, **kw)[0], g_ref, "backward")


def test_huge_size_does_not_hang_and_covers_all_channels():
    rng = np.random.default_rng(4)
    x = rand(rng, 2, 5, 3, 3)
    size = 2**40
    alpha, beta, k = 3e11, 0.75, 1.0
    d = k + alpha / size * (x.astype(np.float64) ** 2).sum(axis=1, keepdims=True)
    start = time.perf_counter()
    y = ops.local_response_norm(x, size, alpha, beta, k)
    (gx,) = ops.local_response_norm_backward(np.ones_like(x), x, size, alpha, beta, k)
    # A hang guard, not a speed test: a loop over the 2**40-wide window would
    # run for hours; the kernels clip the window to the C channels.
    assert time.perf_counter() - start < 20.0
    assert_close(y, x / d**beta)
    assert np.isfinite(gx).all()


def test_conversion_of_float64_and_noncontiguous_input():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5, 6, 4)).transpose(0, 1, 3, 2)  # float64, not contiguous
    y = ops.local_response_norm(x, 3, alpha=0.5)
    assert y.dtype == np.float32
    assert_close(y, ref.local_response_norm(x, 3, alpha=0.5))


def test_empty_batch():
    assert ops.local_response_norm(np.zeros((0, 3, 4), np.float32), 2).shape == (0, 3, 4)


def test_local_response_norm_backward_bad_grad_shape():
    rng = np.random.default_rng(6)
    x = rand(rng, 2, 3, 4)
    with raises(ValueError, "grad_out", "(2, 3, 4)", "(2, 3, 5)"):
        ops.local_response_norm_backward(rand(rng, 2, 3, 5), x, 2)


def _x(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize("args, kwargs, exc, fragments", [
    ((_x(2, 3), 2), {}, ValueError, ("x", "(2, 3)", "3 dimensions")),
    ((_x(4), 2), {}, ValueError, ("x", "(4,)")),
    ((_x(2, 0, 3), 2), {}, ValueError, ("x", "empty")),
    ((_x(2, 3, 4), 0), {}, ValueError, ("size", "positive", "0")),
    ((_x(2, 3, 4), -3), {}, ValueError, ("size", "-3")),
    ((_x(2, 3, 4), 2**40 + 1), {}, ValueError, ("size", "absurdly large")),
    ((_x(2, 3, 4), 2.0), {}, TypeError, ("size",)),
    ((_x(2, 3, 4), True), {}, TypeError, ("size",)),
    ((_x(2, 3, 4), 2), dict(alpha=float("nan")), ValueError, ("alpha", "nan")),
    ((_x(2, 3, 4), 2), dict(beta=float("inf")), ValueError, ("beta",)),
    ((_x(2, 3, 4), 2), dict(k=1e300), ValueError, ("k",)),
    ((_x(2, 3, 4), 2), dict(k=None), TypeError, ("k",)),
    ((_x(2, 3, 4).astype(complex), 2), {}, TypeError, ("x", "complex")),
])
def test_local_response_norm_bad_input(args, kwargs, exc, fragments):
    for fn in (ops.local_response_norm,
               lambda *a, **k: ops.local_response_norm_backward(args[0], *a, **k)):
        with raises(exc, *fragments):
            fn(*args, **kwargs)


@pytest.mark.parametrize("case", [0, 5, 11, 30, 32, 33])
def test_local_response_norm_matches_torch(case):
    torch = torch_or_skip()
    shape, size, alpha, beta, k = CASES[case]
    rng = np.random.default_rng(case)
    x = rand(rng, *shape) * 2.0
    gy = rand(rng, *shape)
    kw = dict(alpha=alpha, beta=beta, k=k)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = torch.nn.functional.local_response_norm(xt, size, **kw)
    yt.backward(torch.tensor(gy, dtype=torch.float64))
    assert_close(ops.local_response_norm(x, size, **kw), yt.detach().numpy(), what="forward")
    assert_close(ops.local_response_norm_backward(gy, x, size, **kw)[0], xt.grad.numpy(),
                 what="backward")
