"""Output of the benchmark: the header, the table (text or Markdown), JSON, plot."""

import datetime
import json
import os
import platform

import numpy as np

from .. import build_info

NOTES = [
    "time: min over all calls of interleaved rounds (>= 3, --quick 2; each round runs every "
    "algorithm and PyTorch in turn, >= 2 calls each when a call is under 20 ms); JSON also "
    "has the median",
    "alg: * marks algorithm='auto' (the row shows what auto picked); 'skip' = estimated over "
    "4x slower than auto's pick and over 0.1 s, or over 1 s (--quick: 2x, 0.02 s, 0.25 s), "
    "checked but not timed (--all-algorithms times it); 'n/i' = not implemented",
    "GFLOP/s: multiply-add = 2 FLOPs, backward = 2x forward; % peak: of the measured FMA peak above",
    "max err: max |striate - reference| / max |reference| against the float64 NumPy reference, "
    "on the first `check` images of the batch (conv layers: as many as fit in 0.6 GFLOP of "
    "reference work); tolerance 1e-4, Winograd 1e-3",
    "vs numpy: reference time (scaled to the whole batch) / striate time; "
    "vs torch: PyTorch time / striate time (> 1: striate is faster)",
]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads, torch, peak, peak_isa):
    info = build_info()
    return {
        "striate": info["version"], "isa": info["isa_selected"], "isa_best": info["isa_best"],
        "isa_compiled": info["isa_compiled"], "sgemm_kernel": info["sgemm_kernel"],
        "compiler": info["compiler"], "openmp": info["openmp"], "threads": threads,
        "cpu": cpu_model(), "logical_cpus": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "torch": torch.__version__ if torch else None,
        "torch_threads": torch.get_num_threads() if torch else None,
        "peak_gflops": peak, "peak_isa": peak_isa,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def header_lines(m):
    torch = f"torch {m['torch']} ({m['torch_threads']} threads)" if m["torch"] else \
        "torch not installed (no PyTorch columns)"
    return [
        f"striate {m['striate']} | ISA {m['isa']} (best {m['isa_best']}) | {m['sgemm_kernel']} | "
        f"{m['compiler']} | OpenMP {'on' if m['openmp'] else 'off'} | {m['threads']} threads",
        f"CPU {m['cpu']} ({m['logical_cpus']} logical CPUs) | Python {m['python']} | "
        f"numpy {m['numpy']} | {torch}",
        f"fp32 peak {m['peak_gflops']:.1f} GFLOP/s (FMA loop, {m['peak_isa']}, {m['threads']} "
        f"threads; 1 thread: {m['peak_gflops_1thread']:.1f}) | {m['date']}",
    ]


def peak_check_lines(m):
    """The peak measured again after the run: a change means the machine's load
    (or clock) changed during it, and the timings deserve less trust."""
    start, end = m["peak_gflops"], m["peak_gflops_end"]
    line = f"fp32 peak after the run {end:.1f} GFLOP/s (before: {start:.1f})"
    if abs(end - start) > 0.2 * max(start, end):
        line += " -- WARNING: the machine's speed changed during the run (other load?); " \
                "timings are unreliable"
    return [line]


def _columns(with_torch):
    cols = [("case", "<", 46), ("alg", "<", 12), ("pass", "<", 4), ("time ms", ">", 9),
            ("GFLOP/s", ">", 8), ("% peak", ">", 6), ("max err", ">", 8), ("check", ">", 5),
            ("vs numpy", ">", 8)]
    if with_torch:
        cols += [("torch ms", ">", 9), ("vs torch", ">", 8)]
    return cols


def _cells(r, with_torch):
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)
    alg = "-" if r["algorithm"] is None else r["algorithm"] + ("*" if r["auto"] else "")
    status = r["status"]
    time = num(r["time_s"] and r["time_s"] * 1e3, ".3f")
    if status.startswith("skipped"):
        time = "skip"
    elif status.startswith("not implemented"):
        time = "n/i"
    elif status.startswith("error"):
        time = "ERROR"
    err = num(r.get("rel_err"), ".1e") + ("" if r.get("ok", True) else "!")
    cells = [r["case"], alg, "fwd" if r["pass"] == "forward" else "bwd", time,
             num(r.get("gflops"), ".1f"), num(r.get("pct_peak"), ".1f"), err,
             str(r.get("check_n", "-")), num(r.get("ref_speedup"), ".1f")]
    if with_torch:
        tt = r.get("torch_time_s")
        cells += [num(tt and tt * 1e3, ".3f"), num(r.get("torch_ratio"), ".2f")]
    return cells


def text_header(with_torch):
    cols = _columns(with_torch)
    line = " ".join(f"{name:{align}{width}}" for name, align, width in cols)
    return [line, "-" * len(line)]


def text_row(r, with_torch):
    return " ".join(f"{c:{align}{width}}" for c, (_, align, width) in
                    zip(_cells(r, with_torch), _columns(with_torch)))


def markdown(meta, rows, with_torch):
    cols = _columns(with_torch)
    lines = header_lines(meta) + (peak_check_lines(meta) if "peak_gflops_end" in meta else [])
    out = [f"Command: `{meta['command']}`", ""] + [f"- {line}" for line in lines] + [""]
    out.append("| " + " | ".join(c[0] for c in cols) + " |")
    out.append("|" + "|".join("---" if c[1] == "<" else "---:" for c in cols) + "|")
    out += ["| " + " | ".join(c.replace("*", "\\*") for c in _cells(r, with_torch)) + " |"
            for r in rows]
    out += [""] + [f"- {n}" for n in NOTES]
    return "\n".join(out) + "\n"


BEGIN, END = "<!-- striate.bench results: begin -->", "<!-- striate.bench results: end -->"


def write_markdown(path, text):
    """Write the Markdown table to ``path``; if the file exists and has the
    BEGIN/END marker comments, replace only what is between them (so
    ``--markdown docs/benchmarks.md`` regenerates that page's results)."""
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    i, j = old.find(BEGIN), old.find(END)
    if 0 <= i < j:
        text = old[:i + len(BEGIN)] + "\n" + text + old[j:]
    with open(path, "w") as f:
        f.write(text)


def write_json(path, meta, rows):
    with open(path, "w") as f:
        json.dump({"meta": meta, "notes": NOTES, "rows": rows}, f, indent=1)


def require_matplotlib():
    """The pyplot module, or ImportError with the install hint."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("--plot needs matplotlib, which is not installed: "
                          "pip install 'striate[plot]' (or pip install matplotlib)") from e
    return plt


def plot(path, meta, rows, with_torch):
    """Bar chart per case and pass (auto's algorithm): PyTorch time / striate
    time when PyTorch ran, else GFLOP/s."""
    plt = require_matplotlib()
    key = "torch_ratio" if with_torch else "gflops"
    sel = [r for r in rows if (r["auto"] or r["algorithm"] is None) and r.get(key)]
    labels = [f"{r['case']} ({'fwd' if r['pass'] == 'forward' else 'bwd'})" for r in sel]
    values = [r[key] for r in sel]
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.22 * max(1, len(sel))))
    colors = ["tab:green" if not with_torch or v >= 1 else "tab:red" for v in values]
    ax.barh(range(len(sel)), values, color=colors)
    ax.set_yticks(range(len(sel)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    if with_torch:
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xlabel("PyTorch time / striate time (> 1: striate faster)")
    else:
        ax.set_xlabel("GFLOP/s")
    ax.set_title(f"striate {meta['striate']} | {meta['cpu']} | {meta['threads']} threads | "
                 f"peak {meta['peak_gflops']:.0f} GFLOP/s", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
