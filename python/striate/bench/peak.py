"""This machine's fp32 peak, measured with striate's multiply-add loop.

The loop (kernels/cpu/peak_fma*.cpp) keeps independent FMA chains in flight
on every thread -- 16 zmm accumulators for AVX-512, 12 ymm for AVX2, enough
to cover 2 FMA ports x 4-5 cycles of latency -- so it runs at the core's FMA
throughput; the best of a few short trials is the peak the "% peak" column
divides by. It counts what the cores sustain at their current clock, which
is the honest denominator on a turbo or shared machine (a datasheet peak
would be higher).
"""

from .. import _C


def peak_gflops(isa=None, trials=5, trial_time=0.1):
    """fp32 GFLOP/s of the FMA loop at ``isa`` ("baseline", "avx2", "avx512";
    default: the best this CPU supports) on striate's thread count
    (:func:`striate.set_num_threads`); the best of ``trials`` runs of about
    ``trial_time`` seconds each."""
    if isa is None:
        isa = _C.isa_best_supported()
    if trials < 1 or not trial_time > 0:
        raise ValueError(f"peak_gflops: need trials >= 1 and trial_time > 0, got {trials}, {trial_time}")
    # Grow the iteration count until one run lasts trial_time: short runs
    # are dominated by waking the OpenMP threads, not by the FMAs.
    iters = 1 << 12
    while True:
        flops, seconds, _ = _C.peak_fma(isa, iters)
        if seconds >= trial_time or iters >= 1 << 36:
            break
        iters *= 2 if seconds >= trial_time / 4 else 8
    best = flops / seconds
    for _ in range(trials - 1):
        flops, seconds, _ = _C.peak_fma(isa, iters)
        best = max(best, flops / seconds)
    return best / 1e9
