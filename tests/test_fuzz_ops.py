"""Property-based fuzzing of every public op in ``striate.ops`` against
``striate.reference``: random valid calls (shapes, parameters, algorithms, ISA
levels, thread counts, input layouts) must match the float64 oracle, forward
and backward; random invalid calls must raise a clean, named error.

Settings, campaign mode and strategies: tests/fuzz_strategies.py.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_strategies import (BAD, ISAS, KINDS, LAYOUTS, SEEDS, THREADS, Presenter,
                             assert_close_inf, bad_arrays, bad_floats, bad_ints, bad_pairs,
                             fuzz_settings, make_data, names_argument, runtime, spell_pair)
from helpers import ISA_LEVELS, RTOL, assert_all_close, assert_close
from striate import ops
from striate import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the oracle on empty batches

RUN = dict(isa=ISAS, threads=THREADS, seed=SEEDS, layouts=LAYOUTS)


def _pairs(lo, hi):
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


# ------------------------------------------------------------------ conv2d

@st.composite
def conv2d_cases(draw):
    groups = draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    depthwise = groups > 1 and draw(st.booleans())
    cin_g = 1 if depthwise else draw(st.integers(1, max(1, 8 // groups)))
    cout_g = draw(st.integers(1, max(1, 8 // groups)))
    kh, kw = draw(_pairs(1, 5))
    dil = draw(st.sampled_from([(1, 1), (1, 1)]) | _pairs(1, 3))
    mode = draw(st.sampled_from(["explicit", "explicit", "same", "valid"]))
    stride = (1, 1) if mode == "same" else draw(_pairs(1, 3))
    pad = draw(_pairs(0, 3)) if mode == "explicit" else (0, 0)
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    h = max(1, span[0] - 2 * pad[0]) + draw(st.integers(0, 6))
    w = max(1, span[1] - 2 * pad[1]) + draw(st.integers(0, 6))
    n = draw(st.sampled_from([1, 2, 3, 0]))
    kwargs = dict(stride=spell_pair(draw, stride), dilation=spell_pair(draw, dil), groups=groups,
                  padding=mode if mode != "explicit" else spell_pair(draw, pad))
    return (n, cin_g * groups, h, w), (cout_g * groups, cin_g, kh, kw), draw(st.booleans()), kwargs


@fuzz_settings()
@given(case=conv2d_cases(), kind=KINDS, activation=st.sampled_from([None, None, "relu"]),
       data=st.data(), **RUN)
def test_conv2d(case, kind, activation, data, isa, threads, seed, layouts):
    xs, ws, has_bias, kw = case
    rng = np.random.default_rng(seed)
    x, w = make_data(rng, xs, kind), make_data(rng, ws, kind)
    b = make_data(rng, ws[:1], kind) if has_bias else None
    y_ref = ref.conv2d(x, w, b, **kw)
    gy = make_data(rng, y_ref.shape)
    p = Presenter(layouts)
    with runtime(isa, threads):
        algs = ops.conv2d_algorithms(x, w, b, **kw)
        choices = algs + ["auto"] + (["winograd"] if any("winograd" in a for a in algs) else [])
        alg = data.draw(st.sampled_from(choices), label="algorithm")
        y = ops.conv2d(p(x), p(w), p(b) if has_bias else None, algorithm=alg,
                       activation=activation, **kw)
        grads = ops.conv2d_backward(p(gy), p(x), p(w), p(b) if has_bias else None,
                                    algorithm=alg, **kw)
    p.check()
    assert y.dtype == np.float32
    assert_close(y, np.maximum(y_ref, 0) if activation else y_ref, what=f"conv2d {alg}")
    assert_all_close(grads, ref.conv2d_backward(gy, x, w, b, **kw), what=f"conv2d_backward {alg}")


@pytest.mark.parametrize("isa", ISA_LEVELS)
def test_conv2d_empty_batch_every_algorithm(isa):
    # Found by the fuzzer (a SIGFPE): Winograd's tiling divided by a tile-block
    # size of 0 for N = 0; an empty batch must give empty x/y gradients and
    # zero weight/bias gradients with every algorithm.
    x, w, b = _z(0, 2, 7, 5), np.ones((4, 2, 3, 3), np.float32), np.ones(4, np.float32)
    with runtime(isa, 2):
        for alg in ops.conv2d_algorithms(x, w, b, padding="same") + ["auto", "winograd"]:
            assert ops.conv2d(x, w, b, padding="same", algorithm=alg).shape == (0, 4, 7, 5)
            gx, gw, gb = ops.conv2d_backward(_z(0, 4, 7, 5), x, w, b, padding="same", algorithm=alg)
            assert gx.shape == x.shape and not gw.any() and not gb.any()


# ------------------------------------------------------------------ pooling

@st.composite
def pool_cases(draw, dilation):
    k = draw(_pairs(1, 5))
    pad = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    dil = draw(_pairs(1, 3)) if dilation and draw(st.booleans()) else (1, 1)
    stride = draw(st.none() | _pairs(1, 3))
    ceil_mode = draw(st.booleans())
    span = (dil[0] * (k[0] - 1) + 1, dil[1] * (k[1] - 1) + 1)
    h = max(1, span[0] - 2 * pad[0]) + draw(st.integers(0, 7))
    w = max(1, span[1] - 2 * pad[1]) + draw(st.integers(0, 7))
    shape = (draw(st.sampled_from([1, 2, 3, 0])), draw(st.integers(1, 8)), h, w)
    kw = dict(stride=None if stride is None else spell_pair(draw, stride),
              padding=spell_pair(draw, pad), ceil_mode=ceil_mode)
    if dilation:
        kw["dilation"] = spell_pair(draw, dil)
    else:
        kw["count_include_pad"] = draw(st.booleans())
    return shape, spell_pair(draw, k), kw


@fuzz_settings()
@given(case=pool_cases(dilation=True), kind=KINDS, **RUN)
def test_max_pool2d(case, kind, isa, threads, seed, layouts):
    _pool(ops.max_pool2d, ops.max_pool2d_backward, ref.max_pool2d, ref.max_pool2d_backward,
          case, kind, isa, threads, seed, layouts)


@fuzz_settings()
@given(case=pool_cases(dilation=False), kind=KINDS, **RUN)
def test_avg_pool2d(case, kind, isa, threads, seed, layouts):
    _pool(ops.avg_pool2d, ops.avg_pool2d_backward, ref.avg_pool2d, ref.avg_pool2d_backward,
          case, kind, isa, threads, seed, layouts)


def _pool(fwd, bwd, rfwd, rbwd, case, kind, isa, threads, seed, layouts):
    shape, k, kw = case
    rng = np.random.default_rng(seed)
    x = make_data(rng, shape, kind)
    y_ref = rfwd(x, k, **kw)
    g = make_data(rng, y_ref.shape)
    p = Presenter(layouts)
    with runtime(isa, threads):
        y = fwd(p(x), k, **kw)
        grads = bwd(p(g), p(x), k, **kw)
    p.check()
    assert_close_inf(y, y_ref, what="forward")
    assert_all_close(grads, rbwd(g, x, k, **kw), what="backward")


@st.composite
def adaptive_cases(draw):
    shape = (draw(st.sampled_from([1, 2, 3, 0])), draw(st.integers(1, 8)),
             draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    oh, ow = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    out = draw(st.sampled_from([oh, (oh, ow), [oh, ow], (None, ow), (oh, None), (None, None),
                                np.int64(oh)]))
    return shape, out


@fuzz_settings()
@given(case=adaptive_cases(), kind=KINDS, **RUN)
def test_adaptive_avg_pool2d(case, kind, isa, threads, seed, layouts):
    shape, out = case
    rng = np.random.default_rng(seed)
    x = make_data(rng, shape, kind)
    y_ref = ref.adaptive_avg_pool2d(x, out)
    g = make_data(rng, y_ref.shape)
    p = Presenter(layouts)
    with runtime(isa, threads):
        y = ops.adaptive_avg_pool2d(p(x), out)
        grads = ops.adaptive_avg_pool2d_backward(p(g), p(x), out)
    p.check()
    assert_close(y, y_ref, what="forward")
    assert_all_close(grads, ref.adaptive_avg_pool2d_backward(g, x, out), what="backward")


# ------------------------------------------------------------------ normalization

@st.composite
def batch_norm_cases(draw):
    training = draw(st.booleans())
    rank = draw(st.integers(2, 5))
    shape = [draw(st.integers(0 if not training else 1, 3)), draw(st.integers(1, 8))]
    shape += [draw(st.integers(1, 6)) for _ in range(rank - 2)]
    if training and int(np.prod(shape)) // shape[1] < 2:
        shape[0] = 2
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1, 0.0]))
    if training and int(np.prod(shape)) // shape[1] == 2 and eps == 0.0:
        eps = 1e-5  # two values per channel, eps 0: grad_x is exactly 0, only rounding is left
    stats = (True, True) if not training else (draw(st.booleans()), draw(st.booleans()))
    return dict(shape=tuple(shape), training=training, stats=stats,
                affine=(draw(st.booleans()), draw(st.booleans())),
                momentum=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0, 0.3])),
                eps=eps)


@fuzz_settings()
@given(case=batch_norm_cases(), kind=KINDS, **RUN)
def test_batch_norm(case, kind, isa, threads, seed, layouts):
    rng = np.random.default_rng(seed)
    shape, training, c = case["shape"], case["training"], case["shape"][1]
    x = make_data(rng, shape, kind) * np.float32(rng.uniform(0.5, 3)) + np.float32(rng.normal())
    rm = make_data(rng, (c,)) if case["stats"][0] else None
    rv = rng.uniform(0.5, 2.0, c).astype(np.float32) if case["stats"][1] else None
    w = make_data(rng, (c,)) if case["affine"][0] else None
    b = make_data(rng, (c,)) if case["affine"][1] else None
    kw = dict(training=training, momentum=case["momentum"], eps=case["eps"])
    if training and case["eps"] == 0.0 and np.ptp(x.reshape(shape[0], c, -1).transpose(1, 0, 2)
                                                   .reshape(c, -1), axis=1).min() == 0:
        kw["eps"] = 1e-5  # a constant channel has var 0: eps=0 would divide by zero
    g = make_data(rng, shape)
    rm_ref = None if rm is None else rm.astype(np.float64)
    rv_ref = None if rv is None else rv.astype(np.float64)
    y_ref = ref.batch_norm(x, rm_ref, rv_ref, w, b, **kw)
    grads_ref = ref.batch_norm_backward(g, x, rm, rv, w, b, **kw)
    p = Presenter(layouts)
    # Training updates the running statistics in place: they must be float32
    # C-contiguous views, here inside guard buffers.
    rm_in = None if rm is None else (p.inplace(rm) if training else p(rm))
    rv_in = None if rv is None else (p.inplace(rv) if training else p(rv))
    with runtime(isa, threads):
        y = ops.batch_norm(p(x), rm_in, rv_in, None if w is None else p(w),
                           None if b is None else p(b), **kw)
        grads = ops.batch_norm_backward(p(g), p(x), rm, rv, w, b, **kw)
    p.check()
    assert_close(y, y_ref, what="forward")
    if training:
        assert_close(rm_in, rm_ref, what="running_mean")
        assert_close(rv_in, rv_ref, what="running_var")
    assert_all_close(grads, grads_ref, what="backward")


@st.composite
def lrn_cases(draw):
    rank = draw(st.integers(3, 5))
    shape = (draw(st.sampled_from([1, 2, 0])), draw(st.integers(1, 9)),
             *[draw(st.integers(1, 6)) for _ in range(rank - 2)])
    return shape, draw(st.integers(1, shape[1] + 3)), dict(
        alpha=draw(st.sampled_from([1e-4, 0.01, 0.5, 2.0])),
        beta=draw(st.sampled_from([0.75, 0.5, 1.0, 0.0, 2.0])),
        k=draw(st.sampled_from([1.0, 2.0, 0.5])))


@fuzz_settings()
@given(case=lrn_cases(), kind=KINDS, **RUN)
def test_local_response_norm(case, kind, isa, threads, seed, layouts):
    shape, size, kw = case
    rng = np.random.default_rng(seed)
    x, g = make_data(rng, shape, kind), make_data(rng, shape)
    p = Presenter(layouts)
    with runtime(isa, threads):
        y = ops.local_response_norm(p(x), size, **kw)
        grads = ops.local_response_norm_backward(p(g), p(x), size, **kw)
    p.check()
    assert_close(y, ref.local_response_norm(x, size, **kw), what="forward")
    assert_all_close(grads, ref.local_response_norm_backward(g, x, size, **kw), what="backward")


# ------------------------------------------------------------------ activations

SHAPES = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)
ELEMENTWISE = st.sampled_from([("relu", ()), ("sigmoid", ()), ("tanh", ()), ("leaky_relu", ()),
                               ("leaky_relu", (0.2,)), ("leaky_relu", (-1.5,)),
                               ("leaky_relu", (0.0,))])


@fuzz_settings()
@given(op=ELEMENTWISE, shape=SHAPES, kind=st.sampled_from(["normal", "ints", "wide"]), **RUN)
def test_elementwise_activations(op, shape, kind, isa, threads, seed, layouts):
    name, extra = op
    rng = np.random.default_rng(seed)
    x, g = make_data(rng, shape, kind), make_data(rng, shape)
    p = Presenter(layouts)
    with runtime(isa, threads):
        y = getattr(ops, name)(p(x), *extra)
        grads = getattr(ops, name + "_backward")(p(g), p(x), *extra)
    p.check()
    assert y.shape == x.shape and y.dtype == np.float32
    assert_close(y, getattr(ref, name)(x, *extra), what=name)
    assert_all_close(grads, getattr(ref, name + "_backward")(g, x, *extra), what=name + "_backward")


@fuzz_settings()
@given(name=st.sampled_from(["softmax", "log_softmax"]),
       shape=st.lists(st.integers(1, 7), min_size=1, max_size=4).map(tuple), data=st.data(),
       kind=st.sampled_from(["normal", "ints", "wide"]), **RUN)
def test_softmax(name, shape, data, kind, isa, threads, seed, layouts):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    rng = np.random.default_rng(seed)
    x, g = make_data(rng, shape, kind), make_data(rng, shape)
    p = Presenter(layouts)
    with runtime(isa, threads):
        y = getattr(ops, name)(p(x), dim)
        grads = getattr(ops, name + "_backward")(p(g), p(x), dim)
    p.check()
    assert_close(y, getattr(ref, name)(x, dim), what=name)
    if kind == "wide" and name == "softmax":
        # Saturated softmax: y * (g - sum(g * y)) cancels to ~1e-4 of |g|, below
        # the rounding of the float32 y it is computed from (torch's float32
        # error is of the same order); the bound holds for well-conditioned data.
        return
    assert_all_close(grads, getattr(ref, name + "_backward")(g, x, dim), what=name + "_backward")


# ------------------------------------------------------------------ linear, matmul, losses

@fuzz_settings()
@given(lead=st.lists(st.integers(0, 4), min_size=0, max_size=2).map(tuple),
       fin=st.integers(1, 40), fout=st.integers(1, 40), has_bias=st.booleans(), kind=KINDS, **RUN)
def test_linear(lead, fin, fout, has_bias, kind, isa, threads, seed, layouts):
    rng = np.random.default_rng(seed)
    x, w = make_data(rng, lead + (fin,), kind), make_data(rng, (fout, fin), kind)
    b = make_data(rng, (fout,)) if has_bias else None
    g = make_data(rng, lead + (fout,))
    p = Presenter(layouts)
    with runtime(isa, threads):
        y = ops.linear(p(x), p(w), None if b is None else p(b))
        grads = ops.linear_backward(p(g), p(x), p(w), None if b is None else p(b))
    p.check()
    assert_close(y, ref.linear(x, w, b), what="forward")
    assert_all_close(grads, ref.linear_backward(g, x, w, b), what="backward")


@fuzz_settings()
@given(m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70), kind=KINDS, **RUN)
def test_matmul(m, k, n, kind, isa, threads, seed, layouts):
    rng = np.random.default_rng(seed)
    a, b, g = make_data(rng, (m, k), kind), make_data(rng, (k, n), kind), make_data(rng, (m, n))
    p = Presenter(layouts)
    with runtime(isa, threads):
        y = ops.matmul(p(a), p(b))
        grads = ops.matmul_backward(p(g), p(a), p(b))
    p.check()
    assert_close(y, ref.matmul(a, b), what="forward")
    assert_all_close(grads, ref.matmul_backward(g, a, b), what="backward")


REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


@fuzz_settings()
@given(n=st.integers(1, 9), c=st.integers(1, 12), reduction=REDUCTIONS,
       kind=st.sampled_from(["normal", "ints", "wide"]),
       tdtype=st.sampled_from([np.int64, np.int32, np.uint8, np.int16]), **RUN)
def test_cross_entropy(n, c, reduction, kind, tdtype, isa, threads, seed, layouts):
    rng = np.random.default_rng(seed)
    z, t = make_data(rng, (n, c), kind), rng.integers(0, c, n).astype(tdtype)
    g = make_data(rng, (n,)) if reduction == "none" else np.float32(rng.normal())
    p = Presenter(layouts)
    with runtime(isa, threads):
        loss = ops.cross_entropy(p(z), t, reduction=reduction)
        grads = ops.cross_entropy_backward(g, p(z), t, reduction=reduction)
    p.check()
    assert_close(loss, ref.cross_entropy(z, t, reduction=reduction), what="forward")
    if kind == "wide":
        # softmax - onehot at a saturated row: p_target rounds to 1 in float32
        # (torch's too), so 1 - p_target ~ 1e-11 is lost; see test_softmax.
        return
    assert_all_close(grads, ref.cross_entropy_backward(g, z, t, reduction=reduction),
                     what="backward")


@fuzz_settings()
@given(shape=SHAPES, reduction=REDUCTIONS, kind=KINDS, **RUN)
def test_mse_loss(shape, reduction, kind, isa, threads, seed, layouts):
    rng = np.random.default_rng(seed)
    x, t = make_data(rng, shape, kind), make_data(rng, shape, kind)
    g = make_data(rng, shape) if reduction == "none" else np.float32(rng.normal())
    p = Presenter(layouts)
    with runtime(isa, threads):
        loss = ops.mse_loss(p(x), p(t), reduction=reduction)
        grads = ops.mse_loss_backward(p(g) if reduction == "none" else g, p(x), p(t),
                                      reduction=reduction)
    p.check()
    expected = ref.mse_loss(x, t, reduction=reduction)
    if reduction == "mean" and x.size == 0:
        assert np.isnan(loss)
    else:
        # the tolerances of tests/test_tensor.py: reductions accumulate in float64
        assert_close(loss, expected, rtol=RTOL if reduction == "none" else 1e-6, what="forward")
    assert_all_close(grads, ref.mse_loss_backward(g, x, t, reduction=reduction), what="backward")


# ------------------------------------------------------------------ tensor ops

@fuzz_settings()
@given(shape=SHAPES, op=st.sampled_from(["add", "mul", "mul_gate"]), data=st.data(), kind=KINDS,
       **RUN)
def test_add_mul(shape, op, data, kind, isa, threads, seed, layouts):
    rng = np.random.default_rng(seed)
    bshape = shape
    if op == "mul_gate":  # b: a's leading dims, then ones
        lead = data.draw(st.integers(0, len(shape)), label="lead")
        bshape = shape[:lead] + (1,) * (len(shape) - lead)
    name = op[:3]
    a, b, g = make_data(rng, shape, kind), make_data(rng, bshape, kind), make_data(rng, shape)
    p = Presenter(layouts)
    with runtime(isa, threads):
        y = getattr(ops, name)(p(a), p(b))
        grads = getattr(ops, name + "_backward")(p(g), p(a), p(b))
    p.check()
    assert_close(y, getattr(ref, name)(a, b), what=name)
    assert_all_close(grads, getattr(ref, name + "_backward")(g, a, b), what=name + "_backward")


@st.composite
def cat_cases(draw):
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(0 if rank > 1 else 1, 5)) for _ in range(rank)]
    dim = draw(st.integers(-rank, rank - 1))
    sizes = draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))
    shapes = [tuple(s if i != dim % rank else k for i, s in enumerate(shape)) for k in sizes]
    return shapes, dim


@fuzz_settings()
@given(case=cat_cases(), as_tuple=st.booleans(), **RUN)
def test_cat(case, as_tuple, isa, threads, seed, layouts):
    shapes, dim = case
    rng = np.random.default_rng(seed)
    xs = [make_data(rng, s) for s in shapes]
    y_ref = ref.cat(xs, dim)
    g = make_data(rng, y_ref.shape)
    p = Presenter(layouts)
    seq = tuple if as_tuple else list
    with runtime(isa, threads):
        y = ops.cat(seq(p(x) for x in xs), dim)
        grads = ops.cat_backward(p(g), seq(p(x) for x in xs), dim)
    p.check()
    np.testing.assert_array_equal(y, y_ref)  # a copy: exact
    assert len(grads) == len(xs)
    for gk, rk in zip(grads, ref.cat_backward(g, xs, dim)):
        np.testing.assert_array_equal(gk, rk)


@fuzz_settings()
@given(shape=SHAPES, p_drop=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]) | st.floats(0, 1),
       training=st.booleans(), dseed=st.integers(0, 2**64 - 1), **RUN)
def test_dropout(shape, p_drop, training, dseed, isa, threads, seed, layouts):
    rng = np.random.default_rng(seed)
    x, g = make_data(rng, shape), make_data(rng, shape)
    p = Presenter(layouts)
    kw = dict(p=p_drop, training=training, seed=dseed)
    with runtime(isa, threads):
        y = ops.dropout(p(x), **kw)
        (gx,) = ops.dropout_backward(p(g), p(x), **kw)
    p.check()
    y_ref = ref.dropout(x, **kw)
    np.testing.assert_array_equal(y == 0, y_ref == 0)  # the same mask, element by element
    # torch's float32 formula x * (mask / (1 - p)), bit for bit (two roundings:
    # the 1e-7 of tests/test_tensor.py holds only for its particular p values)
    mask = ref.dropout_uniform(dseed, x.size).reshape(x.shape) >= p_drop
    for a, src in ((y, x), (gx, g)):
        if not training or p_drop == 0:
            np.testing.assert_array_equal(a, src)
        elif p_drop == 1:
            np.testing.assert_array_equal(a, src * np.float32(0))
        else:
            np.testing.assert_array_equal(a, src * (mask.astype(np.float32) / np.float32(1 - p_drop)))


# ------------------------------------------------------------------ optimizer updates

@fuzz_settings()
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple),
       lr=st.sampled_from([0.0, 1e-3, 0.1, 0.5]), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       dampening=st.sampled_from([0.0, 0.3]), nesterov=st.booleans(),
       weight_decay=st.sampled_from([0.0, 1e-3, 0.1]), steps=st.integers(1, 4),
       isa=ISAS, threads=THREADS, seed=SEEDS)
def test_sgd_update(shape, lr, momentum, dampening, nesterov, weight_decay, steps, isa, threads,
                    seed):
    if nesterov and (momentum == 0 or dampening != 0):
        nesterov = False  # torch's rule, covered by the invalid-argument fuzz
    rng = np.random.default_rng(seed)
    p = Presenter(["c"])
    param = p.inplace(make_data(rng, shape))
    buf = p.inplace(np.zeros(shape, np.float32)) if momentum else None
    cfg = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
               weight_decay=weight_decay)
    with runtime(isa, threads):
        for k in range(steps):
            grad = make_data(rng, shape)
            before = (param.copy(), None if buf is None else buf.copy())
            ops.sgd_update(param, grad, buf, first_step=k == 0, **cfg)
            pr, br = ref.sgd_update(*before[:1], grad, before[1], first_step=k == 0, **cfg)
            _step_close(param, pr, before[0], "param")
            _step_close(buf, br, before[1], "momentum_buffer")
    p.check()


@fuzz_settings()
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple),
       lr=st.sampled_from([1e-3, 0.01, 0.05]), beta1=st.sampled_from([0.0, 0.3, 0.6, 0.9]),
       beta2=st.sampled_from([0.5, 0.99, 0.999]), eps=st.sampled_from([1e-8, 1e-6]),
       weight_decay=st.sampled_from([0.0, 0.01, 0.1]), decoupled=st.booleans(),
       steps=st.integers(1, 4), isa=ISAS, threads=THREADS, seed=SEEDS)
def test_adam_update(shape, lr, beta1, beta2, eps, weight_decay, decoupled, steps, isa, threads,
                     seed):
    rng = np.random.default_rng(seed)
    p = Presenter(["c"])
    param = p.inplace(make_data(rng, shape))
    m, v = p.inplace(np.zeros(shape, np.float32)), p.inplace(np.zeros(shape, np.float32))
    cfg = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
               decoupled_weight_decay=decoupled)
    with runtime(isa, threads):
        for k in range(steps):
            grad = make_data(rng, shape)
            before = (param.copy(), m.copy(), v.copy())
            ops.adam_update(param, grad, m, v, step=k + 1, **cfg)
            expected = ref.adam_update(before[0], grad, before[1], before[2], step=k + 1, **cfg)
            for a, e, b, what in zip((param, m, v), expected, before, ("param", "exp_avg", "exp_avg_sq")):
                _step_close(a, e, b, what)
    p.check()


def _step_close(actual, expected, before, what):
    """One in-place step vs the reference step from the same float32 state, with
    the 1e-6 of tests/test_optim_update.py relative to the magnitudes the step
    combines (a 1-element parameter can land near 0: p - lr*g cancels, and
    float32 cannot do better than rounding of p)."""
    if expected is None:
        assert actual is None or before is None, what
        return
    scale = max(float(np.max(np.abs(expected))), float(np.max(np.abs(before))) if before is not None
                else 0.0, 1e-30)
    err = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    assert err <= 1e-6 * scale, f"{what}: max abs error {err:.3e} > 1e-6 x {scale:.3e}"



# ================================================================== invalid calls
#
# Each builder draws a small valid call -- keyword arguments shared by the
# forward and the backward (which adds grad_out) -- and the mutations that
# make it invalid: ({argument: bad value, ...}, exception type, the names the
# message may use for the culprit). One mutation per example; the rest of
# the call stays valid, so the error must come from the mutated argument.

def _m(arg, bads, names=None):
    return [({arg: v}, e, names or (arg,)) for v, e in bads]


def _z(*shape):
    return np.zeros(shape, np.float32)


def _no_none(bads):
    """For optional arguments, where None is valid."""
    return [b for b in bads if b[0] is not None]


def _conv2d_invalid(draw):
    n, c, h, w, o = 2, draw(st.sampled_from([2, 4])), draw(st.integers(5, 8)), 6, 4
    kw = dict(x=_z(n, c, h, w), weight=_z(o, c, 3, 3), bias=_z(o), stride=1, padding=1,
              dilation=1, groups=1, algorithm=draw(st.sampled_from(["auto", "direct", "im2col"])))
    calls = [(ops.conv2d, {}), (ops.conv2d_backward, {"grad_out": _z(n, o, h, w)})]
    muts = (_m("x", bad_arrays((n, c, h, w))) + _m("weight", bad_arrays((o, c, 3, 3)))
            + _m("bias", _no_none(bad_arrays((o,))))  # bias=None: no bias
            + _m("x", [(_z(c, h, w), ValueError), (_z(n, c, h, w, 1), ValueError),
                       (_z(n, 0, h, w), ValueError), (_z(n, c + 1, h, w), ValueError)])
            + _m("weight", [(_z(o, c, 3), ValueError), (_z(o, c, 0, 3), ValueError),
                            (_z(0, c, 3, 3), ValueError), (_z(o, c + 1, 3, 3), ValueError),
                            (_z(o, c, h + 3, 3), ValueError)])
            + _m("bias", [(_z(o + 1), ValueError), (_z(o, 1), ValueError), (_z(), ValueError)])
            + _m("stride", bad_pairs(1) + [(None, TypeError)])
            + _m("dilation", bad_pairs(1) + [(None, TypeError)])
            # a string is a padding mode: a wrong one is a ValueError
            + _m("padding", [(v, ValueError if isinstance(v, str) else e) for v, e in bad_pairs(0)]
                 + [("full", ValueError), ("SAME", ValueError),
                                            (None, TypeError), (b"same", TypeError)])
            + _m("groups", bad_ints(1) + [(3, ValueError), (c * 2, ValueError), (None, TypeError),
                                          ((1, 1), TypeError)])
            + _m("algorithm", [("fft", ValueError), ("", ValueError), (3, TypeError),
                               (None, TypeError), ("winograd_f3", ValueError)])
            + [({"padding": "same", "stride": s}, ValueError, ("padding", "stride"))
               for s in (2, (1, 3))]
            + [({"algorithm": alg, **bad}, ValueError, ("algorithm",) + tuple(bad))
               for alg in ("winograd", "winograd_f2", "winograd_f4")
               for bad in ({"stride": 3}, {"dilation": (1, 2)}, {"weight": _z(o, c, 4, 4)},
                           {"weight": _z(o, c // 2, 3, 3), "groups": 2})]
            # F(2x2,5x5) and F(4x4,2x2) exist, F(4x4,5x5) and F(2x2,2x2) do not
            + [({"algorithm": "winograd_f4", "weight": _z(o, c, 5, 5)}, ValueError,
                ("algorithm", "weight")),
               ({"algorithm": "winograd_f2", "weight": _z(o, c, 2, 2)}, ValueError,
                ("algorithm", "weight"))])
    if draw(st.booleans()):  # the fused epilogue exists in the forward only
        calls = calls[:1]
        muts = _m("activation", [("gelu", ValueError), ("RELU", ValueError), (3, TypeError),
                                 (True, TypeError)])
    return calls, kw, muts


def _pool_common(draw, dilation):
    n, c, h, w = 2, 3, draw(st.integers(4, 8)), 5
    kw = dict(x=_z(n, c, h, w), kernel_size=2, stride=None, padding=1, ceil_mode=False)
    if dilation:
        kw["dilation"] = 1
    else:
        kw["count_include_pad"] = True
    out = (n, c, h // 2 + 1, w // 2 + 1)
    muts = (_m("x", bad_arrays((n, c, h, w)))
            + _m("x", [(_z(c, h, w), ValueError), (_z(n, 0, h, w), ValueError),
                       (_z(n, c, 0, w), ValueError), (_z(1, n, c, h, w), ValueError)])
            + _m("kernel_size", bad_pairs(1) + [(None, TypeError)])
            + _m("kernel_size", [(h + 3, ValueError)], ("kernel_size", "x"))
            + _m("stride", bad_pairs(1))
            + _m("padding", bad_pairs(0) + [(2, ValueError), ((1, 2), ValueError)])
            + _m("ceil_mode", [(1, TypeError), ("True", TypeError), (None, TypeError),
                               (1.0, TypeError)]))
    if dilation:
        muts += _m("dilation", bad_pairs(1))
        muts += [({"kernel_size": 3, "dilation": h}, ValueError, ("x", "kernel_size", "dilation"))]
    else:
        muts += _m("count_include_pad", [(0, TypeError), ("no", TypeError), (None, TypeError)])
    return kw, out, muts


def _max_pool2d_invalid(draw):
    kw, out, muts = _pool_common(draw, True)
    return [(ops.max_pool2d, {}), (ops.max_pool2d_backward, {"grad_out": _z(*out)})], kw, muts


def _avg_pool2d_invalid(draw):
    kw, out, muts = _pool_common(draw, False)
    return [(ops.avg_pool2d, {}), (ops.avg_pool2d_backward, {"grad_out": _z(*out)})], kw, muts


def _adaptive_invalid(draw):
    x = _z(2, 3, draw(st.integers(1, 8)), 4)
    kw = dict(x=x, output_size=(2, 3))
    bad_out = [v for v in bad_pairs(1) if not isinstance(v[0], tuple) or None not in v[0]]
    muts = (_m("x", bad_arrays(x.shape)) + _m("x", [(_z(3, 4, 4), ValueError),
                                                    (_z(2, 0, 4, 4), ValueError),
                                                    (_z(2, 3, 4, 0), ValueError)])
            + _m("output_size", bad_out + [(None, TypeError), ((0, None), ValueError),
                                           ((None, -1), ValueError), ((None, 1.5), TypeError)]))
    return ([(ops.adaptive_avg_pool2d, {}),
             (ops.adaptive_avg_pool2d_backward, {"grad_out": _z(2, 3, 2, 3)})], kw, muts)


def _batch_norm_invalid(draw):
    training = draw(st.booleans())
    c = 3
    x = _z(2, c, draw(st.integers(1, 4)))
    kw = dict(x=x, running_mean=_z(c), running_var=np.ones(c, np.float32), weight=_z(c),
              bias=_z(c), training=training, momentum=0.1, eps=1e-5)
    muts = (_m("x", bad_arrays(x.shape)) + _m("x", [(_z(c), ValueError), (_z(2, 0, 4), ValueError)])
            + [m for a in ("weight", "bias", "running_mean", "running_var")
               for m in _m(a, [b for b in bad_arrays((c,)) if b[0] is not None]  # None: valid
                           + [(_z(c + 1), ValueError), (_z(c, 1), ValueError)])]
            + _m("training", [(1, TypeError), ("yes", TypeError), (None, TypeError)])
            + _m("momentum", bad_floats() + [(-0.1, ValueError)])
            + _m("eps", bad_floats() + [(-1e-5, ValueError)]))
    if training:
        muts += _m("x", [(_z(1, c), ValueError), (_z(1, c, 1, 1), ValueError)])
        # the forward updates them in place: a converted copy would lose the update
        fwd_only = [({"running_mean": np.zeros(c)}, TypeError, ("running_mean",)),
                    ({"running_var": np.ones((2, c), np.float32)[:, 0]}, TypeError,
                     ("running_var",)),
                    ({"running_mean": [0.0] * c}, TypeError, ("running_mean",))]
        if draw(st.integers(0, 3)) == 0:
            return [(ops.batch_norm, {})], kw, fwd_only
    else:
        muts += _m("running_mean", [(None, ValueError)]) + _m("running_var", [(None, ValueError)])
    return ([(ops.batch_norm, {}), (ops.batch_norm_backward, {"grad_out": _z(*x.shape)})],
            kw, muts)


def _lrn_invalid(draw):
    x = _z(2, draw(st.integers(1, 6)), 3, 3)
    kw = dict(x=x, size=3, alpha=1e-4, beta=0.75, k=1.0)
    muts = (_m("x", bad_arrays(x.shape)) + _m("x", [(_z(2, 3), ValueError), (_z(2, 0, 3), ValueError),
                                                    (_z(3), ValueError)])
            + _m("size", bad_ints(1) + [(None, TypeError)])
            + [m for a in ("alpha", "beta", "k") for m in _m(a, bad_floats())])
    return ([(ops.local_response_norm, {}),
             (ops.local_response_norm_backward, {"grad_out": _z(*x.shape)})], kw, muts)


def _elementwise_invalid(draw):
    name = draw(st.sampled_from(["relu", "sigmoid", "tanh", "leaky_relu"]))
    shape = tuple(draw(st.lists(st.integers(1, 4), max_size=3)))
    kw = dict(x=_z(*shape))
    muts = _m("x", bad_arrays(shape))
    if name == "leaky_relu":
        muts += _m("negative_slope", bad_floats(finite=False))
    fwd, bwd = getattr(ops, name), getattr(ops, name + "_backward")
    muts_b = _m("grad_out", bad_arrays(shape) + [(_z(*shape, 2), ValueError), (_z(7), ValueError)])
    if draw(st.booleans()):
        return [(bwd, {})], dict(kw, grad_out=_z(*shape)), muts_b
    return [(fwd, {}), (bwd, {"grad_out": _z(*shape)})], kw, muts


def _softmax_invalid(draw):
    name = draw(st.sampled_from(["softmax", "log_softmax"]))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    r = len(shape)
    kw = dict(x=_z(*shape), dim=draw(st.integers(-r, r - 1)))
    muts = (_m("x", bad_arrays(shape))
            + _m("dim", bad_ints(-r) + [(r, ValueError), (-r - 1, ValueError), (None, TypeError),
                                        ((0,), TypeError)]))
    return ([(getattr(ops, name), {}), (getattr(ops, name + "_backward"), {"grad_out": _z(*shape)})],
            kw, muts)


def _linear_invalid(draw):
    n, fin, fout = 3, draw(st.integers(1, 5)), 2
    kw = dict(x=_z(n, fin), weight=_z(fout, fin), bias=_z(fout))
    muts = (_m("x", bad_arrays((n, fin))) + _m("weight", bad_arrays((fout, fin)))
            + _m("bias", _no_none(bad_arrays((fout,)))) + _m("x", [(np.float32(1), ValueError)])
            + _m("x", [(_z(n, fin + 1), ValueError)], ("x", "weight"))
            + _m("weight", [(_z(fin), ValueError), (_z(fout, fin, 1), ValueError)])
            + _m("weight", [(_z(fout, fin + 1), ValueError)], ("x", "weight"))
            + _m("bias", [(_z(fout + 1), ValueError), (_z(fout, 1), ValueError)]))
    return [(ops.linear, {}), (ops.linear_backward, {"grad_out": _z(n, fout)})], kw, muts


def _matmul_invalid(draw):
    m, k, n = (draw(st.integers(1, 5)) for _ in range(3))
    kw = dict(a=_z(m, k), b=_z(k, n))
    muts = (_m("a", bad_arrays((m, k))) + _m("b", bad_arrays((k, n)))
            + _m("a", [(_z(m), ValueError), (_z(1, m, k), ValueError)])
            + _m("b", [(_z(k), ValueError), (_z(k, n, 1), ValueError)])
            + _m("b", [(_z(k + 1, n), ValueError)], ("a", "b")))
    return [(ops.matmul, {}), (ops.matmul_backward, {"grad_out": _z(m, n)})], kw, muts


def _cross_entropy_invalid(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    reduction = draw(REDUCTIONS)
    kw = dict(input=_z(n, c), target=np.zeros(n, np.int64), reduction=reduction)
    bad_t = [np.full(n, c), np.full(n, -1), np.full(n, 2**62), np.full(n, -(2**62)),
             np.full(n, 2**64 - 1, np.uint64)]
    muts = (_m("input", bad_arrays((n, c)))
            + _m("input", [(_z(n), ValueError), (_z(n, c, 1), ValueError), (_z(n, 0), ValueError)])
            + _m("target", [(np.zeros(n), TypeError), (np.zeros(n, bool), TypeError),
                            (None, TypeError), ("0", TypeError), (np.zeros(n, object), TypeError)])
            + _m("target", [(t, IndexError) for t in bad_t])
            + _m("target", [(np.zeros(n + 1, np.int64), ValueError),
                            (np.zeros((n, 1), np.int64), ValueError)])
            + _m("reduction", [("avg", ValueError), ("MEAN", ValueError), (None, TypeError),
                               (0, TypeError)]))
    g = _z(n) if reduction == "none" else np.float32(1)
    bad_g = _z(n + 1) if reduction == "none" else _z(n)
    if draw(st.booleans()):
        return ([(ops.cross_entropy_backward, {})], dict(kw, grad_out=g),
                _m("grad_out", [(bad_g, ValueError), (None, TypeError)]))
    return [(ops.cross_entropy, {}), (ops.cross_entropy_backward, {"grad_out": g})], kw, muts


def _mse_loss_invalid(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    kw = dict(input=_z(*shape), target=_z(*shape), reduction=draw(REDUCTIONS))
    g = _z(*shape) if kw["reduction"] == "none" else np.float32(1)
    muts = (_m("input", bad_arrays(shape)) + _m("target", bad_arrays(shape))
            + _m("target", [(_z(*shape, 1), ValueError), (_z(7, *shape), ValueError)])
            + _m("reduction", [("avg", ValueError), (None, TypeError), (b"sum", TypeError)]))
    return [(ops.mse_loss, {}), (ops.mse_loss_backward, {"grad_out": g})], kw, muts


def _add_mul_invalid(draw):
    name = draw(st.sampled_from(["add", "mul"]))
    shape = (2, 3, 4)
    kw = dict(a=_z(*shape), b=_z(*shape))
    muts = (_m("a", bad_arrays(shape)) + _m("b", bad_arrays(shape))
            + _m("b", [(_z(2, 3), ValueError), (_z(1, 3, 4), ValueError), (_z(2, 3, 5), ValueError),
                       (_z(2, 1, 4), ValueError)], ("a", "b")))
    return ([(getattr(ops, name), {}), (getattr(ops, name + "_backward"), {"grad_out": _z(*shape)})],
            kw, muts)


def _cat_invalid(draw):
    k = draw(st.integers(1, 3))
    kw = dict(tensors=[_z(2, 3, 4)] * k, dim=draw(st.integers(-3, 2)))
    names = ("tensors",) + tuple(f"tensors[{i}]" for i in range(k + 1))
    muts = (_m("tensors", [(np.zeros((2, 3)), TypeError), (None, TypeError), ([], ValueError),
                           ((), ValueError),
                           ([_z(2, 3, 4)] * k + [_z(2, 3)], ValueError),
                           ([_z(2, 3, 4)] * k + [_z(5, 5, 5)], ValueError),
                           ([_z(2, 3, 4)] * k + [None], TypeError),
                           ([_z(2, 3, 4)] * k + ["x"], TypeError),
                           ([np.float32(1)], ValueError)], names)
            + _m("dim", bad_ints(-3) + [(3, ValueError), (None, TypeError)]))
    g = ops.cat(kw["tensors"], kw["dim"])
    return [(ops.cat, {}), (ops.cat_backward, {"grad_out": g})], kw, muts


def _dropout_invalid(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), max_size=3)))
    kw = dict(x=_z(*shape), p=0.5, training=True, seed=0)
    muts = (_m("x", bad_arrays(shape))
            + _m("p", bad_floats() + [(-0.1, ValueError), (1.5, ValueError)])
            + _m("training", [(1, TypeError), (None, TypeError)])
            + _m("seed", [(-1, ValueError), (2**64, ValueError), (1.5, TypeError), (True, TypeError),
                          (None, TypeError), ("1", TypeError)]))
    return [(ops.dropout, {}), (ops.dropout_backward, {"grad_out": _z(*shape)})], kw, muts


def _inplace_bad(shape):
    a = np.zeros(shape, np.float32)
    ro = a.copy()
    ro.flags.writeable = False
    return [(np.zeros(shape), TypeError), (np.zeros(shape, np.float32).tolist(), TypeError),
            (np.zeros(shape + (2,), np.float32)[..., 0], TypeError), (ro, ValueError),
            (np.zeros(shape + (1,), np.float32), ValueError), (None, TypeError)]


def _sgd_invalid(draw):
    shape = (draw(st.integers(1, 5)), 3)
    kw = dict(param=_z(*shape), grad=_z(*shape), momentum_buffer=_z(*shape), lr=0.1, momentum=0.9)
    muts = ([m for m in _m("param", _inplace_bad(shape)) if m[0]["param"] is not None]
            + [m for m in _m("momentum_buffer", _inplace_bad(shape)) if m[0]["momentum_buffer"] is not None]
            + _m("momentum_buffer", [(None, ValueError)])
            + _m("grad", bad_arrays(shape) + [(_z(7), ValueError)])
            + [m for a in ("lr", "momentum", "dampening", "weight_decay")  # torch: any dampening
               for m in _m(a, bad_floats() + ([(-0.1, ValueError)] if a != "dampening" else []))]
            + _m("lr", [(None, TypeError)])
            + _m("nesterov", [(1, TypeError), (None, TypeError)])
            + [({"nesterov": True, "dampening": 0.5}, ValueError, ("nesterov",)),
               ({"nesterov": True, "momentum": 0.0}, ValueError, ("nesterov",))]
            + _m("first_step", [(1, TypeError), ("no", TypeError)]))
    return [(ops.sgd_update, {})], kw, muts


def _adam_invalid(draw):
    shape = (draw(st.integers(1, 5)), 2)
    kw = dict(param=_z(*shape), grad=_z(*shape), exp_avg=_z(*shape), exp_avg_sq=_z(*shape), step=1)
    muts = ([m for a in ("param", "exp_avg", "exp_avg_sq") for m in _m(a, _inplace_bad(shape))]
            + _m("grad", bad_arrays(shape) + [(_z(7), ValueError)])
            + _m("step", bad_ints(1) + [(None, TypeError)])
            + [m for a in ("lr", "eps", "weight_decay", "beta1", "beta2")
               for m in _m(a, bad_floats() + [(-0.1, ValueError)])]
            + _m("beta1", [(1.0, ValueError), (1.5, ValueError)])
            + _m("beta2", [(1.0, ValueError)])
            + _m("decoupled_weight_decay", [(1, TypeError), (None, TypeError)]))
    return [(ops.adam_update, {})], kw, muts


INVALID = {
    "conv2d": _conv2d_invalid, "max_pool2d": _max_pool2d_invalid,
    "avg_pool2d": _avg_pool2d_invalid, "adaptive_avg_pool2d": _adaptive_invalid,
    "batch_norm": _batch_norm_invalid, "local_response_norm": _lrn_invalid,
    "elementwise": _elementwise_invalid, "softmax": _softmax_invalid, "linear": _linear_invalid,
    "matmul": _matmul_invalid, "cross_entropy": _cross_entropy_invalid,
    "mse_loss": _mse_loss_invalid, "add_mul": _add_mul_invalid, "cat": _cat_invalid,
    "dropout": _dropout_invalid, "sgd_update": _sgd_invalid, "adam_update": _adam_invalid,
}


@pytest.mark.parametrize("family", sorted(INVALID))
@fuzz_settings(weight=2)
@given(data=st.data(), isa=ISAS)
def test_invalid_call_raises_named_error(family, data, isa):
    calls, kw, muts = INVALID[family](data.draw)
    change, exc, names = data.draw(st.sampled_from(muts), label="mutation")
    for fn, extra in calls:
        args = dict(kw, **extra)
        fn(**{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()})  # valid
        args.update(change)
        with runtime(isa, 1), pytest.raises(BAD) as info:
            fn(**args)
        what = f"{fn.__name__}({', '.join(change)}): {type(info.value).__name__}: {info.value}"
        assert isinstance(info.value, exc), f"expected {exc.__name__}; {what}"
        assert names_argument(str(info.value), names), f"message does not name {names}; {what}"
