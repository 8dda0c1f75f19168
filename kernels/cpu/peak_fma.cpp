// fp32 peak probe for the benchmark (python -m striate.bench): every thread
// runs independent multiply-add chains at one ISA level, and the FLOPs done
// over the wall time of the parallel region is the machine's attainable
// fp32 peak, the denominator of the benchmark's "% of peak" column.
// The portable baseline loop lives here; the AVX2 and AVX-512 loops are in
// their own translation units (peak_fma_avx2.cpp, peak_fma_avx512.cpp).
#include <chrono>

#include "striate/kernels_cpu.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace striate::cpu {

#ifdef STRIATE_HAVE_X86_ISA
double peak_fma_avx2(int64_t iters);
double peak_fma_avx512(int64_t iters);
extern const int64_t peak_fma_avx2_flops_per_iter;
extern const int64_t peak_fma_avx512_flops_per_iter;
#endif

namespace {

// Baseline x86-64 has no FMA: a multiply and a dependent add per chain,
// each 3-4 cycles of latency, so 12 chains keep both the multiply and the
// add ports busy. Without SSE2 the same loop on floats is left to the
// compiler's vectorizer.
constexpr int kBaseChains = 12;
#if defined(__SSE2__)
constexpr int64_t kBaseFlopsPerIter = kBaseChains * 4 * 2;
double peak_fma_baseline(int64_t iters) {
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-6f);
  __m128 acc[kBaseChains];
#pragma GCC unroll 12
  for (int r = 0; r < kBaseChains; ++r) acc[r] = _mm_set1_ps(0.5f + 0.01f * r);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int r = 0; r < kBaseChains; ++r) acc[r] = _mm_add_ps(_mm_mul_ps(acc[r], a), b);
  }
  alignas(16) float lanes[4];
  double total = 0;
  for (int r = 0; r < kBaseChains; ++r) {
    _mm_store_ps(lanes, acc[r]);
    total += double(lanes[0]) + lanes[1] + lanes[2] + lanes[3];
  }
  return total;
}
#else
constexpr int64_t kBaseFlopsPerIter = kBaseChains * 2;
double peak_fma_baseline(int64_t iters) {
  float acc[kBaseChains];
  for (int r = 0; r < kBaseChains; ++r) acc[r] = 0.5f + 0.01f * r;
  for (int64_t i = 0; i < iters; ++i)
    for (int r = 0; r < kBaseChains; ++r) acc[r] = acc[r] * 0.999999f + 1e-6f;
  double total = 0;
  for (float v : acc) total += v;
  return total;
}
#endif

// Keeps the loops' results observable so the compiler cannot drop them.
volatile double g_sink;

}  // namespace

PeakFmaResult peak_fma(int isa_level, int64_t iters) {
  double (*loop)(int64_t) = peak_fma_baseline;
  int64_t flops_per_iter = kBaseFlopsPerIter;
#ifdef STRIATE_HAVE_X86_ISA
  if (isa_level == 2) loop = peak_fma_avx512, flops_per_iter = peak_fma_avx512_flops_per_iter;
  if (isa_level == 1) loop = peak_fma_avx2, flops_per_iter = peak_fma_avx2_flops_per_iter;
#endif
  int threads = 1;
  double sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  // The sum only defeats dead-code elimination; its value (and so its
  // thread-count-dependent order) is never reported.
#pragma omp parallel reduction(+ : sink)
  {
    sink += loop(iters);
#ifdef _OPENMP
#pragma omp single nowait
    threads = omp_get_num_threads();
#endif
  }
  const auto t1 = std::chrono::steady_clock::now();
  g_sink = sink;
  PeakFmaResult r;
  r.threads = threads;
  r.flops = double(flops_per_iter) * double(iters) * threads;
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  return r;
}

}  // namespace striate::cpu
