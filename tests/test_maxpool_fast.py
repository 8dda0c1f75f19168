"""max_pool2d forward's row-buffer plane kernel (kernels/cpu/maxpool_impl.h) at
every ISA level: exact equality with the float64 oracle (max is exact), NaN /
Inf placement in every lane of the vectorized stride-2 path, the wide-row
fallback, and thread-count independence."""

import numpy as np
import pytest

import striate
from striate import ops
from striate import reference as ref


def _check(x, **kw):
    got = ops.max_pool2d(x, **kw)
    want = ref.max_pool2d(x, **kw).astype(np.float32)
    assert got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=str(kw))
    np.testing.assert_array_equal(got[~nan], want[~nan], err_msg=str(kw))


@pytest.mark.parametrize("seed", range(6))
def test_random_configs_exact(isa, seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        k = [int(rng.integers(1, 6)) for _ in range(2)]
        s = [int(rng.integers(1, 4)) for _ in range(2)]
        p = [int(rng.integers(0, kk // 2 + 1)) for kk in k]
        d = [int(rng.integers(1, 3)) for _ in range(2)]
        ceil_mode = bool(rng.integers(2))
        # Widths past one and several vector blocks (16 / 8 outputs) with tails.
        h, w = int(rng.integers(1, 20)), int(rng.integers(1, 90))
        if any(ref.pool2d_output_size(n, k[i], s[i], p[i], d[i], ceil_mode) < 1
               for i, n in enumerate((h, w))):
            continue
        x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
        _check(x, kernel_size=tuple(k), stride=tuple(s), padding=tuple(p),
               dilation=tuple(d), ceil_mode=ceil_mode)


@pytest.mark.parametrize("w", [1, 2, 3, 4, 15, 16, 17, 31, 32, 33, 34, 55, 112, 113])
@pytest.mark.parametrize("pad,ceil_mode", [(0, False), (1, False), (0, True), (1, True)])
def test_imagenet_3x3_s2_widths(isa, w, pad, ceil_mode):
    rng = np.random.default_rng(w)
    x = rng.standard_normal((1, 2, 7, w)).astype(np.float32)
    if ref.pool2d_output_size(w, 3, 2, pad, 1, ceil_mode) < 1:
        pytest.skip("empty output")
    _check(x, kernel_size=3, stride=2, padding=pad, ceil_mode=ceil_mode)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("pad", [0, 1])
def test_special_value_in_every_column(isa, value, pad):
    # One special value per row, at a different column in each plane, so every
    # tap position of every vector lane (and the tails) sees it.
    w, h = 37, 5
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, w, h, w)).astype(np.float32)
    for col in range(w):
        x[0, col, col % h, col] = value
    _check(x, kernel_size=3, stride=2, padding=pad)
    _check(x, kernel_size=(2, 3), stride=(1, 2), padding=(1, pad))


def test_all_neg_inf_and_windows_in_padding(isa):
    x = np.full((1, 2, 6, 9), -np.inf, dtype=np.float32)
    _check(x, kernel_size=3, stride=2, padding=1)
    # ceil_mode can start a last window entirely in the right / bottom padding:
    # -inf there (PyTorch).
    x = np.random.default_rng(2).standard_normal((1, 1, 5, 5)).astype(np.float32)
    _check(x, kernel_size=2, stride=3, padding=1, ceil_mode=True)


def test_wide_rows_take_the_fallback(isa):
    # Window reach 4200 > the 4096-float row buffer: the tap-outer fallback.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 3, 4200)).astype(np.float32)
    x[0, 1, 1, 4000] = np.nan
    _check(x, kernel_size=(2, 3), stride=(1, 1), padding=1)
    _check(x, kernel_size=3, stride=2, padding=1)


def test_thread_count_independent(isa):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 23, 41)).astype(np.float32)
    x[1, 2, 3, 4] = np.nan
    before = striate.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3):
            striate.set_num_threads(t)
            outs.append(ops.max_pool2d(x, 3, 2, 1).tobytes())
    finally:
        striate.set_num_threads(before)
    assert outs[0] == outs[1] == outs[2]


def _backward_on(isa_level, gy, x, **kw):
    from striate import _C
    before = _C.isa_selected()
    _C.set_isa(isa_level)
    try:
        return ops.max_pool2d_backward(gy, x, **kw)[0]
    finally:
        _C.set_isa(before)


@pytest.mark.parametrize("w", [1, 3, 4, 15, 16, 17, 31, 32, 33, 34, 35, 55, 67, 113])
@pytest.mark.parametrize("pad,ceil_mode", [(0, False), (1, False), (0, True), (1, True)])
def test_backward_3x3_s2_bitwise_across_levels(isa, w, pad, ceil_mode):
    # The AVX-512 level has its own 3-tap stride-2 backward (norm_pool_impl.h
    # max_pool2d_backward_plane_s2k3): every level must pick the same input
    # for every window -- ties (small integers), NaN, +-inf and all--inf
    # windows included -- and add the gradients in the same order, so the
    # results are bitwise equal to the portable level's and, where no NaN
    # is involved, to the float64 oracle's.
    if ref.pool2d_output_size(w, 3, 2, pad, 1, ceil_mode) < 1:
        pytest.skip("empty output")
    rng = np.random.default_rng(100 + w)
    for dil_h, s_h in ((1, 2), (2, 1)):
        x = rng.integers(-3, 4, (2, 3, 9, w)).astype(np.float32)
        x[0, 1, 2, rng.integers(w)] = np.nan
        x[0, 2, rng.integers(9), rng.integers(w)] = np.inf
        x[1, 0, :, :] = -np.inf
        x[1, 1, 4, :] = np.nan
        kw = dict(kernel_size=3, stride=(s_h, 2), padding=pad, dilation=(dil_h, 1),
                  ceil_mode=ceil_mode)
        if ref.pool2d_output_size(9, 3, s_h, pad, dil_h, ceil_mode) < 1:
            continue
        gy = rng.standard_normal(ops.max_pool2d(x, **kw).shape).astype(np.float32)
        got = ops.max_pool2d_backward(gy, x, **kw)[0]
        base = _backward_on("baseline", gy, x, **kw)
        assert got.tobytes() == base.tobytes(), kw
        clean = x.copy()
        clean[np.isnan(clean)] = 0.0
        want = ref.max_pool2d_backward(gy, clean, **kw)[0]
        np.testing.assert_allclose(ops.max_pool2d_backward(gy, clean, **kw)[0], want,
                                   rtol=1e-6, atol=1e-6, err_msg=str(kw))
