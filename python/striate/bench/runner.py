"""Running one case: check every algorithm against the float64 reference, then
time striate's algorithms and PyTorch interleaved, round after round.

Interleaving (each contender runs in every round; min over all calls) means
a burst of load from another process slows all contenders alike, so the
ratios stay meaningful on a shared machine even when absolute times do not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ops
from .. import reference as ref

TOL = 1e-4
# Winograd's input/output transforms amplify float32 rounding: F(4x4) ends
# near 1e-5 on this suite's layers where im2col is near 5e-7, so it gets a
# 10x looser bound.
TOL_WINOGRAD = 1e-3


@dataclass
class Settings:
    backward: bool = True
    min_rounds: int = 3
    max_rounds: int = 20
    min_time: float = 0.25  # seconds of timing rounds per case and pass, at least
    # An algorithm other than auto's pick is checked but not timed when its
    # estimated time per call is over skip_slower x auto's and over skip_over
    # seconds (relative, so it holds on a loaded machine too), or over
    # skip_always seconds (bounds the run time). skip_over = 0: time all.
    skip_slower: float = 4.0
    skip_over: float = 0.1
    skip_always: float = 1.0
    algorithms: Optional[tuple] = None  # conv algorithms to keep (None: all)
    torch: object = None  # the torch module, or None for no PyTorch column


def tolerance(algorithm):
    return TOL_WINOGRAD if algorithm and algorithm.startswith("winograd") else TOL


def rel_err(actual, expected):
    """max |actual - expected| / max |expected| (the largest over a tuple of gradients)."""
    if isinstance(expected, tuple):
        errs = [rel_err(a, e) for a, e in zip(actual, expected) if e is not None]
        return max(errs, default=0.0)
    if actual is None:
        return float("inf")
    expected = np.asarray(expected, dtype=np.float64)
    if expected.size == 0:
        return 0.0
    err = float(np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected)))
    scale = float(np.max(np.abs(expected)))
    return err / scale if scale > 0 else err


def interleaved_times(fns, s):
    """{name: [seconds per call, ...]}: rounds that run each function in turn.

    Each function runs a block of consecutive calls per round: short calls
    (< 20 ms) get blocks of >= 2 calls, about 5 ms, because striate and
    PyTorch each bring an OpenMP runtime whose idle threads spin for a while
    after a parallel region, slowing the first call of the other library on
    a machine with few cores. The min over calls discards that first call.
    """
    block = {}
    for k, fn in fns.items():  # warm-up call, which also sizes the block
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        block[k] = 1 if t >= 0.02 else int(min(20, max(2, 0.005 // max(t, 1e-6))))
    times = {k: [] for k in fns}
    start, rounds = time.perf_counter(), 0
    while rounds < s.min_rounds or (rounds < s.max_rounds and time.perf_counter() - start < s.min_time):
        for k, fn in fns.items():
            for _ in range(block[k]):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        rounds += 1
    return times


def conv_variants(case, arrays, s, backward=False):
    """[(algorithm argument, algorithm it runs)]: "auto" first, then the other
    algorithms conv2d_algorithms lists (they appear as other helpers land them).
    ``backward``: what auto runs for conv2d_backward, which may differ."""
    x, w, b = arrays
    kw = case.kwargs
    lister = getattr(ops, "conv2d_algorithms", None)
    algs = list(lister(x, w, b, **kw)) if lister else ["direct", "im2col"]
    picked = ops.conv2d_algorithm(x, w, b, **kw, **({"backward": True} if backward else {}))
    out = [("auto", picked)] + [(a, a) for a in algs if a != picked]
    if s.algorithms:
        out = [v for v in out if v[0] in s.algorithms or v[1] in s.algorithms]
    return out


def _copies(arrays):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in arrays]


class _Pass:
    """One pass (forward or backward) of a case: the functions to call per variant."""

    def __init__(self, case, backward, arrays, check, g, g_check):
        self.case, self.backward = case, backward
        self.arrays, self.check, self.g, self.g_check = arrays, check, g, g_check
        name = case.op + ("_backward" if backward else "")
        self.fn, self.ref_fn = getattr(ops, name), getattr(ref, name)
        # batch_norm(training=True) updates its running statistics in place:
        # checks get fresh copies so every algorithm and the reference see the
        # same statistics; timed calls do not (a copy would be timed too).
        self.mutates = case.op == "batch_norm"

    def call(self, arrays, g, algorithm, fresh=False):
        kw = dict(self.case.kwargs, algorithm=algorithm) if algorithm else self.case.kwargs
        args = _copies(arrays) if fresh and self.mutates else arrays
        return self.fn(g, *args, **kw) if self.backward else self.fn(*args, **kw)

    def reference(self):
        t0 = time.perf_counter()
        args = _copies(self.check)
        out = self.ref_fn(self.g_check, *args, **self.case.kwargs) if self.backward else \
            self.ref_fn(*args, **self.case.kwargs)
        return out, time.perf_counter() - t0


def _torch_fns(case, arrays, torch, g, backward):
    """(forward, backward) timing closures on torch tensors, or None for each."""
    if torch is None or case.torch_fn is None:
        return None, None
    F = torch.nn.functional
    tensors = [torch.from_numpy(np.array(a)) for a in arrays]

    def forward():
        with torch.no_grad():
            case.torch_fn(F, *tensors)

    if not backward:
        return forward, None
    leaves = [t for i, t in enumerate(tensors) if i not in case.no_grad and t.is_floating_point()]
    for t in leaves:
        t.requires_grad_(True)
    out = case.torch_fn(F, *tensors)
    tg = torch.from_numpy(np.array(g))

    def backward():
        # Only the backward is timed: the graph is built once and kept.
        for t in leaves:
            t.grad = None
        out.backward(tg, retain_graph=True)

    return forward, backward


def run_case(case, s, peak_gflops=None):
    """One row (a dict; docs/benchmarks.md lists the keys) per variant and pass of ``case``."""
    arrays = case.make()
    n, check_n = case.batch, case.check_n or case.batch
    check = [a[:check_n] if i in case.batched else a for i, a in enumerate(arrays)]
    variants = conv_variants(case, arrays, s) if case.is_conv() else [(None, None)]
    if not variants:  # --algorithm left none for this layer
        return []
    fwd = _Pass(case, False, arrays, check, None, None)
    y = fwd.call(arrays, None, variants[0][0], fresh=True)
    # A random gradient: all-ones would make e.g. softmax's gradient exactly 0.
    g = np.random.default_rng(1).standard_normal(np.shape(y)).astype(np.float32)
    g_check = g[:check_n] if np.ndim(g) and check_n < n else g
    torch_fwd, torch_bwd = _torch_fns(case, arrays, s.torch, g, s.backward)
    passes = [(fwd, torch_fwd)]
    if s.backward:
        passes.append((_Pass(case, True, arrays, check, g, g_check), torch_bwd))
    rows = []
    for p, torch_fn in passes:
        pv = conv_variants(case, arrays, s, True) if p.backward and case.is_conv() else variants
        rows += _run_pass(case, p, pv, torch_fn, s, peak_gflops, check_n)
    return rows


def _run_pass(case, p, variants, torch_fn, s, peak_gflops, check_n):
    expected, ref_time = p.reference()
    ref_time *= case.batch / check_n
    rows, estimates = [], []
    for arg, alg in variants:
        row = dict(case=case.name, op=case.op, algorithm=alg, auto=arg == "auto",
                   **{"pass": "backward" if p.backward else "forward"}, batch=case.batch,
                   shapes=[list(np.shape(a)) for a in p.arrays], kwargs=dict(case.kwargs),
                   check_n=check_n, tol=tolerance(alg), status="ok")
        try:
            t0 = time.perf_counter()
            out = p.call(p.check, p.g_check, arg, fresh=True)
            estimates.append((time.perf_counter() - t0) * case.batch / check_n)
            row["rel_err"] = rel_err(out, expected)
            row["ok"] = bool(row["rel_err"] <= row["tol"])  # False for NaN too
        except NotImplementedError as e:
            row.update(status=f"not implemented: {e}", rel_err=None)
            estimates.append(None)
        rows.append(row)
    auto_estimate = estimates[0] if variants[0][0] == "auto" and estimates[0] else 0.0
    fns = {}
    for i, ((arg, _), row, est) in enumerate(zip(variants, rows, estimates)):
        if est is None:
            continue
        alternative = arg not in (None, "auto")  # a conv algorithm auto did not pick
        slow = est > max(s.skip_over, s.skip_slower * auto_estimate) or est > s.skip_always
        if alternative and s.skip_over and slow:
            # The first call also paid one-time costs that the timed calls
            # do not: the Winograd filter transform (cached after it; for
            # 512 x 512 F(4x4) filters it outweighs a one-image check call)
            # and first-touch workspace. Estimate again from a second call.
            t0 = time.perf_counter()
            p.call(p.check, p.g_check, arg)
            est = min(est, (time.perf_counter() - t0) * case.batch / check_n)
            slow = est > max(s.skip_over, s.skip_slower * auto_estimate) or est > s.skip_always
        if alternative and s.skip_over and slow:
            row["status"] = f"skipped: ~{est:.2g} s per call (--all-algorithms times it)"
        else:
            fns[i] = (lambda a=arg: p.call(p.arrays, p.g, a))
    if torch_fn is not None and fns:
        fns["torch"] = torch_fn
    times = interleaved_times(fns, s) if fns else {}
    flops = case.flops * (2 if p.backward else 1) if case.flops else None
    for i, row in enumerate(rows):
        row.setdefault("ok", True)
        t = min(times[i]) if i in times else None
        row.update(time_s=t, median_s=float(np.median(times[i])) if t else None,
                   runs=len(times.get(i, ())), ref_time_s=ref_time,
                   ref_speedup=ref_time / t if t else None,
                   gflops=flops / t / 1e9 if flops and t else None)
        row["pct_peak"] = 100 * row["gflops"] / peak_gflops if row["gflops"] and peak_gflops else None
        if s.torch is not None:
            tt = min(times["torch"]) if "torch" in times else None
            row.update(torch_time_s=tt, torch_ratio=tt / t if tt and t else None)
    return rows
