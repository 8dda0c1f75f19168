// Max-pool forward on one (image, channel) plane, compiled once per ISA level
// (pool2d.cpp: baseline; maxpool_avx2.cpp, maxpool_avx512.cpp). Same rules as
// eltwise_impl.h: anonymous namespace, builtins and intrinsics only, so no
// inline function built with AVX flags can be merged into baseline code.
//
// Separable: per output row, a vertical max over the window's valid input
// rows (contiguous, auto-vectorized) lands in a row buffer whose padding
// columns hold -inf, then a horizontal max over the buffer's taps. The buffer
// makes the horizontal pass branch-free (padded taps read -inf, the identity
// of max) and keeps the strided reads in L1. The max rule's result value does
// not depend on the order of its terms (ties are equal, any NaN wins), so
// this equals PyTorch's row-major scan, and a window entirely in the padding
// gives -inf.
#pragma once

#include <cstdint>

#include "striate/params.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace striate::cpu {
namespace {

// Row buffer capacity (floats; 16 KiB on each thread's stack).
constexpr int64_t kMaxPoolRowBuf = 4096;
// Slack past the row, kept at -inf: vector loads and full-width stores of the
// last block of a row may touch it.
constexpr int64_t kMaxPoolSlack = 64;

// Row buffer length (floats) the fast path needs: the padded reach of the
// windows, buffer index t being input column t - pad_w. -1 when it does not
// fit in kMaxPoolRowBuf.
inline int64_t maxpool_row_len(const Pool2dParams& p) {
  const int64_t reach = (p.w_out - 1) * p.stride_w + (p.kw - 1) * p.dil_w + 1;
  if (p.pad_w >= kMaxPoolRowBuf || reach > kMaxPoolRowBuf) return -1;
  return reach;
}

// PyTorch's max rule, value only: v replaces b iff v > b or v is NaN.
inline float mp_max(float b, float v) { return (v > b) | (v != v) ? v : b; }

#if defined(__AVX512F__)
inline __m512 mp_max16(__m512 b, __m512 v) {
  // vmaxps returns its second operand when either is NaN: v's NaN comes
  // through, b's is restored by the blend.
  return _mm512_mask_mov_ps(_mm512_max_ps(b, v), _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), b);
}

// 3 taps at stride 2, 16 outputs per step: even / odd columns split by
// two-source permutes, the third tap as the evens of the block shifted by 2.
inline void mp_hrow_s2k3(const float* buf, int64_t w_out, float* y) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t o = 0; o < w_out; o += 16) {
    const float* b = buf + 2 * o;
    const __m512 a0 = _mm512_loadu_ps(b), a1 = _mm512_loadu_ps(b + 16);
    const __m512 c0 = _mm512_loadu_ps(b + 2), c1 = _mm512_loadu_ps(b + 18);
    __m512 m = _mm512_permutex2var_ps(a0, ev, a1);
    m = mp_max16(m, _mm512_permutex2var_ps(a0, od, a1));
    m = mp_max16(m, _mm512_permutex2var_ps(c0, ev, c1));
    const int64_t left = w_out - o;
    const __mmask16 k = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    _mm512_mask_storeu_ps(y + o, k, m);
  }
}
#define STRIATE_MP_HROW_S2K3 1
#elif defined(__AVX2__)
inline __m256 mp_max8(__m256 b, __m256 v) {
  const __m256 m = _mm256_max_ps(b, v);  // v when either is NaN
  return _mm256_blendv_ps(m, b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}

// Evens of 16 floats starting at b, in order (shufps works per 128-bit lane,
// vpermpd puts the lanes' halves back in sequence).
inline __m256 mp_even8(const float* b) {
  const __m256 s = _mm256_shuffle_ps(_mm256_loadu_ps(b), _mm256_loadu_ps(b + 8), 0x88);
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xD8));
}

// The last block reads up to buf[2 * w_out + 17], within the slack, and
// stores only its real outputs.
inline void mp_hrow_s2k3(const float* buf, int64_t w_out, float* y) {
  for (int64_t o = 0; o < w_out; o += 8) {
    const float* b = buf + 2 * o;
    const __m256 odd = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(_mm256_loadu_ps(b), _mm256_loadu_ps(b + 8), 0xDD)),
        0xD8));
    __m256 m = mp_max8(mp_even8(b), odd);
    m = mp_max8(m, mp_even8(b + 2));
    if (o + 8 <= w_out) {
      _mm256_storeu_ps(y + o, m);
    } else {
      const __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(w_out - o)),
                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      _mm256_maskstore_ps(y + o, k, m);
    }
  }
}
#define STRIATE_MP_HROW_S2K3 1
#endif

// Horizontal pass, any geometry: tap-outer over contiguous output runs.
template <int S>
void mp_hrow(const Pool2dParams& p, const float* buf, float* y) {
  const int64_t sw = S ? S : p.stride_w;
  for (int64_t o = 0; o < p.w_out; ++o) y[o] = buf[o * sw];
  for (int64_t j = 1; j < p.kw; ++j) {
    const float* bj = buf + j * p.dil_w;
    for (int64_t o = 0; o < p.w_out; ++o) y[o] = mp_max(y[o], bj[o * sw]);
  }
}

// One plane; buf holds kMaxPoolRowBuf + kMaxPoolSlack floats and
// maxpool_row_len(p) >= 0.
void max_pool2d_plane_k(const Pool2dParams& p, const float* x, float* y, float* buf) {
  const int64_t len = maxpool_row_len(p);
  const float ninf = -__builtin_inff();
  // Input columns [0, c1) land at buf[pad_w + c]; the rest stays -inf.
  const int64_t c1 = p.w_in < len - p.pad_w ? p.w_in : len - p.pad_w;
  for (int64_t t = 0; t < len + kMaxPoolSlack; ++t) buf[t] = ninf;
  float* row = buf + p.pad_w;
  const bool s2k3 = p.stride_w == 2 && p.kw == 3 && p.dil_w == 1;
  for (int64_t oh = 0; oh < p.h_out; ++oh) {
    const int64_t hs = oh * p.stride_h - p.pad_h;
    // Valid taps i: 0 <= hs + i * dil_h < h_in.
    const int64_t i0 = hs >= 0 ? 0 : (-hs + p.dil_h - 1) / p.dil_h;
    int64_t i1 = hs < p.h_in ? (p.h_in - 1 - hs) / p.dil_h + 1 : 0;
    i1 = i1 < p.kh ? i1 : p.kh;
    if (i0 >= i1) {
      for (int64_t c = 0; c < c1; ++c) row[c] = ninf;
    } else {
      const float* x0 = x + (hs + i0 * p.dil_h) * p.w_in;
#if defined(__AVX512F__)
      // Masked-load tails: short rows (AlexNet's 13 and 27 columns) would
      // otherwise run mostly in the auto-vectorizer's scalar epilogue.
      int64_t c = 0;
      for (; c + 16 <= c1; c += 16) {
        __m512 m = _mm512_loadu_ps(x0 + c);
        for (int64_t i = i0 + 1; i < i1; ++i)
          m = mp_max16(m, _mm512_loadu_ps(x + (hs + i * p.dil_h) * p.w_in + c));
        _mm512_storeu_ps(row + c, m);
      }
      if (c < c1) {
        const __mmask16 k = __mmask16((1u << (c1 - c)) - 1);
        __m512 m = _mm512_maskz_loadu_ps(k, x0 + c);
        for (int64_t i = i0 + 1; i < i1; ++i)
          m = mp_max16(m, _mm512_maskz_loadu_ps(k, x + (hs + i * p.dil_h) * p.w_in + c));
        // Full-width store with -inf in the lanes past the row (buffer slack
        // or padding anyway): the horizontal pass reloads these floats at
        // once, and a masked store cannot forward to those loads.
        _mm512_storeu_ps(row + c, _mm512_mask_mov_ps(_mm512_set1_ps(ninf), k, m));
      }
#elif defined(__AVX2__)
      // As above with vmaskmovps tails and a blend to -inf for the full store.
      int64_t c = 0;
      for (; c + 8 <= c1; c += 8) {
        __m256 m = _mm256_loadu_ps(x0 + c);
        for (int64_t i = i0 + 1; i < i1; ++i)
          m = mp_max8(m, _mm256_loadu_ps(x + (hs + i * p.dil_h) * p.w_in + c));
        _mm256_storeu_ps(row + c, m);
      }
      if (c < c1) {
        const __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(c1 - c)),
                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 m = _mm256_maskload_ps(x0 + c, k);
        for (int64_t i = i0 + 1; i < i1; ++i)
          m = mp_max8(m, _mm256_maskload_ps(x + (hs + i * p.dil_h) * p.w_in + c, k));
        _mm256_storeu_ps(row + c, _mm256_blendv_ps(_mm256_set1_ps(ninf), m, _mm256_castsi256_ps(k)));
      }
#else
      for (int64_t c = 0; c < c1; ++c) row[c] = x0[c];
      for (int64_t i = i0 + 1; i < i1; ++i) {
        const float* xi = x + (hs + i * p.dil_h) * p.w_in;
        for (int64_t c = 0; c < c1; ++c) row[c] = mp_max(row[c], xi[c]);
      }
#endif
    }
    float* yr = y + oh * p.w_out;
#ifdef STRIATE_MP_HROW_S2K3
    if (s2k3) {
      mp_hrow_s2k3(buf, p.w_out, yr);
      continue;
    }
#endif
    if (p.stride_w == 1)
      mp_hrow<1>(p, buf, yr);
    else if (p.stride_w == 2)
      mp_hrow<2>(p, buf, yr);
    else
      mp_hrow<0>(p, buf, yr);
  }
  (void)s2k3;
}

}  // namespace
}  // namespace striate::cpu
