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


# The ISA levels this machine can run (the `isa` fixture in conftest.py runs a
# test once per level); every ISA-specific kernel is tested on each.
def _isa_levels():
    from striate import _C
    order = ["baseline", "avx2", "avx512"]
    return [lvl for lvl in order[:order.index(_C.isa_best_supported()) + 1]
            if lvl in _C.isa_compiled()]


ISA_LEVELS = _isa_levels()


def digests_per_thread_count(script, counts=("1", "2", "3")):
    """Run `script` (which prints a digest of its results) in a fresh interpreter
    per OMP_NUM_THREADS value; bitwise-deterministic kernels print one digest."""
    import os
    import subprocess
    import sys
    out = []
    for threads in counts:
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        out.append(subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                  capture_output=True, text=True).stdout)
    return out
