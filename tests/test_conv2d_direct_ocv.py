"""The output-channel-vectorized direct convolution (kernels/cpu/conv2d_direct_ocv*):
what algorithm="direct" runs first on the AVX-512 level for ungrouped layers
with >= 16 output channels and stride_w 1 or 2 (the ResNet stem, LeNet-5
conv2, VGG-16 conv1_1). On the other levels the same calls run the older
direct kernels, so every case is checked at every level.

Its edge cases: output channels off the 32-channel weight block (a last block
of one or two 16-lane vectors, lanes past C_out dropped), rows around the
14-column register block (balanced column blocks) and odd row counts (row
pairs), in-place reads (no padding) against the padded per-task copy,
strides (1, 2) in width with any stride in height, dilation, weights past
the L2 budget (tasks in runs, weight groups; group-major on small inputs),
empty batches, NaN through the fused ReLU, non-finite weights on a padded
layer (declined: the exact loops run) and thread-count independence.
"""

import numpy as np
import pytest

from helpers import assert_all_close, assert_close, digests_per_thread_count, rand, torch_or_skip
from striate import _C, ops
from striate import reference as ref

# (x shape, weight shape, bias?, conv kwargs)
CASES = [
    ((2, 3, 17, 29), (16, 3, 3, 3), True, dict(padding=1)),             # one vector
    ((2, 3, 17, 29), (17, 3, 3, 3), True, dict(padding=1)),             # 16 + 1 lanes
    ((1, 5, 12, 28), (32, 5, 3, 3), False, dict(padding=1)),            # one full block
    ((3, 4, 9, 15), (33, 4, 3, 3), True, dict(padding=(0, 1))),          # 32 + 1
    ((2, 6, 14, 14), (40, 6, 5, 5), True, dict()),                      # in place, 10 wide
    ((1, 2, 11, 57), (48, 2, 2, 3), True, dict(padding=(1, 0))),         # 57 = 14*4 + 1
    ((2, 3, 33, 33), (64, 3, 7, 7), True, dict(stride=2, padding=3)),   # stem-like
    ((1, 7, 20, 31), (20, 7, 3, 3), True, dict(stride=2, padding=1)),   # 3x3/2, odd width
    ((2, 5, 16, 16), (24, 5, 1, 1), False, dict(stride=2)),              # 1x1/2 in place
    ((1, 4, 25, 19), (18, 4, 3, 3), True, dict(stride=(3, 1), padding=2)),  # stride_h 3
    ((1, 3, 23, 27), (16, 3, 3, 3), True, dict(stride=(1, 2), dilation=2, padding=2)),
    ((2, 3, 13, 13), (100, 3, 4, 4), True, dict(padding="same", dilation=(2, 1))),
    ((0, 3, 9, 9), (16, 3, 3, 3), True, dict(padding=1)),                # empty batch
    ((1, 1, 1, 1), (16, 1, 1, 1), True, dict()),                         # one pixel
    ((1, 2, 3, 3), (16, 2, 3, 3), True, dict(padding=4)),                # padding > kernel
    # 512 x 512 1x1 weights (1 MB > the L2 budget): weight groups, group-major
    # on a small input, tasks in runs on a larger one
    ((2, 512, 7, 7), (512, 512, 1, 1), True, dict()),
    ((1, 256, 30, 30), (512, 256, 1, 1), False, dict(stride=2)),
]


def _run(xs, ws, has_bias, kw, seed, relu=False):
    rng = np.random.default_rng(seed)
    x, w = rand(rng, *xs), rand(rng, *ws)
    b = rand(rng, ws[0]) if has_bias else None
    y = ops.conv2d(x, w, b, algorithm="direct", activation="relu" if relu else None, **kw)
    return x, w, b, y


@pytest.mark.parametrize("case", range(len(CASES)))
def test_direct_ocv_matches_reference(case, isa):
    xs, ws, has_bias, kw = CASES[case]
    for relu in (False, True):
        x, w, b, y = _run(xs, ws, has_bias, kw, case, relu)
        y_ref = ref.conv2d(x, w, b, **kw)
        assert_close(y, np.maximum(y_ref, 0) if relu else y_ref,
                     what=f"{isa} {CASES[case]} relu={relu}")


def test_direct_ocv_random_shapes(isa):
    rng = np.random.default_rng(31)
    for i in range(12):
        kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        pad = tuple(int(v) for v in rng.integers(0, 3, size=2))
        cin, cout = int(rng.integers(1, 9)), int(rng.integers(16, 70))
        h = kh + int(rng.integers(0, 20))
        w = kw + int(rng.integers(0, 40))
        n = int(rng.integers(1, 4))
        x, wt, b = rand(rng, n, cin, h, w), rand(rng, cout, cin, kh, kw), rand(rng, cout)
        kwargs = dict(stride=(sh, sw), padding=pad)
        assert_close(ops.conv2d(x, wt, b, algorithm="direct", **kwargs),
                     ref.conv2d(x, wt, b, **kwargs), what=f"{isa} case {i} {kwargs}")


def test_direct_ocv_relu_keeps_nan(isa):
    rng = np.random.default_rng(2)
    x, w, b = rand(rng, 2, 3, 15, 30), rand(rng, 20, 3, 3, 3), rand(rng, 20)
    x[1, 2, 4, 3] = np.nan
    for kw in (dict(padding=1), dict(stride=2, padding=1), dict()):
        y = ops.conv2d(x, w, b, algorithm="direct", activation="relu", **kw)
        plain = ops.conv2d(x, w, b, algorithm="direct", **kw)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(plain))
        assert np.isnan(y).any() and (y[~np.isnan(y)] >= 0).all()
        np.testing.assert_array_equal(y[~np.isnan(y)], np.maximum(plain, 0)[~np.isnan(y)])


def test_direct_ocv_nonfinite_weights_on_a_padded_layer(isa):
    # Zero padding times an Inf weight is NaN in a padded copy but absent in
    # torch (which never multiplies the padding): the kernel declines and
    # the exact loops run, so the non-finite outputs are torch's (the NumPy
    # reference pads, so torch is the oracle here; at 16 channels its CPU
    # kernel skips the padding, tests/test_numerics.py test_conv2d_exact).
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    x, w = rand(rng, 2, 16, 12, 13), rand(rng, 16, 16, 3, 3) * 0.2
    w[3, 1, 0, 0] = np.inf
    w[9, 0, 2, 1] = np.nan
    y = ops.conv2d(x, w, padding=1, algorithm="direct")
    y_t = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(y), test(y_t))
    assert np.isinf(y[0, 3]).any()  # the Inf weight reaches outputs as Inf, not NaN
    fin = np.isfinite(y_t)
    assert_close(y[fin], y_t[fin], what="finite outputs")


def test_direct_ocv_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    x, w, b = rand(rng, 2, 3, 64, 64), rand(rng, 64, 3, 7, 7), rand(rng, 64)
    y_t = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b)), stride=2,
                                     padding=3).numpy()
    assert_close(ops.conv2d(x, w, b, stride=2, padding=3, algorithm="direct"), y_t, what="stem")


def test_stem_auto_choice_per_level(isa):
    # src/ops/conv2d.cpp auto_algorithm: strided layers on < 16 input channels
    # run the output-channel-vectorized direct kernel forward on AVX-512.
    x, w = np.zeros((1, 3, 224, 224), np.float32), np.zeros((64, 3, 7, 7), np.float32)
    assert _C.isa_selected() == isa
    # baseline: the generic rule (a 147-deep reduction on a large plane: direct)
    assert ops.conv2d_algorithm(x, w, stride=2, padding=3) == {
        "avx512": "direct", "avx2": "im2col", "baseline": "direct"}[isa]
    assert ops.conv2d_algorithm(x, w, stride=2, padding=3, backward=True) == {
        "avx512": "im2col", "avx2": "im2col", "baseline": "direct"}[isa]
    x64, w64 = np.zeros((1, 64, 56, 56), np.float32), np.zeros((128, 64, 3, 3), np.float32)
    if isa != "baseline":
        assert ops.conv2d_algorithm(x64, w64, stride=2, padding=1) == "im2col"


SCRIPT = """
import hashlib, numpy as np
from striate import ops
rng = np.random.default_rng(0)
h = hashlib.sha256()
for n, c, o, s, k, st, p in [(1, 3, 20, 31, 3, 1, 1), (5, 3, 64, 40, 7, 2, 3),
                             (3, 64, 512, 7, 1, 1, 0), (2, 6, 40, 14, 5, 1, 0)]:
    x = rng.standard_normal((n, c, s, s)).astype(np.float32)
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    y = ops.conv2d(x, w, b, stride=st, padding=p, algorithm="direct")
    h.update(np.ascontiguousarray(y).tobytes())
print(h.hexdigest())
"""


def test_direct_ocv_is_bitwise_identical_for_any_thread_count():
    digests = digests_per_thread_count(SCRIPT, counts=("1", "2", "3", "5"))
    assert len(set(digests)) == 1 and digests[0].strip(), digests
