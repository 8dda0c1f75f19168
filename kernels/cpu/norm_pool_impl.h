// Batch-norm, LRN and max-pool-backward inner kernels, compiled once per ISA
// level after eltwise_impl.h (same rules: anonymous namespace, builtins only,
// loops written for the auto-vectorizer).
#pragma once

#include <cstdint>

#include "eltwise_impl.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace striate::cpu {
namespace {

// ---- batch norm --------------------------------------------------------------

double sum_k(int64_t len, const float* x) {
  double a[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int j = 0; j < kLanes; ++j) a[j] += x[i + j];
  for (; i < len; ++i) a[0] += x[i];
  return lane_total(a);
}

double sum_sq_dev_k(int64_t len, const float* x, double mean) {
  double a[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double d = x[i + j] - mean;
      a[j] += d * d;
    }
  for (; i < len; ++i) {
    const double d = x[i] - mean;
    a[0] += d * d;
  }
  return lane_total(a);
}

void sum_g_gx_k(int64_t len, const float* g, const float* x, double mean, double* sg,
                double* sgx) {
  double a[kLanes] = {}, b[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double gv = g[i + j];
      a[j] += gv;
      b[j] += gv * (x[i + j] - mean);
    }
  for (; i < len; ++i) {
    const double gv = g[i];
    a[0] += gv;
    b[0] += gv * (x[i] - mean);
  }
  *sg += lane_total(a);
  *sgx += lane_total(b);
}

// x - m_hi is exact when x is within a factor 2 of the mean and otherwise
// rounded relative to itself; subtracting the tiny m_lo then leaves an error
// of about 1 ulp of x - mean, as if the difference were taken in double.
void affine_k(int64_t len, const float* x, float m_hi, float m_lo, float scale, float shift,
              float* y) {
  for (int64_t i = 0; i < len; ++i) y[i] = ((x[i] - m_hi) - m_lo) * scale + shift;
}

void bn_backward_train_k(int64_t len, const float* g, const float* x, double a, double mg,
                         double mu, double k, float* gx) {
  for (int64_t i = 0; i < len; ++i)
    gx[i] = static_cast<float>(a * ((g[i] - mg) - (x[i] - mu) * k));
}

// ---- local response norm -----------------------------------------------------
//
// Each window sum of squares is formed from scratch in float over the window
// clipped to [0, C) (at most min(size, C) terms, fixed order), so Inf/NaN
// affect exactly their own windows and a large value leaving the window
// leaves nothing behind; float squares overflow where PyTorch's do.
// d^(-beta) = exp(-beta * log d) with the 1-ulp exp_f32/log_f32: within
// about 2 + |beta log d| ulp.

struct LrnConst {
  int64_t c, sp, lo, hi;
  float k, a, nbeta;
  explicit LrnConst(const LrnParams& p)
      : c(p.c), sp(p.spatial), lo(p.size / 2), hi((p.size - 1) / 2), k(p.k),
        a(static_cast<float>(static_cast<double>(p.alpha) / static_cast<double>(p.size))),
        nbeta(-p.beta) {}
};

// d of channel ch for len columns.
inline void lrn_denominator(const LrnConst& L, int64_t len, const float* x, int64_t ch,
                            float* d) {
  const int64_t c0 = imax(ch - L.lo, 0), c1 = imin(ch + L.hi, L.c - 1);
  for (int64_t j = 0; j < len; ++j) d[j] = 0.0f;
  for (int64_t cc = c0; cc <= c1; ++cc) {
    const float* xr = x + cc * L.sp;
    for (int64_t j = 0; j < len; ++j) d[j] += xr[j] * xr[j];
  }
  for (int64_t j = 0; j < len; ++j) d[j] = L.k + L.a * d[j];
}

void lrn_block_k(const LrnParams& p, int64_t len, const float* x, float* y) {
  const LrnConst L(p);
  float d[kLrnBlock];
  for (int64_t ch = 0; ch < L.c; ++ch) {
    lrn_denominator(L, len, x, ch, d);
    const float* xr = x + ch * L.sp;
    float* yr = y + ch * L.sp;
    for (int64_t j = 0; j < len; ++j) yr[j] = xr[j] * exp_f32(L.nbeta * log_f32(d[j]));
  }
}

// With p_c = d_c^(-beta) and t_c = g_c x_c p_c / d_c:
//   gx_j = g_j p_j - 2 alpha beta / size * x_j * T_j,  T_j = sum_{c = j-hi}^{j+lo} t_c
// (the transposed window). p and t of the channels in that window live in a
// ring of R = min(size, C) rows: channel j + lo enters as channel j is
// finished, and the row it overwrites belongs to channel j + lo - R <= j - hi - 1,
// no longer needed. T_j is again summed from scratch in a fixed order.
void lrn_backward_cols(const LrnConst& L, float coef, int64_t len, const float* gy,
                       const float* x, float* gx, float* pring, float* tring, int64_t R) {
  float d[kLrnBlock];
  auto enter = [&](int64_t q) {
    lrn_denominator(L, len, x, q, d);
    const float* xr = x + q * L.sp;
    const float* gr = gy + q * L.sp;
    float* pr = pring + (q % R) * len;
    float* tr = tring + (q % R) * len;
    for (int64_t j = 0; j < len; ++j) {
      const float pw = exp_f32(L.nbeta * log_f32(d[j]));
      pr[j] = pw;
      tr[j] = gr[j] * xr[j] * (pw / d[j]);
    }
  };
  for (int64_t q = 0; q < imin(L.lo, L.c); ++q) enter(q);
  float T[kLrnBlock];
  for (int64_t ch = 0; ch < L.c; ++ch) {
    if (ch + L.lo < L.c) enter(ch + L.lo);
    const int64_t c0 = imax(ch - L.hi, 0), c1 = imin(ch + L.lo, L.c - 1);
    for (int64_t j = 0; j < len; ++j) T[j] = 0.0f;
    for (int64_t cc = c0; cc <= c1; ++cc) {
      const float* tr = tring + (cc % R) * len;
      for (int64_t j = 0; j < len; ++j) T[j] += tr[j];
    }
    const float* pr = pring + (ch % R) * len;
    const float* xr = x + ch * L.sp;
    const float* gr = gy + ch * L.sp;
    float* outr = gx + ch * L.sp;
    for (int64_t j = 0; j < len; ++j) outr[j] = gr[j] * pr[j] - coef * xr[j] * T[j];
  }
}

void lrn_backward_block_k(const LrnParams& p, int64_t len, const float* gy, const float* x,
                          float* gx) {
  const LrnConst L(p);
  const float coef =
      static_cast<float>(2.0 * p.alpha * static_cast<double>(p.beta) / static_cast<double>(p.size));
  const int64_t R = imin(p.size, p.c);
  // Rings on the stack; columns per pass shrink as the window grows. Only a
  // window of more than kRing / 2 channels needs the heap.
  constexpr int64_t kRing = 8192;
  float stack_ring[kRing];
  float* ring = stack_ring;
  int64_t cols = imin(len, kRing / (2 * R));
  if (cols < 1) {
    cols = 1;
    ring = new float[2 * R];
  }
  for (int64_t j0 = 0; j0 < len; j0 += cols) {
    const int64_t n = imin(cols, len - j0);
    lrn_backward_cols(L, coef, n, gy + j0, x + j0, gx + j0, ring, ring + R * n, R);
  }
  if (ring != stack_ring) delete[] ring;
}

// ---- max-pool backward -----------------------------------------------------
//
// Recomputes each window's argmax with PyTorch's scan (row-major taps, the
// first valid element as the initial candidate, then `v > max || isnan(v)`:
// ties go to the first maximum, the last NaN wins) for kPoolChunk outputs of
// a row at once: taps outer, outputs inner, so the compare/select over
// outputs vectorizes (strided loads for stride 2 are shuffles). Every output
// still sees its taps in row-major order. The scatter then runs in output
// order; a window entirely in the padding routes nothing.

constexpr int64_t kPoolChunk = 64;

// Outputs o in [lo, hi) whose input index o * stride + off lies in [0, n_in).
inline void valid_outputs(int64_t off, int64_t stride, int64_t n_in, int64_t n_out,
                          int64_t* lo, int64_t* hi) {
  int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t h = (n_in - 1 - off) >= 0 ? (n_in - 1 - off) / stride + 1 : 0;
  h = imin(h, n_out);
  *lo = imin(l, h);
  *hi = h;
}

// Taps t < k whose input index o * stride + t * dil - pad lies in [0, n_in)
// for some output o < n_out (conv_common.h's taps_in_reach, restated with
// builtins for this per-ISA unit): a window may be 2^40 taps wide with 2^39
// padding, so the tap loops must skip the taps that only read padding.
inline void taps_in_reach(int64_t pad, int64_t dil, int64_t stride, int64_t n_in,
                          int64_t n_out, int64_t k, int64_t* lo, int64_t* hi) {
  const int64_t need = pad - (n_out - 1) * stride, top = n_in - 1 + pad;
  *hi = top < 0 ? 0 : imin(k, top / dil + 1);
  *lo = imin(need <= 0 ? 0 : (need + dil - 1) / dil, *hi);
}

// Fast path: each tap row is first copied into a padded row buffer (value
// and plane index, index -1 for padding), so the select loop runs over a
// fixed kPoolChunk outputs with no bounds and no scalar remainder; outputs
// past the row's end compute garbage that is never scattered.
constexpr int64_t kPoolBuf = 1024;

// S: compile-time stride_w (0 = read it from p); N: outputs per chunk, the
// smallest of 16/32/64 that holds a row, so short rows waste little.
template <int S, int N>
void max_pool2d_backward_plane_s(const Pool2dParams& p, const float* gy, const float* x,
                                 float* gx) {
  const int64_t sw = S ? S : p.stride_w;
  const int64_t span = (N - 1) * sw + (p.kw - 1) * p.dil_w + 1;
  for (int64_t i = 0; i < p.h_in * p.w_in; ++i) gx[i] = 0.0f;
  float best[kPoolChunk], vb[kPoolBuf];
  int32_t arg[kPoolChunk], ib[kPoolBuf];
  for (int64_t oh = 0; oh < p.h_out; ++oh) {
    const int64_t hs = oh * p.stride_h - p.pad_h;
    for (int64_t o0 = 0; o0 < p.w_out; o0 += N) {
      const int64_t o1 = imin(o0 + N, p.w_out);
      const int64_t c0 = o0 * sw - p.pad_w;  // input column of buffer slot 0
      for (int64_t q = 0; q < N; ++q) best[q] = -__builtin_inff(), arg[q] = -1;
      int64_t i0, i1;
      taps_in_reach(-hs, p.dil_h, 1, p.h_in, 1, p.kh, &i0, &i1);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t r = hs + i * p.dil_h;
        const float* xrow = x + r * p.w_in;
        // Every real output's taps inside this row: read x in place (outputs
        // past o1 may read into the next row, or compute garbage, never past
        // the plane, and are never scattered).
        const bool direct = c0 >= 0 && r * p.w_in + c0 + span <= p.h_in * p.w_in &&
                            c0 + (o1 - o0 - 1) * sw + (p.kw - 1) * p.dil_w < p.w_in;
        if (direct) {
          const int32_t base = static_cast<int32_t>(r * p.w_in + c0);
          for (int64_t j = 0; j < p.kw; ++j) {
            const float* vj = xrow + c0 + j * p.dil_w;
            const int32_t bj = base + static_cast<int32_t>(j * p.dil_w);
            for (int64_t o = 0; o < N; ++o) {
              const float v = vj[o * sw];
              const float b = best[o];
              const int32_t a = arg[o];
              const bool take = (v > b) | (v != v) | (a < 0);
              best[o] = take ? v : b;
              arg[o] = take ? bj + static_cast<int32_t>(o * sw) : a;
            }
          }
          continue;
        }
        for (int64_t t = 0; t < span; ++t) {
          const int64_t col = c0 + t;
          const bool in = col >= 0 && col < p.w_in;
          const int64_t cc = in ? col : 0;
          vb[t] = in ? xrow[cc] : -__builtin_inff();
          ib[t] = in ? static_cast<int32_t>(r * p.w_in + cc) : -1;
        }
        for (int64_t j = 0; j < p.kw; ++j) {
          const float* vj = vb + j * p.dil_w;
          const int32_t* ij = ib + j * p.dil_w;
          for (int64_t o = 0; o < N; ++o) {
            const float v = vj[o * sw];
            const int32_t id = ij[o * sw];
            // Bitwise, not short-circuit: every operand is loaded, nothing is masked.
            const float b = best[o];
            const int32_t a = arg[o];
            const bool take = (id >= 0) & ((v > b) | (v != v) | (a < 0));
            best[o] = take ? v : b;
            arg[o] = take ? id : a;
          }
        }
      }
      const float* gr = gy + oh * p.w_out;
      for (int64_t o = o0; o < o1; ++o)
        if (arg[o - o0] >= 0) gx[arg[o - o0]] += gr[o];
    }
  }
}

// Windows too wide for the row buffer: the same scan with per-tap ranges of
// valid outputs.
void max_pool2d_backward_plane_wide(const Pool2dParams& p, const float* gy, const float* x,
                                    float* gx) {
  const int64_t sw = p.stride_w;
  for (int64_t i = 0; i < p.h_in * p.w_in; ++i) gx[i] = 0.0f;
  float best[kPoolChunk];
  int32_t arg[kPoolChunk];
  for (int64_t oh = 0; oh < p.h_out; ++oh) {
    const int64_t hs = oh * p.stride_h - p.pad_h;
    for (int64_t o0 = 0; o0 < p.w_out; o0 += kPoolChunk) {
      const int64_t o1 = imin(o0 + kPoolChunk, p.w_out);
      for (int64_t q = 0; q < o1 - o0; ++q) best[q] = -__builtin_inff(), arg[q] = -1;
      int64_t i0, i1, j0, j1;
      taps_in_reach(-hs, p.dil_h, 1, p.h_in, 1, p.kh, &i0, &i1);
      taps_in_reach(p.pad_w, p.dil_w, sw, p.w_in, p.w_out, p.kw, &j0, &j1);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t r = hs + i * p.dil_h;
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t off = j * p.dil_w - p.pad_w;
          int64_t lo, hi;
          valid_outputs(off, sw, p.w_in, p.w_out, &lo, &hi);
          lo = imax(lo, o0);
          hi = imin(hi, o1);
          const float* xr = x + r * p.w_in + off;
          const int32_t base = static_cast<int32_t>(r * p.w_in + off);
          for (int64_t o = lo; o < hi; ++o) {
            const float v = xr[o * sw];
            const int64_t q = o - o0;
            const bool take = v > best[q] || v != v || arg[q] < 0;
            best[q] = take ? v : best[q];
            arg[q] = take ? base + static_cast<int32_t>(o * sw) : arg[q];
          }
        }
      }
      const float* gr = gy + oh * p.w_out;
      for (int64_t o = o0; o < o1; ++o)
        if (arg[o - o0] >= 0) gx[arg[o - o0]] += gr[o];
    }
  }
}

#if defined(__AVX512F__)
// 3 taps at stride 2 (AlexNet's and ResNet's 3x3/2 pools), 16 outputs per
// vector: a tap's values are the even / odd lanes of two loads (as the
// forward's mp_hrow_s2k3), its plane indices an iota, and the select is
// masked; the generic loops above read x at stride 2 and stayed scalar.
// AlexNet pool1 64@55 b16 backward: 3.6-4.0 -> 1.6-2.0 ms (PyTorch, which
// keeps the argmax from its forward, 0.5-0.6); ResNet-18's pool 64@112
// unchanged at 12-14 ms, bound by memory. Same rule, taps in the same order
// (rows, then columns), the gradient added in the same output order:
// bitwise the generic result. Columns outside the row (padding, or past a
// short row's end) are masked out of both the load and the select.
void max_pool2d_backward_plane_s2k3(const Pool2dParams& p, const float* gy, const float* x,
                                    float* gx) {
  for (int64_t i = 0; i < p.h_in * p.w_in; ++i) gx[i] = 0.0f;
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i w_in = _mm512_set1_epi32(static_cast<int32_t>(p.w_in));
  const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
  alignas(64) int32_t arg[16];
  for (int64_t oh = 0; oh < p.h_out; ++oh) {
    const int64_t hs = oh * p.stride_h - p.pad_h;
    int64_t i0, i1;
    taps_in_reach(-hs, p.dil_h, 1, p.h_in, 1, p.kh, &i0, &i1);
    for (int64_t o0 = 0; o0 < p.w_out; o0 += 16) {
      const int64_t n = imin(16, p.w_out - o0);
      const __mmask16 live = n == 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
      const int64_t cs = 2 * o0 - p.pad_w;  // input column of tap 0 of output o0
      // Column of tap j of lane q: cs + 2q + j; valid inside [0, w_in).
      const __m512i col0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(cs)),
                                            _mm512_slli_epi32(lane, 1));
      __mmask16 valid[3];
      __m512i colj[3];
      for (int j = 0; j < 3; ++j) {
        colj[j] = _mm512_add_epi32(col0, _mm512_set1_epi32(j));
        valid[j] = live & _mm512_cmpge_epi32_mask(colj[j], _mm512_setzero_si512()) &
                   _mm512_cmplt_epi32_mask(colj[j], w_in);
      }
      // Load masks of the 32 + 2 columns from cs: lane t is column cs + t.
      const __m512i c_lo = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(cs)), lane);
      __mmask16 lm[4];
      for (int h = 0; h < 4; ++h) {
        const __m512i c = _mm512_add_epi32(c_lo, _mm512_set1_epi32(h < 2 ? 16 * h : 16 * (h - 2) + 2));
        lm[h] = _mm512_cmpge_epi32_mask(c, _mm512_setzero_si512()) & _mm512_cmplt_epi32_mask(c, w_in);
      }
      const bool inside = cs >= 0 && cs + 34 <= p.w_in;  // all 34 columns in the row
      __m512 best = ninf;
      __m512i a = _mm512_set1_epi32(-1);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t r = hs + i * p.dil_h;
        const float* xr = x + r * p.w_in;
        // Masked lanes are not read, so the base may lie outside the row.
        const float* b0 = reinterpret_cast<const float*>(
            reinterpret_cast<uintptr_t>(xr) + static_cast<uintptr_t>(cs * 4));
        __m512 a0, a1, c0, c1;
        if (inside) {  // masked loads only at the row edges
          a0 = _mm512_loadu_ps(b0), a1 = _mm512_loadu_ps(b0 + 16);
          c0 = _mm512_loadu_ps(b0 + 2), c1 = _mm512_loadu_ps(b0 + 18);
        } else {
          a0 = _mm512_mask_loadu_ps(ninf, lm[0], b0), a1 = _mm512_mask_loadu_ps(ninf, lm[1], b0 + 16);
          c0 = _mm512_mask_loadu_ps(ninf, lm[2], b0 + 2), c1 = _mm512_mask_loadu_ps(ninf, lm[3], b0 + 18);
        }
        const __m512 v[3] = {_mm512_permutex2var_ps(a0, ev, a1), _mm512_permutex2var_ps(a0, od, a1),
                             _mm512_permutex2var_ps(c0, ev, c1)};
        const __m512i rowbase = _mm512_set1_epi32(static_cast<int32_t>(r * p.w_in));
        for (int j = 0; j < 3; ++j) {
          const __mmask16 take =
              valid[j] & (_mm512_cmp_ps_mask(v[j], best, _CMP_GT_OQ) |
                          _mm512_cmp_ps_mask(v[j], v[j], _CMP_UNORD_Q) |
                          _mm512_cmplt_epi32_mask(a, _mm512_setzero_si512()));
          best = _mm512_mask_mov_ps(best, take, v[j]);
          a = _mm512_mask_mov_epi32(a, take, _mm512_add_epi32(rowbase, colj[j]));
        }
      }
      _mm512_store_si512(arg, a);
      const float* gr = gy + oh * p.w_out + o0;
      for (int64_t q = 0; q < n; ++q)
        if (arg[q] >= 0) gx[arg[q]] += gr[q];
    }
  }
}
#endif

void max_pool2d_backward_plane_k(const Pool2dParams& p, const float* gy, const float* x,
                                 float* gx) {
#if defined(__AVX512F__)
  if (p.stride_w == 2 && p.kw == 3 && p.dil_w == 1)
    return max_pool2d_backward_plane_s2k3(p, gy, x, gx);
#endif
  if ((kPoolChunk - 1) * p.stride_w + (p.kw - 1) * p.dil_w + 1 > kPoolBuf)
    return max_pool2d_backward_plane_wide(p, gy, x, gx);
  const int n = p.w_out <= 16 ? 16 : (p.w_out <= 32 ? 32 : 64);
  const int s = p.stride_w == 1 ? 1 : (p.stride_w == 2 ? 2 : 0);
#define STRIATE_MP_CASE(S, N) \
  if (s == S && n == N) return max_pool2d_backward_plane_s<S, N>(p, gy, x, gx);
  STRIATE_MP_CASE(1, 16) STRIATE_MP_CASE(1, 32) STRIATE_MP_CASE(1, 64)
  STRIATE_MP_CASE(2, 16) STRIATE_MP_CASE(2, 32) STRIATE_MP_CASE(2, 64)
  STRIATE_MP_CASE(0, 16) STRIATE_MP_CASE(0, 32) STRIATE_MP_CASE(0, 64)
#undef STRIATE_MP_CASE
}

}  // namespace
}  // namespace striate::cpu

// The table of one ISA level, named eltwise_<level>_impl.
#define STRIATE_ELTWISE_TABLE(level)                                                         \
  const EltwiseImpl eltwise_##level##_impl = {                                              \
      #level, relu_k, relu_backward_k, leaky_relu_k, leaky_relu_backward_k, sigmoid_k,    \
      sigmoid_backward_k, tanh_k, tanh_backward_k, softmax_lanes_k, cross_entropy_row_k,   \
      cross_entropy_backward_row_k, sum_k, sum_sq_dev_k, sum_g_gx_k, affine_k,             \
      bn_backward_train_k, lrn_block_k, lrn_backward_block_k, max_pool2d_backward_plane_k};
