// AVX2 level of the small-batch linear (gemv_isa.h): 8 lanes, masked tail,
// 4 W rows x 2 x rows = 8 ymm accumulators (+2 x, 1 W of 16 registers).
#include <immintrin.h>

#include "gemv_isa.h"

namespace striate::cpu {
namespace {

struct V256 {
  using reg = __m256;
  static constexpr int L = 8, R = 4, X = 2;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg load_tail(const float* p, int n) {
    // Lanes < n get an all-ones mask (sign bit set), the rest read nothing.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    return _mm256_maskload_ps(p, mask);
  }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(reg v) {
    // Fixed tree: 8 -> 4 -> 2 -> 1.
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
};

}  // namespace

const GemvImpl gemv_avx2_impl = {"gemv_4x2_avx2", gemv_rows<V256>};

}  // namespace striate::cpu
