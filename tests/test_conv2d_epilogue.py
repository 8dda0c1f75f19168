"""conv2d's fused bias + ReLU epilogue (activation="relu") and conv2d_algorithms."""

import numpy as np
import pytest

from striate import ops, reference as ref
from helpers import assert_close, rand

CASES = [
    # (x shape, w shape, kwargs)
    ((2, 3, 9, 11), (5, 3, 3, 3), dict(padding=1)),
    ((1, 4, 12, 12), (8, 2, 3, 3), dict(groups=2, stride=2)),
    ((2, 6, 7, 7), (6, 1, 3, 3), dict(groups=6, padding="same")),
    ((1, 8, 6, 6), (4, 8, 1, 1), dict()),
    ((1, 3, 16, 16), (4, 3, 5, 5), dict(dilation=2, padding=(1, 3))),
]


@pytest.mark.parametrize("xs, ws, kw", CASES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_relu_epilogue_matches_relu_of_conv_for_every_algorithm(xs, ws, kw, with_bias):
    rng = np.random.default_rng(hash((xs, ws, with_bias)) % 2**32)
    x, w = rand(rng, *xs), rand(rng, *ws)
    b = rand(rng, ws[0]) if with_bias else None
    expected = np.maximum(ref.conv2d(x, w, b, **kw), 0.0)
    algs = ops.conv2d_algorithms(x, w, b, **kw)
    for alg in algs + ["auto"]:
        fused = ops.conv2d(x, w, b, algorithm=alg, activation="relu", **kw)
        assert_close(fused, expected, what=alg)
        # Same kernel, same sums: the epilogue only clamps.
        plain = ops.conv2d(x, w, b, algorithm=alg, **kw)
        np.testing.assert_array_equal(fused, np.maximum(plain, 0.0), err_msg=alg)
        assert (fused >= 0).all()
    assert np.array_equal(ops.conv2d(x, w, b, activation=None, **kw), ops.conv2d(x, w, b, **kw))


def test_bad_activation():
    x, w = np.zeros((1, 2, 5, 5), np.float32), np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="activation.*'gelu'"):
        ops.conv2d(x, w, activation="gelu")
    with pytest.raises(TypeError, match="activation"):
        ops.conv2d(x, w, activation=1)


def test_algorithms_listing():
    x = np.zeros((1, 4, 8, 8), np.float32)
    w3 = np.zeros((4, 4, 3, 3), np.float32)
    algs = ops.conv2d_algorithms(x, w3, padding=1)
    assert algs[:2] == ["direct", "im2col"]
    assert set(algs) <= {"direct", "im2col", "winograd_f2", "winograd_f4"}
    # Winograd never applies to dilated, grouped or other than 2x2 / 3x3 /
    # 5x5 layers, nor to strides whose phases are not such kernels; 5x5 has
    # F(2x2, 5x5) only, 2x2 (and 3x3/2's 2x2 phases) F(4x4, 2x2) only.
    assert ops.conv2d_algorithms(x, w3, stride=3) == ["direct", "im2col"]
    assert ops.conv2d_algorithms(x, w3, stride=2) == ["direct", "im2col", "winograd_f4"]
    assert ops.conv2d_algorithms(x, np.zeros((4, 4, 2, 2), np.float32)) == [
        "direct", "im2col", "winograd_f4"]
    assert ops.conv2d_algorithms(x, w3, dilation=2) == ["direct", "im2col"]
    assert ops.conv2d_algorithms(x, np.zeros((4, 2, 3, 3), np.float32), groups=2) == ["direct", "im2col"]
    assert ops.conv2d_algorithms(x, np.zeros((4, 4, 5, 5), np.float32)) == ["direct", "im2col",
                                                                             "winograd_f2"]
    assert ops.conv2d_algorithms(x, np.zeros((4, 4, 7, 7), np.float32)) == ["direct", "im2col"]
    for alg in algs:
        ops.conv2d(x, w3, padding=1, algorithm=alg)  # each listed one runs
    with pytest.raises(ValueError, match="input channels"):
        ops.conv2d_algorithms(x, np.zeros((4, 3, 3, 3), np.float32))
