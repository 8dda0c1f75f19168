"""im2col blocks of images (several blocks, a partial last one), batched GEMM
segments straddling images, and the fused bias/ReLU epilogue, vs the reference;
bitwise identical across thread counts."""
import os, subprocess, sys, textwrap
import numpy as np
import pytest
from helpers import assert_all_close, assert_close, rand
from striate import ops
from striate import reference as ref

# (x shape, w shape, kwargs): hw_out 1024 -> 4 images per block, 9 images -> 4+4+1;
# 7x7 planes -> columns of one GEMM tile straddle images; pointwise (one batch).
CASES = [((9, 3, 32, 32), (5, 3, 3, 3), dict(padding=1)),
         ((9, 4, 33, 31), (6, 2, 3, 3), dict(padding=1, groups=2, stride=1)),
         ((5, 13, 7, 7), (17, 13, 3, 3), dict(padding=1)),
         ((5, 13, 7, 7), (37, 13, 1, 1), dict()),
         ((5, 13, 14, 14), (29, 13, 1, 1), dict(stride=2)),
         ((7, 2, 40, 40), (3, 2, 5, 5), dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1)))]

@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("act", ["none", "relu"])
def test_im2col_blocks(case, act):
    xs, ws, kw = CASES[case]
    rng = np.random.default_rng(case)
    x, w, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
    y_ref = ref.conv2d(x, w, b, **kw)
    if act == "relu":
        y_ref = np.maximum(y_ref, 0)
    assert_close(ops.conv2d(x, w, b, algorithm="im2col", activation=act, **kw), y_ref)
    gy = rand(rng, *y_ref.shape)
    assert_all_close(ops.conv2d_backward(gy, x, w, b, algorithm="im2col", **kw),
                     ref.conv2d_backward(gy, x, w, b, **kw))

SCRIPT = textwrap.dedent('''
    import hashlib, sys, numpy as np
    from striate import ops
    rng = np.random.default_rng(0)
    h = hashlib.sha256()
    for xs, ws, kw in %r:
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        for alg in ("im2col", "direct"):
            y = ops.conv2d(x, w, None, algorithm=alg, **kw)
            for a in (y, *ops.conv2d_backward(y, x, w, None, algorithm=alg, **kw)[:2]):
                h.update(a.tobytes())
    for m, k, n in [(3136, 576, 64), (577, 1100, 1031), (64, 5000, 576), (250, 60, 3001)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        h.update(ops.matmul(a, b).tobytes())
    sys.stdout.write(h.hexdigest())
''' % (CASES,))

def test_blocks_bitwise_identical_for_any_thread_count():
    out = [subprocess.run([sys.executable, "-c", SCRIPT], env=dict(os.environ, OMP_NUM_THREADS=t),
                          check=True, capture_output=True, text=True).stdout for t in "123"]
    assert out[0] and out[0] == out[1] == out[2]


# Both SGEMM paths (all of A's rows in one per-thread buffer -- M <= MC, or
# more rows with a shallow K or a larger buffer (AVX2: up to 3*MC x KC):
# per-thread chunks of column tiles; otherwise a shared packed B)
# with several KC slabs, on every ISA level. 288 / 289 x 576 sit on either
# side of AVX2's buffer; N = 49 / 1000 / 7 end in an AVX2 half tile (<= 8
# columns).
@pytest.mark.parametrize("m, k, n", [(200, 1600, 70), (577, 1100, 1031), (170, 2000, 33),
                                     (3136, 576, 64), (13, 5000, 200), (250, 60, 3001),
                                     (97, 577, 300), (150, 1200, 333), (193, 576, 100),
                                     (288, 576, 1003), (289, 576, 1003), (256, 1024, 520),
                                     (512, 1300, 49), (61, 700, 1000), (300, 40, 7)])
def test_sgemm_paths_and_slabs(m, k, n):
    from striate import _C
    rng = np.random.default_rng(m + k + n)
    a, b, g = rand(rng, m, k), rand(rng, k, n), rand(rng, m, n)
    before = _C.isa_selected()
    try:
        for isa in ["baseline", "avx2", "avx512"][:["baseline", "avx2", "avx512"].index(_C.isa_best_supported()) + 1]:
            _C.set_isa(isa)
            assert_close(ops.matmul(a, b), ref.matmul(a, b), what=f"{isa} {m}x{k}x{n}")
            assert_all_close(ops.matmul_backward(g, a, b), ref.matmul_backward(g, a, b), what=isa)
    finally:
        _C.set_isa(before)


# The vectorized stride-2 gather: every input width, padding and kernel width
# around its 4-output steps and its stop before the row end; the input is a
# tight array (no slack after the last row), so an over-read would show under
# the sanitizer build (tools/sanitize.sh).
@pytest.mark.parametrize("w_in", [1, 2, 7, 8, 9, 15, 16, 17, 24])
def test_im2col_stride2_gather_edges(w_in):
    rng = np.random.default_rng(w_in)
    for kw_ in (1, 2, 3):
        for pad in range(kw_):
            if (w_in + 2 * pad - kw_) < 0:
                continue
            x, w = rand(rng, 2, 3, 5, w_in), rand(rng, 4, 3, 3, kw_)
            kw = dict(stride=(1, 2), padding=(1, pad))
            y = ops.conv2d(x, w, None, algorithm="im2col", **kw)
            assert_close(y, ref.conv2d(x, w, None, **kw), what=f"w_in {w_in} kw {kw_} pad {pad}")
            gy = rand(rng, *y.shape)
            assert_all_close(ops.conv2d_backward(gy, x, w, None, algorithm="im2col", **kw),
                             ref.conv2d_backward(gy, x, w, None, **kw), what="backward")


def test_few_column_gemms_inside_convolutions(isa):
    # Plain GEMMs with < 64 columns and many rows run as their transpose
    # (kernels/cpu/sgemm.cpp): the data gradient of one 7x7 image is
    # 2304 x 49 x 128 with A transposed.
    rng = np.random.default_rng(12)
    x, w = rand(rng, 1, 256, 7, 7), rand(rng, 128, 256, 3, 3)
    gy = rand(rng, 1, 128, 7, 7)
    assert_all_close(ops.conv2d_backward(gy, x, w, padding=1, algorithm="im2col"),
                     ref.conv2d_backward(gy, x, w, padding=1), what=f"{isa} im2col 7x7")
