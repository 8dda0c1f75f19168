"""ISA dispatch, thread control, build_info, and the SGEMM/matmul on every ISA level."""

import os
import subprocess
import sys

import numpy as np
import pytest

import striate
from helpers import assert_all_close, assert_close, rand, raises
from striate import _C, ops
from striate import reference as ref



def test_build_info():
    info = striate.build_info()
    assert info["version"] == striate.__version__
    assert info["isa_selected"] in info["isa_compiled"]
    assert info["isa_best"] in info["isa_compiled"]
    assert info["isa_selected"] in info["sgemm_kernel"]
    assert info["threads"] >= 1 and info["cuda"] is False


# Shapes around the microkernel tiles (4x16, 6x16, 12x32) and the KC=256 /
# NC=1024 blocking: below, equal, above, and multiples; plus the tall-skinny
# shapes convolutions produce.
GEMM_SHAPES = [(1, 1, 1), (3, 5, 7), (4, 16, 16), (6, 17, 16), (12, 32, 32), (13, 33, 31),
               (25, 256, 65), (24, 257, 64), (37, 300, 1030), (64, 576, 784), (784, 64, 27),
               (2, 1000, 3),
               # fewer than 64 columns, many rows: computed as C^T (kernels/cpu/sgemm.cpp)
               (512, 1024, 49), (263, 1001, 7), (300, 900, 63)]


@pytest.mark.parametrize("m, k, n", GEMM_SHAPES)
def test_matmul_matches_reference(isa, m, k, n):
    rng = np.random.default_rng(m * 1000 + k + n)
    a, b = rand(rng, m, k), rand(rng, k, n)
    assert_close(ops.matmul(a, b), ref.matmul(a, b), what=f"{isa} matmul {m}x{k}x{n}")
    g = rand(rng, m, n)
    assert_all_close(ops.matmul_backward(g, a, b), ref.matmul_backward(g, a, b),
                     what=f"{isa} matmul_backward")


@pytest.mark.parametrize("trans", ["conv_im2col", "linear"])
def test_gemm_users_on_every_isa(isa, trans):
    rng = np.random.default_rng(2)
    if trans == "conv_im2col":
        x, w, b = rand(rng, 2, 19, 9, 11), rand(rng, 21, 19, 3, 3), rand(rng, 21)
        kw = dict(padding=1, stride=(1, 2), algorithm="im2col")
        y = ops.conv2d(x, w, b, **kw)
        assert_close(y, ref.conv2d(x, w, b, padding=1, stride=(1, 2)))
        gy = rand(rng, *y.shape)
        assert_all_close(ops.conv2d_backward(gy, x, w, b, **kw),
                         ref.conv2d_backward(gy, x, w, b, padding=1, stride=(1, 2)))
    else:
        x, w, b = rand(rng, 33, 70), rand(rng, 45, 70), rand(rng, 45)
        y = ops.linear(x, w, b)
        assert_close(y, ref.linear(x, w, b))
        gy = rand(rng, *y.shape)
        assert_all_close(ops.linear_backward(gy, x, w, b), ref.linear_backward(gy, x, w, b))


def test_matmul_bad_input():
    with raises(ValueError, "a", "(2, 3)", "b", "(4, 5)", "3", "4"):
        ops.matmul(np.zeros((2, 3)), np.zeros((4, 5)))
    with raises(ValueError, "a", "2-D"):
        ops.matmul(np.zeros(3), np.zeros((3, 5)))
    with raises(ValueError, "b", "2-D"):
        ops.matmul(np.zeros((2, 3)), np.zeros((3, 5, 1)))
    with raises(ValueError, "grad_out", "(2, 5)"):
        ops.matmul_backward(np.zeros((5, 2)), np.zeros((2, 3)), np.zeros((3, 5)))


def test_set_isa_rejects_unknown_and_unsupported():
    with raises(ValueError, "isa", "sse9"):
        _C.set_isa("sse9")
    assert _C.isa_selected() == _C.isa_best_supported()


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env),
                          capture_output=True, text=True)


def test_striate_isa_environment_variable():
    r = _run("import striate; print(striate.build_info()['isa_selected'])", STRIATE_ISA="baseline")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "baseline"
    r = _run("import striate", STRIATE_ISA="nonsense")
    assert r.returncode != 0 and "STRIATE_ISA" in r.stderr and "nonsense" in r.stderr


def test_set_num_threads():
    before = striate.get_num_threads()
    try:
        striate.set_num_threads(1)
        assert striate.get_num_threads() == 1
        rng = np.random.default_rng(0)
        a, b = rand(rng, 70, 300), rand(rng, 300, 90)
        y1 = ops.matmul(a, b)
        striate.set_num_threads(3)
        assert striate.get_num_threads() == 3
        np.testing.assert_array_equal(ops.matmul(a, b), y1)  # bitwise, any thread count
    finally:
        striate.set_num_threads(before)
    with raises(ValueError, "n", "0"):
        striate.set_num_threads(0)
    with raises(TypeError, "n"):
        striate.set_num_threads(2.0)
