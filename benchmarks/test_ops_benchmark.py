"""pytest-benchmark suite over the cases of ``python -m striate.bench``.

    pytest benchmarks/ --benchmark-only                      # quick-size cases
    STRIATE_BENCH_FULL=1 pytest benchmarks/ --benchmark-only # full-size cases
    pytest benchmarks/ --benchmark-only -k "resnet and forward"

Each case runs forward and backward, striate (algorithm="auto") and, when
it is installed, PyTorch (torch.nn.functional, backward through autograd
on a kept graph), grouped per case and pass so pytest-benchmark's table
shows the two side by side. Correctness is tests/'s job (and the bench
CLI's); this suite only times. Kept out of the default test run
(pyproject's testpaths is ["tests"]).
"""

import os

import numpy as np
import pytest

import striate
from striate import ops
from striate.bench import build_cases

CASES = build_cases(quick=os.environ.get("STRIATE_BENCH_FULL", "") in ("", "0"))

try:
    import torch
except ImportError:
    torch = None


@pytest.fixture(scope="module", autouse=True)
def same_threads():
    if torch is not None:
        torch.set_num_threads(striate.get_num_threads())


def _striate_fn(case, arrays, backward):
    kw = dict(case.kwargs, algorithm="auto") if case.is_conv() else case.kwargs
    if not backward:
        return lambda: getattr(ops, case.op)(*arrays, **kw)
    y = getattr(ops, case.op)(*arrays, **kw)
    g = np.random.default_rng(1).standard_normal(np.shape(y)).astype(np.float32)
    bwd = getattr(ops, case.op + "_backward")
    return lambda: bwd(g, *arrays, **kw)


def _torch_fn(case, arrays, backward):
    F = torch.nn.functional
    tensors = [torch.from_numpy(np.array(a)) for a in arrays]
    if not backward:
        def forward():
            with torch.no_grad():
                case.torch_fn(F, *tensors)
        return forward
    leaves = [t for i, t in enumerate(tensors) if i not in case.no_grad and t.is_floating_point()]
    for t in leaves:
        t.requires_grad_(True)
    out = case.torch_fn(F, *tensors)
    g = torch.randn(out.shape)

    def backward_only():
        for t in leaves:
            t.grad = None
        out.backward(g, retain_graph=True)
    return backward_only


@pytest.mark.parametrize("impl", ["striate", "torch"])
@pytest.mark.parametrize("pass_", ["forward", "backward"])
@pytest.mark.parametrize("case", CASES, ids=[c.full_name for c in CASES])
def test_case(benchmark, case, pass_, impl):
    if impl == "torch" and torch is None:
        pytest.skip("PyTorch not installed")
    arrays = case.make()
    make = _striate_fn if impl == "striate" else _torch_fn
    fn = make(case, arrays, pass_ == "backward")
    benchmark.group = f"{case.full_name} {pass_}"
    if case.flops:
        benchmark.extra_info["gflop"] = case.flops * (2 if pass_ == "backward" else 1) / 1e9
    benchmark(fn)
