// AVX2+FMA Winograd GEMM strip: 6x16 blocks (12 ymm accumulators + 2 B
// vectors + 1 broadcast of the 16 ymm registers), four per 12 x 32 strip.
// Compiled with -mavx2 -mfma (this file only).
#include <immintrin.h>

#include "conv2d_winograd_driver.h"

namespace striate::cpu {
namespace {

struct WinoMicroAvx2 : WinoGenericHoriz {
  // noinline, and the stores unrolled to constant indices: inlined into the
  // driver with a loop over a run-time row count, GCC kept the accumulator
  // arrays in memory and stored all 12 of them in every k iteration (the
  // same failure as the SGEMM microkernel, sgemm_avx2.cpp), which capped
  // the GEMM stage at half the FMA rate.
  __attribute__((noinline)) static void block(int64_t k, const float* __restrict a,
                                              const float* __restrict b, int64_t ldb,
                                              float* __restrict c, int64_t ldc, int rows) {
    __m256 c0[6], c1[6];
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
    for (int64_t kk = 0; kk < k; ++kk) {
      const __m256 b0 = _mm256_loadu_ps(b + kk * ldb), b1 = _mm256_loadu_ps(b + kk * ldb + 8);
#pragma GCC unroll 6
      for (int r = 0; r < 6; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + kk * kWinoPanelRows + r);
        c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
        c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      if (r < rows) {
        _mm256_storeu_ps(c + r * ldc, c0[r]);
        _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
      }
    }
  }
  static void strip(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                    int rows) {
    for (int r0 = 0; r0 < rows; r0 += 6)
      for (int q0 = 0; q0 < kWinoStrip; q0 += 16)
        block(k, a + r0, b + q0, ldb, c + r0 * ldc + q0, ldc, rows - r0 < 6 ? rows - r0 : 6);
  }
};

}  // namespace

const WinogradImpl winograd_avx2_impl = {"winograd_avx2", winograd_entry<WinoMicroAvx2>,
                                         wgrad_block_entry<WinoMicroAvx2>,
    filter_run, filter_grad_entry};

}  // namespace striate::cpu
