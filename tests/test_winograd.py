"""Winograd conv2d (winograd_f2 / winograd_f4: F(2x2,3x3), F(4x4,3x3),
F(2x2,5x5) and F(4x4,2x2)): forward and backward against the float64 reference on every ISA
level, accuracy at large channel counts, PyTorch, the transformed-filter
cache, thread safety and determinism."""

import textwrap
import threading

import numpy as np
import pytest

from helpers import assert_all_close, assert_close, digests_per_thread_count, rand, torch_or_skip
import striate
from striate import ops
from striate import reference as ref

TILES = ["winograd_f2", "winograd_f4"]
# (algorithm, kernel size): every Winograd variant there is.
VARIANTS = [("winograd_f2", 3), ("winograd_f4", 3), ("winograd_f2", 5), ("winograd_f4", 2)]
VARIANT_IDS = ["f2_3x3", "f4_3x3", "f2_5x5", "f4_2x2"]
# Bound of the issue for unit-scale data and C <= 512 (docs/winograd.md has
# the measured errors: ~1e-6 for F2, ~2e-5 for F4 at C=512).
WINO_RTOL = 1e-3


def random_case(rng):
    """(x shape, C_out, padding, bias?, relu?): odd sizes, partial edge tiles,
    panels of 12 output channels with a remainder, asymmetric and large pads
    (the data gradient then has negative padding, i.e. cropping)."""
    n, ci, co = int(rng.integers(1, 4)), int(rng.integers(1, 20)), int(rng.integers(1, 30))
    r = rng.random()
    if r < 0.2:
        padding = "same"
    elif r < 0.3:
        padding = "valid"
    elif r < 0.6:
        padding = int(rng.integers(0, 5))
    else:
        padding = tuple(int(v) for v in rng.integers(0, 5, size=2))
    pads = {"same": (1, 1), "valid": (0, 0)}.get(padding, padding)
    pads = (pads, pads) if isinstance(pads, int) else pads
    h = max(1, 3 - 2 * pads[0]) + int(rng.integers(0, 18))
    w = max(1, 3 - 2 * pads[1]) + int(rng.integers(0, 18))
    return (n, ci, h, w), co, padding, rng.random() < 0.7, rng.random() < 0.3


CASES = [random_case(np.random.default_rng(500 + i)) for i in range(24)]
CASES += [
    ((1, 1, 1, 1), 1, 1, True, False),      # one pixel, all padding
    ((2, 13, 9, 300), 25, (1, 0), True, True),  # runs longer than 64 tiles
    ((1, 3, 3, 3), 2, 0, False, False),     # a single output
    ((3, 5, 7, 7), 12, 1, True, True),      # 7x7: one full + one partial F4 tile
    ((2, 3, 4, 5), 5, (6, 5), True, False),  # padding beyond the kernel: both crop
]


def _inputs(case, seed, k=3):
    """The case's arrays for a k x k kernel: 5x5 cases get planes 2 larger
    each way, so every case has at least one output."""
    xs, co, padding, has_bias, relu = case
    if k == 5:
        xs = (xs[0], xs[1], xs[2] + 2, xs[3] + 2)
    rng = np.random.default_rng(seed)
    x, w = rand(rng, *xs), rand(rng, co, xs[1], k, k)
    b = rand(rng, co) if has_bias else None
    return rng, x, w, b, padding, relu


@pytest.mark.parametrize("tile,k", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_matches_reference(isa, case, tile, k):
    rng, x, w, b, padding, relu = _inputs(CASES[case], case, k)
    y = ops.conv2d(x, w, b, padding=padding, algorithm=tile,
                   activation="relu" if relu else None)
    y_ref = ref.conv2d(x, w, b, padding=padding)
    if relu:
        y_ref = np.maximum(y_ref, 0.0)
    assert_close(y, y_ref, what=f"{isa} {tile} {k}x{k} forward {CASES[case]}")


@pytest.mark.parametrize("tile,k", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_backward_matches_reference(isa, case, tile, k):
    rng, x, w, b, padding, _ = _inputs(CASES[case], case, k)
    y_shape = ref.conv2d(x, w, b, padding=padding).shape
    gy = rand(rng, *y_shape)
    copies = [a.copy() for a in (gy, x, w)]
    grads = ops.conv2d_backward(gy, x, w, b, padding=padding, algorithm=tile)
    assert_all_close(grads, ref.conv2d_backward(gy, x, w, b, padding=padding),
                     what=f"{isa} {tile} {k}x{k} backward {CASES[case]}")
    for a, c in zip((gy, x, w), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("tile,k", VARIANTS, ids=VARIANT_IDS)
def test_several_blocks_of_tiles(tile, k):
    # 512 (F4) / 2048 (F2) tiles of 64+64 channels: more than one block.
    rng = np.random.default_rng(11)
    x, w, b = rand(rng, 2, 64, 64, 64), rand(rng, 64, 64, k, k), rand(rng, 64)
    pad = "same"
    assert_close(ops.conv2d(x, w, b, padding=pad, algorithm=tile),
                 ref.conv2d(x, w, b, padding=pad), what=tile)
    gy = rand(rng, 2, 64, 64, 64)
    # The weight gradient sums its GEMMs over the blocks in turn.
    assert_all_close(ops.conv2d_backward(gy, x, w, b, padding=pad, algorithm=tile),
                     ref.conv2d_backward(gy, x, w, b, padding=pad), what=tile)


@pytest.mark.parametrize("dist", ["uniform", "normal"])
@pytest.mark.parametrize("c", [64, 256, 512])
def test_error_bound_at_large_channel_counts(c, dist):
    rng = np.random.default_rng(c)
    draw = ((lambda *s: rng.uniform(-1, 1, s)) if dist == "uniform"
            else (lambda *s: rng.standard_normal(s)))
    x, gy = draw(1, c, 12, 12).astype(np.float32), draw(1, c, 12, 12).astype(np.float32)
    for k in (2, 3, 5):
        w = draw(c, c, k, k).astype(np.float32)
        y_ref = ref.conv2d(x, w, padding="same")
        gx_ref, gw_ref, _ = ref.conv2d_backward(gy, x, w, padding="same")
        for tile, kk in VARIANTS:
            if kk != k:
                continue
            what = f"{tile} {k}x{k} C={c}"
            assert_close(ops.conv2d(x, w, padding="same", algorithm=tile), y_ref, WINO_RTOL,
                         what=what)
            gx, gw, _ = ops.conv2d_backward(gy, x, w, padding="same", algorithm=tile)
            assert_close(gx, gx_ref, WINO_RTOL, what=f"{what} grad_x")
            assert_close(gw, gw_ref, WINO_RTOL, what=f"{what} grad_weight")


@pytest.mark.parametrize("tile,k", VARIANTS, ids=VARIANT_IDS)
def test_weight_gradient_over_many_tiles(tile, k):
    # The weight gradient is a reduction over every tile of the batch (here
    # 16 * 7 * 7 F4 / 16 * 14 * 14 F2 tiles of a 28x28 plane): its error
    # grows with the depth of that sum, unlike the forward pass's.
    rng = np.random.default_rng(3)
    x, w = rand(rng, 16, 32, 28, 28), rand(rng, 48, 32, k, k)
    gy = rand(rng, 16, 48, 28, 28)
    gw = ops.conv2d_backward(gy, x, w, padding="same", algorithm=tile)[1]
    assert_close(gw, ref.conv2d_backward(gy, x, w, padding="same")[1], WINO_RTOL, what=tile)


def test_tile_choice():
    # F(4x4) on outputs of at least 56x56, or 28x28 with < 512 input channels,
    # else F(2x2) (src/ops/conv2d.cpp
    # pick_winograd_tile); "auto" uses Winograd for 3x3 stride-1 ungrouped
    # layers with >= 16 input and output channels on a SIMD ISA level.
    def pick(c_in, c_out, h, wd, algorithm="winograd"):
        return ops.conv2d_algorithm(np.zeros((1, c_in, h, wd), np.float32),
                                    np.zeros((c_out, c_in, 3, 3), np.float32),
                                    padding=1, algorithm=algorithm)
    assert pick(3, 4, 28, 28) == "winograd_f4"
    assert pick(128, 256, 27, 64) == "winograd_f2"
    assert pick(256, 128, 64, 27) == "winograd_f2"
    assert pick(512, 512, 14, 14) == "winograd_f2"
    assert pick(512, 512, 28, 28) == "winograd_f2"
    assert pick(512, 512, 56, 56) == "winograd_f4"
    assert pick(256, 512, 28, 28) == "winograd_f4"
    isa = striate.build_info()["isa_selected"]

    def pick_bwd(c_in, c_out, h):
        return ops.conv2d_algorithm(np.zeros((1, c_in, h, h), np.float32),
                                    np.zeros((c_out, c_in, 3, 3), np.float32),
                                    padding=1, backward=True)

    def pick5(c_in, c_out, h, backward=False):
        return ops.conv2d_algorithm(np.zeros((1, c_in, h, h), np.float32),
                                    np.zeros((c_out, c_in, 5, 5), np.float32),
                                    padding=2, backward=backward)
    if isa == "avx512":
        # src/ops/conv2d.cpp auto_avx512: forward F(4x4) from 16x16 channels;
        # backward direct for 16x16 channels, F(4x4) up to 64x64, on >= 28x28
        # planes and from 256 x 512 channels over >= 64 F(4x4) tiles, else
        # F(2x2)
        assert pick(64, 64, 56, 56, "auto") == "winograd_f4"
        assert pick(16, 16, 32, 32, "auto") == "winograd_f4"
        assert pick(256, 256, 14, 14, "auto") == "winograd_f4"
        assert pick(512, 512, 7, 7, "auto") == "winograd_f4"
        assert pick(512, 512, 28, 28, "auto") == "winograd_f4"
        assert pick(3, 64, 32, 32, "auto") == "direct"
        assert pick_bwd(3, 64, 32) == "im2col"
        assert pick_bwd(16, 16, 32) == "direct"
        assert pick_bwd(32, 32, 16) == "winograd_f4"
        assert pick_bwd(64, 64, 56) == "winograd_f4"
        assert pick_bwd(128, 128, 28) == "winograd_f4"
        assert pick_bwd(512, 512, 28) == "winograd_f4"
        assert pick_bwd(192, 384, 13) == "winograd_f2"
        assert pick_bwd(512, 512, 14) == "winograd_f2"  # one image: 16 F(4x4) tiles
        assert ops.conv2d_algorithm(np.zeros((16, 512, 7, 7), np.float32),
                                    np.zeros((512, 512, 3, 3), np.float32), padding=1,
                                    backward=True) == "winograd_f4"  # 64 tiles
        # 5x5: the AVX2 rule (auto_avx2_5x5), measured on AVX-512 too
        assert pick5(64, 192, 27) == "winograd_f2"
        assert pick5(6, 16, 28) == "direct"
        assert pick5(64, 192, 27, True) == "winograd_f2"
        assert pick5(48, 128, 7, True) == "im2col"
    elif isa == "avx2":
        # src/ops/conv2d.cpp auto_avx2: direct for 16x16 channels and, up to
        # 64x64, on planes <= 8x8 forward / <= 16x16 backward; else forward
        # F(4x4) on every plane, backward F(4x4) from 28x28 and F(2x2) below
        assert pick(16, 16, 32, 32, "auto") == "direct"
        assert pick(64, 64, 8, 8, "auto") == "direct"
        assert pick(32, 32, 16, 16, "auto") == "winograd_f4"
        assert pick(64, 64, 28, 28, "auto") == "winograd_f4"
        assert pick(192, 384, 13, 13, "auto") == "winograd_f4"
        assert pick(512, 512, 7, 7, "auto") == "winograd_f4"
        assert pick_bwd(16, 16, 32) == "direct"
        assert pick_bwd(32, 32, 16) == "direct"
        assert pick_bwd(64, 64, 28) == "winograd_f4"
        assert pick_bwd(128, 128, 14) == "winograd_f2"
        assert pick_bwd(192, 384, 13) == "winograd_f2"
        assert pick_bwd(512, 512, 7) == "winograd_f2"

        # 5x5 (auto_avx2_5x5): forward F(2x2, 5x5) from 16 channels on
        # planes >= 28x28 or from 32x32 channels; backward when the tile sum
        # is deep (C_in*C_out*plane >= 2M), else im2col beyond 32x32 channels.
        assert pick5(64, 192, 27) == "winograd_f2"
        assert pick5(16, 32, 28) == "winograd_f2"
        assert pick5(16, 48, 14) == "direct"
        assert pick5(48, 128, 7) == "winograd_f2"
        assert pick5(6, 16, 28) == "direct"
        assert pick5(64, 192, 27, True) == "winograd_f2"
        assert pick5(128, 128, 14, True) == "winograd_f2"
        assert pick5(48, 128, 7, True) == "im2col"
        assert pick5(16, 32, 28, True) == "direct"
    if isa in ("avx2", "avx512"):
        # AlexNet conv1 (11x11/4, 3->64 @224): the rewritten 48->64 3x3 layer
        # on 55x55 outputs runs F(4x4) both ways.
        x, w = np.zeros((1, 3, 224, 224), np.float32), np.zeros((64, 3, 11, 11), np.float32)
        for bwd in (False, True):
            assert ops.conv2d_algorithm(x, w, stride=4, padding=2, backward=bwd) == "winograd_f4"
    assert pick(8, 64, 56, 56, "auto") not in ("winograd_f2", "winograd_f4")


# Strided layers whose stride phases form a 2x2, 3x3 or 5x5 kernel run by
# the space-to-depth rewrite (kernels/cpu/conv2d_s2d.cpp): (kernel, stride,
# padding), odd planes, C_in * stride^2 phase channels.
STRIDED = [(11, 4, 2), (11, 4, 0), (5, 2, 1), (6, 2, 0), (7, 3, 3), (9, 3, 1), (10, 2, 1),
           (5, 2, 4), (3, 2, 1), (3, 2, 0), (4, 2, 3), (5, 3, 2), (7, 4, 1)]


@pytest.mark.parametrize("k,s,pad", STRIDED, ids=[f"{k}x{k}s{s}p{p}" for k, s, pad in STRIDED
                                                   for p in [pad]])
def test_strided_by_space_to_depth_matches_reference(isa, k, s, pad):
    rng = np.random.default_rng(k * 100 + s * 10 + pad)
    x = rand(rng, 2, 3, 4 * k + 3, 3 * k + 4)
    w, b = rand(rng, 13, 3, k, k), rand(rng, 13)
    algs = ops.conv2d_algorithms(x, w, b, stride=s, padding=pad)
    phases = -(-k // s)
    assert algs == ["direct", "im2col"] + (["winograd_f2"] if phases != 2 else []) + (
        ["winograd_f4"] if phases in (2, 3) else [])
    y_ref = ref.conv2d(x, w, b, stride=s, padding=pad)
    gy = rand(rng, *y_ref.shape)
    grads_ref = ref.conv2d_backward(gy, x, w, b, stride=s, padding=pad)
    for tile in algs[2:]:
        what = f"{isa} {tile} {k}x{k}/{s} pad {pad}"
        assert_close(ops.conv2d(x, w, b, stride=s, padding=pad, algorithm=tile), y_ref, what=what)
        assert_close(ops.conv2d(x, w, b, stride=s, padding=pad, algorithm=tile, activation="relu"),
                     np.maximum(y_ref, 0), what=what + " relu")
        assert_all_close(ops.conv2d_backward(gy, x, w, b, stride=s, padding=pad, algorithm=tile),
                         grads_ref, what=what + " backward")


def test_strided_by_space_to_depth_edges():
    rng = np.random.default_rng(77)
    w = rand(rng, 4, 2, 11, 11)
    # Empty batch: empty output, zero weight gradient.
    x0 = np.zeros((0, 2, 40, 40), np.float32)
    assert ops.conv2d(x0, w, stride=4, algorithm="winograd_f4").shape == (0, 4, 8, 8)
    gx, gw, gb = ops.conv2d_backward(np.zeros((0, 4, 8, 8), np.float32), x0, w,
                                     np.zeros(4, np.float32), stride=4, algorithm="winograd_f4")
    assert gx.shape == x0.shape and not gw.any() and not gb.any()
    # Input rows and columns no window reaches (41 = 4*7 + 11 + 2) never
    # reach an output, even as Inf through the transforms.
    x = rand(rng, 1, 2, 41, 41)
    x[:, :, 39:, :] = np.inf
    x[:, :, :, 39:] = np.nan
    y = ops.conv2d(x, w, stride=4, algorithm="winograd_f4")
    assert y.shape == (1, 4, 8, 8) and np.isfinite(y).all()
    assert_close(y, ref.conv2d(x[:, :, :39, :39], w, stride=4), what="unread rows")
    gx = ops.conv2d_backward(rand(rng, *y.shape), x, w, stride=4, algorithm="winograd_f4")[0]
    assert not gx[:, :, 39:, :].any() and not gx[:, :, :, 39:].any()
    # Strides whose phases are not 2x2 / 3x3 / 5x5 keep im2col and direct only.
    x = rand(rng, 1, 2, 30, 30)
    for k, s in ((8, 2), (7, 2), (1, 2), (11, 3)):
        wk = rand(rng, 4, 2, k, k)
        assert ops.conv2d_algorithms(x, wk, stride=s) == ["direct", "im2col"]
        with pytest.raises(ValueError, match="stride that splits the kernel"):
            ops.conv2d(x, wk, stride=s, algorithm="winograd")
    # Unequal strides and kernels: 7x11 at (2, 4) -> 4x3 phases: no.
    with pytest.raises(ValueError, match="phases 4x3"):
        ops.conv2d(x, rand(rng, 4, 2, 7, 11), stride=(2, 4), algorithm="winograd_f2")
    # 10x10 at 2: 5x5 phases, F(2x2, 5x5) only.
    with pytest.raises(ValueError, match="no 4x4 tile for a 5x5 kernel or 5x5 stride phases"):
        ops.conv2d(x, rand(rng, 4, 2, 10, 10), stride=2, algorithm="winograd_f4")
    # 3x3 at 2: 2x2 phases, F(4x4, 2x2) only.
    with pytest.raises(ValueError, match="no 2x2 tile for a 2x2 kernel or 2x2 stride phases"):
        ops.conv2d(x, rand(rng, 4, 2, 3, 3), stride=2, algorithm="winograd_f2")
    # 5x11 at (2, 4): 3x3 phases.
    w2 = rand(rng, 4, 2, 5, 11)
    assert_close(ops.conv2d(x, w2, stride=(2, 4), padding=(1, 2), algorithm="winograd_f4"),
                 ref.conv2d(x, w2, stride=(2, 4), padding=(1, 2)), what="5x11/(2,4)")


def test_strided_by_space_to_depth_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(78)
    x, w, b = rand(rng, 2, 3, 67, 67), rand(rng, 16, 3, 11, 11), rand(rng, 16)
    tx, tw, tb = map(torch.from_numpy, (x, w, b))
    y_t = torch.nn.functional.conv2d(tx, tw, tb, stride=4, padding=2).numpy()
    gy = rand(rng, *y_t.shape)
    gx_t = torch.nn.grad.conv2d_input(x.shape, tw, torch.from_numpy(gy), stride=4,
                                      padding=2).numpy()
    for tile in TILES:
        assert_close(ops.conv2d(x, w, b, stride=4, padding=2, algorithm=tile), y_t, what=tile)
        gx = ops.conv2d_backward(gy, x, w, b, stride=4, padding=2, algorithm=tile)[0]
        assert_close(gx, gx_t, what=tile)


def test_5x5_has_the_2x2_tile_only():
    x, w = np.zeros((1, 8, 9, 9), np.float32), np.zeros((8, 8, 5, 5), np.float32)
    assert ops.conv2d_algorithms(x, w, padding=2) == ["direct", "im2col", "winograd_f2"]
    assert ops.conv2d_algorithm(x, w, padding=2, algorithm="winograd") == "winograd_f2"
    with pytest.raises(ValueError, match="winograd_f4.*no 4x4 tile for a 5x5 kernel"):
        ops.conv2d(x, w, padding=2, algorithm="winograd_f4")
    with pytest.raises(ValueError, match="needs a 2x2, 3x3 or 5x5 kernel, got 7x7"):
        ops.conv2d(x, np.zeros((8, 8, 7, 7), np.float32), padding=3, algorithm="winograd")
    with pytest.raises(ValueError, match="needs stride 1"):
        ops.conv2d(x, w, padding=2, stride=5, algorithm="winograd_f2")  # 1x1 phases


def test_2x2_has_the_4x4_tile_only():
    x, w = np.zeros((1, 8, 9, 9), np.float32), np.zeros((8, 8, 2, 2), np.float32)
    assert ops.conv2d_algorithms(x, w) == ["direct", "im2col", "winograd_f4"]
    assert ops.conv2d_algorithm(x, w, algorithm="winograd") == "winograd_f4"
    with pytest.raises(ValueError, match="winograd_f2.*no 2x2 tile for a 2x2 kernel"):
        ops.conv2d(x, w, algorithm="winograd_f2")


def test_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    for tile, k in VARIANTS:
        x, w, b = rand(rng, 2, 32, 15, 17), rand(rng, 24, 32, k, k), rand(rng, 24)
        tx, tw, tb = map(torch.from_numpy, (x, w, b))
        y_t = torch.nn.functional.conv2d(tx, tw, tb, padding=k // 2).numpy()
        gy = rand(rng, *y_t.shape)
        tgy = torch.from_numpy(gy)
        gx_t = torch.nn.grad.conv2d_input(x.shape, tw, tgy, padding=k // 2).numpy()
        gw_t = torch.nn.grad.conv2d_weight(tx, w.shape, tgy, padding=k // 2).numpy()
        what = f"{tile} {k}x{k}"
        assert_close(ops.conv2d(x, w, b, padding=k // 2, algorithm=tile), y_t, what=what)
        gx, gw, _ = ops.conv2d_backward(gy, x, w, b, padding=k // 2, algorithm=tile)
        assert_close(gx, gx_t, what=what)
        assert_close(gw, gw_t, what=what)


@pytest.mark.parametrize("tile,k", VARIANTS, ids=VARIANT_IDS)
def test_filter_cache_notices_weights_changed_in_place(tile, k):
    rng = np.random.default_rng(8)
    x, w = rand(rng, 1, 6, 9, 9), rand(rng, 5, 6, k, k)
    gy = rand(rng, 1, 5, 9, 9)
    pad = "same"
    for step in range(3):
        y = ops.conv2d(x, w, padding=pad, algorithm=tile)
        again = ops.conv2d(x, w, padding=pad, algorithm=tile)  # served from the cache
        np.testing.assert_array_equal(y, again)
        assert_close(y, ref.conv2d(x, w, padding=pad), what=f"{tile} step {step}")
        gx = ops.conv2d_backward(gy, x, w, padding=pad, algorithm=tile)[0]
        assert_close(gx, ref.conv2d_backward(gy, x, w, padding=pad)[0],
                     what=f"{tile} step {step}")
        # Same array, same address, new values: one element, then all of them.
        if step == 0:
            w[4, 5, k - 1, k - 1] += 3.0
        else:
            w *= -0.5


def test_concurrent_python_threads():
    # The GIL is released in the kernels: threads share the filter cache.
    rng = np.random.default_rng(9)
    jobs = []
    for i in range(6):
        x, w = rand(rng, 1, 8, 10, 10), rand(rng, 8 + i, 8, 3, 3)
        jobs.append((x, w, TILES[i % 2], ref.conv2d(x, w, padding=1)))
    errors = []

    def work(x, w, tile, y_ref):
        try:
            for _ in range(20):
                assert_close(ops.conv2d(x, w, padding=1, algorithm=tile), y_ref, what=tile)
        except AssertionError as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


DETERMINISM = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from striate import ops

    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s).astype(np.float32)
    h = hashlib.sha256()
    for xs, co, pad, k in [((2, 64, 64, 64), 64, 1, 3), ((3, 7, 13, 11), 13, (0, 2), 3),
                           ((2, 48, 40, 40), 40, 2, 5)]:
        x, w, b = r(*xs), r(co, xs[1], k, k), r(co)
        for tile in ("winograd_f2", "winograd_f4") if k == 3 else ("winograd_f2",):
            y = ops.conv2d(x, w, b, padding=pad, algorithm=tile, activation="relu")
            grads = ops.conv2d_backward(r(*y.shape), x, w, b, padding=pad, algorithm=tile)
            for a in (y, *grads):
                h.update(np.ascontiguousarray(a).tobytes())
    sys.stdout.write(h.hexdigest())
""")


def test_bitwise_identical_for_any_thread_count():
    digests = digests_per_thread_count(DETERMINISM)
    assert digests[0] and digests[0] == digests[1] == digests[2]


def test_empty_cache_frees_the_transformed_filters_and_results_stay_right():
    rng = np.random.default_rng(41)
    x, w = rand(rng, 2, 16, 10, 10), rand(rng, 16, 16, 3, 3)
    first = ops.conv2d(x, w, padding=1, algorithm="winograd_f4")
    held = striate._C.conv2d_filter_cache_bytes()
    # This layer's entry alone: raw weights (16*16*9) + F4 transform (36*16*16
    # at least), in float32.
    assert held >= (16 * 16 * 9 + 36 * 16 * 16) * 4
    assert striate.empty_cache() == held
    assert striate._C.conv2d_filter_cache_bytes() == 0
    assert striate.empty_cache() == 0
    again = ops.conv2d(x, w, padding=1, algorithm="winograd_f4")  # rebuilt
    np.testing.assert_array_equal(again, first)
    assert striate._C.conv2d_filter_cache_bytes() > 0
