// One plane of a depthwise convolution (groups == C_in == C_out: each output
// channel reads only its own input channel), private to kernels/cpu and
// included by one translation unit per ISA level (conv2d_direct_s1.cpp,
// conv2d_direct_s1_avx2.cpp) so the same loops vectorize to that level's
// width, with FMA on AVX2. Like sgemm_driver.h it sits in an anonymous
// namespace and uses no standard-library templates: an inline function
// compiled for AVX2 must never be merged into code that runs on an older CPU.
//
// Why not the generic direct loop: that one adds a tap at a time over the
// whole output plane, so every output is loaded and stored once per tap (9x
// for 3x3) by SSE2 code. Here stride-1 layers keep 4 vectors of one row's
// outputs in registers across all taps and store them once; strided ones
// take a chunk of kDwChunk outputs through all taps in L1. The taps are
// added in the generic loop's order (bias, then (i, j) row-major, skipping
// those outside the input), so the results agree up to FMA contraction.
#pragma once

#include <cstdint>

#include "striate/params.h"

namespace striate::cpu {
namespace {

constexpr int64_t kDwChunk = 64;

struct DwRange {
  int64_t lo, hi;
};

// Outputs o in [lo, hi) (hi <= n_out) whose input o * stride + off is in [0, n_in):
// conv_common.h's valid_range, restated here because that one is an inline
// function with external linkage (and std::min/max) -- the merge hazard above.
inline DwRange dw_range(int64_t off, int64_t stride, int64_t n_in, int64_t n_out) {
  int64_t lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t hi = n_in - 1 - off >= 0 ? (n_in - 1 - off) / stride + 1 : 0;
  if (hi > n_out) hi = n_out;
  if (lo > hi) lo = hi;
  return {lo, hi};
}

// y[oh, ow] = relu?(bias + sum_{i,j} w[i*kw + j] * x[oh*sh + i*dh - pt, ow*sw + j*dw - pl]).
void dw_plane_strided(const Conv2dParams& p, const float* x, const float* w, float bias, float* y) {
  for (int64_t oh = 0; oh < p.h_out; ++oh) {
    float* yr = y + oh * p.w_out;
    for (int64_t c0 = 0; c0 < p.w_out; c0 += kDwChunk) {
      const int64_t len = p.w_out - c0 < kDwChunk ? p.w_out - c0 : kDwChunk;
      float acc[kDwChunk];
      for (int64_t q = 0; q < kDwChunk; ++q) acc[q] = bias;
      for (int64_t i = 0; i < p.kh; ++i) {
        const int64_t ih = oh * p.stride_h + i * p.dil_h - p.pad_top;
        if (ih < 0 || ih >= p.h_in) continue;
        const float* xr = x + ih * p.w_in;
        for (int64_t j = 0; j < p.kw; ++j) {
          const int64_t off = j * p.dil_w - p.pad_left;
          DwRange r = dw_range(off, p.stride_w, p.w_in, p.w_out);
          if (r.lo < c0) r.lo = c0;
          if (r.hi > c0 + len) r.hi = c0 + len;
          const float wv = w[i * p.kw + j];
          float* a = acc - c0;
          if (p.stride_w == 1) {
            const float* xs = xr + off;
            for (int64_t o = r.lo; o < r.hi; ++o) a[o] += wv * xs[o];
          } else {
            for (int64_t o = r.lo; o < r.hi; ++o) a[o] += wv * xr[o * p.stride_w + off];
          }
        }
      }
      // `v < 0 ? 0 : v` keeps NaN (torch's relu).
      if (p.relu)
        for (int64_t q = 0; q < len; ++q) yr[c0 + q] = acc[q] < 0.0f ? 0.0f : acc[q];
      else
        for (int64_t q = 0; q < len; ++q) yr[c0 + q] = acc[q];
    }
  }
}

// Eight floats whatever the ISA (two SSE registers at the baseline level,
// one ymm with AVX2); aligned(4) so loads and stores may be unaligned.
typedef float DwVec __attribute__((vector_size(32), aligned(4)));

inline DwVec dw_load(const float* p) { return *reinterpret_cast<const DwVec*>(p); }
inline void dw_store(float* p, DwVec v) { *reinterpret_cast<DwVec*>(p) = v; }

// NV vectors of outputs [ow0, ow0 + 8 NV) of row oh, every tap in range
// (interior columns); the accumulators stay in registers across the taps.
template <int NV>
inline void dw_block(const Conv2dParams& p, const float* x, const float* w, float bias,
                     int64_t oh, int64_t ow0, float* yr) {
  DwVec acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = DwVec{} + bias;
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t ih = oh + i * p.dil_h - p.pad_top;
    if (ih < 0 || ih >= p.h_in) continue;
    const float* xr = x + ih * p.w_in + ow0 - p.pad_left;
    for (int64_t j = 0; j < p.kw; ++j) {
      const float wv = w[i * p.kw + j];
      const float* xs = xr + j * p.dil_w;
      for (int v = 0; v < NV; ++v) acc[v] += wv * dw_load(xs + 8 * v);
    }
  }
  for (int v = 0; v < NV; ++v) {
    DwVec r = acc[v];
    if (p.relu) r = r < 0.0f ? DwVec{} : r;  // NaN compares false: kept
    dw_store(yr + ow0 + 8 * v, r);
  }
}

// One output with per-tap bounds checks (border columns, narrow planes).
inline float dw_point(const Conv2dParams& p, const float* x, const float* w, float bias,
                      int64_t oh, int64_t ow) {
  float acc = bias;
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t ih = oh + i * p.dil_h - p.pad_top;
    if (ih < 0 || ih >= p.h_in) continue;
    for (int64_t j = 0; j < p.kw; ++j) {
      const int64_t iw = ow + j * p.dil_w - p.pad_left;
      if (iw >= 0 && iw < p.w_in) acc += w[i * p.kw + j] * x[ih * p.w_in + iw];
    }
  }
  return p.relu && acc < 0.0f ? 0.0f : acc;
}

// Stride 1: the columns whose taps all lie inside the input row go through
// dw_block, 4 vectors at a time (the last block overlaps the one before
// rather than dropping to scalars: it rewrites the same values); the few
// border columns through dw_point. Every output is bias + its in-range
// taps in (i, j) order, as in the generic loop.
void dw_plane(const Conv2dParams& p, const float* x, const float* w, float bias, float* y) {
  if (p.stride_h != 1 || p.stride_w != 1) return dw_plane_strided(p, x, w, bias, y);
  // Interior [c_lo, c_hi): ow - pad_left >= 0 and ow + (kw-1)*dw - pad_left < w_in.
  int64_t c_lo = p.pad_left, c_hi = p.w_in + p.pad_left - (p.kw - 1) * p.dil_w;
  if (c_hi > p.w_out) c_hi = p.w_out;
  if (c_lo > c_hi) c_lo = c_hi;
  for (int64_t oh = 0; oh < p.h_out; ++oh) {
    float* yr = y + oh * p.w_out;
    int64_t ow = 0;
    for (; ow < c_lo; ++ow) yr[ow] = dw_point(p, x, w, bias, oh, ow);
    for (; ow + 32 <= c_hi; ow += 32) dw_block<4>(p, x, w, bias, oh, ow, yr);
    if (ow < c_hi) {
      // The rest in one block of up to 4 independent accumulators (a
      // 1-vector block is one serial FMA chain, latency-bound), ending at
      // c_hi and overlapping what is done; scalars where the interior is
      // too narrow for that.
      int64_t nv = (c_hi - ow + 7) / 8, start = c_hi - 8 * nv;
      if (start < c_lo) nv = (c_hi - c_lo) / 8, start = c_hi - 8 * nv;
      for (; ow < start; ++ow) yr[ow] = dw_point(p, x, w, bias, oh, ow);
      switch (nv) {
        case 4: dw_block<4>(p, x, w, bias, oh, start, yr); break;
        case 3: dw_block<3>(p, x, w, bias, oh, start, yr); break;
        case 2: dw_block<2>(p, x, w, bias, oh, start, yr); break;
        case 1: dw_block<1>(p, x, w, bias, oh, start, yr); break;
        default: break;
      }
      if (nv > 0) ow = c_hi;
    }
    for (; ow < p.w_out; ++ow) yr[ow] = dw_point(p, x, w, bias, oh, ow);
  }
}

}  // namespace
}  // namespace striate::cpu
