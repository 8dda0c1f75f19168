"""batch_norm forward and backward against striate.reference (and PyTorch when installed)."""


import numpy as np
import pytest

from helpers import assert_all_close, assert_close, rand, raises, torch_or_skip
from striate import ops
from striate import reference as ref


def random_bn_case(rng):
    """A random valid batch_norm configuration: (x shape, weight?, bias?, training, momentum, eps)."""
    n = int(rng.integers(2, 9))
    c = int(rng.choice([1, 3, 5, 17]))
    rank = int(rng.choice([2, 3, 4]))
    trailing = tuple(int(v) for v in rng.integers(1, 9, size=rank - 2))
    momentum = float(rng.choice([0.0, 0.1, 0.5, 0.9, 1.0]))
    eps = float(rng.choice([1e-5, 1e-3, 0.1]))
    return ((n, c) + trailing, rng.random() < 0.6, rng.random() < 0.6, rng.random() < 0.5,
            momentum, eps)


CASES = [random_bn_case(np.random.default_rng(2000 + i)) for i in range(30)]
# Edge cases: one channel, a long spatial axis (inner-loop tails), a 5-D input,
# batch 1 with spatial extent (training is fine: m = 6 > 1), (2, C) training.
CASES += [
    ((2, 1, 3, 3), True, True, True, 0.1, 1e-5),
    ((3, 4, 1, 257), True, False, True, 0.3, 1e-5),
    ((2, 3, 2, 3, 4), False, True, False, 0.1, 1e-5),
    ((1, 5, 2, 3), True, True, True, 0.1, 1e-5),
    ((2, 17), True, True, True, 0.1, 1e-5),
    ((8, 3), False, False, False, 0.1, 0.0),
]


def _make(rng, shape, has_w, has_b):
    c = shape[1]
    x = rand(rng, *shape) * 2.0 + 0.5
    rm = rand(rng, c)
    rv = (rng.random(c) + 0.5).astype(np.float32)
    w = rand(rng, c) if has_w else None
    b = rand(rng, c) if has_b else None
    return x, rm, rv, w, b


@pytest.mark.parametrize("case", range(len(CASES)))
def test_batch_norm_matches_reference(case):
    shape, has_w, has_b, training, momentum, eps = CASES[case]
    rng = np.random.default_rng(case)
    x, rm, rv, w, b = _make(rng, shape, has_w, has_b)
    kw = dict(training=training, momentum=momentum, eps=eps)
    what = f"batch_norm {shape} w={has_w} b={has_b} {kw}"

    rm_ours, rv_ours = rm.copy(), rv.copy()
    rm_ref, rv_ref = rm.copy(), rv.copy()
    y = ops.batch_norm(x, rm_ours, rv_ours, w, b, **kw)
    y_ref = ref.batch_norm(x, rm_ref, rv_ref, w, b, **kw)
    assert y.dtype == np.float32
    assert_close(y, y_ref, what=what)
    # Running statistics: updated in place in training mode exactly as the
    # reference updates its copy; untouched in eval mode.
    assert_close(rm_ours, rm_ref, what=f"{what} running_mean")
    assert_close(rv_ours, rv_ref, what=f"{what} running_var")
    if not training:
        np.testing.assert_array_equal(rm_ours, rm)
        np.testing.assert_array_equal(rv_ours, rv)

    gy = rand(rng, *shape)
    inputs = [gy, x, rm, rv] + [a for a in (w, b) if a is not None]
    copies = [a.copy() for a in inputs]
    grads = ops.batch_norm_backward(gy, x, rm, rv, w, b, **kw)
    grads_ref = ref.batch_norm_backward(gy, x, rm, rv, w, b, **kw)
    assert isinstance(grads, tuple) and len(grads) == 5
    assert grads[1] is None and grads[2] is None
    assert_all_close(grads, grads_ref, what=f"{what} backward")
    for a, c in zip(inputs, copies):
        np.testing.assert_array_equal(a, c)  # backward never mutates its inputs


def test_training_without_running_stats():
    rng = np.random.default_rng(1)
    x, _, _, w, b = _make(rng, (4, 3, 5), True, True)
    y = ops.batch_norm(x, None, None, w, b, training=True)
    assert_close(y, ref.batch_norm(x, None, None, w, b, training=True))
    grads = ops.batch_norm_backward(rand(rng, 4, 3, 5), x, None, None, w, b, training=True)
    assert grads[3] is not None and grads[4] is not None


def test_training_updates_only_the_given_running_stat():
    rng = np.random.default_rng(2)
    x, rm, rv, _, _ = _make(rng, (4, 3, 5), False, False)
    rm_ours, rm_ref = rm.copy(), rm.copy()
    ops.batch_norm(x, rm_ours, None, training=True, momentum=0.3)
    ref.batch_norm(x, rm_ref, None, training=True, momentum=0.3)
    assert_close(rm_ours, rm_ref)
    rv_ours, rv_ref = rv.copy(), rv.copy()
    ops.batch_norm(x, None, rv_ours, training=True, momentum=0.3)
    ref.batch_norm(x, None, rv_ref, training=True, momentum=0.3)
    assert_close(rv_ours, rv_ref)


def test_running_stats_accumulate_over_steps():
    rng = np.random.default_rng(3)
    rm, rv = np.zeros(5, np.float32), np.ones(5, np.float32)
    rm_ref, rv_ref = rm.copy(), rv.copy()
    for _ in range(5):
        x = rand(rng, 6, 5, 4, 4) * 3.0 + 1.0
        ops.batch_norm(x, rm, rv, training=True, momentum=0.2)
        ref.batch_norm(x, rm_ref, rv_ref, training=True, momentum=0.2)
    assert_close(rm, rm_ref, what="running_mean")
    assert_close(rv, rv_ref, what="running_var")


def test_large_mean_offset_is_accurate():
    # Two-pass statistics in double: no E[x^2] - E[x]^2 cancellation.
    rng = np.random.default_rng(4)
    x = (rand(rng, 8, 3, 16, 16) + 300.0).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y = ops.batch_norm(x, rm, rv, training=True)
    assert_close(y, ref.batch_norm(x, None, None, training=True))
    gy = rand(rng, *x.shape)
    assert_all_close(ops.batch_norm_backward(gy, x, None, None, training=True),
                     ref.batch_norm_backward(gy, x, None, None, training=True))


@pytest.mark.parametrize("bad", [
    np.zeros(3, np.float64),                       # wrong dtype
    np.zeros(6, np.float32)[::2],                  # not contiguous
    [0.0, 0.0, 0.0],                               # not an ndarray
])
def test_training_running_stats_must_be_updatable(bad):
    rng = np.random.default_rng(5)
    x = rand(rng, 4, 3, 2)
    ones = np.ones(3, np.float32)
    with raises(TypeError, "running_mean", "in place"):
        ops.batch_norm(x, bad, ones, training=True)
    with raises(TypeError, "running_var", "in place"):
        ops.batch_norm(x, ones.copy(), bad, training=True)


def test_training_read_only_running_stat_is_a_type_error():
    x = rand(np.random.default_rng(6), 4, 3, 2)
    rm = np.zeros(3, np.float32)
    rm.flags.writeable = False
    with raises(TypeError, "running_mean", "writeable"):
        ops.batch_norm(x, rm, np.ones(3, np.float32), training=True)


def test_eval_running_stats_are_converted_and_not_touched():
    rng = np.random.default_rng(7)
    x, rm, rv, w, b = _make(rng, (3, 4, 5), True, True)
    rm64, rv_list = rm.astype(np.float64), rv.tolist()
    y = ops.batch_norm(x, rm64, rv_list, w, b)
    assert_close(y, ref.batch_norm(x, rm, rv, w, b))
    np.testing.assert_array_equal(rm64, rm.astype(np.float64))
    # Backward only reads them, in either mode: conversion is fine there.
    gy = rand(rng, *x.shape)
    for training in (False, True):
        assert_all_close(ops.batch_norm_backward(gy, x, rm64, rv_list, w, b, training=training),
                         ref.batch_norm_backward(gy, x, rm, rv, w, b, training=training))


def test_conversion_of_float64_and_noncontiguous_input():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 6, 5)).transpose(0, 2, 1)  # float64, (4, 5, 6), not contiguous
    rm, rv = np.zeros(5, np.float32), np.ones(5, np.float32)
    rm_ref, rv_ref = rm.copy(), rv.copy()
    y = ops.batch_norm(x, rm, rv, x[0, :, 0], None, training=True)
    assert y.dtype == np.float32
    assert_close(y, ref.batch_norm(x, rm_ref, rv_ref, x[0, :, 0], None, training=True))
    assert_close(rm, rm_ref)


def test_empty_batch_in_eval_mode():
    x = np.zeros((0, 3, 4), np.float32)
    y = ops.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32))
    assert y.shape == (0, 3, 4)


def test_batch_norm_backward_bad_grad_shape():
    rng = np.random.default_rng(9)
    x, rm, rv, w, b = _make(rng, (2, 3, 4), True, True)
    with raises(ValueError, "grad_out", "(2, 3, 4)", "(2, 3, 5)"):
        ops.batch_norm_backward(rand(rng, 2, 3, 5), x, rm, rv, w, b)
    with raises(ValueError, "grad_out"):
        ops.batch_norm_backward(rand(rng, 2, 3, 4, 1), x, rm, rv, w, b, training=True)


C3 = np.zeros(3, np.float32)
C4 = np.zeros(4, np.float32)


def _x(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize("args, kwargs, exc, fragments", [
    ((_x(3), C3, C3), {}, ValueError, ("x", "(3,)")),
    ((np.float32(1.0), C3, C3), {}, ValueError, ("x", "()")),
    ((_x(2, 3), C4, C3), {}, ValueError, ("running_mean", "(3,)", "(4,)")),
    ((_x(2, 3, 5), C3, C4), {}, ValueError, ("running_var", "(3,)", "(4,)")),
    ((_x(2, 3, 5), C3, C3, C4), {}, ValueError, ("weight", "(3,)", "(4,)")),
    ((_x(2, 3, 5), C3, C3, None, C4), {}, ValueError, ("bias", "(3,)", "(4,)")),
    ((_x(2, 3, 5), C3, C3, np.zeros((3, 1), np.float32)), {}, ValueError, ("weight", "(3, 1)")),
    ((_x(1, 3), None, None), dict(training=True), ValueError, ("more than 1 value", "x", "(1, 3)")),
    ((_x(1, 3, 1, 1), None, None), dict(training=True), ValueError, ("more than 1 value", "x")),
    ((_x(0, 3, 4), None, None), dict(training=True), ValueError, ("more than 1 value", "x")),
    ((_x(2, 3), None, None), {}, ValueError, ("running_mean", "running_var", "training=False")),
    ((_x(2, 3), None, C3), {}, ValueError, ("running_mean", "training=False")),
    ((_x(2, 3), C3, None), {}, ValueError, ("running_var", "training=False")),
    ((_x(2, 0, 3), None, None), dict(training=True), ValueError, ("x", "empty")),
    ((_x(2, 3), C3, C3), dict(eps=-1e-5), ValueError, ("eps", "-1e-05")),
    ((_x(2, 3), C3, C3), dict(eps=float("nan")), ValueError, ("eps", "nan")),
    ((_x(2, 3), C3, C3), dict(eps=float("inf")), ValueError, ("eps",)),
    ((_x(2, 3), C3, C3), dict(eps=1e300), ValueError, ("eps",)),
    ((_x(2, 3), C3, C3), dict(momentum=-0.1), ValueError, ("momentum", "-0.1")),
    ((_x(2, 3), C3, C3), dict(momentum=float("inf")), ValueError, ("momentum",)),
    ((_x(2, 3), C3, C3), dict(momentum=None), TypeError, ("momentum",)),
    ((_x(2, 3), C3, C3), dict(eps="1e-5"), TypeError, ("eps",)),
    ((_x(2, 3), C3, C3), dict(training=1), TypeError, ("training",)),
    ((_x(2, 3).astype(bool), C3, C3), {}, TypeError, ("x", "bool")),
    ((_x(2, 3), C3, C3, "w"), {}, TypeError, ("weight",)),
])
def test_batch_norm_bad_input(args, kwargs, exc, fragments):
    for fn in (ops.batch_norm, lambda *a, **k: ops.batch_norm_backward(args[0], *a, **k)):
        with raises(exc, *fragments):
            fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args], **kwargs)


def test_raw_binding_never_updates_a_copy():
    # The compiled entry point itself refuses non-ndarray running statistics
    # and never converts them.
    from striate import _C
    x = rand(np.random.default_rng(10), 4, 3)
    with raises(TypeError, "running_mean"):
        _C.batch_norm(x, [0.0, 0.0, 0.0], None, None, None, True, 0.1, 1e-5)
    with raises(TypeError, "running_mean", "float32"):
        _C.batch_norm(x, np.zeros(3), None, None, None, True, 0.1, 1e-5)


@pytest.mark.parametrize("case", [0, 3, 7, 12, 30, 31, 34])
def test_batch_norm_matches_torch(case):
    torch = torch_or_skip()
    shape, has_w, has_b, training, momentum, eps = CASES[case]
    rng = np.random.default_rng(case)
    x, rm, rv, w, b = _make(rng, shape, has_w, has_b)
    gy = rand(rng, *shape)
    kw = dict(training=training, momentum=momentum, eps=eps)

    rm_ours, rv_ours = rm.copy(), rv.copy()
    y = ops.batch_norm(x, rm_ours, rv_ours, w, b, **kw)
    grads = ops.batch_norm_backward(gy, x, rm, rv, w, b, **kw)

    t = lambda a, grad=False: None if a is None else torch.tensor(  # noqa: E731
        a, dtype=torch.float64, requires_grad=grad)
    xt, wt, bt = t(x, True), t(w, True), t(b, True)
    rmt, rvt = t(rm), t(rv)
    yt = torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, **kw)
    yt.backward(torch.tensor(gy, dtype=torch.float64))
    assert_close(y, yt.detach().numpy(), what="forward")
    assert_close(rm_ours, rmt.numpy(), what="running_mean")
    assert_close(rv_ours, rvt.numpy(), what="running_var")
    expected = (xt.grad.numpy(), None, None, None if wt is None else wt.grad.numpy(),
                None if bt is None else bt.grad.numpy())
    assert_all_close(grads, expected, what="backward")
