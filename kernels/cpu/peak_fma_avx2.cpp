// AVX2+FMA fp32 peak loop (benchmark only). Compiled with -mavx2 -mfma (this
// file only); called through peak_fma() when the CPU has AVX2 and FMA.
#include <immintrin.h>

#include <cstdint>

namespace striate::cpu {

// FMA latency 4 x 2 ports needs >= 8 independent chains; 12 accumulators
// plus a and b use 14 of the 16 ymm registers, so nothing spills.
// acc = acc * a + b converges to 1 (see peak_fma_avx512.cpp).
double peak_fma_avx2(int64_t iters) {
  constexpr int kChains = 12;
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  __m256 acc[kChains];
#pragma GCC unroll 12
  for (int r = 0; r < kChains; ++r) acc[r] = _mm256_set1_ps(0.5f + 0.01f * r);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int r = 0; r < kChains; ++r) acc[r] = _mm256_fmadd_ps(acc[r], a, b);
  }
  __m256 sum = acc[0];
#pragma GCC unroll 12
  for (int r = 1; r < kChains; ++r) sum = _mm256_add_ps(sum, acc[r]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  double total = 0;
  for (float v : lanes) total += v;
  return total;
}

// extern: a namespace-scope const would have internal linkage.
extern const int64_t peak_fma_avx2_flops_per_iter = 12 * 8 * 2;

}  // namespace striate::cpu
