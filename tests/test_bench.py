"""python -m striate.bench: the command line, its outputs and the fp32 peak probe.

Runs main(argv) in-process on the quick suite filtered to one or two cheap
cases, so the whole file takes seconds; one test runs the real `python -m`.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import striate
from striate import _C, ops, reference
from striate.bench import Settings, build_cases, main, peak_gflops, run_case

QUICK = ["--quick", "--no-progress"]
RELU = ["--filter", "^relu "]  # op "relu" only (not leaky_relu)
LENET = ["--filter", "lenet5 conv2"]


def _has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


@pytest.fixture(autouse=True)
def keep_threads():
    # --threads sets striate's and PyTorch's process-wide thread counts.
    n = striate.get_num_threads()
    torch = sys.modules.get("torch")
    n_torch = torch.get_num_threads() if torch else None
    yield
    striate.set_num_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n_torch or n)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_machine_info_and_rows(tmp_path, capsys):
    path = tmp_path / "out.json"
    code, out, _ = run(capsys, *QUICK, *RELU, "--json", str(path))
    assert code == 0
    data = json.loads(path.read_text())
    meta = data["meta"]
    for key in ("striate", "isa", "sgemm_kernel", "threads", "cpu", "numpy", "torch",
                "peak_gflops", "peak_gflops_end", "peak_gflops_1thread", "peak_isa", "date",
                "command"):
        assert key in meta, key
    assert meta["peak_gflops"] > 0 and meta["threads"] == striate.get_num_threads()
    assert meta["striate"] == striate.__version__ and meta["isa"] == _C.isa_selected()
    rows = data["rows"]
    assert [(r["op"], r["pass"]) for r in rows] == [("relu", "forward"), ("relu", "backward")]
    for r in rows:
        assert r["status"] == "ok" and r["ok"] is True and r["tol"] == 1e-4
        assert 0 <= r["rel_err"] <= 1e-4
        assert r["time_s"] > 0 and r["median_s"] >= r["time_s"] and r["runs"] >= 2
        assert r["ref_speedup"] > 0 and r["gflops"] is None
    assert out.count("relu") >= 2 and "GFLOP/s" in out and "fp32 peak" in out


def test_conv_rows_cover_every_algorithm(tmp_path, capsys):
    path = tmp_path / "out.json"
    code, out, _ = run(capsys, *QUICK, *LENET, "--no-torch", "--all-algorithms", "--json", str(path))
    assert code == 0
    data = json.loads(path.read_text())
    case = next(c for c in build_cases(quick=True) if "lenet5 conv2" in c.name)
    x, w, b = case.make()
    algs = ops.conv2d_algorithms(x, w, b, **case.kwargs)
    picked = ops.conv2d_algorithm(x, w, b, **case.kwargs)
    peak = data["meta"]["peak_gflops"]
    for p in ("forward", "backward"):
        rows = [r for r in data["rows"] if r["pass"] == p]
        assert sorted(r["algorithm"] for r in rows) == sorted(algs)
        assert [r["algorithm"] for r in rows if r["auto"]] == [picked]
        for r in rows:
            if r["status"].startswith("not implemented"):
                continue
            assert r["ok"] and r["rel_err"] <= r["tol"]
            assert r["gflops"] > 0 and r["pct_peak"] == pytest.approx(100 * r["gflops"] / peak)
            flops = 2.0 * case.batch * 16 * 10 * 10 * 6 * 25 * (2 if p == "backward" else 1)
            assert r["gflops"] == pytest.approx(flops / r["time_s"] / 1e9)
            assert "torch_time_s" not in r
    assert data["meta"]["torch"] is None and "torch ms" not in out
    assert picked + "*" in out  # auto's pick is starred


@pytest.mark.skipif(not _has("torch"), reason="PyTorch not installed")
def test_torch_column(tmp_path, capsys):
    path = tmp_path / "out.json"
    code, out, _ = run(capsys, *QUICK, *RELU, "--threads", "1", "--json", str(path))
    assert code == 0
    import torch
    assert torch.get_num_threads() == 1 == striate.get_num_threads()
    data = json.loads(path.read_text())
    assert data["meta"]["torch"] == torch.__version__ and "torch ms" in out
    for r in data["rows"]:
        assert r["torch_time_s"] > 0
        assert r["torch_ratio"] == pytest.approx(r["torch_time_s"] / r["time_s"])


def test_only_alternative_algorithms_are_skipped():
    # A skip threshold below any call time: only conv algorithms other than
    # auto's pick may be skipped; single-implementation ops are always timed.
    s = Settings(backward=False, skip_over=1e-9, skip_slower=0.0, min_rounds=1, max_rounds=1)
    by_name = {c.name: c for c in build_cases(quick=True)}
    relu = next(c for n, c in by_name.items() if n.startswith("resnet18 relu"))
    (row,) = run_case(relu, s)
    assert row["status"] == "ok" and row["time_s"] > 0
    conv = next(c for n, c in by_name.items() if n.startswith("lenet5 conv2"))
    rows = run_case(conv, s)
    assert [r["status"] for r in rows if r["auto"]] == ["ok"]
    assert all(r["status"].startswith("skipped") for r in rows if not r["auto"])
    assert all(r["time_s"] is None for r in rows if not r["auto"])


@pytest.mark.parametrize("corrupt", ["offset", "nan"])
def test_exit_status_1_when_off_tolerance(capsys, monkeypatch, corrupt):
    good = ops.relu

    def bad(x):
        y = good(x)
        if corrupt == "nan":
            y[0, 0, 0, 0] = np.nan
        else:
            y += 1e-3 * np.max(np.abs(y))  # 1e-3 relative: 10x over the tolerance
        return y

    monkeypatch.setattr(ops, "relu", bad)
    code, out, err = run(capsys, *QUICK, *RELU, "--no-torch", "--no-backward")
    assert code == 1
    assert "FAILED" in err and "relu" in err
    assert "!" in out  # the failing error is marked in the table


def test_raising_op_is_an_error_row(capsys, monkeypatch, tmp_path):
    def boom(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(ops, "relu_backward", boom)
    path = tmp_path / "out.json"
    code, out, err = run(capsys, *QUICK, *RELU, "--no-torch", "--json", str(path))
    assert code == 1 and "kernel exploded" in err and "ERROR" in out
    assert json.loads(path.read_text())["rows"][0]["status"].startswith("error")


def test_not_implemented_is_reported_not_failed(capsys, monkeypatch, tmp_path):
    def missing(*args, **kwargs):
        raise NotImplementedError("backward is planned")

    monkeypatch.setattr(ops, "relu_backward", missing)
    path = tmp_path / "out.json"
    code, out, _ = run(capsys, *QUICK, *RELU, "--no-torch", "--json", str(path))
    assert code == 0 and "n/i" in out
    bwd = [r for r in json.loads(path.read_text())["rows"] if r["pass"] == "backward"]
    assert bwd[0]["status"].startswith("not implemented") and bwd[0]["time_s"] is None


def test_markdown_table(tmp_path, capsys):
    path = tmp_path / "table.md"
    code, _, _ = run(capsys, *QUICK, *LENET, "--no-torch", "--no-backward", "--markdown", str(path))
    assert code == 0
    text = path.read_text()
    assert "| case | alg | pass | time ms | GFLOP/s | % peak | max err |" in text
    assert "fp32 peak" in text and "`python -m striate.bench --quick" in text
    rows = [l for l in text.splitlines() if l.startswith("| lenet5 conv2")]
    assert rows and all(l.count("|") == 10 for l in rows)
    assert sum("\\*" in l for l in rows) == 1  # auto's pick, escaped for Markdown


def test_markdown_replaces_only_the_marked_section(tmp_path, capsys):
    from striate.bench.report import BEGIN, END
    path = tmp_path / "page.md"
    path.write_text(f"# Title\n\nprose\n\n{BEGIN}\nold table\n{END}\n\nmore prose\n")
    code, _, _ = run(capsys, *QUICK, *RELU, "--no-torch", "--no-backward", "--markdown", str(path))
    assert code == 0
    text = path.read_text()
    assert text.startswith("# Title\n\nprose\n\n" + BEGIN + "\n")
    assert text.endswith(END + "\n\nmore prose\n")
    assert "old table" not in text and "| resnet18 relu 64@112" in text


def test_plot_needs_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(SystemExit) as e:
        main([*QUICK, *RELU, "--plot", str(tmp_path / "p.png")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "pip install" in err
    assert not (tmp_path / "p.png").exists()


@pytest.mark.skipif(not _has("matplotlib"), reason="matplotlib not installed")
def test_plot_writes_png(tmp_path, capsys):
    path = tmp_path / "p.png"
    code, _, _ = run(capsys, *QUICK, *RELU, "--no-torch", "--plot", str(path))
    assert code == 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "positive integer"),
    (["--threads", "two"], "positive integer"),
    (["--filter", "["], "invalid regular expression"),
    (["--filter", "no-such-case"], "matches no case"),
    (["--algorithm", "fft"], "unknown algorithm"),
    (["--algorithm", "im2col", "--filter", "^relu "], "conv2d cases only"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_options_fail_clearly(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_list_and_filter(capsys):
    code, out, _ = run(capsys, "--list")
    assert code == 0 and len(out.splitlines()) == len(build_cases())
    code, out, _ = run(capsys, "--list", "--filter", "conv2d resnet50")
    assert code == 0 and out.splitlines() and all("resnet50" in l for l in out.splitlines())


def test_peak_gflops():
    assert peak_gflops(trials=1, trial_time=0.01) > 0
    best = _C.isa_best_supported()
    levels = ["baseline", "avx2", "avx512"]
    for isa in levels[:levels.index(best) + 1]:
        flops, seconds, threads = _C.peak_fma(isa, 1000)
        assert threads == striate.get_num_threads()
        assert seconds > 0 and flops >= 1000 * threads * 8  # >= one 128-bit mul+add pair per iter
        assert peak_gflops(isa, trials=1, trial_time=0.01) > 0
    for isa in levels[levels.index(best) + 1:]:
        with pytest.raises(ValueError, match="not available"):
            _C.peak_fma(isa, 1000)
    with pytest.raises(ValueError, match="isa"):
        _C.peak_fma("sse9", 1000)
    with pytest.raises(ValueError, match="iters"):
        _C.peak_fma(best, 0)
    with pytest.raises(ValueError, match="trials"):
        peak_gflops(trials=0)


def test_cases_have_the_published_shapes():
    cases = {c.name: c for c in build_cases()}
    assert len(cases) == len(build_cases())

    def find(prefix):
        (case,) = [c for n, c in cases.items() if n.startswith(prefix)]
        return case

    for prefix, w_shape, hw, kwargs in [
        ("lenet5 conv1 ", (6, 1, 5, 5), 32, dict(stride=1, padding=0, groups=1)),
        ("lenet5 conv2 ", (16, 6, 5, 5), 14, dict(stride=1, padding=0, groups=1)),
        ("alexnet conv1 ", (64, 3, 11, 11), 224, dict(stride=4, padding=2, groups=1)),
        ("alexnet conv2 ", (192, 64, 5, 5), 27, dict(stride=1, padding=2, groups=1)),
        ("vgg16 conv1_2 ", (64, 64, 3, 3), 224, dict(stride=1, padding=1, groups=1)),
        ("vgg16 conv5_x ", (512, 512, 3, 3), 14, dict(stride=1, padding=1, groups=1)),
        ("resnet18 conv1 ", (64, 3, 7, 7), 224, dict(stride=2, padding=3, groups=1)),
        ("resnet50 layer4 expand ", (2048, 512, 1, 1), 7, dict(stride=1, padding=0, groups=1)),
        ("mobilenet dw ", (128, 1, 3, 3), 56, dict(stride=1, padding=1, groups=128)),
    ]:
        case = find(prefix)
        x, w, b = case.make()
        assert w.shape == w_shape and x.shape[2:] == (hw, hw) and x.shape[0] == case.batch
        assert case.kwargs == kwargs and b.shape == (w_shape[0],)
        s, p = kwargs["stride"], kwargs["padding"]
        h_out = reference.conv2d_output_size(hw, w_shape[2], s, p, p, 1)
        outputs = case.batch * w_shape[0] * h_out * h_out
        assert case.flops == 2.0 * outputs * np.prod(w_shape[1:])  # 2 * outputs * fan-in
    for c in cases.values():
        assert hasattr(ops, c.op) and hasattr(ops, c.op + "_backward"), c.op
        assert hasattr(reference, c.op) and hasattr(reference, c.op + "_backward"), c.op
        assert 1 <= (c.check_n or c.batch) <= c.batch
    ops_covered = {c.op for c in cases.values()}
    for op in ("conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm",
               "local_response_norm", "relu", "sigmoid", "tanh", "softmax", "linear",
               "cross_entropy", "matmul"):
        assert op in ops_covered, op



def test_python_m_entry_point(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-m", "striate.bench", *QUICK, *RELU, "--no-torch"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "relu" in proc.stdout and "fp32 peak" in proc.stdout
