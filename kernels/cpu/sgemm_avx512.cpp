// AVX-512 SGEMM microkernel, 12x32: 24 zmm accumulators + 2 B vectors + 1
// broadcast of the 32 zmm registers; 24 FMAs per 2 B loads. Compiled with
// -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma (this file only).
#include <immintrin.h>

#include "sgemm_driver.h"

namespace striate::cpu {
namespace {

// Blocking for a 1 MB L2 per core: KC = 768 (measured +15% over 256 on
// 2000^3, one thread: every slab re-reads and re-writes the C tile, so a
// deeper slab means fewer passes over C), an MC x KC A block of 504 KB, and
// a 96 KB B tile that streams from L2 with the A tile.
struct MicroAvx512 {
  static constexpr int MR = 12, NR = 32, KC = 256, MC = 504, NC = 1024;
  static constexpr bool kDirectC = true;
  // Two MC x KC blocks per thread, so that the small-M path (all of A in
  // one buffer) also takes 256 rows at K = 1024 (ResNet-50's layer3 1x1
  // reduce, 256 x 1024 x 3136: 387-393 -> 409-414 GFLOP/s at 2 threads,
  // separate processes alternated), as the AVX2 kernel's 3 * MC * KC does.
  static constexpr int64_t kApack = 2 * MC * KC;

  // One k step over the first R rows: 2 B vectors, R broadcasts of A, 2R FMAs.
  template <int R>
  static inline void step(const float* __restrict a, const float* __restrict b, __m512* c0,
                          __m512* c1) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }

  // Rows r < mr of c (rows ldc apart) = [c +] [bias[r] +] product [, then
  // max(0, .)], per mode: the tile written from the accumulators, as
  // sgemm_avx2.cpp's run_c (additions in write_tile's order). Through the
  // scratch tile and write_tile, the 12 x 32 tile's copy and its scalar
  // epilogue loop were a fifth of the Winograd weight gradient's GEMM time
  // (ResNet-18 layer4 backward profile, AVX-512 machine). C lines are
  // requested for writing near the end of the k loop (below).
  // noinline for the reason run_c is in sgemm_avx2.cpp (the accumulators
  // stay in registers only when the loop is compiled on its own).
  // R < MR computes only the first R rows of the A tile (mr <= R): the last
  // row tile of 64 output channels is 4 rows of 12 (a third of that tile's
  // FMAs, 11% of the whole GEMM's, were on zero rows), of 128 channels 8.
  // Every row's FMAs are the same in the same order whatever R, so results
  // are bitwise those of the full kernel.
  template <int R>
  __attribute__((noinline)) static void run_rows(int64_t kc, const float* __restrict a,
                                                 const float* __restrict b, int64_t ldb,
                                                 float* __restrict c, int64_t ldc, int64_t mr,
                                                 const float* __restrict bias, int mode) {
    __m512 c0[R], c1[R];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
    // C's lines are requested kLateC steps before the end: requested at the
    // start, the streaming A and B panels evicted them again from L1 (and a
    // B panel larger than L2 from L2), and the final loads of an
    // accumulating slab waited on L3 or memory.
    constexpr int64_t kLateC = 48;
    const int64_t k_pf = kc > kLateC ? kc - kLateC : 0;
    for (int64_t k = 0; k < k_pf; ++k) step<R>(a + k * MR, b + k * ldb, c0, c1);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      if (r >= mr) break;
      __builtin_prefetch(c + r * ldc, 1);
      __builtin_prefetch(c + r * ldc + NR - 1, 1);
    }
    for (int64_t k = k_pf; k < kc; ++k) step<R>(a + k * MR, b + k * ldb, c0, c1);
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      if (r >= mr) break;
      float* row = c + r * ldc;
      __m512 v0 = c0[r], v1 = c1[r];
      if (mode & kAccumulate) {
        v0 = _mm512_add_ps(_mm512_loadu_ps(row), v0);
        v1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), v1);
      } else if (bias) {
        const __m512 br = _mm512_set1_ps(bias[r]);
        v0 = _mm512_add_ps(br, v0), v1 = _mm512_add_ps(br, v1);
      }
      // max(0, v) returns v when v is NaN (the second operand): NaN stays NaN.
      if (mode & kRelu) v0 = _mm512_max_ps(zero, v0), v1 = _mm512_max_ps(zero, v1);
      _mm512_storeu_ps(row, v0);
      _mm512_storeu_ps(row + 16, v1);
    }
  }
  static void run_c(int64_t kc, const float* a, const float* b, int64_t ldb, float* c,
                    int64_t ldc, int64_t mr, const float* bias, int mode) {
    if (mr <= 4)
      run_rows<4>(kc, a, b, ldb, c, ldc, mr, bias, mode);
    else if (mr <= 8)
      run_rows<8>(kc, a, b, ldb, c, ldc, mr, bias, mode);
    else
      run_rows<MR>(kc, a, b, ldb, c, ldc, mr, bias, mode);
  }
  static void run(int64_t kc, const float* a, const float* b, int64_t ldb, float* out) {
    run_c(kc, a, b, ldb, out, NR, MR, nullptr, 0);
  }

  // The left 16 columns of the tile (a column tail of at most 16), with
  // the same FMAs in the same k order as run_c: bitwise the full kernel's.
  static constexpr bool kHalfTail = true;
  __attribute__((noinline)) static void run_half(int64_t kc, const float* __restrict a,
                                                 const float* __restrict b, int64_t ldb,
                                                 float* __restrict out) {
    __m512 c0[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) c0[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      const __m512 b0 = _mm512_loadu_ps(b + k * ldb);
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r)
        c0[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[k * MR + r]), b0, c0[r]);
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) _mm512_storeu_ps(out + r * NR, c0[r]);
  }
};

}  // namespace

using M512 = MicroAvx512;
const SgemmImpl sgemm_avx512_impl = {"sgemm_12x32_avx512", M512::MR, M512::NR, M512::KC,
                                     M512::MC, M512::NC, M512::kApack, gemm_entry<M512>};

}  // namespace striate::cpu
