"""The depthwise kernel (groups == C_in == C_out, kernels/cpu/conv2d_depthwise.h)
behind algorithm="direct": register blocks of 4/3/2/1 vectors over interior
columns, scalar border columns, the strided chunk path; vs the reference
forward (bias, ReLU) on every ISA level, vs torch, bitwise across thread counts."""
import numpy as np
import pytest
from helpers import assert_all_close, assert_close, digests_per_thread_count, rand, torch_or_skip
from striate import ops
from striate import reference as ref

# Widths around the 8-float vectors and 32-float blocks, so every block size
# and the overlapping last block are taken; narrow planes fall to scalars.
WIDTHS = [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 41, 56, 63, 70]


@pytest.mark.parametrize("w_in", WIDTHS)
def test_depthwise_widths(isa, w_in):
    rng = np.random.default_rng(w_in)
    for k, pad, dil in [(3, 1, 1), (1, 0, 1), (5, 2, 1), (3, 2, 2), (2, (1, 0), 1), (3, 0, 1)]:
        x, b = rand(rng, 2, 5, 6, w_in), rand(rng, 5)
        w = rand(rng, 5, 1, k, k)
        kw = dict(padding=pad, dilation=dil, groups=5)
        try:
            y_ref = ref.conv2d(x, w, b, **kw)
        except ValueError:
            continue  # kernel larger than the padded input
        for act in (None, "relu"):
            y = ops.conv2d(x, w, b, algorithm="direct", activation=act, **kw)
            want = np.maximum(y_ref, 0) if act else y_ref
            assert_close(y, want, what=f"{isa} w_in {w_in} k {k} pad {pad} dil {dil} {act}")


@pytest.mark.parametrize("stride", [2, 3, (1, 2), (2, 1)])
def test_depthwise_strided(isa, stride):
    rng = np.random.default_rng(7)
    x, w, b = rand(rng, 3, 8, 19, 37), rand(rng, 8, 1, 3, 3), rand(rng, 8)
    kw = dict(stride=stride, padding=1, groups=8)
    assert_close(ops.conv2d(x, w, b, algorithm="direct", **kw), ref.conv2d(x, w, b, **kw),
                 what=f"{isa} stride {stride}")


def test_depthwise_auto_and_backward_unchanged():
    rng = np.random.default_rng(3)
    x, w, b = rand(rng, 2, 16, 28, 28), rand(rng, 16, 1, 3, 3), rand(rng, 16)
    kw = dict(padding=1, groups=16)
    assert_close(ops.conv2d(x, w, b, **kw), ref.conv2d(x, w, b, **kw))
    gy = rand(rng, 2, 16, 28, 28)
    assert_all_close(ops.conv2d_backward(gy, x, w, b, **kw), ref.conv2d_backward(gy, x, w, b, **kw))


def test_depthwise_nonfinite_like_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x, w = rand(rng, 1, 4, 9, 20), rand(rng, 4, 1, 3, 3)
    x[0, 0, 4, 10] = np.nan
    x[0, 1, 0, 0] = np.inf
    x[0, 2, 8, 19] = -np.inf
    w[3, 0, 0, 0] = np.inf  # on a padded border tap: torch skips nothing there either
    y = ops.conv2d(x, w, None, padding=1, groups=4, algorithm="direct")
    yt = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1,
                                    groups=4).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(yt))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(yt))


def test_depthwise_vs_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(11)
    x, w, b = rand(rng, 4, 32, 56, 56), rand(rng, 32, 1, 3, 3), rand(rng, 32)
    y = ops.conv2d(x, w, b, padding=1, groups=32)
    yt = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                    padding=1, groups=32).numpy()
    assert_close(y, yt)


SCRIPT = """
import hashlib, sys, numpy as np
from striate import ops
rng = np.random.default_rng(0)
x = rng.standard_normal((3, 24, 30, 45)).astype(np.float32)
w = rng.standard_normal((24, 1, 3, 3)).astype(np.float32)
h = hashlib.sha256()
for kw in (dict(padding=1), dict(stride=2, padding=1)):
    h.update(ops.conv2d(x, w, None, groups=24, algorithm="direct", **kw).tobytes())
sys.stdout.write(h.hexdigest())
"""


def test_depthwise_bitwise_across_thread_counts():
    out = digests_per_thread_count(SCRIPT)
    assert out[0] and len(set(out)) == 1
