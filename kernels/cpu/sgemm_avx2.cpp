// AVX2+FMA SGEMM microkernel, 6x16: 12 ymm accumulators + 2 B vectors + 1
// broadcast fit the 16 ymm registers, and 12 FMAs per 2 loads keep both FMA
// pipes busy. Compiled with -mavx2 -mfma (this file only).
#include <immintrin.h>

#include "sgemm_driver.h"

namespace striate::cpu {
namespace {

// KC = 512: fewer passes over C than 256 (see sgemm_avx512.cpp), A block
// 96 x 512 (192 KB) in L2.
struct MicroAvx2 {
  static constexpr int MR = 6, NR = 16, KC = 512, MC = 96, NC = 1024;
  // noinline: inlined into the driver, GCC ran out of the 16 ymm registers
  // and kept one accumulator on the stack -- a store/reload in every k
  // iteration's dependency chain that held the whole SGEMM to ~40% of peak
  // (40 vs 98 GFLOP/s on one core, measured on the AVX2 machine). Compiled
  // on its own the loop keeps all 12 accumulators in registers.
  __attribute__((noinline)) static void run(int64_t kc, const float* __restrict a,
                                            const float* __restrict b, int64_t ldb,
                                            float* __restrict out) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      const __m256 b0 = _mm256_loadu_ps(b + k * ldb), b1 = _mm256_loadu_ps(b + k * ldb + 8);
#pragma GCC unroll 6
      for (int r = 0; r < MR; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + k * MR + r);
        c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
        c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(out + r * NR, c0[r]);
      _mm256_storeu_ps(out + r * NR + 8, c1[r]);
    }
  }
};

}  // namespace

using M256 = MicroAvx2;
const SgemmImpl sgemm_avx2_impl = {"sgemm_6x16_avx2", M256::MR, M256::NR, M256::KC, M256::MC,
                                   M256::NC, gemm_entry<M256>};

}  // namespace striate::cpu
