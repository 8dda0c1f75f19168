// AVX-512 level of the stride-1 direct convolution (conv2d_direct_s1.h):
// 16 lanes, 4 x 3 zmm accumulators + 3 input vectors + 1 broadcast -- the
// AVX2 block at twice the width, so one register block is the whole
// 48-output strip. Compiled with -mavx512f -mavx512bw -mavx512dq
// -mavx512vl -mfma (this file only).
#include <immintrin.h>

#include "conv2d_depthwise.h"
#include "conv2d_direct_s1.h"

namespace striate::cpu {
namespace {

struct V512 {
  using reg = __m512;
  static constexpr int L = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* p, reg r) { _mm512_storeu_ps(p, r); }
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

const DirectS1Impl direct_s1_avx512_impl = {"direct_s1_4x48_avx512", direct_s1_fwd_strip<V512>,
                                            direct_s1_wgrad_pass<V512>, dw_plane};

}  // namespace striate::cpu
