"""sgd_update and adam_update vs torch.optim and the float64 reference."""

import numpy as np
import pytest

from helpers import assert_close, rand, raises, torch_or_skip
from striate import ops
from striate import reference as ref

# Several float32 steps vs torch (the same float32 operations in the same
# order) and vs the float64 reference: relative to the largest magnitude.
RTOL = 1e-6
STEPS = 5

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=1e-3),
    dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=5e-4),
    dict(lr=0.0, momentum=0.5),
]
ADAM_CONFIGS = [
    dict(lr=1e-3),
    dict(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    dict(lr=0.02, beta1=0.0, beta2=0.5, weight_decay=0.01, decoupled_weight_decay=True),
    # torch's lerp (exp_avg update) switches form at weight 1 - beta1 = 0.5
    dict(lr=0.01, beta1=0.6),
    dict(lr=0.01, beta1=0.3),
]
SHAPES = [(7,), (3, 4, 5), (70001,)]


def _grads(shape, seed):
    rng = np.random.default_rng(seed)
    return [rand(rng, *shape) for _ in range(STEPS)]


def _run_sgd(shape, cfg):
    rng = np.random.default_rng(1)
    p = rand(rng, *shape)
    buf = np.zeros(shape, np.float32) if cfg.get("momentum", 0) else None
    pr, br = p.astype(np.float64), None
    for k, g in enumerate(_grads(shape, 2)):
        ops.sgd_update(p, g, buf, first_step=k == 0, **cfg)
        pr, br = ref.sgd_update(pr, g, br, first_step=k == 0, **cfg)
    return p, buf, pr, br


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfg", SGD_CONFIGS)
def test_sgd_matches_reference(cfg, shape):
    p, buf, pr, br = _run_sgd(shape, cfg)
    assert_close(p, pr, RTOL, "param")
    assert_close(buf, br, RTOL, "momentum_buffer")


@pytest.mark.parametrize("cfg", SGD_CONFIGS)
def test_sgd_matches_torch(cfg):
    torch = torch_or_skip()
    shape = (6, 9)
    p, buf, _, _ = _run_sgd(shape, cfg)
    rng = np.random.default_rng(1)
    tp = torch.nn.Parameter(torch.tensor(rand(rng, *shape)))
    opt = torch.optim.SGD([tp], foreach=False, **cfg)
    for g in _grads(shape, 2):
        tp.grad = torch.tensor(g)
        opt.step()
    assert_close(p, tp.detach().numpy(), RTOL, "param")
    if buf is not None:
        assert_close(buf, opt.state[tp]["momentum_buffer"].numpy(), RTOL, "momentum_buffer")


def _run_adam(shape, cfg):
    rng = np.random.default_rng(3)
    p = rand(rng, *shape)
    m, v = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    pr, mr, vr = p.astype(np.float64), m.astype(np.float64), v.astype(np.float64)
    for k, g in enumerate(_grads(shape, 4)):
        ops.adam_update(p, g, m, v, step=k + 1, **cfg)
        pr, mr, vr = ref.adam_update(pr, g, mr, vr, step=k + 1, **cfg)
    return (p, m, v), (pr, mr, vr)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfg", ADAM_CONFIGS)
def test_adam_matches_reference(cfg, shape):
    ours, theirs = _run_adam(shape, cfg)
    for a, e, what in zip(ours, theirs, ("param", "exp_avg", "exp_avg_sq")):
        assert_close(a, e, RTOL, what)


@pytest.mark.parametrize("cfg", ADAM_CONFIGS)
def test_adam_matches_torch(cfg):
    torch = torch_or_skip()
    shape = (6, 9)
    ours, _ = _run_adam(shape, cfg)
    cfg = dict(cfg)
    decoupled = cfg.pop("decoupled_weight_decay", False)
    cfg["betas"] = (cfg.pop("beta1", 0.9), cfg.pop("beta2", 0.999))
    cfg.setdefault("weight_decay", 0.0)
    rng = np.random.default_rng(3)
    tp = torch.nn.Parameter(torch.tensor(rand(rng, *shape)))
    opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([tp], foreach=False, **cfg)
    for g in _grads(shape, 4):
        tp.grad = torch.tensor(g)
        opt.step()
    st = opt.state[tp]
    assert int(st["step"]) == STEPS
    for a, e, what in zip(ours, (tp.detach(), st["exp_avg"], st["exp_avg_sq"]),
                          ("param", "exp_avg", "exp_avg_sq")):
        assert_close(a, e.numpy(), RTOL, what)


def test_updates_move_the_parameter_by_the_right_amount():
    # Param-level closeness hides errors in the (small) update itself; the
    # update lr * g must be right to float rounding of the update.
    rng = np.random.default_rng(5)
    p0, g = rand(rng, 1000), rand(rng, 1000)
    p = p0.copy()
    ops.sgd_update(p, g, None, lr=1e-3)
    assert_close(p.astype(np.float64) - p0, -1e-3 * g.astype(np.float64), 1e-3)
    # Adam's first step moves every parameter by lr * g / (|g| + eps / ...) ~ lr.
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    ops.adam_update(p, g, m, v, step=1, lr=1e-2)
    assert_close(p.astype(np.float64) - p0, -1e-2 * np.sign(g), 1e-3)


def test_sgd_first_step_ignores_old_buffer_and_no_momentum_ignores_buffer():
    g = np.float32([1.0, -2.0, 3.0])
    p, buf = np.zeros(3, np.float32), np.full(3, 7.0, np.float32)
    ops.sgd_update(p, g, buf, lr=1.0, momentum=0.9, dampening=0.5, first_step=True)
    np.testing.assert_array_equal(buf, g)  # no dampening on the first step
    np.testing.assert_array_equal(p, -g)
    buf2 = np.full(3, 7.0, np.float32)
    ops.sgd_update(p, g, buf2, lr=1.0)
    np.testing.assert_array_equal(buf2, 7.0)
    np.testing.assert_array_equal(p, -2 * g)


def test_in_place_arrays_must_not_be_copies():
    g = np.ones(4, np.float32)
    buf = np.zeros(4, np.float32)
    for bad, exc, frag in [(np.zeros(4), TypeError, "float32"), ([0.0] * 4, TypeError, "ndarray"),
                           (np.zeros(8, np.float32)[::2], TypeError, "C-contiguous")]:
        with raises(exc, "param", frag):
            ops.sgd_update(bad, g, None, lr=0.1)
        with raises(exc, "momentum_buffer", frag):
            ops.sgd_update(np.zeros(4, np.float32), g, bad, lr=0.1, momentum=0.9)
        with raises(exc, "exp_avg_sq", frag):
            ops.adam_update(np.zeros(4, np.float32), g, buf, bad, step=1)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with raises(ValueError, "param", "writeable"):
        ops.sgd_update(ro, g, None, lr=0.1)
    with raises(ValueError, "exp_avg", "writeable"):
        ops.adam_update(np.zeros(4, np.float32), g, ro, buf, step=1)
    # the raw binding refuses too
    from striate import _C
    with raises(TypeError, "param", "float32"):
        _C.sgd_update(np.zeros(4), g, None, 0.1, 0.0, 0.0, False, 0.0, False)


def test_grad_is_converted_and_not_mutated():
    p = np.zeros((2, 2), np.float32)
    g = [[1, 2], [3, 4]]
    ops.sgd_update(p, g, None, lr=0.5, weight_decay=0.1)
    np.testing.assert_array_equal(p, -0.5 * np.float32(g))
    g32 = np.float32(g)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ops.adam_update(p, g32, m, v, step=1, weight_decay=0.1)
    np.testing.assert_array_equal(g32, np.float32(g))


P, G = np.zeros(3, np.float32), np.zeros(3, np.float32)


def _z():
    return np.zeros(3, np.float32)


@pytest.mark.parametrize("call, exc, fragments", [
    (lambda: ops.sgd_update(_z(), np.zeros(4), None, lr=0.1), ValueError, ("grad", "(4,)", "(3,)")),
    (lambda: ops.sgd_update(_z(), G, np.zeros(4, np.float32), lr=0.1, momentum=0.9), ValueError,
     ("momentum_buffer", "(4,)")),
    (lambda: ops.sgd_update(_z(), G, None, lr=0.1, momentum=0.9), ValueError,
     ("momentum_buffer", "None")),
    (lambda: ops.sgd_update(_z(), G, None, lr=-0.1), ValueError, ("lr", "-0.1")),
    (lambda: ops.sgd_update(_z(), G, None, lr=float("nan")), ValueError, ("lr", "nan")),
    (lambda: ops.sgd_update(_z(), G, None, lr=float("inf")), ValueError, ("lr", "inf")),
    (lambda: ops.sgd_update(_z(), G, _z(), lr=0.1, momentum=-0.5), ValueError, ("momentum",)),
    (lambda: ops.sgd_update(_z(), G, None, lr=0.1, weight_decay=-1.0), ValueError,
     ("weight_decay",)),
    (lambda: ops.sgd_update(_z(), G, _z(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     ValueError, ("nesterov", "dampening")),
    (lambda: ops.sgd_update(_z(), G, None, lr=0.1, nesterov=True), ValueError,
     ("nesterov", "momentum")),
    (lambda: ops.sgd_update(_z(), G, None, lr="0.1"), TypeError, ("lr",)),
    (lambda: ops.sgd_update(_z(), G, None, lr=0.1, nesterov=1), TypeError, ("nesterov",)),
    (lambda: ops.sgd_update(_z(), "g", None, lr=0.1), TypeError, ("grad",)),
    (lambda: ops.sgd_update(P, P, None, lr=0.1), ValueError, ("param", "grad", "share memory")),
    (lambda: ops.adam_update(_z(), G, P, P, step=1), ValueError, ("exp_avg", "share memory")),
    (lambda: ops.adam_update(_z(), G, _z(), np.zeros(2, np.float32), step=1), ValueError,
     ("exp_avg_sq", "(2,)", "(3,)")),
    (lambda: ops.adam_update(_z(), G, _z(), _z(), step=0), ValueError, ("step", "0")),
    (lambda: ops.adam_update(_z(), G, _z(), _z(), step=1.0), TypeError, ("step",)),
    (lambda: ops.adam_update(_z(), G, _z(), _z(), step=1, beta1=1.0), ValueError, ("beta1", "1")),
    (lambda: ops.adam_update(_z(), G, _z(), _z(), step=1, beta2=-0.1), ValueError, ("beta2",)),
    (lambda: ops.adam_update(_z(), G, _z(), _z(), step=1, eps=-1e-8), ValueError, ("eps",)),
    (lambda: ops.adam_update(_z(), G, _z(), _z(), step=1, lr=-1.0), ValueError, ("lr",)),
    (lambda: ops.adam_update(_z(), G, _z(), _z(), step=1, weight_decay=-0.1), ValueError,
     ("weight_decay",)),
    (lambda: ops.adam_update(_z(), G, _z(), _z(), step=1, decoupled_weight_decay=None), TypeError,
     ("decoupled_weight_decay",)),
])
def test_bad_input(call, exc, fragments):
    with raises(exc, *fragments):
        call()
