// AVX-512 level of the small-batch linear (gemv_isa.h): 16 lanes, masked
// tail, 4 W rows x up to 4 x rows = 16 zmm accumulators (+4 x, 1 W of 32).
#include <immintrin.h>

#include "gemv_isa.h"

namespace striate::cpu {
namespace {

struct V512 {
  using reg = __m512;
  static constexpr int L = 16, R = 4, X = 4;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg load_tail(const float* p, int n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(reg v) {
    // Fixed tree: 16 -> 8 -> 4 -> 2 -> 1.
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
};

}  // namespace

const GemvImpl gemv_avx512_impl = {"gemv_4x4_avx512", gemv_rows<V512>};

}  // namespace striate::cpu
