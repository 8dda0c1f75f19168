"""conv2d forward and backward against striate.reference (and PyTorch when installed)."""

import numpy as np
import pytest

from helpers import assert_all_close, assert_close, rand, raises, torch_or_skip
from striate import ops
from striate import reference as ref

ALGORITHMS = ["direct", "im2col", "auto"]


def random_conv_case(rng):
    """A random valid conv2d configuration: (x shape, w shape, bias?, kwargs)."""
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    cin_g = int(rng.integers(1, 5))
    cout_g = int(rng.integers(1, 5))
    if rng.random() < 0.15:  # depthwise
        cin_g, cout_g, groups = 1, int(rng.integers(1, 3)), int(rng.integers(2, 6))
    kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
    dil = tuple(int(v) for v in rng.integers(1, 4, size=2))
    r = rng.random()
    if r < 0.15:
        stride, padding = 1, "same"
    elif r < 0.25:
        stride, padding = tuple(int(v) for v in rng.integers(1, 4, size=2)), "valid"
    else:
        stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
        padding = tuple(int(v) for v in rng.integers(0, 4, size=2))
    pads = (0, 0) if isinstance(padding, str) else padding
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    h = max(1, span[0] - 2 * pads[0]) + int(rng.integers(0, 7))
    w = max(1, span[1] - 2 * pads[1]) + int(rng.integers(0, 7))
    n = int(rng.integers(1, 4))
    kwargs = dict(stride=stride, padding=padding, dilation=dil, groups=groups)
    return (n, cin_g * groups, h, w), (cout_g * groups, cin_g, kh, kw), rng.random() < 0.7, kwargs


CASES = [random_conv_case(np.random.default_rng(1000 + i)) for i in range(40)]
# Hand-picked edge cases: 1x1 image, pointwise (im2col skips the copy),
# channel counts off the SIMD width, AlexNet-like stride 4, even-kernel 'same'.
CASES += [
    ((1, 3, 1, 1), (4, 3, 1, 1), True, dict()),
    ((2, 17, 6, 5), (9, 17, 1, 1), True, dict()),
    ((1, 3, 1, 1), (2, 3, 3, 3), False, dict(padding=1)),
    ((2, 3, 23, 23), (5, 3, 11, 11), True, dict(stride=4)),
    ((1, 5, 7, 6), (3, 5, 4, 2), True, dict(padding="same", dilation=(2, 3))),
    ((2, 6, 9, 9), (6, 1, 3, 3), True, dict(padding=1, groups=6)),
    ((1, 4, 8, 8), (4, 2, 3, 3), False, dict(stride=(2, 1), padding=(0, 2), groups=2)),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_conv2d_matches_reference(case, algorithm):
    xs, ws, has_bias, kw = CASES[case]
    rng = np.random.default_rng(case)
    x, w = rand(rng, *xs), rand(rng, *ws)
    b = rand(rng, ws[0]) if has_bias else None
    y = ops.conv2d(x, w, b, algorithm=algorithm, **kw)
    y_ref = ref.conv2d(x, w, b, **kw)
    assert y.dtype == np.float32
    assert_close(y, y_ref, what=f"conv2d {kw}")

    gy = rand(rng, *y_ref.shape)
    copies = [a.copy() for a in (gy, x, w)]
    grads = ops.conv2d_backward(gy, x, w, b, algorithm=algorithm, **kw)
    assert_all_close(grads, ref.conv2d_backward(gy, x, w, b, **kw), what=f"conv2d_backward {kw}")
    for a, c in zip((gy, x, w), copies):
        np.testing.assert_array_equal(a, c)  # backward never mutates its inputs


def test_direct_and_im2col_agree_on_large_layer():
    rng = np.random.default_rng(7)
    x, w, b = rand(rng, 2, 32, 14, 14), rand(rng, 48, 32, 3, 3), rand(rng, 48)
    y_ref = ref.conv2d(x, w, b, padding=1)
    for alg in ("direct", "im2col"):
        assert_close(ops.conv2d(x, w, b, padding=1, algorithm=alg), y_ref, what=alg)


def test_auto_algorithm_choice():
    from striate import _C
    # src/ops/conv2d.cpp auto_algorithm / auto_avx2: on AVX2 the stride-1
    # direct kernel takes 3x3 layers of up to 64x64 channels on small planes
    # (<= 8x8 forward, <= 16x16 backward); the AVX-512 level (auto_avx512,
    # Winograd and GEMM twice as wide) runs F(4x4) there.
    x = np.zeros((1, 64, 8, 8), np.float32)
    isa = _C.isa_selected()
    simd = isa != "baseline"
    w64 = np.zeros((64, 64, 3, 3), np.float32)
    assert ops.conv2d_algorithm(x, w64, padding=1) == {
        "baseline": "im2col", "avx2": "direct", "avx512": "winograd_f4"}[isa]
    if isa == "avx2":  # larger planes: Winograd both ways
        x56 = np.zeros((1, 64, 56, 56), np.float32)
        assert ops.conv2d_algorithm(x56, w64, padding=1) == "winograd_f4"
        assert ops.conv2d_algorithm(x56, w64, padding=1, backward=True) == "winograd_f4"
    assert ops.conv2d_algorithm(x, w64, padding=1, backward=True) == {
        "baseline": "im2col", "avx2": "direct", "avx512": "winograd_f4"}[isa]
    # strided: im2col (the portable level too: a 576-deep reduction on a 3x3 plane)
    assert ops.conv2d_algorithm(x, w64, stride=2) == "im2col"
    assert ops.conv2d_algorithm(x, np.zeros((64, 1, 3, 3), np.float32), groups=64) == "direct"
    x1, w1 = np.zeros((1, 1, 32, 32), np.float32), np.zeros((6, 1, 5, 5), np.float32)
    assert ops.conv2d_algorithm(x1, w1) == "direct"
    x2 = np.zeros((1, 512, 14, 14), np.float32)
    w512 = np.zeros((512, 512, 3, 3), np.float32)
    # big-channel layers: Winograd (AVX2 and AVX-512: F(4x4) forward;
    # backward F(2x2) below 28x28 planes)
    if simd:
        tile = "winograd_f4" if isa in ("avx2", "avx512") else "winograd_f2"
        assert ops.conv2d_algorithm(x2, w512, padding=1) == tile
        assert ops.conv2d_algorithm(x2, w512, padding=1, backward=True) == "winograd_f2"
        x7 = np.zeros((1, 512, 7, 7), np.float32)
        assert ops.conv2d_algorithm(x7, w512, padding=1, backward=True) == "winograd_f2"


def test_conversion_of_float64_and_noncontiguous_input():
    rng = np.random.default_rng(3)
    x64 = rng.standard_normal((2, 3, 9, 9))
    xt = np.asfortranarray(x64)
    w = rand(rng, 4, 3, 3, 3)
    y = ops.conv2d(x64[:, :, ::2, ::2], w)
    assert y.dtype == np.float32
    assert_close(y, ref.conv2d(x64[:, :, ::2, ::2].astype(np.float32), w))
    np.testing.assert_array_equal(ops.conv2d(xt, w), ops.conv2d(x64.astype(np.float32), w))


def test_padding_forms_are_equivalent():
    rng = np.random.default_rng(4)
    x, w = rand(rng, 1, 2, 6, 6), rand(rng, 3, 2, 3, 3)
    np.testing.assert_array_equal(ops.conv2d(x, w, padding=1), ops.conv2d(x, w, padding=(1, 1)))
    np.testing.assert_array_equal(ops.conv2d(x, w, padding="same"), ops.conv2d(x, w, padding=1))
    np.testing.assert_array_equal(ops.conv2d(x, w, padding="valid"), ops.conv2d(x, w))
    assert ops.conv2d(x, w, padding="same").shape == (1, 3, 6, 6)


def test_winograd_runs_where_it_applies():
    # Accuracy, backward, ISAs and the filter cache: tests/test_winograd.py.
    from striate import _C
    x, w = np.ones((1, 2, 6, 6), np.float32), np.ones((3, 2, 3, 3), np.float32)
    for alg, tile in (("winograd", "winograd_f2"), ("winograd_f2", "winograd_f2"),
                      ("winograd_f4", "winograd_f4")):
        assert ops.conv2d_algorithm(x, w, algorithm=alg) == tile
        assert_close(ops.conv2d(x, w, algorithm=alg), ref.conv2d(x, w), what=alg)
    args = (x, w, None, (1, 1), "explicit", (1, 1), (1, 1), 1)
    assert _C.conv2d_algorithms(*args)[-2:] == ["winograd_f2", "winograd_f4"]


@pytest.mark.parametrize("kwargs, wshape, fragments", [
    (dict(), (3, 2, 7, 7), ("2x2, 3x3 or 5x5", "7x7")),
    (dict(stride=2), (3, 2, 7, 7), ("stride", "phases 4x4")),
    (dict(stride=3), (3, 2, 3, 3), ("stride", "phases 1x1")),
    (dict(dilation=2), (3, 2, 3, 3), ("dilation",)),
    (dict(groups=2), (4, 1, 3, 3), ("groups",)),
])
def test_winograd_where_it_does_not_apply(kwargs, wshape, fragments):
    x = np.zeros((1, 2, 8, 8), np.float32)
    with raises(ValueError, "winograd", *fragments):
        ops.conv2d(x, np.zeros(wshape, np.float32), algorithm="winograd", **kwargs)


X = np.zeros((2, 4, 8, 8), np.float32)
W = np.zeros((6, 4, 3, 3), np.float32)


@pytest.mark.parametrize("args, kwargs, exc, fragments", [
    ((np.zeros((4, 8, 8), np.float32), W), {}, ValueError, ("x", "4-D", "(4, 8, 8)")),
    ((X, np.zeros((6, 4, 3), np.float32)), {}, ValueError, ("weight", "4-D")),
    ((X, np.zeros((6, 3, 3, 3), np.float32)), {}, ValueError, ("weight", "input channels", "4")),
    ((X, W, np.zeros(5, np.float32)), {}, ValueError, ("bias", "(6,)", "(5,)")),
    ((X, W, np.zeros((6, 1), np.float32)), {}, ValueError, ("bias",)),
    ((X, W), dict(stride=0), ValueError, ("stride", "positive", "0")),
    ((X, W), dict(stride=(1, -2)), ValueError, ("stride", "-2")),
    ((X, W), dict(dilation=0), ValueError, ("dilation", "0")),
    ((X, W), dict(padding=-1), ValueError, ("padding", "-1")),
    ((X, W), dict(padding=(1, 2, 3)), ValueError, ("padding",)),
    ((X, W), dict(padding="full"), ValueError, ("padding", "full")),
    ((X, W), dict(padding="same", stride=2), ValueError, ("same", "stride")),
    ((X, np.zeros((6, 4, 9, 9), np.float32)), {}, ValueError, ("kernel", "larger", "padded input")),
    ((X, np.zeros((6, 2, 3, 3), np.float32)), dict(groups=3), ValueError, ("groups=3", "4")),
    ((X, np.zeros((5, 2, 3, 3), np.float32)), dict(groups=2), ValueError, ("groups=2", "5")),
    ((X, W), dict(groups=0), ValueError, ("groups", "0")),
    ((X, W), dict(algorithm="fft"), ValueError, ("algorithm", "fft")),
    ((X, W), dict(stride=1.5), TypeError, ("stride", "float")),
    ((X, W), dict(groups="2"), TypeError, ("groups",)),
    ((X, W), dict(algorithm=3), TypeError, ("algorithm",)),
    ((X.astype(np.complex64), W), {}, TypeError, ("x", "complex")),
    ((X, W.astype(bool)), {}, TypeError, ("weight", "bool")),
    ((X, W), dict(padding=2**40 + 1), ValueError, ("padding", "absurdly large")),
    ((X, W), dict(padding=2**40), ValueError, ("overflow",)),
    ((X, W), dict(stride=2**70), ValueError, ("stride", "absurdly large")),
])
def test_conv2d_bad_input(args, kwargs, exc, fragments):
    with raises(exc, *fragments):
        ops.conv2d(*args, **kwargs)
    gy = np.zeros((2, 6, 6, 6), np.float32)
    with raises(exc, *fragments):
        ops.conv2d_backward(gy, *args, **kwargs)


def test_conv2d_huge_output_is_a_clean_error():
    # 192 TiB of output: numpy's allocation fails with MemoryError, never a crash.
    with pytest.raises((MemoryError, ValueError)):
        ops.conv2d(X, W, padding=2**20)


def test_conv2d_backward_bad_grad_shape():
    with raises(ValueError, "grad_out", "(2, 6, 6, 6)", "(2, 6, 6, 5)"):
        ops.conv2d_backward(np.zeros((2, 6, 6, 5), np.float32), X, W)


@pytest.mark.parametrize("case", range(0, len(CASES), 3))
def test_conv2d_matches_torch(case):
    torch = torch_or_skip()
    xs, ws, has_bias, kw = CASES[case]
    rng = np.random.default_rng(case)
    x, w = rand(rng, *xs), rand(rng, *ws)
    b = rand(rng, ws[0]) if has_bias else None
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if has_bias else None
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    gy = rand(rng, *ty.shape)
    ty.backward(torch.tensor(gy))
    for alg in ("direct", "im2col"):
        assert_close(ops.conv2d(x, w, b, algorithm=alg, **kw), ty.detach().numpy())
        gx, gw, gb = ops.conv2d_backward(gy, x, w, b, algorithm=alg, **kw)
        assert_close(gx, tx.grad.numpy())
        assert_close(gw, tw.grad.numpy())
        assert_close(gb, None if tb is None else tb.grad.numpy())
