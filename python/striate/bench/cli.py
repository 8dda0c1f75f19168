"""The command line: ``python -m striate.bench [options]``."""

import argparse
import re
import shlex
import sys
import time

from .. import _C, get_num_threads, set_num_threads
from . import report
from .cases import build_cases
from .peak import peak_gflops
from .runner import Settings, run_case

ALGORITHMS = ("auto", "direct", "im2col", "winograd_f2", "winograd_f4")

DESCRIPTION = """Time every op of the classic-CNN layer suite (LeNet-5, AlexNet, VGG-16,
ResNet-18/50, MobileNet depthwise; pooling, normalization, activations,
softmax, linear, loss, GEMM), check it against the float64 NumPy reference,
and compare with PyTorch when it is installed. Exit status 1 when a result is
off by more than its tolerance (1e-4 relative; Winograd 1e-3)."""


def _positive_int(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {n}")
    return n


def _algorithms(text):
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in names if a not in ALGORITHMS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown algorithm {', '.join(bad) or repr(text)}; choose from {', '.join(ALGORITHMS)}")
    return names


def parser():
    p = argparse.ArgumentParser(prog="python -m striate.bench", description=DESCRIPTION)
    p.add_argument("--quick", action="store_true",
                   help="smaller batches, fewer VGG layers and repeats (about a minute)")
    p.add_argument("--filter", metavar="PATTERN", default="",
                   help="only cases whose 'op name' matches this regular expression "
                        "(case-insensitive), e.g. 'conv2d resnet', 'pool', '^relu'")
    p.add_argument("--backward", action=argparse.BooleanOptionalAction, default=True,
                   help="time and check the backward pass too (default: yes)")
    p.add_argument("--algorithm", metavar="A[,B]", type=_algorithms,
                   help=f"conv2d algorithms to run, from {', '.join(ALGORITHMS)} "
                        "(default: auto and every other applicable one)")
    p.add_argument("--all-algorithms", action="store_true",
                   help="also time the algorithms estimated (from the reference-check "
                        "call) to be over 4x slower than auto's pick and over 0.1 s per call, "
                        "or over 1 s, e.g. direct on VGG; by default they are checked but "
                        "not timed")
    p.add_argument("--threads", metavar="N", type=_positive_int,
                   help="threads for striate and PyTorch (default: striate's default, all cores)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    p.add_argument("--json", metavar="PATH", help="write machine info and all rows as JSON")
    p.add_argument("--markdown", metavar="PATH",
                   help="write the header and table as Markdown; in a file that has the "
                        "results marker comments (docs/benchmarks.md) only that part is replaced")
    p.add_argument("--plot", metavar="PATH",
                   help="write a PNG bar chart: PyTorch time / striate time per case "
                        "(GFLOP/s without PyTorch); needs matplotlib (pip install 'striate[plot]')")
    p.add_argument("--no-progress", action="store_true", help="no progress display on stderr")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    return p


class Progress:
    """tqdm on a terminal when installed; else a counter on stderr."""

    def __init__(self, total, enabled):
        self.total, self.done, self.start, self.bar = total, 0, time.perf_counter(), None
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        if enabled and self.tty:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, unit="case", file=sys.stderr, leave=False)
            except ImportError:
                pass

    def begin(self, name):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description_str(name[:40])
        else:
            msg = f"[{self.done + 1}/{self.total} {time.perf_counter() - self.start:.0f}s] {name}"
            print(f"\r{msg[:100]:<100}" if self.tty else msg, end="" if self.tty else "\n",
                  file=sys.stderr, flush=True)

    def print(self, line):
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            if self.enabled and self.tty:
                print(f"\r{'':<100}\r", end="", file=sys.stderr, flush=True)
            print(line, flush=True)

    def end(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _error_row(case, e):
    return dict(case=case.name, op=case.op, algorithm=None, auto=False, status=f"error: {e!r}",
                ok=False, batch=case.batch, check_n=case.check_n or case.batch, time_s=None,
                rel_err=None, tol=None, gflops=None, pct_peak=None, ref_speedup=None,
                **{"pass": "forward"})


def _select_cases(ap, args):
    try:
        pattern = re.compile(args.filter, re.IGNORECASE)
    except re.error as e:
        ap.error(f"--filter: invalid regular expression {args.filter!r}: {e}")
    cases = [c for c in build_cases(args.quick) if pattern.search(c.full_name)]
    if not cases:
        ap.error(f"--filter {args.filter!r} matches no case (--list shows them)")
    if args.algorithm:
        cases = [c for c in cases if c.is_conv()]
        if not cases:
            ap.error("--algorithm applies to conv2d cases only, and --filter left none")
    return cases


def _import_torch(args):
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


def _settings(args, torch):
    s = Settings(backward=args.backward, algorithms=args.algorithm, torch=torch)
    if args.quick:
        s.min_rounds, s.max_rounds, s.min_time = 2, 5, 0.05
        s.skip_over, s.skip_slower, s.skip_always = 0.02, 2.0, 0.25
    if args.all_algorithms:
        s.skip_over = 0
    return s


def _report_failures(rows):
    bad = [r for r in rows if not r.get("ok", True)]
    if bad:
        print(f"FAILED: {len(bad)} row(s) off by more than their tolerance or raising:",
              file=sys.stderr)
        for r in bad:
            why = r["status"] if r["status"].startswith("error") else \
                f"max err {r['rel_err']:.2e} > {r['tol']:.0e}"
            print(f"  {r['case']} [{r['algorithm'] or '-'}] {r['pass']}: {why}", file=sys.stderr)
    return bool(bad)


def main(argv=None):
    """Run the suite; returns the exit status (1: a result off tolerance or raising)."""
    ap = parser()
    args = ap.parse_args(argv)
    cases = _select_cases(ap, args)
    if args.list:
        for c in cases:
            print(f"{c.op:<22} {c.name}")
        return 0
    if args.plot:
        try:
            report.require_matplotlib()
        except ImportError as e:
            ap.error(str(e))

    torch = _import_torch(args)
    if args.threads:
        set_num_threads(args.threads)
    threads = get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    settings = _settings(args, torch)
    peak_args = dict(trials=3, trial_time=0.02) if args.quick else {}
    peak_isa = _C.isa_best_supported()
    meta = report.machine_info(threads, torch, peak_gflops(peak_isa, **peak_args), peak_isa)
    # One core's peak too: all-thread peak / threads well below it means
    # other processes hold the cores (every parallel region will suffer).
    set_num_threads(1)
    meta["peak_gflops_1thread"] = peak_gflops(peak_isa, **peak_args)
    set_num_threads(threads)
    with_torch = torch is not None

    for line in report.header_lines(meta) + report.text_header(with_torch):
        print(line)
    progress = Progress(len(cases), not args.no_progress)
    rows = []
    for case in cases:
        progress.begin(case.name)
        try:
            case_rows = run_case(case, settings, meta["peak_gflops"])
        except Exception as e:  # one broken op must not hide the others' results
            case_rows = [_error_row(case, e)]
        for r in case_rows:
            progress.print(report.text_row(r, with_torch))
        rows += case_rows
        progress.end()
    progress.close()
    meta["peak_gflops_end"] = peak_gflops(peak_isa, **peak_args)
    for line in report.peak_check_lines(meta) + report.NOTES:
        print(line)

    words = sys.argv[1:] if argv is None else argv
    meta["command"] = " ".join(["python -m striate.bench"] + [shlex.quote(a) for a in words])
    if args.json:
        report.write_json(args.json, meta, rows)
    if args.markdown:
        report.write_markdown(args.markdown, report.markdown(meta, rows, with_torch))
    if args.plot:
        report.plot(args.plot, meta, rows, with_torch)
    return 1 if _report_failures(rows) else 0
