// AVX-512 fp32 peak loop (benchmark only). Compiled with -mavx512f... -mfma
// (this file only); called through peak_fma() when the CPU has AVX-512.
#include <immintrin.h>

#include <cstdint>

namespace striate::cpu {

// FMA latency is 4 cycles and up to 2 FMA ports issue per cycle, so at
// least 8 independent chains must be in flight; 16 leaves headroom for
// 5-6-cycle cores and still fits the 32 zmm registers with a and b.
// acc = acc * a + b with a just below 1 converges to b / (1 - a) = 1: no
// overflow, no denormals (which would stall some cores).
double peak_fma_avx512(int64_t iters) {
  constexpr int kChains = 16;
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  __m512 acc[kChains];
#pragma GCC unroll 16
  for (int r = 0; r < kChains; ++r) acc[r] = _mm512_set1_ps(0.5f + 0.01f * r);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int r = 0; r < kChains; ++r) acc[r] = _mm512_fmadd_ps(acc[r], a, b);
  }
  __m512 sum = acc[0];
#pragma GCC unroll 16
  for (int r = 1; r < kChains; ++r) sum = _mm512_add_ps(sum, acc[r]);
  return _mm512_reduce_add_ps(sum);
}

// extern: a namespace-scope const would have internal linkage.
extern const int64_t peak_fma_avx512_flops_per_iter = 16 * 16 * 2;

}  // namespace striate::cpu
