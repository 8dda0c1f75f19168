"""Sizes (issue 6, part 3): absurd size arguments are a ValueError or MemoryError
naming what overflowed, never a crash, a hang or a wrapped-around allocation;
extreme but valid arguments (2^40 windows, 2^40 strides) give the right answer
quickly; and ops really run on tensors of more than 2^31 elements and on
workspaces of more than 2^31 floats (in a subprocess, when memory allows).
"""

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from helpers import assert_close, rand, raises
import striate
from striate import ops

X = np.ones((1, 2, 8, 8), np.float32)
W = np.ones((3, 2, 3, 3), np.float32)
G40, G62 = 2 ** 40, 2 ** 62


# ---- absurd arguments ----------------------------------------------------------

ABSURD = [
    # conv2d: 2^40 is the largest accepted scalar; the output size then overflows.
    ("conv2d padding 2^40", lambda: ops.conv2d(X, W, padding=G40),
     ValueError, ["conv2d output", "overflows int64"]),
    ("conv2d padding 2^40+1", lambda: ops.conv2d(X, W, padding=G40 + 1),
     ValueError, ["padding", "absurdly large"]),
    ("conv2d padding 2^62", lambda: ops.conv2d(X, W, padding=(1, G62)),
     ValueError, ["padding", str(G62)]),
    ("conv2d padding 2^64", lambda: ops.conv2d(X, W, padding=2 ** 64),
     ValueError, ["padding", str(2 ** 64)]),
    ("conv2d stride 2^62", lambda: ops.conv2d(X, W, stride=G62), ValueError, ["stride"]),
    ("conv2d dilation 2^40", lambda: ops.conv2d(X, W, dilation=G40),
     ValueError, ["kernel", "larger than the padded input"]),
    ("conv2d dilation 2^62", lambda: ops.conv2d(X, W, dilation=G62), ValueError, ["dilation"]),
    ("conv2d groups 2^40", lambda: ops.conv2d(X, W, groups=G40), ValueError, ["groups"]),
    # An output of 2^46 floats (256 TiB, beyond any address space): the
    # allocation itself fails cleanly.
    ("conv2d output 2^46 floats",
     lambda: ops.conv2d(X, np.ones((1, 2, 1, 1), np.float32), padding=2 ** 22),
     MemoryError, []),
    # A 13 TB im2col workspace for a 64 MB input: refused before allocating.
    # (The backward's: the forward gathers its columns inside the GEMM and
    # needs none.)
    ("conv2d im2col workspace 2^41 floats",
     lambda: ops.conv2d_backward(np.ones((1, 1, 3585, 3585), np.float32),
                                 np.ones((1, 1, 4096, 4096), np.float32),
                                 np.ones((1, 1, 512, 512), np.float32), None, algorithm="im2col"),
     MemoryError, ["workspace", "floats", "physical memory"]),
    # Pooling.
    ("max_pool2d kernel 2^40", lambda: ops.max_pool2d(X, G40),
     ValueError, ["kernel", "larger than the padded input"]),
    ("max_pool2d kernel 2^62", lambda: ops.max_pool2d(X, G62), ValueError, ["kernel_size"]),
    ("avg_pool2d stride 2^62", lambda: ops.avg_pool2d(X, 2, stride=G62), ValueError, ["stride"]),
    ("max_pool2d padding 2^62", lambda: ops.max_pool2d(X, 2, padding=G62),
     ValueError, ["padding"]),
    ("max_pool2d dilation 2^40", lambda: ops.max_pool2d(X, 2, dilation=G40),
     ValueError, ["kernel", "larger than the padded input"]),
    ("adaptive_avg_pool2d 2^40 x 2^40", lambda: ops.adaptive_avg_pool2d(X, G40),
     ValueError, ["adaptive_avg_pool2d", "overflows int64"]),
    ("adaptive_avg_pool2d 2^62", lambda: ops.adaptive_avg_pool2d(X, (G62, 1)),
     ValueError, ["output_size"]),
    ("adaptive_avg_pool2d 2^23 x 2^23", lambda: ops.adaptive_avg_pool2d(X, 2 ** 23),
     MemoryError, []),
    # Other size-like arguments.
    ("local_response_norm size 2^62", lambda: ops.local_response_norm(X, G62),
     ValueError, ["size"]),
    ("softmax dim 2^62", lambda: ops.softmax(X, G62), ValueError, ["dim"]),
    ("cat dim 2^62", lambda: ops.cat([X, X], G62), ValueError, ["dim"]),
    ("adam step 2^62", lambda: ops.adam_update(X.copy(), X, X * 0, X * 0, step=G62),
     ValueError, ["step"]),
    ("cross_entropy target 2^62",
     lambda: ops.cross_entropy(np.ones((2, 3), np.float32), np.array([0, G62])),
     IndexError, ["target[1]", str(G62)]),
    # Zero-stride views of huge batches: converting them to the contiguous
    # float32 the kernels take would allocate, and fails cleanly.
    ("broadcast batch 2^40", lambda: ops.conv2d(np.broadcast_to(X, (G40, 2, 8, 8)), W),
     MemoryError, []),
    ("broadcast weight 2^40 filters",
     lambda: ops.conv2d(X, np.broadcast_to(np.float32(1), (G40, 2, 1, 1))), MemoryError, []),
    ("as_strided 2^42 elements",
     lambda: ops.relu(np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (2 ** 42,), (0,))),
     MemoryError, []),
    # Zero-size arrays may have other dimensions near 2^62: the length of a
    # concatenation of them overflows int64.
    ("cat length 2^63", lambda: ops.cat([np.empty((0, 2 ** 60), np.float32)] * 8, dim=1),
     ValueError, ["cat", "overflows int64"]),
]


@pytest.mark.parametrize("name,call,exc,fragments", ABSURD, ids=[c[0] for c in ABSURD])
def test_absurd_sizes_raise(name, call, exc, fragments):
    with raises(exc, *fragments):
        call()


def test_empty_arrays_with_huge_dimensions_return_at_once():
    """(0, 2^60) arrays: nothing to compute, and no loop over the 2^60 lanes."""
    z = np.empty((0, 2 ** 60), np.float32)
    for dim in (0, 1):
        assert ops.softmax(z, dim).shape == z.shape
        assert ops.log_softmax_backward(z, z, dim)[0].shape == z.shape
    assert ops.cross_entropy_backward(np.float32(1), z, np.empty(0, np.int64))[0].shape == z.shape
    assert ops.mul(z, z).shape == z.shape
    assert ops.dropout(z, 0.5).shape == z.shape
    assert ops.cat([z, z], dim=0).shape == z.shape
    assert ops.max_pool2d(np.empty((0, 2 ** 20, 2 ** 20, 2 ** 19), np.float32), 2).shape == \
        (0, 2 ** 20, 2 ** 19, 2 ** 18)


# ---- extreme but valid arguments -----------------------------------------------

def test_pooling_window_of_2_40_is_one_global_window():
    """kernel 2^40 with padding 2^39 (PyTorch's pad <= kernel/2 holds): one
    output per plane, computed over the valid taps only (no 2^40-step loop)."""
    rng = np.random.default_rng(0)
    x = rand(rng, 2, 3, 7, 9)
    k, pad = G40, G40 // 2
    y = ops.max_pool2d(x, k, padding=pad)
    np.testing.assert_array_equal(y, x.max(axis=(2, 3), keepdims=True))
    g = rand(rng, 2, 3, 1, 1)
    (gx,) = ops.max_pool2d_backward(g, x, k, padding=pad)
    expected = np.where(x == x.max(axis=(2, 3), keepdims=True), g, 0)
    np.testing.assert_array_equal(gx, expected)
    # Stride 1: every output window covers the whole plane.
    y1 = ops.max_pool2d(x, k, stride=1, padding=pad)
    assert y1.shape == (2, 3, 8, 10)
    np.testing.assert_array_equal(y1, np.broadcast_to(x.max(axis=(2, 3), keepdims=True), y1.shape))
    (gx1,) = ops.max_pool2d_backward(np.ones_like(y1), x, k, stride=1, padding=pad)
    np.testing.assert_array_equal(gx1, np.where(x == x.max(axis=(2, 3), keepdims=True), 80, 0))
    # Average: the divisor (2^40 + 7) * (2^40 + 9) overflows int64; it is a double.
    y = ops.avg_pool2d(x, k, padding=pad)
    area = float(k + 7) * float(k + 9)
    assert_close(y, x.astype(np.float64).sum(axis=(2, 3), keepdims=True) / area)
    y = ops.avg_pool2d(x, k, padding=pad, count_include_pad=False)
    assert_close(y, x.astype(np.float64).mean(axis=(2, 3), keepdims=True))
    (gx,) = ops.avg_pool2d_backward(g, x, k, padding=pad, count_include_pad=False)
    assert_close(gx, np.broadcast_to(g / 63.0, x.shape))


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
def test_conv2d_dilation_2_40_same_padding_is_the_center_tap(algorithm):
    """dilation 2^40 with padding="same": every tap but the centre lands in the
    2^40-wide padding, so the result is a 1x1 convolution with the centre."""
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, 2, 3, 6, 7), rand(rng, 4, 3, 3, 3), rand(rng, 4)
    kw = dict(padding="same", dilation=G40, algorithm=algorithm)
    center = np.ascontiguousarray(w[:, :, 1:2, 1:2])
    assert_close(ops.conv2d(x, w, b, **kw), ops.conv2d(x, center, b))
    g = rand(rng, 2, 4, 6, 7)
    gx, gw, gb = ops.conv2d_backward(g, x, w, b, **kw)
    cx, cw, cb = ops.conv2d_backward(g, x, center, b)
    assert_close(gx, cx)
    assert_close(gw[:, :, 1:2, 1:2], cw)
    assert not gw[:, :, [0, 2]].any() and not gw[:, :, :, [0, 2]].any()
    assert_close(gb, cb)


def test_conv2d_stride_2_40_is_the_first_window():
    rng = np.random.default_rng(2)
    x, w = rand(rng, 2, 3, 6, 7), rand(rng, 4, 3, 3, 3)
    y = ops.conv2d(x, w, stride=G40)
    assert y.shape == (2, 4, 1, 1)
    assert_close(y, ops.conv2d(np.ascontiguousarray(x[:, :, :3, :3]), w))


def test_local_response_norm_size_2_40_covers_every_channel():
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 5, 3, 4)
    y = ops.local_response_norm(x, G40, alpha=G40 * 1e-2, beta=0.75, k=2.0)
    d = 2.0 + 1e-2 * (x.astype(np.float64) ** 2).sum(axis=1, keepdims=True)
    assert_close(y, x * d ** -0.75)


# ---- more than 2^31 elements ---------------------------------------------------

def _mem_available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _run_big(script, need_gib):
    """Runs `script` in a fresh interpreter (so the memory goes back to the system
    when it exits, and an out-of-memory kill fails this test instead of the
    suite), skipping when the machine lacks need_gib + 2 GiB available. A lock
    file runs these tests one at a time across concurrent test sessions on the
    machine, so two sessions never both count on the same free memory."""
    if os.environ.get("STRIATE_SANITIZED") == "1":
        pytest.skip("large-memory test skipped under sanitizers")
    fcntl = pytest.importorskip("fcntl")
    root = os.path.dirname(os.path.dirname(os.path.abspath(striate.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    with open(os.path.join(tempfile.gettempdir(), "striate-tests-bigmem.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        avail = _mem_available_bytes() / 2 ** 30
        if avail < need_gib + 2:
            pytest.skip(f"needs {need_gib + 2} GiB available memory, {avail:.1f} GiB available")
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"exit status {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    assert "OK" in r.stdout, r.stdout


def test_ops_on_more_than_2_31_elements():
    """One (1, 1, 65536, 32769) plane: 2^31 + 65536 floats (8 GiB of address
    space); flat index 2^31 falls in row 65534. It is np.zeros with 66 rows of
    random values (every 1024th row and the last two, past index 2^31): the
    untouched pages stay the kernel's shared zero page, so the test reads all
    8 GiB with a few MB resident, in seconds. Pooling reduces it to a few
    outputs and cross-entropy reads it as one row of 2^31 + 65536 logits;
    every value, including those past 2^31, must count."""
    _run_big("""
        import numpy as np, striate
        from striate import ops
        striate.set_num_threads(2)
        H, W = 65536, 32769
        x = np.zeros((1, 1, H, W), np.float32)
        plane, flat = x[0, 0], x.reshape(-1)
        assert flat.size > 2 ** 31 and (H - 2) * W <= 2 ** 31 < (H - 1) * W
        rng = np.random.default_rng(0)
        rows = list(range(512, H - 2, 1024)) + [H - 2, H - 1]
        plane[rows] = rng.standard_normal((len(rows), W)).astype(np.float32)
        plane[-1, -1] = 9.0  # the global maximum: the very last element
        plane[-2, 7] = 8.0

        y = ops.adaptive_avg_pool2d(x, (4, 5))
        for i in range(4):
            for j in range(5):
                r0, r1 = i * H // 4, -(-(i + 1) * H // 4)
                c0, c1 = j * W // 5, -(-(j + 1) * W // 5)
                b, n = plane[r0:r1, c0:c1], (r1 - r0) * (c1 - c0)
                ref = b.sum(dtype=np.float64) / n
                # Rows are summed in float: relative to the mean |x|.
                tol = 1e-5 * np.abs(b).sum(dtype=np.float64) / n
                assert abs(y[0, 0, i, j] - ref) <= tol, (i, j, y[0, 0, i, j], ref)

        y = ops.max_pool2d(x, (8192, 4096))
        assert y.shape == (1, 1, 8, 8), y.shape
        for i in range(8):
            for j in range(8):
                win = plane[i * 8192:(i + 1) * 8192, j * 4096:(j + 1) * 4096]
                assert y[0, 0, i, j] == win.max(), (i, j)
        assert y[0, 0, 7, 0] == 8.0

        # One row of 2^31 + 65536 logits, the target past index 2^31; the
        # reference sums exp over the written rows and counts the zeros.
        z = x.reshape(1, -1)
        t = flat.size - 3
        loss = ops.cross_entropy(z, np.array([t]))
        m = 9.0
        written = plane[rows].astype(np.float64)
        s = np.exp(written - m).sum() + (flat.size - written.size) * np.exp(-m)
        ref = m + np.log(s) - float(flat[t])
        assert abs(loss - ref) <= 1e-5 * abs(ref), (loss, ref)
        print("OK")
    """, need_gib=8.5)


def test_max_pool2d_backward_on_a_plane_of_more_than_2_31_elements():
    """Planes of 2^31 elements or more take max-pool backward's scalar int64
    path (the per-ISA plane kernels index with int32). x as above (zero pages
    plus random rows); gx is a real 8 GiB array, written in full."""
    _run_big("""
        import numpy as np, striate
        from striate import ops
        striate.set_num_threads(2)
        H, W = 65536, 32769
        x = np.zeros((1, 1, H, W), np.float32)
        plane = x[0, 0]
        rng = np.random.default_rng(1)
        rows = list(range(512, H - 2, 1024)) + [H - 2, H - 1]
        plane[rows] = rng.standard_normal((len(rows), W)).astype(np.float32)
        plane[-1, -2] = 9.0  # the last column is in no window (8 * 4096 < W)
        k = (8192, 4096)
        gy = (np.arange(64, dtype=np.float32) + 1).reshape(1, 1, 8, 8)
        (gx,) = ops.max_pool2d_backward(gy, x, k)
        g = gx[0, 0]
        for i in range(8):
            for j in range(8):
                win = plane[i * 8192:(i + 1) * 8192, j * 4096:(j + 1) * 4096]
                r, c = np.unravel_index(np.argmax(win), win.shape)
                assert g[i * 8192 + r, j * 4096 + c] == gy[0, 0, i, j], (i, j)
        assert g[-1, -2] == 64.0  # flat index 2^31 + 65534
        assert np.count_nonzero(g) == 64
        print("OK")
    """, need_gib=8.5)


def test_conv2d_im2col_workspace_of_more_than_2_31_floats():
    """A 4096 x 4096 single-channel image and a 12 x 12 kernel: the column matrix
    is 144 x 4085^2 = 2.4e9 floats (9.0 GiB), its rows past 129 beyond index
    2^31, for a 64 MB input and output. The weight gradient stores it; the
    forward gathers it inside the GEMM, its B panels' offsets past 2^31.
    Forward and weight gradient against the direct algorithm (no workspace)
    and float64 NumPy; peak ~9.7 GiB."""
    _run_big("""
        import numpy as np, striate
        from striate import ops
        striate.set_num_threads(2)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, 1, 4096, 4096)).astype(np.float32)
        w = rng.standard_normal((1, 1, 12, 12)).astype(np.float32)
        ho = 4096 - 11
        assert 12 * 12 * ho * ho > 2 ** 31
        y = ops.conv2d(x, w, algorithm="im2col")
        yd = ops.conv2d(x, w, algorithm="direct")
        scale = np.abs(yd).max()
        assert np.abs(y - yd).max() <= 1e-5 * scale
        x64, w64 = x[0, 0].astype(np.float64), w[0, 0].astype(np.float64)
        for (i, j) in [(0, 0), (ho - 1, ho - 1), (1234, 4000), (ho - 1, 17)]:
            ref = (x64[i:i + 12, j:j + 12] * w64).sum()
            assert abs(y[0, 0, i, j] - ref) <= 1e-5 * scale, (i, j)
        del yd
        g = rng.standard_normal(y.shape).astype(np.float32)
        gx, gw, _ = ops.conv2d_backward(g, x, w, algorithm="im2col")
        gxd, gwd, _ = ops.conv2d_backward(g, x, w, algorithm="direct")
        assert np.abs(gx - gxd).max() <= 1e-5 * np.abs(gxd).max()
        assert np.abs(gw - gwd).max() <= 1e-4 * np.abs(gwd).max()
        g64 = g[0, 0].astype(np.float64)
        for a, b in [(0, 0), (11, 11)]:
            ref = (g64 * x64[a:a + ho, b:b + ho]).sum()
            assert abs(gw[0, 0, a, b] - ref) <= 1e-4 * np.abs(gwd).max(), (a, b)
        print("OK")
    """, need_gib=10.5)
