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
  static constexpr int MR = 12, NR = 32, KC = 768, MC = 168, NC = 1024;
  static constexpr bool kDirectC = false;
  static constexpr int64_t kApack = MC * KC;
  static void run(int64_t kc, const float* __restrict a, const float* __restrict b,
                  int64_t ldb, float* __restrict out) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      const __m512 b0 = _mm512_loadu_ps(b + k * ldb), b1 = _mm512_loadu_ps(b + k * ldb + 16);
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r) {
        const __m512 av = _mm512_set1_ps(a[k * MR + r]);
        c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
        c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
      }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      _mm512_storeu_ps(out + r * NR, c0[r]);
      _mm512_storeu_ps(out + r * NR + 16, c1[r]);
    }
  }
};

}  // namespace

using M512 = MicroAvx512;
const SgemmImpl sgemm_avx512_impl = {"sgemm_12x32_avx512", M512::MR, M512::NR, M512::KC,
                                     M512::MC, M512::NC, M512::kApack, gemm_entry<M512>};

}  // namespace striate::cpu
