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
