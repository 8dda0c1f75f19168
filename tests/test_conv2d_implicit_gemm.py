"""The im2col forward's implicit GEMM: B panels gathered from x inside the GEMM's
packing (kernels/cpu/sgemm_driver.h, pack_b_im2col), on every ISA level, vs the
reference. Shapes put runs across output-row, B-tile (32 / 16 / 8 columns) and
image boundaries; strides 1 and 2 take the AVX-512 masked path, 3 and 4 the
generic one, as do kernels wider than 16 or taller than 32; C_out above the
small-M limit takes the shared-panel driver, depths above KC several slabs."""
import numpy as np
import pytest
from helpers import assert_close, rand
from striate import _C, ops
from striate import reference as ref

CASES = [((3, 5, 56, 56), (7, 5, 3, 3), dict(stride=2, padding=1)),      # Wo 28
         ((2, 3, 29, 31), (4, 3, 3, 3), dict(stride=2, padding=1)),      # odd sizes
         ((2, 4, 17, 9), (5, 4, 3, 5), dict(stride=(1, 2), padding=(0, 2))),
         ((3, 2, 13, 40), (3, 2, 7, 7), dict(stride=2, padding=3)),      # stem-like
         ((2, 3, 23, 23), (5, 3, 11, 11), dict(stride=4, padding=2)),    # generic stride
         ((2, 2, 20, 21), (3, 2, 4, 4), dict(stride=3, padding=1, dilation=(1, 2))),
         ((1, 2, 9, 40), (3, 2, 2, 17), dict(stride=(1, 2), padding=(0, 8))),  # kw > 16
         ((1, 1, 36, 5), (2, 1, 33, 3), dict(padding=1)),                 # kh > 32
         ((2, 96, 10, 10), (200, 96, 3, 3), dict(stride=2, padding=1)),  # M > MC, K > KC
         ((5, 6, 7, 7), (9, 6, 3, 3), dict(stride=1, padding=1, dilation=2)),
         ((4, 6, 14, 14), (8, 3, 1, 1), dict(stride=2, groups=2)),       # 1x1/2 downsample
         ((1, 3, 1, 1), (4, 3, 3, 3), dict(padding=1))]                  # all padding


def isa_levels():
    order = ["baseline", "avx2", "avx512"]
    return order[:order.index(_C.isa_best_supported()) + 1]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_im2col_forward_implicit_gemm(case):
    xs, ws, kw = CASES[case]
    rng = np.random.default_rng(case)
    x, w, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
    y_ref = ref.conv2d(x, w, b, **kw)
    before = _C.isa_selected()
    try:
        for isa in isa_levels():
            _C.set_isa(isa)
            for act in ("none", "relu"):
                want = np.maximum(y_ref, 0) if act == "relu" else y_ref
                got = ops.conv2d(x, w, b, algorithm="im2col", activation=act, **kw)
                assert_close(got, want, what=f"{isa} {act} {xs} {ws} {kw}")
    finally:
        _C.set_isa(before)


def test_im2col_forward_tight_input_no_overread():
    # The masked loads must not read past a tight input: the array ends right
    # after the last row the stride-2 gather uses (an over-read would show as
    # a fault or under the sanitizer build).
    rng = np.random.default_rng(7)
    buf = rand(rng, 2 * 8 * 15 * 15)
    x = buf.reshape(2, 8, 15, 15)
    w = rand(rng, 16, 8, 3, 3)
    assert_close(ops.conv2d(x, w, None, stride=2, algorithm="im2col"),
                 ref.conv2d(x, w, None, stride=2))
