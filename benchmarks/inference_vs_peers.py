"""ImageNet-size inference, striate vs PyTorch eager vs ONNX Runtime, in one process.

    python benchmarks/inference_vs_peers.py [--threads 2] [--repeats 10]
        [--networks resnet18:1,resnet18:16,vgg16:1,alexnet:16] [--autotune]
        [--json PATH] [--profile resnet18:16]

Each network is built in PyTorch (eval, random weights, batch-norm running
statistics randomized so folding them is not a no-op), exported to ONNX
(``torch.onnx.export``, opset 17) and loaded into striate with
``load_state_dict``; all four engines must agree with PyTorch (max error
printed, relative to max|y|) before anything is timed:

- striate: ``nn.fuse_for_inference(model)`` (BN folded into the convs,
  conv+bias+ReLU in one kernel call, dropout removed), ``model(x)``;
- striate unfused: the model as built, ``model(x)``;
- torch: eager, ``torch.inference_mode()``;
- ORT: ``InferenceSession`` with all graph optimizations, CPU provider.

All run at ``--threads`` threads (``striate.set_num_threads``,
``torch.set_num_threads``, ORT ``intra_op_num_threads``), round-robin
interleaved after warm-up runs; the table shows the minimum (median in the
JSON). ``--autotune`` turns on ``striate.set_autotune(True)`` (every conv
times its algorithms once per shape; the table header says so).

``--profile NET:BATCH`` instead times the fused striate model layer by layer
against the same op in PyTorch (same input, same shapes; conv+ReLU in torch
is conv2d then relu) and prints where the time goes, largest loss first,
plus minor page faults per forward for both libraries.

Needs torch, onnx and onnxruntime. AlexNet is the notes' single-tower 227x227
version with LRN (``striate.models.alexnet``), VGG-16 is configuration D.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

from striate.bench.torch_models import randomize_bn, torch_alexnet, torch_resnet18, torch_vgg16

SIZES = {"resnet18": 224, "vgg16": 224, "alexnet": 227}
TORCH_NETS = {"resnet18": torch_resnet18, "vgg16": torch_vgg16, "alexnet": torch_alexnet}


# -- engines ------------------------------------------------------------------

def build(name, batch, threads, workdir):
    """(engines, x, reference output): engines maps a label to a callable on x."""
    import onnxruntime as ort
    import torch
    from striate import models, nn

    torch.manual_seed(0)
    tnet = TORCH_NETS[name](torch).eval()
    randomize_bn(torch, tnet)
    size = SIZES[name]
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    xt = torch.from_numpy(x)

    path = os.path.join(workdir, f"{name}.onnx")
    kw = dict(opset_version=17, input_names=["x"], output_names=["y"])
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(tnet, (xt,), path, dynamo=False, **kw)
        except TypeError:  # an exporter without the dynamo switch
            torch.onnx.export(tnet, (xt,), path, **kw)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's pool busy-spins after each run by default, holding the cores the
    # next engine in the round-robin needs (measured: the engine after ORT ran
    # 1.3-1.8x slower). Engines take turns here, so no one spins.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    smodel = models.MODELS[name](num_classes=1000, input_size=size)
    smodel.load_state_dict(tnet.state_dict())
    smodel.eval()
    fused = nn.fuse_for_inference(smodel)

    def run_torch(a):
        with torch.inference_mode():
            return tnet(torch.from_numpy(a)).numpy()

    engines = {
        "striate": lambda a: fused(a),
        "striate unfused": lambda a: smodel(a),
        "torch": run_torch,
        "ORT": lambda a: sess.run(None, {"x": a})[0],
    }
    ref = run_torch(x)
    return engines, x, ref, (tnet, fused)


def timed(fn, x):
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def bench(name, batch, args, workdir):
    engines, x, ref, _ = build(name, batch, args.threads, workdir)
    scale = float(np.abs(ref).max())
    errors = {}
    for label, fn in engines.items():
        y = fn(x)
        errors[label] = float(np.abs(y.astype(np.float64) - ref).max()) / scale
        if errors[label] > 1e-3:
            sys.exit(f"{name} b{batch}: {label} disagrees with torch (max rel err "
                     f"{errors[label]:.2e})")
    for _ in range(args.warmup - 1):
        for fn in engines.values():
            fn(x)
    times = {label: [] for label in engines}
    labels = list(engines)
    for r in range(args.repeats):
        # Rotate who goes first, and pause between engines so OpenMP workers
        # of the previous one (torch's spin for a while after a parallel
        # region) have gone to sleep: each engine gets both cores to itself.
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            time.sleep(args.settle)
            times[label].append(timed(engines[label], x))
    return {"network": name, "batch": batch, "errors": errors,
            "min_ms": {k: 1e3 * min(v) for k, v in times.items()},
            "median_ms": {k: 1e3 * statistics.median(v) for k, v in times.items()}}


def table(rows):
    lines = ["| network | batch | striate ms | striate unfused ms | torch ms | ORT ms | "
             "torch/striate | ORT/striate |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t = r["min_ms"]
        lines.append(f"| {r['network']} | {r['batch']} | {t['striate']:.1f} | "
                     f"{t['striate unfused']:.1f} | {t['torch']:.1f} | {t['ORT']:.1f} | "
                     f"{t['torch'] / t['striate']:.2f}x | {t['ORT'] / t['striate']:.2f}x |")
    return "\n".join(lines)


# -- per-layer profile ----------------------------------------------------------

def torch_op(torch, layer):
    """The PyTorch op computing what the striate ``layer`` computes, or None."""
    F = torch.nn.functional
    from striate import nn
    from striate.models._layers import ChannelMul
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    kind = type(layer).__name__
    if isinstance(layer, nn.Conv2d):
        w = t(layer.weight.data)
        b = None if layer.bias is None else t(layer.bias.data)
        pad = layer.padding
        kw = dict(stride=layer.stride, padding=pad, dilation=layer.dilation, groups=layer.groups)
        if layer.activation == "relu":
            return lambda a: torch.relu(F.conv2d(a, w, b, **kw))
        return lambda a: F.conv2d(a, w, b, **kw)
    if isinstance(layer, nn.Linear):
        w, b = t(layer.weight.data), None if layer.bias is None else t(layer.bias.data)
        return lambda a: F.linear(a, w, b)
    if isinstance(layer, nn.MaxPool2d):
        return lambda a: F.max_pool2d(a, layer.kernel_size, layer.stride, layer.padding,
                                      layer.dilation, layer.ceil_mode)
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return lambda a: F.adaptive_avg_pool2d(a, layer.output_size)
    if isinstance(layer, nn.LocalResponseNorm):
        return lambda a: F.local_response_norm(a, layer.size, layer.alpha, layer.beta, layer.k)
    if isinstance(layer, nn.BatchNorm2d):
        return lambda a: F.batch_norm(a, t(layer.running_mean), t(layer.running_var),
                                      t(layer.weight.data), t(layer.bias.data), False, 0.0,
                                      layer.eps)
    if kind == "ReLU":
        return torch.relu
    if isinstance(layer, nn.Flatten):
        return lambda a: torch.flatten(a, 1)
    if isinstance(layer, nn.Add):
        return lambda xs: sum(xs[1:], xs[0])
    if isinstance(layer, ChannelMul):
        return lambda xs: xs[0] * xs[1]
    return None


def minflt():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def conv_key(x_shape, w_shape, y_shape):
    """A conv configuration, the same string for striate's layer and ORT's node."""
    return (f"conv {w_shape[1]}->{w_shape[0]} {w_shape[2]}x{w_shape[3]} "
            f"@{x_shape[2]}x{x_shape[3]}->{y_shape[2]}x{y_shape[3]}")


# ORT's op types mapped onto striate's layer types; anything else (its NCHWc
# reorders, the Pow/Div/Mul/Pad its LRN is exported as) is listed as ORT-only.
ORT_GROUPS = {"Gemm": "Linear", "FusedGemm": "Linear", "MatMul": "Linear", "MaxPool": "MaxPool2d",
              "LRN": "LocalResponseNorm", "GlobalAveragePool": "AdaptiveAvgPool2d",
              "AveragePool": "AdaptiveAvgPool2d", "Relu": "ReLU", "Add": "Add", "Sum": "Add",
              "Flatten": "Flatten", "Reshape": "Flatten"}


def ort_profile(path, x, threads, repeats, workdir):
    """{group: ms}, min over runs of each node's kernel time, summed per group."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(workdir, "ort_profile")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for _ in range(repeats + 1):
        sess.run(None, {"x": x})
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    best, group = {}, {}
    runs = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    for e in runs[len(runs) // (repeats + 1):]:  # the first run is warm-up
        node, op, a = e["name"], e["args"].get("op_name", "?"), e["args"]
        best[node] = min(best.get(node, float("inf")), e["dur"] / 1e3)
        if op in ("Conv", "FusedConv"):
            shapes = [next(iter(d.values())) for d in a["input_type_shape"][:2]]
            group[node] = conv_key(shapes[0], shapes[1],
                                   next(iter(a["output_type_shape"][0].values())))
        else:
            group[node] = ORT_GROUPS.get(op, f"{op} (ORT only)")
    out = {}
    for node, ms in best.items():
        out[group[node]] = out.get(group[node], 0.0) + ms
    return out


def profile(name, batch, args, workdir):
    """Where the time goes: each layer of the fused striate model timed alone
    (min of repeats) next to the same op in PyTorch and ONNX Runtime's own
    per-node profile, summed per conv configuration / op type."""
    import torch
    from striate import nn
    engines, x, _, (_, fused) = build(name, batch, args.threads, workdir)
    for fn in engines.values():
        fn(x)
    print(f"\n{name} batch {batch}: minor page faults and time of one forward (steady state)")
    for label in engines:
        engines[label](x)
        f0, t0 = minflt(), time.perf_counter()
        engines[label](x)
        dt, df = time.perf_counter() - t0, minflt() - f0
        print(f"  {label:16s} {df:8d} faults  {dt * 1e3:8.1f} ms")

    values = [x] + [None] * len(fused._steps)
    groups = {}  # key -> [count, striate ms, torch ms]
    with torch.inference_mode():
        for k, (layer, srcs, merge, shape) in enumerate(fused._steps):
            arg = [values[s] for s in srcs] if merge else values[srcs[0]]
            targ = [torch.from_numpy(a) for a in arg] if merge else torch.from_numpy(arg)
            top = torch_op(torch, layer)
            ts, tt = [], []
            for _ in range(args.repeats):
                ts.append(timed(lambda a: layer.forward(a, False), arg))
                if top is not None:
                    tt.append(timed(top, targ))
            values[k + 1] = layer.forward(arg, False)
            key = type(layer).__name__
            if isinstance(layer, nn.Conv2d):
                key = conv_key(arg.shape, layer.weight.data.shape, values[k + 1].shape)
            g = groups.setdefault(key, [0, 0.0, 0.0])
            g[0] += 1
            g[1] += 1e3 * min(ts)
            g[2] += 1e3 * min(tt) if tt else float("nan")
    ort_ms = ort_profile(os.path.join(workdir, f"{name}.onnx"), x, args.threads, args.repeats,
                         workdir)
    keys = list(groups) + [k for k in ort_ms if k not in groups]
    rows = [(k,) + tuple(groups.get(k, [0, 0.0, float("nan")])) + (ort_ms.get(k, 0.0),)
            for k in keys]
    tot = [sum(r[i] for r in rows if r[i] == r[i]) for i in (2, 3, 4)]
    print(f"\nper op group, layers timed alone, min of {args.repeats}; sums: striate "
          f"{tot[0]:.1f} ms, torch {tot[1]:.1f} ms, ORT {tot[2]:.1f} ms. ORT runs NCHWc "
          "(its reorders are listed) and fuses Add+ReLU into the conv before them, so its "
          "Add/ReLU rows are ~0 and those convs include them. Sorted by striate - ORT.")
    print(f"{'group':36s} {'n':>3s} {'striate':>9s} {'torch':>9s} {'ORT':>9s} "
          f"{'torch/s':>8s} {'ORT/s':>7s}")
    for k, n, s, t, o in sorted(rows, key=lambda r: -(r[2] - r[4])):
        ratio = lambda a: f"{a / s:.2f}" if s and a == a else "-"  # noqa: E731
        print(f"{k:36s} {n:3d} {s:9.2f} {t:9.2f} {o:9.2f} {ratio(t):>8s} {ratio(o):>7s}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--settle", type=float, default=0.3,
                    help="seconds of pause before each timed run (lets the previous engine's threads sleep)")
    ap.add_argument("--networks", default="resnet18:1,resnet18:16,vgg16:1,alexnet:16",
                    help="comma-separated NAME:BATCH, NAME in " + ", ".join(TORCH_NETS))
    ap.add_argument("--autotune", action="store_true", help="striate.set_autotune(True)")
    ap.add_argument("--json", help="write the rows (min and median ms, errors) here")
    ap.add_argument("--profile", metavar="NAME:BATCH",
                    help="per-layer striate vs torch times and page faults instead")
    args = ap.parse_args()

    import onnxruntime
    import torch
    import striate
    torch.set_num_threads(args.threads)
    striate.set_num_threads(args.threads)
    striate.set_autotune(args.autotune)
    info = striate.build_info()
    header = (f"threads {args.threads}; striate {info['version']} ({info['isa_selected']}, "
              f"autotune {'on' if args.autotune else 'off'}), torch {torch.__version__}, "
              f"onnxruntime {onnxruntime.__version__}; min of {args.repeats} interleaved runs")
    print(header, flush=True)

    def parse(spec):
        name, _, batch = spec.partition(":")
        if name not in TORCH_NETS:
            sys.exit(f"unknown network {name!r}; choose from {list(TORCH_NETS)}")
        return name, int(batch or 1)

    with tempfile.TemporaryDirectory() as workdir:
        if args.profile:
            profile(*parse(args.profile), args, workdir)
            return
        rows = []
        for spec in args.networks.split(","):
            name, batch = parse(spec)
            rows.append(bench(name, batch, args, workdir))
            r = rows[-1]
            print(f"{name} b{batch}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in
                                                   r["min_ms"].items())
                  + "; max rel err vs torch " + ", ".join(f"{k} {v:.1e}" for k, v in
                                                          r["errors"].items()), flush=True)
    print()
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
