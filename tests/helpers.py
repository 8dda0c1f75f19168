"""Shared test utilities (imported by the test modules; tests/ is on sys.path)."""

import numpy as np
import pytest

# float32 kernels vs the float64 reference: the error bound is relative to
# the largest magnitude of the reference result (so it does not blow up on
# entries that happen to be near zero).
RTOL = 1e-4


def assert_close(actual, expected, rtol=RTOL, what=""):
    """max|actual - expected| <= rtol * max|expected| (shapes must match exactly)."""
    if expected is None:
        assert actual is None, f"{what}: expected None, got {type(actual)}"
        return
    assert actual is not None, f"{what}: got None"
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.size == 0:
        return
    scale = float(np.max(np.abs(expected)))
    err = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    assert err <= rtol * max(scale, 1e-30), (
        f"{what}: max abs error {err:.3e} > {rtol:.0e} x max|ref| {scale:.3e}")


def assert_all_close(actuals, expecteds, rtol=RTOL, what=""):
    assert len(actuals) == len(expecteds), f"{what}: {len(actuals)} results, expected {len(expecteds)}"
    for i, (a, e) in enumerate(zip(actuals, expecteds)):
        assert_close(a, e, rtol, f"{what}[{i}]")


def rand(rng, *shape):
    """Unit-scale float32 test data."""
    return rng.standard_normal(shape).astype(np.float32)


def torch_or_skip():
    """The torch module, or skip the test when PyTorch is not installed."""
    return pytest.importorskip("torch")


def raises(exc, *fragments):
    """pytest.raises whose message must contain every fragment (the argument name, value...)."""
    import re
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))
