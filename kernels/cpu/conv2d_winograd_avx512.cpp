// AVX-512 Winograd GEMM strip: up to 12 rows x 32 columns in 24 zmm
// accumulators (as sgemm_12x32_avx512), 24 FMAs per 2 B loads; the row
// count is rounded up to 4, 8 or 12 (the packed filter panel is zero there)
// so a short last panel does not pay for 12. Compiled with
// -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma (this file only).
#include <immintrin.h>

#include "conv2d_winograd_driver.h"

namespace striate::cpu {
namespace {

template <int R>
void strip_avx512(int64_t k, const float* __restrict a, const float* __restrict b, int64_t ldb,
                  float* __restrict c, int64_t ldc, int rows) {
  __m512 c0[R], c1[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m512 b0 = _mm512_loadu_ps(b + kk * ldb), b1 = _mm512_loadu_ps(b + kk * ldb + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[kk * kWinoPanelRows + r]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
    _mm512_storeu_ps(c + r * ldc, c0[r]);
    _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
  }
}

// The strided passes with explicit permutes: lane j of a 16-tile group
// reads s[M*j + k] and writes out[M*j + c]; GCC's own vectorization of these
// stride-M groups mixes zmm/ymm/xmm pieces and is several times slower.
// Same formulas as Wino<M> in conv2d_winograd_driver.h.
inline __m512i idx(int a0, int step, int last) {
  alignas(64) int v[16];
  for (int i = 0; i < 15; ++i) v[i] = a0 + step * i;
  v[15] = last;
  return _mm512_load_si512(v);
}

template <int M, int R>
void in_horiz_avx512(const float* s, float* const* v, int64_t n) {
  const __m512i ev = idx(0, 2, 30), od = idx(1, 2, 31);
  const __m512i sh0 = idx(1, 1, 16), sh1 = idx(1, 1, 17);  // next lane, then L[0] / L[1]
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const float* q = s + M * j0;
    if constexpr (M == 4) {
      const __m512 l0 = _mm512_loadu_ps(q), l1 = _mm512_loadu_ps(q + 16),
                   l2 = _mm512_loadu_ps(q + 32), l3 = _mm512_loadu_ps(q + 48),
                   l4 = _mm512_loadu_ps(q + 64);
      const __m512 e01 = _mm512_permutex2var_ps(l0, ev, l1), o01 = _mm512_permutex2var_ps(l0, od, l1);
      const __m512 e23 = _mm512_permutex2var_ps(l2, ev, l3), o23 = _mm512_permutex2var_ps(l2, od, l3);
      const __m512 x0 = _mm512_permutex2var_ps(e01, ev, e23), x2 = _mm512_permutex2var_ps(e01, od, e23);
      const __m512 x1 = _mm512_permutex2var_ps(o01, ev, o23), x3 = _mm512_permutex2var_ps(o01, od, o23);
      const __m512 x4 = _mm512_permutex2var_ps(x0, sh0, l4);
      if constexpr (R == 2) {  // F(4x4, 2x2): five points
        const __m512 c2 = _mm512_set1_ps(2.0f), c3 = _mm512_set1_ps(3.0f);
        const __m512 d = _mm512_sub_ps(x3, x1);
        _mm512_storeu_ps(v[0] + j0, _mm512_fmadd_ps(c2, _mm512_sub_ps(x0, x2), d));
        _mm512_storeu_ps(v[1] + j0, _mm512_sub_ps(d, _mm512_add_ps(x1, x2)));
        _mm512_storeu_ps(v[2] + j0, _mm512_fmadd_ps(c3, _mm512_sub_ps(x1, x2), d));
        _mm512_storeu_ps(v[3] + j0, d);
        _mm512_storeu_ps(v[4] + j0, _mm512_fnmadd_ps(c2, d, _mm512_sub_ps(x4, x2)));
        continue;
      }
      const __m512 x5 = _mm512_permutex2var_ps(x1, sh1, l4);
      const __m512 c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f), c2 = _mm512_set1_ps(2.0f);
      const __m512 s12 = _mm512_fnmadd_ps(c4, x2, x4), s34 = _mm512_fnmadd_ps(c4, x1, x3);
      const __m512 u42 = _mm512_sub_ps(x4, x2), u31 = _mm512_mul_ps(c2, _mm512_sub_ps(x3, x1));
      _mm512_storeu_ps(v[0] + j0, _mm512_add_ps(_mm512_fmsub_ps(c4, x0, _mm512_mul_ps(c5, x2)), x4));
      _mm512_storeu_ps(v[1] + j0, _mm512_add_ps(s12, s34));
      _mm512_storeu_ps(v[2] + j0, _mm512_sub_ps(s12, s34));
      _mm512_storeu_ps(v[3] + j0, _mm512_add_ps(u42, u31));
      _mm512_storeu_ps(v[4] + j0, _mm512_sub_ps(u42, u31));
      _mm512_storeu_ps(v[5] + j0, _mm512_add_ps(_mm512_fmsub_ps(c4, x1, _mm512_mul_ps(c5, x3)), x5));
    } else {
      const __m512 l0 = _mm512_loadu_ps(q), l1 = _mm512_loadu_ps(q + 16),
                   l2 = _mm512_loadu_ps(q + 32);
      const __m512 x0 = _mm512_permutex2var_ps(l0, ev, l1), x1 = _mm512_permutex2var_ps(l0, od, l1);
      const __m512 x2 = _mm512_permutex2var_ps(x0, sh0, l2), x3 = _mm512_permutex2var_ps(x1, sh1, l2);
      _mm512_storeu_ps(v[0] + j0, _mm512_sub_ps(x0, x2));
      _mm512_storeu_ps(v[1] + j0, _mm512_add_ps(x1, x2));
      _mm512_storeu_ps(v[2] + j0, _mm512_sub_ps(x2, x1));
      _mm512_storeu_ps(v[3] + j0, _mm512_sub_ps(x1, x3));
    }
  }
}

template <int M, int R>
void out_horiz_avx512(const float* z, float* out, int64_t n) {
  constexpr int64_t KS = kSegMax * M;  // z[k][r][j]: k stride
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const float* q = z + j0;
    float* d = out + M * j0;
    if constexpr (M == 4) {
      const __m512 x1 = _mm512_loadu_ps(q + KS), x2 = _mm512_loadu_ps(q + 2 * KS),
                   x3 = _mm512_loadu_ps(q + 3 * KS), x4 = _mm512_loadu_ps(q + 4 * KS);
      const __m512 a = _mm512_add_ps(x1, x2), b = _mm512_sub_ps(x1, x2);
      __m512 o0, o1, o2, o3;
      if constexpr (R == 2) {  // F(4x4, 2x2): x4 is the inf point
        o0 = _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(q), a), x3);
        o1 = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), x3, b);
        o2 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), x3, a);
        o3 = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), x3, b), x4);
      } else {
        const __m512 c = _mm512_add_ps(x3, x4), e = _mm512_sub_ps(x3, x4);
        o0 = _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(q), a), c);
        o1 = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), e, b);
        o2 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), c, a);
        o3 = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), e, b),
                           _mm512_loadu_ps(q + 5 * KS));
      }
      // (o0, o1) and (o2, o3) pairs, then 64-bit pairs of pairs: out[4j + c].
      const __m512d a01 = _mm512_castps_pd(_mm512_permutex2var_ps(o0, lo, o1));
      const __m512d b01 = _mm512_castps_pd(_mm512_permutex2var_ps(o0, hi, o1));
      const __m512d a23 = _mm512_castps_pd(_mm512_permutex2var_ps(o2, lo, o3));
      const __m512d b23 = _mm512_castps_pd(_mm512_permutex2var_ps(o2, hi, o3));
      const __m512i plo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
      const __m512i phi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
      _mm512_storeu_pd(reinterpret_cast<double*>(d), _mm512_permutex2var_pd(a01, plo, a23));
      _mm512_storeu_pd(reinterpret_cast<double*>(d + 16), _mm512_permutex2var_pd(a01, phi, a23));
      _mm512_storeu_pd(reinterpret_cast<double*>(d + 32), _mm512_permutex2var_pd(b01, plo, b23));
      _mm512_storeu_pd(reinterpret_cast<double*>(d + 48), _mm512_permutex2var_pd(b01, phi, b23));
    } else {
      const __m512 x1 = _mm512_loadu_ps(q + KS), x2 = _mm512_loadu_ps(q + 2 * KS);
      const __m512 o0 = _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(q), x1), x2);
      const __m512 o1 = _mm512_sub_ps(_mm512_sub_ps(x1, x2), _mm512_loadu_ps(q + 3 * KS));
      _mm512_storeu_ps(d, _mm512_permutex2var_ps(o0, lo, o1));
      _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(o0, hi, o1));
    }
  }
}

// Weight-gradient pass (dM = A dY A^T, horizontal): lane j reads the M
// gradient values s[M*j + c] of tile j; Wino<M, R>::gy_horiz's formulas.
// The portable loop was 6.5% of ResNet-18 layer4's backward.
template <int M, int R>
void gy_horiz_avx512(const float* s, float* const* v, int64_t n) {
  const __m512i ev = idx(0, 2, 30), od = idx(1, 2, 31);
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const float* q = s + M * j0;
    if constexpr (M == 4) {
      const __m512 l0 = _mm512_loadu_ps(q), l1 = _mm512_loadu_ps(q + 16),
                   l2 = _mm512_loadu_ps(q + 32), l3 = _mm512_loadu_ps(q + 48);
      const __m512 e01 = _mm512_permutex2var_ps(l0, ev, l1), o01 = _mm512_permutex2var_ps(l0, od, l1);
      const __m512 e23 = _mm512_permutex2var_ps(l2, ev, l3), o23 = _mm512_permutex2var_ps(l2, od, l3);
      const __m512 d0 = _mm512_permutex2var_ps(e01, ev, e23), d2 = _mm512_permutex2var_ps(e01, od, e23);
      const __m512 d1 = _mm512_permutex2var_ps(o01, ev, o23), d3 = _mm512_permutex2var_ps(o01, od, o23);
      const __m512 e = _mm512_add_ps(d0, d2), f = _mm512_add_ps(d1, d3);
      const __m512 g = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), d2, d0);
      const __m512 h = _mm512_fmadd_ps(_mm512_set1_ps(8.0f), d3, _mm512_mul_ps(_mm512_set1_ps(2.0f), d1));
      _mm512_storeu_ps(v[0] + j0, d0);
      _mm512_storeu_ps(v[1] + j0, _mm512_add_ps(e, f));
      _mm512_storeu_ps(v[2] + j0, _mm512_sub_ps(e, f));
      _mm512_storeu_ps(v[3] + j0, _mm512_add_ps(g, h));
      if constexpr (R == 2) {
        _mm512_storeu_ps(v[4] + j0, d3);
      } else {
        _mm512_storeu_ps(v[4] + j0, _mm512_sub_ps(g, h));
        _mm512_storeu_ps(v[5] + j0, d3);
      }
    } else {
      const __m512 l0 = _mm512_loadu_ps(q), l1 = _mm512_loadu_ps(q + 16);
      const __m512 d0 = _mm512_permutex2var_ps(l0, ev, l1), d1 = _mm512_permutex2var_ps(l0, od, l1);
      _mm512_storeu_ps(v[0] + j0, d0);
      _mm512_storeu_ps(v[1] + j0, _mm512_add_ps(d0, d1));
      _mm512_storeu_ps(v[2] + j0, _mm512_sub_ps(d0, d1));
      _mm512_storeu_ps(v[3] + j0, _mm512_sub_ps(_mm512_setzero_ps(), d1));
    }
  }
}

struct WinoMicroAvx512 {
  // F(2x2, 5x5) uses the portable passes (GCC's vectorization of them):
  // it has not been measured on an AVX-512 machine. F(4x4, 2x2) shares
  // F(4x4, 3x3)'s stride-4 permutes (the portable passes took 16% of a
  // ResNet-18 3x3/2 call).
  template <int M, int R>
  static void in_horiz(const float* s, float* const* v, int64_t n) {
    if constexpr (R != 5)
      in_horiz_avx512<M, R>(s, v, n);
    else
      Wino<M, R>::in_horiz(s, v, n);
  }
  template <int M, int R>
  static void out_horiz(const float* z, float* out, int64_t n) {
    if constexpr (R != 5)
      out_horiz_avx512<M, R>(z, out, n);
    else
      Wino<M, R>::out_horiz(z, out, n);
  }
  template <int M, int R>
  static void gy_horiz(const float* s, float* const* v, int64_t n) {
    if constexpr (R != 5)
      gy_horiz_avx512<M, R>(s, v, n);
    else
      Wino<M, R>::gy_horiz(s, v, n);
  }
  static void strip(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                    int rows) {
    if (rows > 8)
      strip_avx512<12>(k, a, b, ldb, c, ldc, rows);
    else if (rows > 4)
      strip_avx512<8>(k, a, b, ldb, c, ldc, rows);
    else
      strip_avx512<4>(k, a, b, ldb, c, ldc, rows);
  }
};

}  // namespace

const WinogradImpl winograd_avx512_impl = {"winograd_avx512", winograd_entry<WinoMicroAvx512>,
                                           wgrad_block_entry<WinoMicroAvx512>,
    filter_run, filter_grad_entry};

}  // namespace striate::cpu
