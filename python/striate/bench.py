"""``python -m striate.bench``: time and check every op.

For each case it runs the op (forward, and backward with ``--backward`` or
by default), compares the result with :mod:`striate.reference` (float64
NumPy) and prints the median time, GFLOP/s where the op has a FLOP count,
the max error relative to the largest reference magnitude, the speedup over
the NumPy reference and, when PyTorch is importable, PyTorch's time and
striate's speedup over it, measured in the same run.

Options: ``--quick`` (fewer, smaller repeats), ``--filter PATTERN`` (case
names containing it), ``--json PATH`` (write the rows), ``--no-backward``.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np

from . import ops
from . import reference as ref


def _median_time(fn, min_time, max_runs):
    fn()  # warm-up: workspaces, page faults, thread pool start-up
    times = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < 3 or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rel_err(actual, expected):
    if isinstance(expected, tuple):
        errs = [_rel_err(a, e) for a, e in zip(actual, expected) if e is not None]
        return max(errs) if errs else 0.0
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    err = float(np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected))) if expected.size else 0.0
    return err / scale if scale > 0 else err


class Case:
    """One benchmark case: an op name, its arrays and keyword arguments."""

    def __init__(self, name, op, arrays, kwargs=None, flops=None, torch_fn=None, grad_shape=None):
        self.name, self.op, self.arrays = name, op, arrays
        self.kwargs = kwargs or {}
        self.flops = flops  # forward FLOPs (backward is counted as 2x)
        self.torch_fn = torch_fn  # maps the torch tensors to torch's output, or None
        self.grad_shape = grad_shape


def _conv_case(name, xs, ws, rng, algorithm, **kw):
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    y = ops.conv2d(x, w, b, **kw)
    flops = 2.0 * y.size * np.prod(ws[1:])
    kwargs = dict(kw, algorithm=algorithm)

    def torch_fn(F, tx, tw, tb):
        return F.conv2d(tx, tw, tb, **kw)

    return Case(f"{name} [{algorithm}]", "conv2d", [x, w, b], kwargs, flops, torch_fn)


def build_cases(quick):
    rng = np.random.default_rng(0)
    n = 2 if quick else 8
    act = rng.standard_normal((n, 64, 56, 56)).astype(np.float32)
    cases = []
    for alg in ("direct", "im2col"):
        cases.append(_conv_case("conv2d resnet 3x3 64->64 28x28", (n, 64, 28, 28), (64, 64, 3, 3),
                                rng, alg, padding=1))
    cases.append(_conv_case("conv2d resnet 1x1 256->64 28x28", (n, 256, 28, 28), (64, 256, 1, 1),
                            rng, "im2col"))
    cases.append(_conv_case("conv2d depthwise 3x3 64 28x28", (n, 64, 28, 28), (64, 1, 3, 3), rng,
                            "direct", padding=1, groups=64))
    cases.append(_conv_case("conv2d alexnet conv1 11x11/4", (max(1, n // 4), 3, 227, 227),
                            (96, 3, 11, 11), rng, "auto", stride=4))
    cases.append(_conv_case("conv2d lenet conv1 5x5", (n * 8, 1, 32, 32), (6, 1, 5, 5), rng, "auto"))
    cases += [
        Case("max_pool2d 3x3/2 pad 1", "max_pool2d", [act], dict(kernel_size=3, stride=2, padding=1),
             torch_fn=lambda F, x: F.max_pool2d(x, 3, 2, 1)),
        Case("avg_pool2d 2x2/2", "avg_pool2d", [act], dict(kernel_size=2),
             torch_fn=lambda F, x: F.avg_pool2d(x, 2)),
        Case("adaptive_avg_pool2d 7x7->1", "adaptive_avg_pool2d",
             [rng.standard_normal((n * 4, 512, 7, 7)).astype(np.float32)], dict(output_size=1),
             torch_fn=lambda F, x: F.adaptive_avg_pool2d(x, 1)),
        Case("batch_norm train 64ch", "batch_norm",
             [act, np.zeros(64, np.float32), np.ones(64, np.float32),
              rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)],
             dict(training=True),
             torch_fn=lambda F, x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, training=True)),
        Case("local_response_norm size 5", "local_response_norm",
             [rng.standard_normal((n, 96, 27, 27)).astype(np.float32)], dict(size=5),
             torch_fn=lambda F, x: F.local_response_norm(x, 5)),
        Case("relu", "relu", [act], torch_fn=lambda F, x: F.relu(x)),
        Case("sigmoid", "sigmoid", [act], torch_fn=lambda F, x: F.sigmoid(x)),
        Case("tanh", "tanh", [act], torch_fn=lambda F, x: F.tanh(x)),
        Case("softmax 1000 classes", "softmax", [rng.standard_normal((256, 1000)).astype(np.float32)],
             dict(dim=1), torch_fn=lambda F, x: F.softmax(x, 1)),
        Case("linear 4096->1000", "linear",
             [rng.standard_normal((16 * n, 4096)).astype(np.float32),
              (rng.standard_normal((1000, 4096)) / 64).astype(np.float32),
              rng.standard_normal(1000).astype(np.float32)],
             flops=2.0 * 16 * n * 4096 * 1000, torch_fn=lambda F, x, w, b: F.linear(x, w, b)),
        Case("cross_entropy 1000 classes", "cross_entropy",
             [rng.standard_normal((256, 1000)).astype(np.float32), rng.integers(0, 1000, 256)],
             torch_fn=lambda F, z, t: F.cross_entropy(z, t)),
    ]
    return cases


def _torch_time(case, backward, grad, min_time, max_runs):
    try:
        import torch
    except ImportError:
        return None
    if case.torch_fn is None:
        return None
    F = torch.nn.functional
    # Integer targets stay integer; running statistics never need a gradient.
    no_grad = {"cross_entropy": {1}, "batch_norm": {1, 2}}.get(case.op, set())
    tensors = [torch.from_numpy(np.array(a)) for a in case.arrays]
    for i, t in enumerate(tensors):
        t.requires_grad_(backward and i not in no_grad and t.is_floating_point())
    if not backward:
        with torch.no_grad():
            return _median_time(lambda: case.torch_fn(F, *tensors), min_time, max_runs)
    g = torch.from_numpy(grad)

    def step():
        out = case.torch_fn(F, *tensors)
        out.backward(g)

    return _median_time(step, min_time, max_runs)


def run_case(case, backward, min_time, max_runs):
    fwd = getattr(ops, case.op)
    ref_fwd = getattr(ref, case.op)
    kwargs = case.kwargs
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "algorithm"}
    arrays = case.arrays
    # batch_norm updates its running statistics in place; give each caller copies.
    fresh = (lambda: [a.copy() for a in arrays]) if case.op == "batch_norm" else (lambda: arrays)

    y = fwd(*fresh(), **kwargs)
    row = {"case": case.name, "pass": "forward"}
    row["time_s"] = _median_time(lambda: fwd(*arrays, **kwargs), min_time, max_runs)
    t0 = time.perf_counter()
    y_ref = ref_fwd(*fresh(), **ref_kwargs)
    row["ref_time_s"] = time.perf_counter() - t0
    row["rel_err"] = _rel_err(y, y_ref)
    row["gflops"] = case.flops / row["time_s"] / 1e9 if case.flops else None
    row["torch_time_s"] = _torch_time(case, False, None, min_time, max_runs)
    rows = [row]
    if backward:
        bwd = getattr(ops, case.op + "_backward")
        ref_bwd = getattr(ref, case.op + "_backward")
        # A random gradient: all-ones would make e.g. softmax's gradient exactly 0.
        g = np.random.default_rng(1).standard_normal(np.shape(y)).astype(np.float32)
        grads = bwd(g, *arrays, **kwargs)
        brow = {"case": case.name, "pass": "backward"}
        brow["time_s"] = _median_time(lambda: bwd(g, *arrays, **kwargs), min_time, max_runs)
        t0 = time.perf_counter()
        grads_ref = ref_bwd(g, *fresh(), **ref_kwargs)
        brow["ref_time_s"] = time.perf_counter() - t0
        brow["rel_err"] = _rel_err(grads, grads_ref)
        brow["gflops"] = 2 * case.flops / brow["time_s"] / 1e9 if case.flops else None
        tt = _torch_time(case, True, g, min_time, max_runs)
        # torch times forward+backward together; subtract its forward time.
        brow["torch_time_s"] = None if tt is None or row["torch_time_s"] is None \
            else max(tt - row["torch_time_s"], 1e-9)
        rows.append(brow)
    return rows


def _fmt_row(r, with_torch):
    def ms(t):
        return f"{t * 1e3:9.3f}" if t is not None else f"{'-':>9}"
    cols = [f"{r['case']:<42}", f"{r['pass']:<8}", ms(r["time_s"]),
            f"{r['gflops']:8.1f}" if r["gflops"] else f"{'-':>8}",
            f"{r['rel_err']:9.1e}", f"{r['ref_time_s'] / r['time_s']:8.1f}x"]
    if with_torch:
        t = r.get("torch_time_s")
        cols += [ms(t), f"{t / r['time_s']:7.2f}x" if t else f"{'-':>8}"]
    return " ".join(cols)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m striate.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches, fewer repeats")
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--no-backward", action="store_true", help="forward passes only")
    args = parser.parse_args(argv)

    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    from . import __version__
    print(f"striate {__version__} | numpy {np.__version__} | "
          f"torch {torch_version or 'not installed (no PyTorch column)'}")
    min_time, max_runs = (0.05, 5) if args.quick else (0.3, 30)
    header = (f"{'case':<42} {'pass':<8} {'time ms':>9} {'GFLOP/s':>8} {'max err':>9} "
              f"{'vs numpy':>9}")
    if torch_version:
        header += f" {'torch ms':>9} {'vs torch':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    for case in build_cases(args.quick):
        if args.filter and args.filter not in case.name:
            continue
        for r in run_case(case, not args.no_backward, min_time, max_runs):
            rows.append(r)
            print(_fmt_row(r, torch_version is not None), flush=True)
    print("max err: max |striate - reference| / max |reference| (float32 vs float64 NumPy); "
          "vs numpy / vs torch: their time / striate's time (>1 means striate is faster)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch_version, "rows": rows}, f, indent=1)
    bad = [r for r in rows if not r["rel_err"] <= 1e-4]
    if bad:
        print(f"ERROR: {len(bad)} result(s) differ from the reference by more than 1e-4", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
