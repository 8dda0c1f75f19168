"""pytest-benchmark suite over the same cases as ``python -m striate.bench``.

Run with ``pytest benchmarks/ --benchmark-only`` (kept out of the default
test run, which collects only ``tests/``).
"""

import pytest

from striate import ops
from striate.bench import build_cases

CASES = build_cases(quick=True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward(benchmark, case):
    fn = getattr(ops, case.op)
    benchmark(fn, *case.arrays, **case.kwargs)
