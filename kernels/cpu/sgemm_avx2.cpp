// AVX2+FMA SGEMM microkernel, 6x16: 12 ymm accumulators + 2 B vectors + 1
// broadcast fit the 16 ymm registers, and 12 FMAs per 2 loads keep both FMA
// pipes busy. Compiled with -mavx2 -mfma (this file only).
#include <immintrin.h>

#include "sgemm_driver.h"

namespace striate::cpu {
namespace {

// KC = 576: one slab for K = 576 (a 3x3 layer over 64 channels) instead of
// 512 + 64, and fewer passes over C than 256 (see sgemm_avx512.cpp); the A
// block, 96 x 576 (216 KB), stays in the 512 KB L2.
struct MicroAvx2 {
  static constexpr int MR = 6, NR = 16, KC = 576, MC = 96, NC = 1024;
  static constexpr bool kDirectC = true;
  // Packed A per thread: three MC x KC blocks, so that the small-M path
  // (all of A in one buffer) also takes M up to 288 at K = 576 -- 3x3
  // layers with 128 output channels: +9-12% at one thread on 128-192 x 576
  // x 6000-12544 (interleaved runs) over the shared-panel driver -- and
  // 256 rows at K = 1024 (ResNet-50's layer3 1x1 reduce, 256 x 1024 x 3136:
  // 96-115 -> 118-126 GFLOP/s at 2 threads, separate processes; the layer's
  // forward median 15.0 -> 13.7 ms interleaved in one process; the
  // Winograd weight gradients this also reroutes, 256-channel layers,
  // measured unchanged).
  static constexpr int64_t kApack = 3 * MC * KC;

  // One k step: 2 B vectors, 6 broadcasts of A, 12 FMAs.
  static inline void step(const float* __restrict a, const float* __restrict b, __m256* c0,
                          __m256* c1) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }

  // Rows r < mr of c (rows ldc apart) = [c +] [bias[r] +] product [, then
  // max(0, .)], per mode (kAccumulate, kRelu; bias may be null): the
  // driver's write-back of a tile, done from the accumulators so the tile never goes through a
  // scratch buffer (that copy was ~8% of a tall-skinny GEMM's profile). The
  // additions are write_tile's, in its order, so both paths round alike.
  //
  // noinline: inlined into the driver, GCC ran out of the 16 ymm registers
  // and kept one accumulator on the stack -- a store/reload in every k
  // iteration's dependency chain that held the whole SGEMM to ~40% of peak
  // (40 vs 98 GFLOP/s on one core, measured on the AVX2 machine). Compiled
  // on its own the loop keeps all 12 accumulators in registers.
  __attribute__((noinline)) static void run_c(int64_t kc, const float* __restrict a,
                                              const float* __restrict b, int64_t ldb,
                                              float* __restrict c, int64_t ldc, int64_t mr,
                                              const float* __restrict bias, int mode) {
    // The tile's C lines (a row may straddle two) are requested for writing
    // now, so they arrive during the k loop: stored cold at the end, each
    // row missed to DRAM with the store buffer full behind it (stalls ~10%
    // of a 64 x 256 x 50176 profile; prefetched, +7-9% on the tall-skinny
    // shapes at one thread, measured interleaved in one process).
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      if (r >= mr) break;
      __builtin_prefetch(c + r * ldc, 1);
      __builtin_prefetch(c + r * ldc + NR - 1, 1);
    }
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
    // Unrolled by 4: with the B tile streaming from L2 (kc = 576 makes it
    // 36 KB, over L1) the rolled loop ran at 72 GFLOP/s, unrolled at 86-88
    // (median of 300 interleaved runs, in-cache microbenchmark, one core).
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) step(a + (k + u) * MR, b + (k + u) * ldb, c0, c1);
    }
    for (; k < kc; ++k) step(a + k * MR, b + k * ldb, c0, c1);
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      if (r >= mr) break;
      float* row = c + r * ldc;
      __m256 v0 = c0[r], v1 = c1[r];
      if (mode & kAccumulate) {
        v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
        v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
      } else if (bias) {
        const __m256 br = _mm256_set1_ps(bias[r]);
        v0 = _mm256_add_ps(br, v0), v1 = _mm256_add_ps(br, v1);
      }
      // max(0, v) returns v when v is NaN (the second operand): NaN stays NaN.
      if (mode & kRelu) v0 = _mm256_max_ps(zero, v0), v1 = _mm256_max_ps(zero, v1);
      _mm256_storeu_ps(row, v0);
      _mm256_storeu_ps(row + 8, v1);
    }
  }
  static void run(int64_t kc, const float* a, const float* b, int64_t ldb, float* out) {
    run_c(kc, a, b, ldb, out, NR, MR, nullptr, 0);
  }

  // The left 8 columns of the tile (a column tail of at most 8: 512 x 4608
  // x 49 is 3 tiles + 1 column, and the full kernel spent a whole tile's
  // time on that column). Row r of out (NR apart) gets columns 0..7; the
  // same FMAs in the same k order as run_c, so the result is bitwise the
  // full kernel's. 6 accumulators: noinline for the reason run_c is.
  static constexpr bool kHalfTail = true;
  __attribute__((noinline)) static void run_half(int64_t kc, const float* __restrict a,
                                                 const float* __restrict b, int64_t ldb,
                                                 float* __restrict out) {
    __m256 c0[MR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) c0[r] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        const __m256 b0 = _mm256_loadu_ps(b + (k + u) * ldb);
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r)
          c0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + (k + u) * MR + r), b0, c0[r]);
      }
    }
    for (; k < kc; ++k) {
      const __m256 b0 = _mm256_loadu_ps(b + k * ldb);
#pragma GCC unroll 6
      for (int r = 0; r < MR; ++r)
        c0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + k * MR + r), b0, c0[r]);
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) _mm256_storeu_ps(out + r * NR, c0[r]);
  }
};

}  // namespace

using M256 = MicroAvx2;
const SgemmImpl sgemm_avx2_impl = {"sgemm_6x16_avx2", M256::MR, M256::NR, M256::KC, M256::MC,
                                   M256::NC, M256::kApack, gemm_entry<M256>};

}  // namespace striate::cpu
