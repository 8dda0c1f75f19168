// Winograd F(m x m, r x r) driver (F(2,3), F(4,3), F(2,5), F(4,2)), included by
// exactly one translation unit per ISA level
// (conv2d_winograd_{baseline,avx2,avx512}.cpp), each compiled
// with its own flags; like sgemm_driver.h it lives in an anonymous namespace
// and uses no standard-library templates, so no AVX-512 code can be merged
// into a baseline caller.
//
// Scheme (Lavin & Gray): tiles are processed in blocks of wp.block tiles
// taken in (image, tile row, tile column) order across all images, so the
// GEMMs stay wide on small planes. Per block, inside one parallel region:
//   1. input transform  V[ci][xi][t] = (B^T d B)[xi], threads split ci;
//   2. alpha^2 GEMMs    M[xi] = U[xi] (c_out x c_in) * V[xi] (c_in x block),
//                       threads split (xi, 12-row panel of c_out);
//   3. output transform y = A^T M A (+ bias, relu), threads split c_out.
// V and M are stored channel-major (V[ci][xi][t], M[co][xi][t]; the GEMMs
// read and write them at row stride alpha^2 * ld): each transform then
// touches one contiguous alpha^2 * ld run per channel instead of alpha^2
// rows a whole V[xi] / M[xi] apart -- 36 concurrent streams for F4, more
// than the hardware prefetchers follow, with a page per row. Measured at 2
// threads against the point-major layout, separate processes: ResNet-18
// layer1 64->64 @56 b16 forward 17.5-22 -> 14-15 ms, layer3 256->256 @14
// 24 -> 16 ms, layer4 512 @7 26 -> 22 ms, AlexNet conv2 (F(2,5)) ~10%.
// Each stage writes every element from one thread and each GEMM sums c_in
// in order, so the result is bitwise identical for any thread count.
//
// The transforms run on runs of up to kSegMax tiles of one tile row: the
// vertical (row-combining) pass works on whole contiguous input rows and the
// horizontal pass on 16 tiles as SIMD lanes (stride-m loads: permutes,
// explicit on AVX-512 via Micro::in_horiz / out_horiz), so both vectorize
// without gathers.
#pragma once

#include <cstdint>
#include <cstring>

#include "conv2d_winograd.h"

namespace striate::cpu {
namespace {

inline int64_t wmin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t wmax(int64_t a, int64_t b) { return a > b ? a : b; }

// Runs are at most kSegMax tiles. The horizontal passes and the output
// transform always process whole groups of kLanes tiles (a run of 14 tiles
// would otherwise fall entirely into a scalar epilogue): the extra lanes
// read zeros or stale finite values and write only scratch or block
// columns that a later run, the tail clearing or nobody reads.
constexpr int64_t kSegMax = 64;
constexpr int64_t kLanes = 16;
constexpr int64_t kRowMax = kSegMax * 4 + 2;  // input row span of kSegMax F4 tiles
alignas(64) const float kZeroRow[kRowMax] = {};

inline int64_t lanes_up(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// 1-D transforms. F(2,3) uses the points {0, 1, -1, inf}, F(4,3) {0, 1,
// -1, 2, -2, inf} (Lavin & Gray): small integers keep the input and output
// transforms exact up to one rounding per term; the filter transform
// carries the fractions. Every loop reads and writes through separate
// restrict-qualified pointers at compile-time strides (a run-time stride
// between two outputs makes GCC give up), inner loops of kLanes:
//   in_vert:   rows r[0..A), cnt columns -> t[i * kRowMax + q]
//   in_horiz:  vertical row s (tile j at s[j*M]) -> v[k][j], n lanes
//   out_vert:  d[i] = GEMM rows of points (i, k) -> z[r * kSegMax + j]
//   out_horiz: z[k * M * kSegMax + j] -> out[j * M + c], one output row
template <int M, int R = 3>
struct Wino;

template <>
struct Wino<2> {
  static constexpr int A = 4;
  static void in_vert(const float* const* r, float* __restrict t, int64_t cnt) {
    in_vert4(r[0], r[1], r[2], r[3], t, cnt);
  }
  static void in_vert4(const float* __restrict r0, const float* __restrict r1,
                       const float* __restrict r2, const float* __restrict r3,
                       float* __restrict t, int64_t cnt) {
    for (int64_t q = 0; q < cnt; ++q) {
      const float x0 = r0[q], x1 = r1[q], x2 = r2[q], x3 = r3[q];
      t[q] = x0 - x2;
      t[kRowMax + q] = x1 + x2;
      t[2 * kRowMax + q] = x2 - x1;
      t[3 * kRowMax + q] = x1 - x3;
    }
  }
  static void in_horiz(const float* __restrict s, float* const* v, int64_t n) {
    in_horiz4(s, v[0], v[1], v[2], v[3], n);
  }
  static void in_horiz4(const float* __restrict s, float* __restrict v0, float* __restrict v1,
                        float* __restrict v2, float* __restrict v3, int64_t n) {
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x0 = s[2 * j], x1 = s[2 * j + 1], x2 = s[2 * j + 2], x3 = s[2 * j + 3];
        v0[j] = x0 - x2;
        v1[j] = x1 + x2;
        v2[j] = x2 - x1;
        v3[j] = x1 - x3;
      }
  }
  static void out_vert(const float* const* d, float* __restrict z, int64_t n) {
    out_vert4(d[0], d[1], d[2], d[3], z, n);
  }
  static void out_vert4(const float* __restrict d0, const float* __restrict d1,
                        const float* __restrict d2, const float* __restrict d3,
                        float* __restrict z, int64_t n) {
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x1 = d1[j], x2 = d2[j];
        z[j] = d0[j] + x1 + x2;
        z[kSegMax + j] = x1 - x2 - d3[j];
      }
  }
  static void out_horiz(const float* __restrict z, float* __restrict out, int64_t n) {
    constexpr int64_t KS = kSegMax * 2;
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x1 = z[KS + j], x2 = z[2 * KS + j];
        out[2 * j] = z[j] + x1 + x2;
        out[2 * j + 1] = x1 - x2 - z[3 * KS + j];
      }
  }
  // Weight gradient: dM = A dY A^T, the transpose of the output transform
  // (A^T rows {1,1,1,0}, {0,1,-1,-1}), on 2 gradient rows / columns.
  static void gy_vert(const float* const* r, float* __restrict t, int64_t cnt) {
    const float* __restrict r0 = r[0];
    const float* __restrict r1 = r[1];
    for (int64_t q = 0; q < cnt; ++q) {
      const float d0 = r0[q], d1 = r1[q];
      t[q] = d0;
      t[kRowMax + q] = d0 + d1;
      t[2 * kRowMax + q] = d0 - d1;
      t[3 * kRowMax + q] = -d1;
    }
  }
  static void gy_horiz(const float* __restrict s, float* const* v, int64_t n) {
    float* __restrict v0 = v[0];
    float* __restrict v1 = v[1];
    float* __restrict v2 = v[2];
    float* __restrict v3 = v[3];
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float d0 = s[2 * j], d1 = s[2 * j + 1];
        v0[j] = d0;
        v1[j] = d0 + d1;
        v2[j] = d0 - d1;
        v3[j] = -d1;
      }
  }
};

template <>
struct Wino<4> {
  static constexpr int A = 6;
  static void in_vert(const float* const* r, float* __restrict t, int64_t cnt) {
    in_vert6(r[0], r[1], r[2], r[3], r[4], r[5], t, cnt);
  }
  static void in_vert6(const float* __restrict r0, const float* __restrict r1,
                       const float* __restrict r2, const float* __restrict r3,
                       const float* __restrict r4, const float* __restrict r5,
                       float* __restrict t, int64_t cnt) {
    for (int64_t q = 0; q < cnt; ++q) {
      const float x0 = r0[q], x1 = r1[q], x2 = r2[q], x3 = r3[q], x4 = r4[q], x5 = r5[q];
      const float s12 = x4 - 4.0f * x2, s34 = x3 - 4.0f * x1;  // shared by t1, t2
      const float u42 = x4 - x2, u31 = 2.0f * (x3 - x1);       // shared by t3, t4
      t[q] = 4.0f * x0 - 5.0f * x2 + x4;
      t[kRowMax + q] = s12 + s34;
      t[2 * kRowMax + q] = s12 - s34;
      t[3 * kRowMax + q] = u42 + u31;
      t[4 * kRowMax + q] = u42 - u31;
      t[5 * kRowMax + q] = 4.0f * x1 - 5.0f * x3 + x5;
    }
  }
  static void in_horiz(const float* __restrict s, float* const* v, int64_t n) {
    in_horiz6<4>(s, v[0], v[1], v[2], v[3], v[4], v[5], n);
  }
  // S: the tile stride (4 here, 2 for F(2x2, 5x5), which shares B^T).
  template <int S>
  static void in_horiz6(const float* __restrict s, float* __restrict v0, float* __restrict v1,
                        float* __restrict v2, float* __restrict v3, float* __restrict v4,
                        float* __restrict v5, int64_t n) {
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x0 = s[S * j], x1 = s[S * j + 1], x2 = s[S * j + 2], x3 = s[S * j + 3],
                    x4 = s[S * j + 4], x5 = s[S * j + 5];
        const float s12 = x4 - 4.0f * x2, s34 = x3 - 4.0f * x1;
        const float u42 = x4 - x2, u31 = 2.0f * (x3 - x1);
        v0[j] = 4.0f * x0 - 5.0f * x2 + x4;
        v1[j] = s12 + s34;
        v2[j] = s12 - s34;
        v3[j] = u42 + u31;
        v4[j] = u42 - u31;
        v5[j] = 4.0f * x1 - 5.0f * x3 + x5;
      }
  }
  static void out_vert(const float* const* d, float* __restrict z, int64_t n) {
    out_vert6(d[0], d[1], d[2], d[3], d[4], d[5], z, n);
  }
  static void out_vert6(const float* __restrict d0, const float* __restrict d1,
                        const float* __restrict d2, const float* __restrict d3,
                        const float* __restrict d4, const float* __restrict d5,
                        float* __restrict z, int64_t n) {
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x1 = d1[j], x2 = d2[j], x3 = d3[j], x4 = d4[j];
        const float a = x1 + x2, b = x1 - x2, c = x3 + x4, e = x3 - x4;
        z[j] = d0[j] + a + c;
        z[kSegMax + j] = b + 2.0f * e;
        z[2 * kSegMax + j] = a + 4.0f * c;
        z[3 * kSegMax + j] = b + 8.0f * e + d5[j];
      }
  }
  static void out_horiz(const float* __restrict z, float* __restrict out, int64_t n) {
    constexpr int64_t KS = kSegMax * 4;
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x1 = z[KS + j], x2 = z[2 * KS + j], x3 = z[3 * KS + j], x4 = z[4 * KS + j];
        const float a = x1 + x2, b = x1 - x2, c = x3 + x4, e = x3 - x4;
        out[4 * j] = z[j] + a + c;
        out[4 * j + 1] = b + 2.0f * e;
        out[4 * j + 2] = a + 4.0f * c;
        out[4 * j + 3] = b + 8.0f * e + z[5 * KS + j];
      }
  }
  // Weight gradient: dM = A dY A^T, the transpose of the output transform,
  // 4 gradient rows / columns to 6 points: u0 = d0, u1,2 = (d0 + d2) +-
  // (d1 + d3), u3,4 = (d0 + 4 d2) +- (2 d1 + 8 d3), u5 = d3.
  static void gy_vert(const float* const* r, float* __restrict t, int64_t cnt) {
    const float* __restrict r0 = r[0];
    const float* __restrict r1 = r[1];
    const float* __restrict r2 = r[2];
    const float* __restrict r3 = r[3];
    for (int64_t q = 0; q < cnt; ++q) {
      const float d0 = r0[q], d1 = r1[q], d2 = r2[q], d3 = r3[q];
      const float e = d0 + d2, f = d1 + d3, g = d0 + 4.0f * d2, h = 2.0f * d1 + 8.0f * d3;
      t[q] = d0;
      t[kRowMax + q] = e + f;
      t[2 * kRowMax + q] = e - f;
      t[3 * kRowMax + q] = g + h;
      t[4 * kRowMax + q] = g - h;
      t[5 * kRowMax + q] = d3;
    }
  }
  static void gy_horiz(const float* __restrict s, float* const* v, int64_t n) {
    float* __restrict v0 = v[0];
    float* __restrict v1 = v[1];
    float* __restrict v2 = v[2];
    float* __restrict v3 = v[3];
    float* __restrict v4 = v[4];
    float* __restrict v5 = v[5];
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float d0 = s[4 * j], d1 = s[4 * j + 1], d2 = s[4 * j + 2], d3 = s[4 * j + 3];
        const float e = d0 + d2, f = d1 + d3, g = d0 + 4.0f * d2, h = 2.0f * d1 + 8.0f * d3;
        v0[j] = d0;
        v1[j] = e + f;
        v2[j] = e - f;
        v3[j] = g + h;
        v4[j] = g - h;
        v5[j] = d3;
      }
  }
};

// F(2x2, 5x5) on the same six points as F(4x4, 3x3): the input transform
// B^T depends only on the points (it interpolates), so it is F(4,3)'s at a
// tile stride of 2; A^T (2 x 6) evaluates the degree-1 output polynomial,
// rows {1,1,1,1,1,0} and {0,1,-1,2,-2,1}; G (6 x 5) carries the fractions
// (conv2d_winograd.cpp). 36 multiplies per 2x2 outputs against 100 direct.
template <>
struct Wino<2, 5> {
  static constexpr int A = 6;
  static void in_vert(const float* const* r, float* __restrict t, int64_t cnt) {
    Wino<4>::in_vert(r, t, cnt);
  }
  static void in_horiz(const float* __restrict s, float* const* v, int64_t n) {
    Wino<4>::in_horiz6<2>(s, v[0], v[1], v[2], v[3], v[4], v[5], n);
  }
  static void out_vert(const float* const* d, float* __restrict z, int64_t n) {
    out_vert6(d[0], d[1], d[2], d[3], d[4], d[5], z, n);
  }
  static void out_vert6(const float* __restrict d0, const float* __restrict d1,
                        const float* __restrict d2, const float* __restrict d3,
                        const float* __restrict d4, const float* __restrict d5,
                        float* __restrict z, int64_t n) {
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x1 = d1[j], x2 = d2[j], x3 = d3[j], x4 = d4[j];
        z[j] = d0[j] + (x1 + x2) + (x3 + x4);
        z[kSegMax + j] = (x1 - x2) + 2.0f * (x3 - x4) + d5[j];
      }
  }
  static void out_horiz(const float* __restrict z, float* __restrict out, int64_t n) {
    constexpr int64_t KS = kSegMax * 2;
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x1 = z[KS + j], x2 = z[2 * KS + j], x3 = z[3 * KS + j], x4 = z[4 * KS + j];
        out[2 * j] = z[j] + (x1 + x2) + (x3 + x4);
        out[2 * j + 1] = (x1 - x2) + 2.0f * (x3 - x4) + z[5 * KS + j];
      }
  }
  // Weight gradient: dM = A dY A^T, 2 gradient rows / columns to 6 points:
  // u0 = d0, u1,2 = d0 +- d1, u3,4 = d0 +- 2 d1, u5 = d1.
  static void gy_vert(const float* const* r, float* __restrict t, int64_t cnt) {
    const float* __restrict r0 = r[0];
    const float* __restrict r1 = r[1];
    for (int64_t q = 0; q < cnt; ++q) {
      const float d0 = r0[q], d1 = r1[q];
      t[q] = d0;
      t[kRowMax + q] = d0 + d1;
      t[2 * kRowMax + q] = d0 - d1;
      t[3 * kRowMax + q] = d0 + 2.0f * d1;
      t[4 * kRowMax + q] = d0 - 2.0f * d1;
      t[5 * kRowMax + q] = d1;
    }
  }
  static void gy_horiz(const float* __restrict s, float* const* v, int64_t n) {
    float* __restrict v0 = v[0];
    float* __restrict v1 = v[1];
    float* __restrict v2 = v[2];
    float* __restrict v3 = v[3];
    float* __restrict v4 = v[4];
    float* __restrict v5 = v[5];
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float d0 = s[2 * j], d1 = s[2 * j + 1];
        v0[j] = d0;
        v1[j] = d0 + d1;
        v2[j] = d0 - d1;
        v3[j] = d0 + 2.0f * d1;
        v4[j] = d0 - 2.0f * d1;
        v5[j] = d1;
      }
  }
};

// F(4x4, 2x2) on the five points {0, 1, -1, 2, inf}: the kernel of the
// space-to-depth rewrite of a 3x3 stride-2 layer (its 2x2 phases, on 4x the
// channels; kernels/cpu/conv2d_s2d.cpp) and of plain 2x2 layers. 25
// multiplies per 4x4 outputs against 64 direct; on the rewrite, 6.25 per
// output and input channel of the strided layer against its 9 taps. B^T
// rows are the coefficients of prod over the other points of (x - p), A^T
// rows k evaluate x^k (the inf point only in the last), G (conv2d_winograd.cpp)
// carries the Lagrange denominators 2, -2, -6, 6:
//   B^T = {2,-1,-2,1,0}, {0,-2,-1,1,0}, {0,2,-3,1,0}, {0,-1,0,1,0}, {0,2,-1,-2,1}
//   A^T = {1,1,1,1,0}, {0,1,-1,2,0}, {0,1,1,4,0}, {0,1,-1,8,1}
template <>
struct Wino<4, 2> {
  static constexpr int A = 5;
  // t0 = 2 (x0 - x2) + d, t1 = d - (x1 + x2), t2 = d + 3 (x1 - x2), t3 = d,
  // t4 = (x4 - x2) - 2 d, with d = x3 - x1.
  static void in_vert(const float* const* r, float* __restrict t, int64_t cnt) {
    const float* __restrict r0 = r[0];
    const float* __restrict r1 = r[1];
    const float* __restrict r2 = r[2];
    const float* __restrict r3 = r[3];
    const float* __restrict r4 = r[4];
    for (int64_t q = 0; q < cnt; ++q) {
      const float x0 = r0[q], x1 = r1[q], x2 = r2[q], x3 = r3[q], x4 = r4[q];
      const float d = x3 - x1;
      t[q] = 2.0f * (x0 - x2) + d;
      t[kRowMax + q] = d - (x1 + x2);
      t[2 * kRowMax + q] = d + 3.0f * (x1 - x2);
      t[3 * kRowMax + q] = d;
      t[4 * kRowMax + q] = (x4 - x2) - 2.0f * d;
    }
  }
  static void in_horiz(const float* __restrict s, float* const* v, int64_t n) {
    float* __restrict v0 = v[0];
    float* __restrict v1 = v[1];
    float* __restrict v2 = v[2];
    float* __restrict v3 = v[3];
    float* __restrict v4 = v[4];
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float x0 = s[4 * j], x1 = s[4 * j + 1], x2 = s[4 * j + 2], x3 = s[4 * j + 3],
                    x4 = s[4 * j + 4];
        const float d = x3 - x1;
        v0[j] = 2.0f * (x0 - x2) + d;
        v1[j] = d - (x1 + x2);
        v2[j] = d + 3.0f * (x1 - x2);
        v3[j] = d;
        v4[j] = (x4 - x2) - 2.0f * d;
      }
  }
  // o0 = m0 + a + m3, o1 = b + 2 m3, o2 = a + 4 m3, o3 = b + 8 m3 + m4
  // with a = m1 + m2, b = m1 - m2.
  static void out_vert(const float* const* d, float* __restrict z, int64_t n) {
    const float* __restrict d0 = d[0];
    const float* __restrict d1 = d[1];
    const float* __restrict d2 = d[2];
    const float* __restrict d3 = d[3];
    const float* __restrict d4 = d[4];
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float a = d1[j] + d2[j], b = d1[j] - d2[j], x3 = d3[j];
        z[j] = d0[j] + a + x3;
        z[kSegMax + j] = b + 2.0f * x3;
        z[2 * kSegMax + j] = a + 4.0f * x3;
        z[3 * kSegMax + j] = b + 8.0f * x3 + d4[j];
      }
  }
  static void out_horiz(const float* __restrict z, float* __restrict out, int64_t n) {
    constexpr int64_t KS = kSegMax * 4;
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float a = z[KS + j] + z[2 * KS + j], b = z[KS + j] - z[2 * KS + j];
        const float x3 = z[3 * KS + j];
        out[4 * j] = z[j] + a + x3;
        out[4 * j + 1] = b + 2.0f * x3;
        out[4 * j + 2] = a + 4.0f * x3;
        out[4 * j + 3] = b + 8.0f * x3 + z[4 * KS + j];
      }
  }
  // Weight gradient: dM = A dY A^T, 4 gradient rows / columns to 5 points:
  // u0 = d0, u1,2 = (d0 + d2) +- (d1 + d3), u3 = d0 + 2 d1 + 4 d2 + 8 d3, u4 = d3.
  static void gy_vert(const float* const* r, float* __restrict t, int64_t cnt) {
    const float* __restrict r0 = r[0];
    const float* __restrict r1 = r[1];
    const float* __restrict r2 = r[2];
    const float* __restrict r3 = r[3];
    for (int64_t q = 0; q < cnt; ++q) {
      const float d0 = r0[q], d1 = r1[q], d2 = r2[q], d3 = r3[q];
      const float e = d0 + d2, f = d1 + d3;
      t[q] = d0;
      t[kRowMax + q] = e + f;
      t[2 * kRowMax + q] = e - f;
      t[3 * kRowMax + q] = (d0 + 4.0f * d2) + (2.0f * d1 + 8.0f * d3);
      t[4 * kRowMax + q] = d3;
    }
  }
  static void gy_horiz(const float* __restrict s, float* const* v, int64_t n) {
    float* __restrict v0 = v[0];
    float* __restrict v1 = v[1];
    float* __restrict v2 = v[2];
    float* __restrict v3 = v[3];
    float* __restrict v4 = v[4];
    for (int64_t j0 = 0; j0 < n; j0 += kLanes)
      for (int64_t j = j0; j < j0 + kLanes; ++j) {
        const float d0 = s[4 * j], d1 = s[4 * j + 1], d2 = s[4 * j + 2], d3 = s[4 * j + 3];
        const float e = d0 + d2, f = d1 + d3;
        v0[j] = d0;
        v1[j] = e + f;
        v2[j] = e - f;
        v3[j] = (d0 + 4.0f * d2) + (2.0f * d1 + 8.0f * d3);
        v4[j] = d3;
      }
  }
};

// The portable strided passes, for levels without their own.
struct WinoGenericHoriz {
  template <int M, int R>
  static void in_horiz(const float* s, float* const* v, int64_t n) {
    Wino<M, R>::in_horiz(s, v, n);
  }
  template <int M, int R>
  static void out_horiz(const float* z, float* out, int64_t n) {
    Wino<M, R>::out_horiz(z, out, n);
  }
  template <int M, int R>
  static void gy_horiz(const float* s, float* const* v, int64_t n) {
    Wino<M, R>::gy_horiz(s, v, n);
  }
};

// Input transform of n (<= kSegMax) tiles (ty, tx .. tx+n-1) of one channel
// plane xc; v + xi * xs receives transform point xi of the tiles. Writes
// lanes_up(n) columns (see kLanes).
template <class Micro, int M, int R>
void input_run(const WinogradPlan& wp, const float* xc, int64_t ty, int64_t tx, int64_t n,
               float* v, int64_t xs) {
  constexpr int A = Wino<M, R>::A;
  const Conv2dParams& p = wp.p;
  const int64_t n16 = lanes_up(n), need = n * M + (A - M), len = n16 * M + (A - M);
  // Columns [lo, hi) of the run lie inside the input; the rest (padding, and
  // the columns of the extra lanes) is zero and so is its transform.
  const int64_t iw0 = tx * M - p.pad_left;
  const int64_t lo = wmin(wmax(-iw0, 0), need), hi = wmax(lo, wmin(need, p.w_in - iw0));
  alignas(64) float vert[A * kRowMax + kLanes];  // + overrun of 16-lane loads
  const float* rp[A];
  for (int r = 0; r < A; ++r) {
    const int64_t ih = ty * M - p.pad_top + r;
    rp[r] = ih < 0 || ih >= p.h_in ? kZeroRow : xc + ih * p.w_in + iw0 + lo;
  }
  Wino<M, R>::in_vert(rp, vert + lo, hi - lo);
  for (int i = 0; i < A; ++i) {
    float* t = vert + i * kRowMax;
    for (int64_t q = 0; q < lo; ++q) t[q] = 0.0f;
    for (int64_t q = hi; q < len; ++q) t[q] = 0.0f;
  }
  for (int i = 0; i < A; ++i) {
    float* vi[A];
    for (int k = 0; k < A; ++k) vi[k] = v + (i * A + k) * xs;
    Micro::template in_horiz<M, R>(vert + i * kRowMax, vi, n16);
  }
}

// Output transform of n tiles of one output channel: mo + xi * xs holds the
// GEMM result of point xi for the tiles; writes the valid part of the tiles
// to the plane yo with bias and relu.
template <class Micro, int M, int R>
void output_run(const WinogradPlan& wp, const float* mo, int64_t xs, float bias, int64_t ty,
                int64_t tx, int64_t n, float* yo) {
  constexpr int A = Wino<M, R>::A;
  const Conv2dParams& p = wp.p;
  const int64_t n16 = lanes_up(n);
  alignas(64) float z[A][M][kSegMax];  // column point k, output row r, tile j
  alignas(64) float out[kSegMax * M];
  for (int k = 0; k < A; ++k) {
    const float* d[A];
    for (int i = 0; i < A; ++i) d[i] = mo + (i * A + k) * xs;
    Wino<M, R>::out_vert(d, z[k][0], n16);
  }
  const int64_t ow0 = tx * M, cols = wmin(n * M, p.w_out - ow0);
  for (int r = 0; r < M; ++r) {
    const int64_t oh = ty * M + r;
    if (oh >= p.h_out) break;
    Micro::template out_horiz<M, R>(z[0][r], out, n16);
    float* yr = yo + oh * p.w_out + ow0;
    if (p.relu) {
      for (int64_t q = 0; q < cols; ++q) {
        const float v = out[q] + bias;
        yr[q] = v < 0.0f ? 0.0f : v;  // NaN stays NaN, as torch's relu
      }
    } else {
      for (int64_t q = 0; q < cols; ++q) yr[q] = out[q] + bias;
    }
  }
}

// Weight-gradient transform of n tiles of one output channel's gradient
// plane gyo: dm + xi * xs receives point xi of dM = A dY A^T per tile. The
// parts of the tiles outside the plane are no outputs, so their gradient is
// zero. Writes lanes_up(n) columns (see kLanes; the extra lanes are zero).
template <class Micro, int M, int R>
void gy_run(const WinogradPlan& wp, const float* gyo, int64_t ty, int64_t tx, int64_t n,
            float* dm, int64_t xs) {
  constexpr int A = Wino<M, R>::A;
  const Conv2dParams& p = wp.p;
  const int64_t n16 = lanes_up(n), len = n16 * M;
  const int64_t ow0 = tx * M, cols = wmin(n * M, p.w_out - ow0);
  alignas(64) float vert[A * kRowMax + kLanes];
  const float* rp[M];
  for (int r = 0; r < M; ++r) {
    const int64_t oh = ty * M + r;
    rp[r] = oh < p.h_out ? gyo + oh * p.w_out + ow0 : kZeroRow;
  }
  Wino<M, R>::gy_vert(rp, vert, cols);
  for (int i = 0; i < A; ++i)
    for (int64_t q = cols; q < len; ++q) vert[i * kRowMax + q] = 0.0f;
  for (int i = 0; i < A; ++i) {
    float* vi[A];
    for (int k = 0; k < A; ++k) vi[k] = dm + (i * A + k) * xs;
    Micro::template gy_horiz<M, R>(vert + i * kRowMax, vi, n16);
  }
}

// Calls f(image, ty, tx, n, offset) for the runs of tiles [t0, t0 + nt):
// each run lies in one tile row and has at most kSegMax tiles.
template <class F>
void for_each_run(const WinogradPlan& wp, int64_t t0, int64_t nt, F&& f) {
  const int64_t per_image = wp.tiles_h * wp.tiles_w;
  for (int64_t t = t0; t < t0 + nt;) {
    const int64_t img = t / per_image, rem = t % per_image;
    const int64_t ty = rem / wp.tiles_w, tx = rem % wp.tiles_w;
    const int64_t n = wmin(wmin(wp.tiles_w - tx, t0 + nt - t), kSegMax);
    f(img, ty, tx, n, t - t0);
    t += n;
  }
}

// Micro::strip(k, a, b, ldb, c, ldc, rows): c[r][0..kWinoStrip) =
// sum_kk a[kk * kWinoPanelRows + r] * b[kk * ldb + 0..kWinoStrip) for the
// first `rows` rows of one filter panel, summing kk in order.
// Micro::in_horiz<M, R> / out_horiz<M, R> / gy_horiz<M, R>: Wino<M, R>'s, or an
// ISA-specific version (same arithmetic, same results) of the strided passes.
template <class Micro, int M, int R>
void winograd_run(const WinogradPlan& wp, const float* x, const float* u, const float* bias,
                  float* y, float* ws) {
  constexpr int A = Wino<M, R>::A, XI = A * A;
  const Conv2dParams& p = wp.p;
  const int64_t ci = p.c_in, co = p.c_out, ld = wp.ld;
  // Align the block buffers to a cache line (the workspace has room for it).
  float* v = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(ws) + 63) & ~uintptr_t{63});
  float* mb = v + XI * ci * ld;
  const int64_t blocks = (wp.tiles + wp.block - 1) / wp.block;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
#pragma omp parallel
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t t0 = b * wp.block, nt = wmin(wp.block, wp.tiles - t0);
    const int64_t strips = (nt + kWinoStrip - 1) / kWinoStrip, ncols = strips * kWinoStrip;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < ci; ++c) {
      float* vc = v + c * XI * ld;
      for_each_run(wp, t0, nt, [&](int64_t img, int64_t ty, int64_t tx, int64_t n, int64_t off) {
        input_run<Micro, M, R>(wp, x + (img * ci + c) * hw_in, ty, tx, n, vc + off, ld);
      });
      // The GEMM reads whole strips: keep the columns past the block defined.
      for (int xi = 0; xi < XI; ++xi)
        for (int64_t j = nt; j < ncols; ++j) vc[xi * ld + j] = 0.0f;
    }
#pragma omp for collapse(2) schedule(static)
    for (int64_t xi = 0; xi < XI; ++xi)
      for (int64_t pn = 0; pn < wp.panels; ++pn) {
        const float* a = u + (xi * wp.panels + pn) * ci * kWinoPanelRows;
        const int rows = static_cast<int>(wmin(kWinoPanelRows, co - pn * kWinoPanelRows));
        for (int64_t s = 0; s < strips; ++s)
          Micro::strip(ci, a, v + xi * ld + s * kWinoStrip, XI * ld,
                       mb + (pn * kWinoPanelRows * XI + xi) * ld + s * kWinoStrip, XI * ld,
                       rows);
      }
#pragma omp for schedule(static)
    for (int64_t o = 0; o < co; ++o) {
      const float bo = bias ? bias[o] : 0.0f;
      // The runs read the channel's alpha^2 rows in lock-step, a line per
      // row per run: too many streams for the prefetchers, so each run waited
      // on L3 (an F(2,5) profile: ~20% in out_vert). Fetch the next channel's
      // rows while this one is transformed (1 thread: AlexNet conv2 forward
      // min 94 -> 77 ms, layer1 29 -> 26 ms; 2 threads: medians 1-5% lower).
      if (o + 1 < co) {
        const float* nx = mb + (o + 1) * XI * ld;
        for (int64_t xi = 0; xi < XI; ++xi)
          for (int64_t q = 0; q < nt; q += 16) __builtin_prefetch(nx + xi * ld + q, 0, 3);
      }
      for_each_run(wp, t0, nt, [&](int64_t img, int64_t ty, int64_t tx, int64_t n, int64_t off) {
        output_run<Micro, M, R>(wp, mb + o * XI * ld + off, ld, bo, ty, tx, n,
                                y + (img * co + o) * hw_out);
      });
    }
  }
}

// Weight gradient, one block of tiles [t0, t0 + nt): the input transform
// v[ci][xi][t] (as the forward pass) and the gradient transform
// dm[co][xi][t], channel-major for the same reason; the caller runs the
// alpha^2 GEMMs dU[xi] += dM[xi] V[xi]^T (rows of one point alpha^2 * ld
// apart: the SGEMM packs both operands anyway) and the filter back-transform. Threads
// split the channels: every element is written by one thread.
template <class Micro, int M, int R>
void wgrad_block_run(const WinogradPlan& wp, const float* x, const float* gy, int64_t t0,
                     int64_t nt, float* v, float* dm) {
  constexpr int64_t XI = Wino<M, R>::A * Wino<M, R>::A;
  const Conv2dParams& p = wp.p;
  const int64_t ci = p.c_in, co = p.c_out, ld = wp.ld;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
#pragma omp parallel
  {
#pragma omp for schedule(static) nowait
    for (int64_t c = 0; c < ci; ++c)
      for_each_run(wp, t0, nt, [&](int64_t img, int64_t ty, int64_t tx, int64_t n, int64_t off) {
        input_run<Micro, M, R>(wp, x + (img * ci + c) * hw_in, ty, tx, n,
                               v + c * XI * ld + off, ld);
      });
#pragma omp for schedule(static)
    for (int64_t o = 0; o < co; ++o)
      for_each_run(wp, t0, nt, [&](int64_t img, int64_t ty, int64_t tx, int64_t n, int64_t off) {
        gy_run<Micro, M, R>(wp, gy + (img * co + o) * hw_out, ty, tx, n, dm + o * XI * ld + off,
                            ld);
      });
  }
}

template <class Micro>
void wgrad_block_entry(const WinogradPlan& wp, const float* x, const float* gy, int64_t t0,
                       int64_t nt, float* v, float* dm) {
  if (wp.r == 5)
    wgrad_block_run<Micro, 2, 5>(wp, x, gy, t0, nt, v, dm);
  else if (wp.r == 2)
    wgrad_block_run<Micro, 4, 2>(wp, x, gy, t0, nt, v, dm);
  else if (wp.m == 2)
    wgrad_block_run<Micro, 2, 3>(wp, x, gy, t0, nt, v, dm);
  else
    wgrad_block_run<Micro, 4, 3>(wp, x, gy, t0, nt, v, dm);
}

// dg = G^T dU G over blocks of kFilterBlock filters: each pass is a loop
// over the block that the compiler vectorizes with this ISA's registers.
// dU is filter-row-major, du[o][xi][i] (the GEMMs write it so), so a block
// of filters reads alpha^2 runs of 16 floats c_in apart inside one 36 * c_in
// row. (Point-major, dU[xi][o][i], the runs were 1 MB apart at 512 x 512
// channels: alpha^2 streams a plane apart are more than the hardware
// prefetchers follow, and with a software prefetch per plane this pass was
// still 21% of ResNet-18 layer4's backward on the Intel AVX-512 host.) In
// double: G^T's fractions are applied before the one rounding to float.
constexpr int64_t kFilterBlock = 16;

// Eight doubles, in this ISA's registers (GCC / Clang vector extensions:
// one zmm on AVX-512, two ymm on AVX2, four xmm on the baseline). Written
// as plain loops over the block, GCC's SLP vectorizer interleaved the
// unrolled point loops instead and left the AVX-512 pass mostly in xmm
// shuffles: 21% of ResNet-18 layer4's backward (512 x 512 filters), ~100
// cycles per filter for 162 multiply-adds.
typedef double FgVec __attribute__((vector_size(64)));
typedef float FgVecF __attribute__((vector_size(32)));
constexpr int kFgVecs = kFilterBlock / 8;

template <int A, int KR>
void filter_grad_run(const double* gt, const float* du, int64_t nf, int64_t c, float* gw) {
  const int64_t blocks = (nf + kFilterBlock - 1) / kFilterBlock;
  const int64_t row = A * A * c;  // floats per output channel o
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t f0 = b * kFilterBlock;
    const int64_t nb = nf - f0 < kFilterBlock ? nf - f0 : kFilterBlock;
    const int64_t o0 = f0 / c, i0 = f0 % c;
    FgVec d[A * A][kFgVecs], t[KR * A][kFgVecs];
    if (nb == kFilterBlock && i0 + kFilterBlock <= c) {  // the block lies in one row
      const float* src = du + o0 * row + i0;
      for (int xi = 0; xi < A * A; ++xi)
        for (int h = 0; h < kFgVecs; ++h) {
          FgVecF v;
          std::memcpy(&v, src + xi * c + 8 * h, sizeof v);
          d[xi][h] = __builtin_convertvector(v, FgVec);
        }
    } else {
      alignas(64) double tmp[A * A][kFilterBlock];
      for (int64_t j = 0; j < kFilterBlock; ++j) {
        const int64_t f = f0 + j, o = f / c, i = f % c;
        for (int xi = 0; xi < A * A; ++xi) tmp[xi][j] = j < nb ? du[o * row + xi * c + i] : 0.0;
      }
      std::memcpy(d, tmp, sizeof d);
    }
    // Row points to tap rows (t[tap row][column point]), then column points.
    for (int r = 0; r < KR; ++r)
      for (int q = 0; q < A; ++q)
        for (int h = 0; h < kFgVecs; ++h) {
          FgVec acc = d[q][h] * gt[r * A];
          for (int p = 1; p < A; ++p) acc += d[p * A + q][h] * gt[r * A + p];
          t[r * A + q][h] = acc;
        }
    alignas(64) double g[KR * KR][kFilterBlock];
    for (int r = 0; r < KR; ++r)
      for (int s = 0; s < KR; ++s)
        for (int h = 0; h < kFgVecs; ++h) {
          FgVec acc = t[r * A][h] * gt[s * A];
          for (int q = 1; q < A; ++q) acc += t[r * A + q][h] * gt[s * A + q];
          std::memcpy(&g[r * KR + s][8 * h], &acc, sizeof acc);
        }
    for (int64_t j = 0; j < nb; ++j)
      for (int k = 0; k < KR * KR; ++k) gw[(f0 + j) * KR * KR + k] = static_cast<float>(g[k][j]);
  }
}

inline void filter_grad_entry(const WinogradPlan& wp, const double* gt, const float* du,
                              int64_t nf, float* gw) {
  const int64_t c = wp.p.c_in;
  if (wp.r == 5)
    filter_grad_run<6, 5>(gt, du, nf, c, gw);
  else if (wp.r == 2)
    filter_grad_run<5, 2>(gt, du, nf, c, gw);
  else if (wp.m == 2)
    filter_grad_run<4, 3>(gt, du, nf, c, gw);
  else
    filter_grad_run<6, 3>(gt, du, nf, c, gw);
}

// Filter transform u = G g G^T of every (output, input) channel pair into
// the packed panels (conv2d_winograd.h), in double.
// 1-D filter transform u = G g (alpha values from r taps, strides si /
// so), in double: the fractions (1/4, 1/6, 1/12, 1/24) are then rounded
// once, when the result is stored as float. G row i is (1, p, p^2, ...)
// over p_i's Lagrange denominator, for the points {0, 1, -1, 2, -2, inf}
// (F(4,3), F(2,5)), {0, 1, -1, inf} (F(2,3)) or {0, 1, -1, 2, inf} (F(4,2):
// denominators 2, -2, -6, 6).
// The fractions as multipliers: a division per term made the filter
// transform divide-bound (512 x 512 filters at F(4x4): ~9 ms, redone
// whenever the weights change). In double, a reciprocal's error (1e-16)
// is far below the single rounding to float that follows.
constexpr double kHalf = 0.5, kQuarter = 0.25, kSixth = 1.0 / 6, kTwelfth = 1.0 / 12,
                 kTwentyFourth = 1.0 / 24;

template <class T>
inline void filter_1d(int m, int r, const T* g, int64_t si, T* u, int64_t so) {
  if (r == 2) {
    const T g0 = g[0], g1 = g[si];
    u[0] = g0 * kHalf;
    u[so] = -(g0 + g1) * kHalf;
    u[2 * so] = -(g0 - g1) * kSixth;
    u[3 * so] = (g0 + 2 * g1) * kSixth;
    u[4 * so] = g1;
    return;
  }
  if (r == 5) {
    const T g0 = g[0], g1 = g[si], g2 = g[2 * si], g3 = g[3 * si], g4 = g[4 * si];
    const T e = g0 + g2 + g4, o = g1 + g3;                    // points +-1
    const T e2 = g0 + 4 * g2 + 16 * g4, o2 = 2 * g1 + 8 * g3;  // points +-2
    u[0] = g0 * kQuarter;
    u[so] = -(e + o) * kSixth;
    u[2 * so] = -(e - o) * kSixth;
    u[3 * so] = (e2 + o2) * kTwentyFourth;
    u[4 * so] = (e2 - o2) * kTwentyFourth;
    u[5 * so] = g4;
    return;
  }
  const T g0 = g[0], g1 = g[si], g2 = g[2 * si];
  if (m == 2) {
    u[0] = g0;
    u[so] = (g0 + g1 + g2) * kHalf;
    u[2 * so] = (g0 - g1 + g2) * kHalf;
    u[3 * so] = g2;
  } else {
    u[0] = g0 * kQuarter;
    u[so] = -(g0 + g1 + g2) * kSixth;
    u[2 * so] = -(g0 - g1 + g2) * kSixth;
    u[3 * so] = g0 * kTwentyFourth + g1 * kTwelfth + g2 * kSixth;
    u[4 * so] = g0 * kTwentyFourth - g1 * kTwelfth + g2 * kSixth;
    u[5 * so] = g2;
  }
}

inline void filter_run(const WinogradPlan& wp, bool backward_data, const float* w, float* u) {
  const int64_t a = wp.m + wp.r - 1, ci = wp.p.c_in, co = wp.p.c_out;
  const int m = wp.m, kr = wp.r, taps = kr * kr;
  // One panel's kWinoPanelRows output channels at a time, as the lanes of
  // a vector (GCC / Clang vector extension; rows past c_out are zero): for
  // each input channel the panel's transformed filters are alpha^2 runs of
  // 12 contiguous floats, and consecutive input channels continue the runs.
  // (A filter at a time wrote alpha^2 single floats 48 bytes apart per
  // channel, each line filled by 12 passes over the whole plane: 512 x 512
  // channels at F(4x4) took ~30 ms, more than the convolution, whenever
  // the weights changed -- every training step.)
  typedef double Lanes __attribute__((vector_size(16 * sizeof(double))));
  static_assert(kWinoPanelRows == 12, "the lanes below list 12 rows");
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t pn = 0; pn < wp.panels; ++pn)
    for (int64_t i = 0; i < ci; ++i) {
      // The panel's filters (rows past c_out read zeros). The lanes are
      // built from scalars in registers: written to a stack array and read
      // back as vectors, every read missed store forwarding (a quarter of
      // the transform's time).
      static const float kZeros[25] = {};
      const float* src[kWinoPanelRows];
      for (int64_t r = 0; r < kWinoPanelRows; ++r) {
        const int64_t o = pn * kWinoPanelRows + r;
        src[r] = o >= co ? kZeros : !backward_data ? w + (o * ci + i) * taps : w + (i * co + o) * taps;
      }
      Lanes g[25], t[6 * 5], uu[6 * 6];
      for (int k = 0; k < taps; ++k) {
        const int j = backward_data ? taps - 1 - k : k;  // flipped, channel roles swapped
        g[k] = Lanes{src[0][j], src[1][j], src[2][j], src[3][j], src[4][j],  src[5][j],
                     src[6][j], src[7][j], src[8][j], src[9][j], src[10][j], src[11][j],
                     0.0,       0.0,       0.0,       0.0};
      }
      // Columns first (t[row point][tap column]), then rows: uu[row point][column point].
      for (int c = 0; c < kr; ++c) filter_1d(m, kr, g + c, kr, t + c, kr);
      for (int k = 0; k < a; ++k) filter_1d(m, kr, t + kr * k, 1, uu + a * k, 1);
      for (int xi = 0; xi < a * a; ++xi) {
        float* dst = u + ((xi * wp.panels + pn) * ci + i) * kWinoPanelRows;
        for (int64_t r = 0; r < kWinoPanelRows; ++r) dst[r] = static_cast<float>(uu[xi][r]);
      }
    }
}

template <class Micro>
void winograd_entry(const WinogradPlan& wp, const float* x, const float* u, const float* bias,
                    float* y, float* ws) {
  if (wp.r == 5)
    winograd_run<Micro, 2, 5>(wp, x, u, bias, y, ws);
  else if (wp.r == 2)
    winograd_run<Micro, 4, 2>(wp, x, u, bias, y, ws);
  else if (wp.m == 2)
    winograd_run<Micro, 2, 3>(wp, x, u, bias, y, ws);
  else
    winograd_run<Micro, 4, 3>(wp, x, u, bias, y, ws);
}

}  // namespace
}  // namespace striate::cpu
