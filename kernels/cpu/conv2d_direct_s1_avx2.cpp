// AVX2+FMA level of the stride-1 direct convolution (conv2d_direct_s1.h):
// 8 lanes, 4 x 3 ymm accumulators + 3 input vectors + 1 broadcast.
// Compiled with -mavx2 -mfma (this file only).
#include <immintrin.h>

#include "conv2d_depthwise.h"
#include "conv2d_direct_s1.h"

namespace striate::cpu {
namespace {

struct V256 {
  using reg = __m256;
  static constexpr int L = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, reg r) { _mm256_storeu_ps(p, r); }
  static float sum(reg v) {
    // Fixed tree: 8 -> 4 -> 2 -> 1.
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
};

}  // namespace

const DirectS1Impl direct_s1_avx2_impl = {"direct_s1_4x24_avx2", direct_s1_fwd_strip<V256>,
                                          direct_s1_wgrad_pass<V256>, dw_plane};

}  // namespace striate::cpu
