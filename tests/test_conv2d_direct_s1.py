"""The stride-1 direct convolution (kernels/cpu/conv2d_direct_s1*): what
algorithm="direct" runs for stride-1 ungrouped layers, at every ISA level.

Its edge cases are those of the flat padded-width formulation: channel counts
off the 4-channel block, planes whose flat length is not a whole 24-output
strip, inputs spanning several L2 chunks, pads larger than the kernel (the
data gradient then crops), dilation,
empty and one-image batches split over threads, the chunked weight-gradient
reduction (several images per register pass, a partial last group) and the
fused ReLU with NaN inputs.
"""

import numpy as np
import pytest

from helpers import assert_all_close, assert_close, digests_per_thread_count, rand, torch_or_skip
from striate import _C, ops
from striate import reference as ref


def random_s1_case(rng):
    kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
    dil = tuple(int(v) for v in rng.integers(1, 3, size=2))
    if rng.random() < 0.2:
        padding = "same"
        pads = (0, 0)
    else:
        pads = tuple(int(v) for v in rng.integers(0, 2 * max(kh, kw) + 1, size=2))
        padding = pads
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    h = max(1, span[0] - 2 * pads[0]) + int(rng.integers(0, 12))
    w = max(1, span[1] - 2 * pads[1]) + int(rng.integers(0, 12))
    n = int(rng.choice([0, 1, 2, 3, 5, 9, 17]))
    cin, cout = int(rng.integers(1, 12)), int(rng.integers(1, 14))
    return (n, cin, h, w), (cout, cin, kh, kw), rng.random() < 0.7, dict(padding=padding,
                                                                      dilation=dil)


CASES = [random_s1_case(np.random.default_rng(7000 + i)) for i in range(30)]
CASES += [
    ((2, 16, 8, 8), (16, 16, 3, 3), True, dict(padding=1)),         # ResNet-20 layer3-like
    ((3, 3, 32, 32), (16, 3, 3, 3), False, dict(padding=1)),        # stem
    ((4, 6, 14, 14), (16, 6, 5, 5), True, dict()),                  # LeNet conv2
    ((1, 5, 7, 6), (3, 5, 4, 2), True, dict(padding="same", dilation=(2, 3))),
    ((2, 4, 3, 3), (5, 4, 3, 3), True, dict(padding=3)),            # pad > kernel - 1
    ((1, 2, 1, 1), (7, 2, 1, 1), True, dict()),                     # 1x1 plane
    ((33, 3, 5, 5), (5, 3, 3, 3), True, dict(padding=1)),           # chunks x groups
    # c_in x plane beyond one L2 chunk of flat outputs (kChunkFloats): the
    # forward and the data gradient run several chunks, rows split across them
    ((1, 64, 40, 37), (6, 64, 3, 3), True, dict(padding=1)),
    ((1, 5, 40, 37), (64, 5, 3, 3), True, dict(padding=1)),          # data gradient
    ((2, 96, 30, 30), (5, 96, 5, 3), False, dict(padding=(2, 1), dilation=(1, 2))),
]


def _run(xs, ws, has_bias, kw, seed):
    rng = np.random.default_rng(seed)
    x, w = rand(rng, *xs), rand(rng, *ws)
    b = rand(rng, ws[0]) if has_bias else None
    y = ops.conv2d(x, w, b, algorithm="direct", **kw)
    gy = rand(rng, *y.shape)
    return x, w, b, y, gy, ops.conv2d_backward(gy, x, w, b, algorithm="direct", **kw)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_direct_s1_matches_reference(case, isa):
    xs, ws, has_bias, kw = CASES[case]
    x, w, b, y, gy, grads = _run(xs, ws, has_bias, kw, case)
    assert_close(y, ref.conv2d(x, w, b, **kw), what="y")
    assert_all_close(grads, ref.conv2d_backward(gy, x, w, b, **kw), what="grads")


def test_direct_s1_fused_relu_keeps_nan(isa):
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, 2, 5, 9, 7), rand(rng, 6, 5, 3, 3), rand(rng, 6)
    x[1, 2, 4, 3] = np.nan
    y = ops.conv2d(x, w, b, padding=1, algorithm="direct", activation="relu")
    expected = ops.relu(ops.conv2d(x, w, b, padding=1, algorithm="direct"))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    assert np.isnan(y).any() and (y[~np.isnan(y)] >= 0).all()
    np.testing.assert_array_equal(y, expected)


def test_auto_runs_direct_on_small_channel_3x3_layers():
    # The measured crossover (docs/benchmarks.md): ResNet-20's 16-64 channel
    # 3x3 layers run direct forward and backward on AVX2, backward on AVX-512.
    if _C.isa_selected() == "baseline":
        pytest.skip("the portable level keeps its own rule")
    x, w = np.zeros((2, 16, 32, 32), np.float32), np.zeros((16, 16, 3, 3), np.float32)
    # AVX-512 runs their forward by F(4x4) (auto_avx512: 1.3 vs 2.9 ms at b128)
    assert ops.conv2d_algorithm(x, w, padding=1) == (
        "winograd_f4" if _C.isa_selected() == "avx512" else "direct")
    assert ops.conv2d_algorithm(x, w, padding=1, backward=True) == "direct"
    # strided and pointwise layers are not the stride-1 kernel's
    assert ops.conv2d_algorithm(x, w, stride=2, padding=1) != "direct"
    assert ops.conv2d_algorithm(x, np.zeros((16, 16, 1, 1), np.float32)) == "im2col"


SCRIPT = """
import hashlib, numpy as np
from striate import ops
rng = np.random.default_rng(0)
h = hashlib.sha256()
for n, c, o, s, k, p in [(1, 3, 6, 11, 3, 1), (3, 8, 10, 8, 3, 2), (40, 5, 7, 6, 5, 2)]:
    x = rng.standard_normal((n, c, s, s)).astype(np.float32)
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    y = ops.conv2d(x, w, b, padding=p, algorithm="direct")
    gy = rng.standard_normal(y.shape).astype(np.float32)
    for a in (y, *ops.conv2d_backward(gy, x, w, b, padding=p, algorithm="direct")):
        h.update(np.ascontiguousarray(a).tobytes())
print(h.hexdigest())
"""


def test_direct_s1_is_bitwise_identical_for_any_thread_count():
    digests = digests_per_thread_count(SCRIPT, counts=("1", "2", "3", "5"))
    assert len(set(digests)) == 1 and digests[0].strip(), digests


def test_direct_s1_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    for xs, ws, kw in [((4, 16, 16, 16), (32, 16, 3, 3), dict(padding=1)),
                       ((3, 6, 14, 14), (16, 6, 5, 5), dict(padding=0, dilation=1)),
                       ((2, 8, 12, 10), (8, 8, 3, 3), dict(padding=2, dilation=2))]:
        x, w, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(w).requires_grad_()
        tb = torch.from_numpy(b).requires_grad_()
        ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
        gy = rand(rng, *ty.shape)
        ty.backward(torch.from_numpy(gy))
        y = ops.conv2d(x, w, b, algorithm="direct", **kw)
        grads = ops.conv2d_backward(gy, x, w, b, algorithm="direct", **kw)
        assert_close(y, ty.detach().numpy().astype(np.float64), what="y")
        assert_all_close(grads, [t.grad.numpy().astype(np.float64) for t in (tx, tw, tb)],
                         what="grads")
