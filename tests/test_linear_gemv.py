"""Small-batch linear forward (the GEMV path of cpu::linear, batch <= 8):
shapes around the GEMV/SGEMM crossover and every vector/row-block tail,
per ISA level, bitwise determinism across thread counts, and PyTorch."""

import numpy as np
import pytest

from helpers import ISA_LEVELS, assert_close, digests_per_thread_count, rand, torch_or_skip
from striate import ops
from striate import reference as ref

# m 1..9 spans the crossover (9 takes the SGEMM); in covers < 1 vector, exact
# multiples of 4/8/16 lanes and their +-1 tails, and a long row with a tail;
# out covers < 1 row block, block multiples and their tails.
SHAPES = [(1, 1, 1), (1, 15, 3), (2, 16, 4), (3, 17, 5), (4, 31, 7), (5, 32, 8), (6, 33, 9),
          (7, 63, 15), (8, 64, 16), (9, 65, 17), (1, 100, 70), (3, 100, 33), (8, 7, 70),
          (2, 4097, 19), (5, 4097, 6), (1, 0, 5)]


@pytest.mark.parametrize("m, k, n", SHAPES)
@pytest.mark.parametrize("has_bias", [True, False])
def test_gemv_matches_reference(isa, m, k, n, has_bias):
    rng = np.random.default_rng(1000 * m + k + n)
    x, w = rand(rng, m, k), rand(rng, n, k)
    b = rand(rng, n) if has_bias else None
    y = ops.linear(x, w, b)
    assert y.shape == (m, n) and y.dtype == np.float32
    assert_close(y, ref.linear(x, w, b), what=f"{isa} linear {(m, k, n)}")


@pytest.mark.parametrize("seed", range(6))
def test_gemv_random_shapes(isa, seed):
    rng = np.random.default_rng(seed)
    m, k, n = int(rng.integers(1, 10)), int(rng.integers(1, 101)), int(rng.integers(1, 71))
    x, w, b = rand(rng, m, k), rand(rng, n, k), rand(rng, n)
    assert_close(ops.linear(x, w, b), ref.linear(x, w, b), what=f"{isa} linear {(m, k, n)}")


def test_gemv_rows_independent_of_batch(isa):
    # Each output's summation order depends on in and the ISA only, so row i
    # of a batch equals the same row computed alone (the x-row group it lands
    # in must not matter).
    rng = np.random.default_rng(7)
    x, w, b = rand(rng, 7, 4097), rand(rng, 23, 4097), rand(rng, 23)
    y = ops.linear(x, w, b)
    for i in range(7):
        np.testing.assert_array_equal(ops.linear(x[i:i + 1], w, b), y[i:i + 1])


def test_gemv_leading_axes_and_nonfinite():
    rng = np.random.default_rng(3)
    x, w, b = rand(rng, 2, 1, 33), rand(rng, 5, 33), rand(rng, 5)
    assert_close(ops.linear(x, w, b), ref.linear(x, w, b))
    x[1, 0, 32] = np.nan  # the masked tail lane must carry it
    y = ops.linear(x, w, b)
    assert np.isnan(y[1]).all() and np.isfinite(y[0]).all()


def test_gemv_deterministic_across_threads():
    script = (
        "import hashlib, numpy as np\n"
        "from striate import _C, ops\n"
        "rng = np.random.default_rng(0)\n"
        "h = hashlib.sha256()\n"
        f"for isa in {ISA_LEVELS!r}:\n"
        "    _C.set_isa(isa)\n"
        "    for m, k, n in [(1, 4097, 301), (4, 1000, 257), (8, 333, 130)]:\n"
        "        x = rng.standard_normal((m, k)).astype(np.float32)\n"
        "        w = rng.standard_normal((n, k)).astype(np.float32)\n"
        "        b = rng.standard_normal(n).astype(np.float32)\n"
        "        h.update(ops.linear(x, w, b).tobytes())\n"
        "print(h.hexdigest())\n")
    digests = digests_per_thread_count(script)
    assert len(set(digests)) == 1, digests


@pytest.mark.parametrize("m", [1, 4, 8])
def test_gemv_matches_torch(m):
    torch = torch_or_skip()
    rng = np.random.default_rng(m)
    x, w, b = rand(rng, m, 1029), rand(rng, 67, 1029), rand(rng, 67)
    expected = torch.nn.functional.linear(*(torch.from_numpy(a) for a in (x, w, b)))
    assert_close(ops.linear(x, w, b), expected.numpy().astype(np.float64))
