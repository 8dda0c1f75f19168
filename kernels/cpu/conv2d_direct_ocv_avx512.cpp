// AVX-512 row kernel of the output-channel-vectorized direct convolution
// (conv2d_direct_ocv.h). Compiled with -mavx512f -mavx512bw -mavx512dq
// -mavx512vl -mfma (this file only).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>

#include "conv2d_direct_ocv.h"

namespace striate::cpu {
namespace {

constexpr int kAcc = 28;  // accumulators: 32 zmm - 2 weight vectors - 2 spare
constexpr int kMaxPB = 14;

// out[r][q][v] = sum over taps of x(r, q) * w[v]: the tile's reduction in
// registers, then stored to t[(r*16 + q)*32 + v*16 + lane] for the transpose.
// The broadcast x(r, q) is the FMA's {1to16} memory operand, so the block
// needs no register for it; SW (the stride) makes every column's offset a
// constant displacement.
template <int R, int PB, int OCV, int SW>
void tile(const DirectOcvRows& a, const float* x, float* t) {
  static_assert(R * PB * OCV <= kAcc && PB <= kMaxPB, "register block");
  __m512 acc[R][PB][OCV];
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 14
    for (int q = 0; q < PB; ++q)
#pragma GCC unroll 2
      for (int v = 0; v < OCV; ++v) acc[r][q][v] = _mm512_setzero_ps();
  const float* w = a.w;
  const int64_t rs = a.x_rs;
  // One tap: OCV weight vectors times R*PB broadcasts.
  const auto step = [&](const float* xp, const float* wk) {
    __m512 wv[OCV];
#pragma GCC unroll 2
    for (int v = 0; v < OCV; ++v) wv[v] = _mm512_loadu_ps(wk + v * kOcvLanes);
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 14
      for (int q = 0; q < PB; ++q) {
        const __m512 b = _mm512_set1_ps(xp[r * rs + q * SW]);
#pragma GCC unroll 2
        for (int v = 0; v < OCV; ++v) acc[r][q][v] = _mm512_fmadd_ps(b, wv[v], acc[r][q][v]);
      }
  };
  OcvPrefetch* const pf = a.pf;
  if (a.kh == 1 && a.kw == 1) {  // 1x1 layers: the reduction is a single loop
    for (int64_t c = 0; c < a.c_in; ++c) {
      if (pf) pf->issue();
      step(x + c * a.x_cs, w + c * OCV * kOcvLanes);
    }
  } else {
    for (int64_t c = 0; c < a.c_in; ++c) {
      if (pf) pf->issue();
      const float* xc = x + c * a.x_cs;
      for (int64_t i = 0; i < a.kh; ++i) {
        const float* xr = xc + i * a.x_dh;
        for (int64_t j = 0; j < a.kw; ++j, w += OCV * kOcvLanes) step(xr + j * a.x_dw, w);
      }
    }
  }
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 14
    for (int q = 0; q < PB; ++q)
#pragma GCC unroll 2
      for (int v = 0; v < OCV; ++v)
        _mm512_store_ps(t + (r * 16 + q) * kOcvBlock + v * kOcvLanes, acc[r][q][v]);
}

// In-place 16x16 transpose: on return r[l] holds element l of every input row.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 4; ++i) {
      t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
      t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
  }
}

// Writes the tile's pb columns of R rows at column col: t's row q holds
// pixel q's channels, so a transpose gives one channel's pixels per vector.
// Rows q >= pb of t are stale and land in lanes the mask drops.
void store_tile(const DirectOcvRows& a, int R, int pb, const float* t, int64_t col) {
  const __mmask16 m = static_cast<__mmask16>((1u << pb) - 1);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < a.ocv; ++v) {
      const int64_t nl = std::min<int64_t>(kOcvLanes, a.oc_valid - v * kOcvLanes);
      if (nl <= 0) break;
      __m512 rows[16];
      for (int q = 0; q < 16; ++q) rows[q] = _mm512_load_ps(t + (r * 16 + q) * kOcvBlock + v * kOcvLanes);
      transpose16(rows);
      float* y = a.y + r * a.y_rs + col + v * kOcvLanes * a.y_cs;
      for (int64_t l = 0; l < nl; ++l) {
        __m512 o = rows[l];
        if (a.bias) o = _mm512_add_ps(o, _mm512_set1_ps(a.bias[v * kOcvLanes + l]));
        // vmaxps returns its second operand when either is NaN: o second
        // keeps NaN (torch's relu), as the SGEMM epilogue.
        if (a.relu) o = _mm512_max_ps(_mm512_setzero_ps(), o);
        _mm512_mask_storeu_ps(y + l * a.y_cs, m, o);
      }
    }
}

using TileFn = void (*)(const DirectOcvRows&, const float*, float*);

// Table of tile<R, PB, OCV, SW> indexed [R-1][OCV-1][SW-1][PB-1]; blocks
// over the accumulator budget are never chosen and stay null.
template <int R, int OCV, int SW, int... PB>
constexpr std::array<TileFn, kMaxPB> row_of(std::integer_sequence<int, PB...>) {
  return {{((R * (PB + 1) * OCV <= kAcc) ? &tile<R, (R * (PB + 1) * OCV <= kAcc ? PB + 1 : 1), OCV, SW>
                                          : nullptr)...}};
}
template <int R, int OCV, int SW>
constexpr std::array<TileFn, kMaxPB> row_of() {
  return row_of<R, OCV, SW>(std::make_integer_sequence<int, kMaxPB>{});
}
using TileRow = std::array<TileFn, kMaxPB>;
const TileRow kTiles[2][2][2] = {
    {{row_of<1, 1, 1>(), row_of<1, 1, 2>()}, {row_of<1, 2, 1>(), row_of<1, 2, 2>()}},
    {{row_of<2, 1, 1>(), row_of<2, 1, 2>()}, {row_of<2, 2, 1>(), row_of<2, 2, 2>()}},
};

}  // namespace

void direct_ocv_pack_avx512(const float* w, int64_t k, int64_t valid, int ocv, float* dst) {
  // 16 output channels x 16 taps per step: rows l of w are transposed into
  // dst[tap][lane]; channels past `valid` and taps past k load as zeros.
  const int64_t width = ocv * kOcvLanes;
  for (int v = 0; v < ocv; ++v)
    for (int64_t k0 = 0; k0 < k; k0 += 16) {
      const int64_t nk = std::min<int64_t>(16, k - k0);
      const __mmask16 m = static_cast<__mmask16>((1u << nk) - 1);
      __m512 r[16];
      for (int l = 0; l < 16; ++l) {
        const int64_t o = v * kOcvLanes + l;
        r[l] = o < valid ? _mm512_maskz_loadu_ps(m, w + o * k + k0) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int64_t t = 0; t < nk; ++t) _mm512_storeu_ps(dst + (k0 + t) * width + v * kOcvLanes, r[t]);
    }
}

void direct_ocv_rows_avx512(const DirectOcvRows& a) {
  alignas(64) float t[2 * 16 * kOcvBlock] = {};
  // Two rows share a block where both fit the budget at full width;
  // otherwise rows run one at a time with the widest columns blocks.
  const int R = a.rows == 2 && a.w_out * a.ocv <= kAcc / 2 ? 2 : 1;
  const int max_pb = std::min<int>(kMaxPB, kAcc / (R * a.ocv));
  // Balanced column blocks: 27 columns as 14 + 13, not 14 + 13 ... + 1.
  const int64_t nblk = (a.w_out + max_pb - 1) / max_pb;
  for (int64_t r0 = 0; r0 < a.rows; r0 += R) {
    DirectOcvRows b = a;
    b.x = a.x + r0 * a.x_rs;
    b.y = a.y + r0 * a.y_rs;
    for (int64_t k = 0, col = 0; k < nblk; ++k) {
      const int pb = static_cast<int>((a.w_out * (k + 1)) / nblk - (a.w_out * k) / nblk);
      kTiles[R - 1][a.ocv - 1][a.stride_w - 1][pb - 1](b, b.x + col * a.stride_w, t);
      store_tile(b, R, pb, t, col);
      col += pb;
    }
  }
}

}  // namespace striate::cpu
