"""striate.ops.matmul against NumPy's BLAS (float32 @), side by side.

    python benchmarks/sgemm_vs_numpy.py [--threads 2] [--rounds 3]

Square 512-4096, the tall-skinny shapes im2col convolution produces for one
image, and the batched ones the benchmark suite's layers produce (M x K x N); each round times both libraries in turn (a pause and an untimed
call before each), the minimum counts.
NumPy's BLAS threads are capped through OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS / MKL_NUM_THREADS (unless already set), set before NumPy is
imported.
"""

import argparse
import os
import sys
import time

SHAPES = [
    (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
    (64, 576, 3136),     # ResNet layer1 3x3 forward, one image: O x CKK x HW
    (3136, 576, 64),     # its weight gradient's transpose
    (128, 1152, 784),    # layer2
    (256, 2304, 196),    # layer3
    (512, 4608, 49),     # layer4: few columns
    (256, 4096, 1000),   # a classifier
    # Batched im2col GEMMs (batch 16, the suite's shapes: O x CKK x N*HW):
    (128, 576, 12544),   # ResNet-18 layer2.0 3x3/2
    (64, 363, 48400),    # AlexNet conv1 11x11/4 (im2col)
    (96, 576, 12544),
    (256, 1024, 3136),   # ResNet-50 layer3 reduce 1x1
    (64, 256, 50176),    # ResNet-50 layer1 reduce 1x1
    (256, 64, 50176),    # ResNet-50 layer1 expand 1x1
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    import numpy as np

    import striate
    from striate import ops

    striate.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"{'M x K x N':>18} {'striate ms':>11} {'numpy ms':>9} {'GFLOP/s':>8} {'numpy/striate':>14}")
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        flops = 2.0 * m * k * n
        reps = max(1, int(2e9 / flops))
        best = {"striate": float("inf"), "numpy": float("inf")}
        fns = {"striate": lambda: ops.matmul(a, b), "numpy": lambda: a @ b}
        for f in fns.values():
            f()
        for _ in range(args.rounds):
            for name, f in fns.items():
                # Both libraries keep their worker threads spinning for a
                # while after a call; let the other's go idle first, and
                # leave the wake-up call out of the timing.
                time.sleep(0.3)
                f()
                t = time.perf_counter()
                for _ in range(reps):
                    f()
                best[name] = min(best[name], (time.perf_counter() - t) / reps)
        err = np.abs(ops.matmul(a, b) - a.astype(np.float64) @ b).max()
        assert err < 1e-3 * np.sqrt(k), (m, k, n, err)
        s, p = best["striate"] * 1e3, best["numpy"] * 1e3
        print(f"{f'{m}x{k}x{n}':>18} {s:11.3f} {p:9.3f} {flops / best['striate'] / 1e9:8.1f} {p / s:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
