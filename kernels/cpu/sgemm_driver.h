// The packed SGEMM driver, included by exactly one translation unit per ISA
// level (sgemm_baseline.cpp, sgemm_avx2.cpp, sgemm_avx512.cpp), each compiled
// with its own flags. Everything here sits in an anonymous namespace and
// uses no standard-library templates: an inline function instantiated in an
// AVX-512 unit must never be merged by the linker into code that runs on an
// older CPU.
//
// Structure (Goto/BLIS, gemm_driver): for each NC-wide column block and
// KC-deep slab, op(B) is packed once into NR-column k-major tiles (shared);
// then each thread packs an MC-row block of op(A) into its own buffer (sized
// for its L2) and runs the MR x NR microkernel over the block, one B tile at
// a time. When op(A) has at most MC rows (a convolution's C_out), the
// threads instead split the column tiles and read B in place where they can
// (gemm_small_m). Threads split tiles of C, never the depth, and every
// element of C is summed slab by slab (fixed KC boundaries) in the same
// order for any thread count: bitwise identical results.
//
// Batches (GemmBatch) are "global" index spaces: without reduce, the
// columns of all items side by side; with reduce, the depths end to end.
// Packing and write-back cut their ranges into per-item segments.
#pragma once

#include <cstdint>

#include "sgemm_isa.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace striate::cpu {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t gcd(int64_t a, int64_t b) {
  while (b) {
    const int64_t t = a % b;
    a = b, b = t;
  }
  return a;
}

inline int64_t omp_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// The batch's global index spaces (see the header comment): all items'
// columns side by side, or (reduce) all items' depths end to end.
inline int64_t global_cols(const GemmParams& p, const GemmBatch& bt) {
  return bt.reduce ? p.n : bt.count * p.n;
}
inline int64_t global_depth(const GemmParams& p, const GemmBatch& bt) {
  return bt.reduce ? bt.count * p.k : p.k;
}

// Depth of each slab: the depth cut into ceil(depth / KC) near-equal slabs,
// so no slab is a thin remainder (K = 576 at KC = 512 would be 512 + 64: a
// second pass over C and a repacked A for 64 products per element). Depends
// on the shape only, so every thread count sums in the same order.
inline int64_t slab_depth(int64_t depth, int64_t kc_max) {
  return ceil_div(depth, ceil_div(depth, kc_max));
}

// f(item, index, len, offset) for each piece of the global range
// [g, g + len) cut at multiples of size: index = (g + offset) % size.
template <class F>
inline void for_segments(int64_t g, int64_t len, int64_t size, F&& f) {
  for (int64_t off = 0; off < len;) {
    const int64_t item = (g + off) / size, j = (g + off) % size;
    const int64_t l = imin(size - j, len - off);
    f(item, j, l, off);
    off += l;
  }
}

// Rows [i0, i0 + rows) x global depth [k0, k0 + kc) of op(A) as k-major
// MR-row tiles (tile[k * MR + r]); rows past the block are zero.
template <int MR>
void pack_a(const GemmParams& p, const GemmBatch& bt, const float* a, int64_t i0,
            int64_t rows, int64_t k0, int64_t kc, float* dst) {
  const int64_t tiles = ceil_div(rows, MR);
  for_segments(k0, kc, p.k, [&](int64_t item, int64_t kd, int64_t len, int64_t koff) {
    const float* ai = a + item * bt.stride_a;
    for (int64_t t = 0; t < tiles; ++t) {
      float* d = dst + t * MR * kc + koff * MR;
      const int64_t r0 = i0 + t * MR, nr = imin(MR, i0 + rows - r0);
      if (p.trans_a) {
        for (int64_t k = 0; k < len; ++k) {
          const float* s = ai + (kd + k) * p.lda + r0;
          for (int64_t r = 0; r < nr; ++r) d[k * MR + r] = s[r];
          for (int64_t r = nr; r < MR; ++r) d[k * MR + r] = 0.0f;
        }
      } else if (nr == MR) {
        // MR row streams read in step, so the writes are contiguous.
        const float* s[MR];
        for (int r = 0; r < MR; ++r) s[r] = ai + (r0 + r) * p.lda + kd;
        for (int64_t k = 0; k < len; ++k)
          for (int r = 0; r < MR; ++r) d[k * MR + r] = s[r][k];
      } else {
        for (int64_t r = 0; r < MR; ++r) {
          const float* s = ai + (r0 + r) * p.lda + kd;
          for (int64_t k = 0; k < len; ++k) d[k * MR + r] = r < nr ? s[k] : 0.0f;
        }
      }
    }
  });
}

#ifdef __AVX512F__
// GCC 12 flags its own unpack/shuffle intrinsics (_mm512_undefined_ps
// inside, GCC PR 105593); the warning is spurious.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
// d[k * ld + i] = s[i][k0 + k] for i, k < 16: a 16x16 transpose in
// registers (pairs, then quads within 128-bit lanes, then lanes), instead
// of 256 scalar stores one cache line apart.
inline void transpose16(const float* const* s, int64_t k0, float* d, int64_t ld) {
  __m512 r[16], u[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(s[i] + k0);
  for (int i = 0; i < 16; i += 2) {
    u[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    u[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // u[4g + q], lane L: rows 4g..4g+3 at k = 4L + q.
  for (int g = 0; g < 16; g += 4) {
    r[g] = _mm512_shuffle_ps(u[g], u[g + 2], 0x44);
    r[g + 1] = _mm512_shuffle_ps(u[g], u[g + 2], 0xEE);
    r[g + 2] = _mm512_shuffle_ps(u[g + 1], u[g + 3], 0x44);
    r[g + 3] = _mm512_shuffle_ps(u[g + 1], u[g + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    __m512 v = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x44);
    __m512 w = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x44);
    _mm512_storeu_ps(d + q * ld, _mm512_shuffle_f32x4(v, w, 0x88));
    _mm512_storeu_ps(d + (4 + q) * ld, _mm512_shuffle_f32x4(v, w, 0xDD));
    v = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xEE);
    w = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xEE);
    _mm512_storeu_ps(d + (8 + q) * ld, _mm512_shuffle_f32x4(v, w, 0x88));
    _mm512_storeu_ps(d + (12 + q) * ld, _mm512_shuffle_f32x4(v, w, 0xDD));
  }
}
#pragma GCC diagnostic pop
#elif defined(__AVX2__)
// d[k * ld + i] = s[i][k0 + k] for i, k < 8: the AVX2 level's 8x8 register
// transpose (pairs, quads, then 128-bit lanes), for the same reason.
inline void transpose8(const float* const* s, int64_t k0, float* d, int64_t ld) {
  __m256 r[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s[i] + k0);
  for (int i = 0; i < 8; i += 2) {
    u[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    u[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 8; g += 4) {
    r[g] = _mm256_shuffle_ps(u[g], u[g + 2], 0x44);
    r[g + 1] = _mm256_shuffle_ps(u[g], u[g + 2], 0xEE);
    r[g + 2] = _mm256_shuffle_ps(u[g + 1], u[g + 3], 0x44);
    r[g + 3] = _mm256_shuffle_ps(u[g + 1], u[g + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(d + q * ld, _mm256_permute2f128_ps(r[q], r[4 + q], 0x20));
    _mm256_storeu_ps(d + (4 + q) * ld, _mm256_permute2f128_ps(r[q], r[4 + q], 0x31));
  }
}
#endif

// Global depth [k0, k0 + kc) x global columns [g, g + cols) of op(B), with
// op(B) = B^T, as one k-major NR-column tile (tile[k * NR + c]): each of its
// columns is a contiguous source row. Columns past cols are zero.
template <int NR>
void pack_bt_tile(const GemmParams& p, const GemmBatch& bt, const float* b, int64_t k0,
                  int64_t kc, int64_t g, int64_t cols, float* d) {
  for_segments(k0, kc, p.k, [&](int64_t kitem, int64_t kd, int64_t klen, int64_t koff) {
    for_segments(g, cols, p.n, [&](int64_t citem, int64_t j, int64_t clen, int64_t coff) {
      const float* bi = b + (bt.reduce ? kitem : citem) * bt.stride_b;
      float* dd = d + koff * NR + coff;
      int64_t c = 0;
#ifdef __AVX512F__
      for (; c + 16 <= clen; c += 16) {
        const float* rows[16];
        for (int i = 0; i < 16; ++i) rows[i] = bi + (j + c + i) * p.ldb + kd;
        int64_t k = 0;
        for (; k + 16 <= klen; k += 16) transpose16(rows, k, dd + k * NR + c, NR);
        for (; k < klen; ++k)
          for (int i = 0; i < 16; ++i) dd[k * NR + c + i] = rows[i][k];
      }
#elif defined(__AVX2__)
      for (; c + 8 <= clen; c += 8) {
        const float* rows[8];
        for (int i = 0; i < 8; ++i) rows[i] = bi + (j + c + i) * p.ldb + kd;
        int64_t k = 0;
        for (; k + 8 <= klen; k += 8) transpose8(rows, k, dd + k * NR + c, NR);
        for (; k < klen; ++k)
          for (int i = 0; i < 8; ++i) dd[k * NR + c + i] = rows[i][k];
      }
#endif
      for (; c < clen; ++c) {
        const float* s = bi + (j + c) * p.ldb + kd;
        for (int64_t k = 0; k < klen; ++k) dd[k * NR + c] = s[k];
      }
    });
  });
  if (cols < NR)
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t c = cols; c < NR; ++c) d[k * NR + c] = 0.0f;
}

// Output positions o in [lo, hi) of an axis whose input index o * stride +
// off lies in [0, n_in) (conv_common.h's valid_range, restated here without
// std::min: see the header comment).
struct AxisRange {
  int64_t lo, hi;
};
inline AxisRange axis_range(int64_t off, int64_t stride, int64_t n_in, int64_t n_out) {
  int64_t lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t hi = n_in - 1 - off >= 0 ? (n_in - 1 - off) / stride + 1 : 0;
  hi = imin(hi, n_out);
  return {imin(lo, hi), hi};
}

// One run of an im2col panel row: len <= NR columns inside one output row
// and one B tile. The runs of a panel are the same for every row of the
// column matrix (only the channel / tap offset and the valid ranges
// change), so they are cut once per panel (im2col_runs) and replayed per row.
struct Im2colRun {
  int64_t dst;     // tile * NR * kc + column in tile
  int64_t src;     // item * stride_b + oh * stride_h * w_in + ow * stride_w
  int64_t oh, ow;  // output row and first output column
  int64_t len;
};

// Up to max runs of global columns [g, g + ncb), starting at column *col
// (advanced past the runs returned).
template <int NR>
int64_t im2col_runs(const GemmParams& p, const GemmBatch& bt, int64_t kc, int64_t g,
                    int64_t ncb, int64_t* col, Im2colRun* runs, int64_t max) {
  const Conv2dParams& cv = *bt.im2col;
  const int64_t wo = cv.w_out;
  int64_t c0 = *col, item = (g + c0) / p.n, q = (g + c0) % p.n, oh = q / wo, ow = q % wo;
  int64_t n = 0;
  while (c0 < ncb && n < max) {
    const int64_t w = c0 % NR;
    const int64_t len = imin(imin(wo - ow, ncb - c0), NR - w);
    runs[n++] = {(c0 / NR) * NR * kc + w,
                 item * bt.stride_b + oh * cv.stride_h * cv.w_in + ow * cv.stride_w, oh, ow,
                 len};
    c0 += len, ow += len;
    if (ow == wo) {
      ow = 0;
      if (++oh == cv.h_out) oh = 0, ++item;
    }
  }
  *col = c0;
  return n;
}

// The runs' input rows come from DRAM once per panel, channel by channel:
// a row cut into short runs a plane apart is no stream the hardware
// prefetcher follows. While channel c's first KH taps are gathered, the
// packer fetches channel c + 1's (plane) input rows for tap row i, one tap
// row per call. Only where a run's taps span a few cache lines: a dilation
// of 2^40 (valid, all but one tap in the padding) would be 2^36 prefetches.
inline void prefetch_im2col_rows(const Conv2dParams& cv, const float* plane, int64_t i,
                                 const Im2colRun* runs, int64_t nruns) {
  const int64_t span = 1 + (cv.kw - 1) * cv.dil_w;
  if (span > 64 || cv.stride_w > 4) return;
  const float* next = plane + (i * cv.dil_h - cv.pad_top) * cv.w_in - cv.pad_left;
  for (int64_t r = 0; r < nruns; ++r) {
    const float* row = next + runs[r].src;
    const int64_t last = (runs[r].len - 1) * cv.stride_w + span;
    for (int64_t q = 0; q < last; q += 16) __builtin_prefetch(row + q);
    __builtin_prefetch(row + last - 1);
  }
}

#ifdef __AVX512F__
// Lanes [lo, hi) of 16 (clamped) as a mask.
inline __mmask16 lanes(int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : imin(lo, 16), hi = hi < lo ? lo : imin(hi, 16);
  return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
// Bits of m (8 bits) at the even positions of 16: the lanes of a pair of
// source vectors that hold elements 2u.
inline __mmask16 spread_even(uint32_t m) {
  m &= 0xffu;
  m = (m | (m << 4)) & 0x0f0fu;
  m = (m | (m << 2)) & 0x3333u;
  m = (m | (m << 1)) & 0x5555u;
  return static_cast<__mmask16>(m);
}
#endif

// d[u] = src[u * s] for u in [a, e), 0 for the rest of u < len (len <= NR):
// the portable gather of one run, for the levels without masked loads and
// the shapes the AVX-512 path below does not take.
inline void im2col_run(const float* src, int64_t s, int64_t len, int64_t a, int64_t e,
                       float* __restrict d) {
  for (int64_t u = 0; u < a; ++u) d[u] = 0.0f;
  if (s == 1)
    for (int64_t u = a; u < e; ++u) d[u] = src[u];
  else
    for (int64_t u = a; u < e; ++u) d[u] = src[u * s];
  for (int64_t u = e; u < len; ++u) d[u] = 0.0f;
}

// Rows [k0 + r0, k0 + r1) x global columns [g, g + ncb) of the column
// matrix of GemmBatch::im2col into the NR-wide k-major tiles of a panel (as
// pack_b_row). Row (c*KH + i)*KW + j reads x[c, oh*sh + i*dh - pt,
// ow*sw + j*dw - pl], zero outside the input. Never writing the column
// matrix saves a store and a reload of C_g*KH*KW*Ho*Wo floats per image
// (ResNet-18's 3x3/2 downsampling layer: 29 MB per batch of 16, out of cache
// by the time a GEMM would pack it); the panel is written once, into L2.
template <int NR>
void pack_b_im2col(const GemmParams& p, const GemmBatch& bt, const float* b, int64_t k0,
                   int64_t kc, int64_t r0, int64_t r1, int64_t g, int64_t ncb, float* d) {
  const Conv2dParams& cv = *bt.im2col;
  const int64_t taps = cv.kh * cv.kw, plane = cv.h_in * cv.w_in;
  constexpr int64_t kRuns = 64;
  Im2colRun runs[kRuns];
#ifdef __AVX512F__
  // Unit and 2 strides, kernels up to 16 wide and 32 tall: each run's masks
  // (which lanes a tap column j reads, which tap rows i are inside the
  // input) are worked out once per panel, so the per-row loop is loads,
  // a permute and a store per 16 lanes -- cut afresh per row (valid ranges,
  // clamps, mask arithmetic), the gather cost a third of the GEMM's time.
  // Masked loads never touch the padding's addresses, so a run needs no
  // scalar head or tail; stride 2 (ResNet's 3x3/2, the 7x7/2 stem) keeps
  // the even lanes of two loads with one permute.
  struct RunMasks {
    __mmask16 ld[16][2][2];  // [j][vector][source half]
    __mmask16 st[2];
    uint32_t rows;  // bit i: output row inside the input for tap row i
    int64_t nv;
  };
  const bool fast = cv.stride_w <= 2 && cv.kw <= 16 && cv.kh <= 32;
  RunMasks masks[fast ? kRuns : 1];
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28,
                                         30);
#endif
  for (int64_t col = 0; col < ncb;) {
    const int64_t nruns = im2col_runs<NR>(p, bt, kc, g, ncb, &col, runs, kRuns);
#ifdef __AVX512F__
    if (fast) {
      for (int64_t r = 0; r < nruns; ++r) {
        const Im2colRun& run = runs[r];
        RunMasks& m = masks[r];
        m.nv = (run.len + 15) / 16;
        m.st[0] = lanes(0, run.len), m.st[1] = lanes(0, run.len - 16);
        m.rows = 0;
        for (int64_t i = 0; i < cv.kh; ++i) {
          const AxisRange rh = axis_range(i * cv.dil_h - cv.pad_top, cv.stride_h, cv.h_in,
                                          cv.h_out);
          if (run.oh >= rh.lo && run.oh < rh.hi) m.rows |= 1u << i;
        }
        for (int64_t j = 0; j < cv.kw; ++j) {
          const AxisRange rw = axis_range(j * cv.dil_w - cv.pad_left, cv.stride_w, cv.w_in,
                                          cv.w_out);
          for (int v = 0; v < 2; ++v) {
            const __mmask16 valid = lanes(rw.lo - run.ow - 16 * v, rw.hi - run.ow - 16 * v) &
                                    m.st[v];
            m.ld[j][v][0] = cv.stride_w == 1 ? valid : spread_even(valid);
            m.ld[j][v][1] = spread_even(valid >> 8);
          }
        }
      }
      for (int64_t k = r0; k < r1; ++k) {
        const int64_t kd = k0 + k, c = kd / taps, t = kd % taps, i = t / cv.kw, j = t % cv.kw;
        const float* base = b + c * plane + (i * cv.dil_h - cv.pad_top) * cv.w_in +
                            j * cv.dil_w - cv.pad_left;
        float* dk = d + k * NR;
        if (t < cv.kh && c + 1 < p.k / taps)
          prefetch_im2col_rows(cv, b + (c + 1) * plane, t, runs, nruns);
        for (int64_t r = 0; r < nruns; ++r) {
          const RunMasks& m = masks[r];
          float* dst = dk + runs[r].dst;
          const float* src = base + runs[r].src;
          if (!(m.rows >> i & 1u)) {
            for (int64_t v = 0; v < m.nv; ++v)
              _mm512_mask_storeu_ps(dst + 16 * v, m.st[v], _mm512_setzero_ps());
          } else if (cv.stride_w == 1) {
            for (int64_t v = 0; v < m.nv; ++v)
              _mm512_mask_storeu_ps(dst + 16 * v, m.st[v],
                                    _mm512_maskz_loadu_ps(m.ld[j][v][0], src + 16 * v));
          } else {
            for (int64_t v = 0; v < m.nv; ++v) {
              const __m512 lo = _mm512_maskz_loadu_ps(m.ld[j][v][0], src + 32 * v);
              const __m512 hi = _mm512_maskz_loadu_ps(m.ld[j][v][1], src + 32 * v + 16);
              _mm512_mask_storeu_ps(dst + 16 * v, m.st[v], _mm512_permutex2var_ps(lo, even, hi));
            }
          }
        }
      }
      continue;
    }
#endif
    for (int64_t k = r0; k < r1; ++k) {
      const int64_t kd = k0 + k, c = kd / taps, t = kd % taps;
      const int64_t off_h = (t / cv.kw) * cv.dil_h - cv.pad_top;
      const int64_t off_w = (t % cv.kw) * cv.dil_w - cv.pad_left;
      const AxisRange rh = axis_range(off_h, cv.stride_h, cv.h_in, cv.h_out);
      const AxisRange rw = axis_range(off_w, cv.stride_w, cv.w_in, cv.w_out);
      const float* base = b + c * plane + off_h * cv.w_in + off_w;
      float* dk = d + k * NR;
      if (t < cv.kh && c + 1 < p.k / taps)
        prefetch_im2col_rows(cv, b + (c + 1) * plane, t, runs, nruns);
      for (int64_t r = 0; r < nruns; ++r) {
        const Im2colRun& run = runs[r];
        // Rows the convolution reads only as padding gather nothing.
        const bool inside = run.oh >= rh.lo && run.oh < rh.hi;
        const int64_t a = inside ? rw.lo - run.ow : 0, e = inside ? rw.hi - run.ow : 0;
        im2col_run(base + run.src, cv.stride_w, run.len, a < 0 ? 0 : imin(a, run.len),
                   e < 0 ? 0 : imin(e, run.len), dk + run.dst);
      }
    }
  }
  const int64_t tail = ncb % NR;
  if (tail)
    for (int64_t k = r0; k < r1; ++k)
      for (int64_t cc = tail; cc < NR; ++cc) d[(ncb / NR) * NR * kc + k * NR + cc] = 0.0f;
}

// Rows ahead that pack_b_row prefetches: 2 rows gained over none, 4 over
// 2 on the tall-skinny shapes (one thread, interleaved runs); 8-32 no more.
constexpr int64_t kPrefetchRows = 4;

// Row k0 + k of op(B) = B over global columns [g, g + ncb) into the NR-wide
// tiles of a panel (tile t at d + t * NR * kc). Row by row, so the source
// is read contiguously (a tile at a time would touch kc rows, and as many
// pages, per 32 floats); columns past ncb in the last tile are zero.
template <int NR>
void pack_b_row(const GemmParams& p, const GemmBatch& bt, const float* b, int64_t k0,
                int64_t kc, int64_t k, int64_t g, int64_t ncb, float* d) {
  const int64_t kitem = (k0 + k) / p.k, kd = (k0 + k) % p.k;
  // Walk the items' segments incrementally: with 7x7 planes a row holds
  // many short segments, and a division per segment showed in profiles.
  int64_t item = bt.reduce ? kitem : g / p.n, j = bt.reduce ? g : g % p.n;
  for (int64_t col = 0; col < ncb;) {
    const int64_t len = imin(p.n - j, ncb - col);
    const float* s = b + item * bt.stride_b + kd * p.ldb + j;
    // Rows are p.ldb apart, so each row's segment is a new stream the
    // hardware prefetcher must first detect (and it stops at 4 KB pages):
    // fetch the segment kPrefetchRows rows ahead while this one copies.
    if (kd + kPrefetchRows < p.k)
      for (int64_t q = 0; q < len; q += 16) __builtin_prefetch(s + kPrefetchRows * p.ldb + q);
    for (int64_t q = 0; q < len;) {
      const int64_t t = (col + q) / NR, w = (col + q) % NR, l = imin(NR - w, len - q);
      float* dd = d + t * NR * kc + k * NR + w;
      for (int64_t e = 0; e < l; ++e) dd[e] = s[q + e];
      q += l;
    }
    col += len, j = 0, ++item;
  }
  const int64_t tail = ncb % NR;
  if (tail)
    for (int64_t c = tail; c < NR; ++c) d[(ncb / NR) * NR * kc + k * NR + c] = 0.0f;
}

// Adds one slab's MR x NR product (acc, NR floats per row) to C rows
// [i0, i0 + mr) and global columns [g, g + nr); the first slab also applies
// beta and the row bias, the last one the ReLU.
template <int NR>
void write_tile(const GemmParams& p, const GemmBatch& bt, const GemmEpilogue& ep, float* c,
                const float* acc, int64_t i0, int64_t mr, int64_t g, int64_t nr, bool first,
                bool last) {
  const float alpha = p.alpha, beta = p.beta;
  const bool relu = last && ep.relu;
  for_segments(g, nr, p.n, [&](int64_t item, int64_t j, int64_t len, int64_t off) {
    float* ci = c + item * bt.stride_c;
    for (int64_t r = 0; r < mr; ++r) {
      float* crow = ci + (i0 + r) * p.ldc + j;
      const float* arow = acc + r * NR + off;
      if (first) {
        const float bias = ep.row_bias ? ep.row_bias[i0 + r] : 0.0f;
        // beta == 0 overwrites, so NaNs already in C do not leak in.
        if (beta == 0.0f)
          for (int64_t q = 0; q < len; ++q) crow[q] = bias + alpha * arow[q];
        else
          for (int64_t q = 0; q < len; ++q) crow[q] = (beta * crow[q] + bias) + alpha * arow[q];
      } else {
        for (int64_t q = 0; q < len; ++q) crow[q] += alpha * arow[q];
      }
      // `c < 0 ? 0 : c` keeps NaN as NaN (torch's relu); `c > 0 ? c : 0` would not.
      if (relu)
        for (int64_t q = 0; q < len; ++q) crow[q] = crow[q] < 0.0f ? 0.0f : crow[q];
    }
  });
}

// Modes of Micro::run_c (microkernels with kDirectC).
constexpr int kAccumulate = 1, kRelu = 2;

// Micro::kHalfTail where the microkernel defines it (with run_half, the
// left NR / 2 columns of a tile), else false.
template <class Micro>
constexpr auto half_tail(int) -> decltype(Micro::kHalfTail, bool()) {
  return Micro::kHalfTail;
}
template <class Micro>
constexpr bool half_tail(long) {
  return false;
}

// One MR x NR tile of C for one slab: a microkernel with kDirectC writes the
// tile's mr rows straight into C when its NR columns lie in one item and the
// epilogue is additions only (alpha == 1, and beta == 0 or 1 without a bias
// on the first slab); anything else goes through acc and write_tile. Which path a tile
// takes depends on the shape, never on the thread count.
template <class Micro>
inline void tile_product(const GemmParams& p, const GemmBatch& bt, const GemmEpilogue& ep,
                         float* c, int64_t kc, const float* at, const float* btile, int64_t i0,
                         int64_t mr, int64_t g, int64_t nr, bool first, bool last) {
  constexpr int MR = Micro::MR, NR = Micro::NR;
  if constexpr (Micro::kDirectC) {
    const int64_t item = g / p.n, j = g % p.n;
    // beta == 1 without a bias on the first slab is an accumulation too (the
    // Winograd weight gradient's later tile blocks): c + product, where
    // write_tile computes (1 * c + 0) + product -- the same sum, except that
    // it turns a -0 c into +0 first.
    const bool add_first = first && p.beta == 1.0f && !ep.row_bias;
    if (nr == NR && j + NR <= p.n && p.alpha == 1.0f &&
        (!first || p.beta == 0.0f || add_first)) {
      const float* bias = first && ep.row_bias ? ep.row_bias + i0 : nullptr;
      const int mode = (first && !add_first ? 0 : kAccumulate) | (last && ep.relu ? kRelu : 0);
      Micro::run_c(kc, at, btile, NR, c + item * bt.stride_c + i0 * p.ldc + j, p.ldc, mr, bias,
                   mode);
      return;
    }
  }
  alignas(64) float acc[MR * NR];
  if constexpr (half_tail<Micro>(0)) {
    if (nr <= NR / 2) {
      Micro::run_half(kc, at, btile, NR, acc);
      write_tile<NR>(p, bt, ep, c, acc, i0, mr, g, nr, first, last);
      return;
    }
  }
  Micro::run(kc, at, btile, NR, acc);
  write_tile<NR>(p, bt, ep, c, acc, i0, mr, g, nr, first, last);
}

// Micro::run(kc, a_tile, b_tile, ldb, out) writes the MR x NR product of
// one packed A tile and one B tile (rows ldb apart: NR when packed) to out
// (row-major, NR per row).
template <class Micro>
void gemm_driver(const GemmParams& p, const GemmBatch& bt, const GemmEpilogue& ep,
                 const float* a, const float* b, float* c, float* apack, float* bpack) {
  constexpr int MR = Micro::MR, NR = Micro::NR;
  constexpr int64_t KC = Micro::KC, NC = Micro::NC, MC = Micro::MC;
  static_assert(MC % MR == 0 && NC % NR == 0, "blocks must hold whole tiles");
  const int64_t cols_total = global_cols(p, bt), depth_total = global_depth(p, bt);
  const int64_t kstep = slab_depth(depth_total, KC);
  // Row blocks of at most MC rows, as even as whole tiles allow, so that
  // threads get similar work.
  const int64_t m_tiles = ceil_div(p.m, MR);
  const int64_t n_ic = ceil_div(m_tiles, MC / MR);
  const int64_t block_tiles = ceil_div(m_tiles, n_ic);

#pragma omp parallel
  {
    int tid = 0, nt = 1;
#ifdef _OPENMP
    tid = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
    float* my_apack = apack + tid * Micro::kApack;
    for (int64_t jc = 0; jc < cols_total; jc += NC) {
      const int64_t ncb = imin(NC, cols_total - jc);
      const int64_t nj = ceil_div(ncb, NR);
      // Column chunks per row block: enough tasks for every thread, and a
      // multiple of the thread count when the row blocks alone are not.
      // Static: each thread packs each of its A blocks once. (Tried: four
      // tasks per thread handed out dynamically, which had every thread
      // pack every A block; with the Winograd weight gradient's 504 small
      // GEMMs, 192 x 64 x 224, AlexNet conv2's backward took 100-168 ms
      // against 72-136 before, and 80-137 static again.)
      const int64_t jsplit = imin(nj, nt / gcd(n_ic, nt));
      const int64_t tasks = n_ic * jsplit;
      for (int64_t pc = 0; pc < depth_total; pc += kstep) {
        const int64_t kc = imin(kstep, depth_total - pc);
        const bool first = pc == 0, last = pc + kc == depth_total;
        if (p.trans_b) {
#pragma omp for schedule(static)
          for (int64_t tj = 0; tj < nj; ++tj)
            pack_bt_tile<NR>(p, bt, b, pc, kc, jc + tj * NR, imin(NR, ncb - tj * NR),
                             bpack + tj * NR * kc);
        } else if (bt.im2col) {
#pragma omp for schedule(static)
          for (int64_t k = 0; k < kc; k += 8)
            pack_b_im2col<NR>(p, bt, b, pc, kc, k, imin(kc, k + 8), jc, ncb, bpack);
        } else {
#pragma omp for schedule(static)
          for (int64_t k = 0; k < kc; ++k) pack_b_row<NR>(p, bt, b, pc, kc, k, jc, ncb, bpack);
        }
        int64_t packed = -1;
#pragma omp for schedule(static)
        for (int64_t task = 0; task < tasks; ++task) {
          const int64_t ic = task / jsplit, chunk = task % jsplit;
          const int64_t t0 = ic * block_tiles, t1 = imin(m_tiles, t0 + block_tiles);
          const int64_t i0 = t0 * MR, rows = imin(p.m, t1 * MR) - i0;
          if (ic != packed) {
            pack_a<MR>(p, bt, a, i0, rows, pc, kc, my_apack);
            packed = ic;
          }
          const int64_t j0 = chunk * nj / jsplit, j1 = (chunk + 1) * nj / jsplit;
          for (int64_t tj = j0; tj < j1; ++tj) {
            const int64_t g = jc + tj * NR, nr = imin(NR, cols_total - g);
            for (int64_t ti = t0; ti < t1; ++ti)
              tile_product<Micro>(p, bt, ep, c, kc, my_apack + (ti - t0) * MR * kc,
                                  bpack + tj * NR * kc, ti * MR, imin(MR, p.m - ti * MR), g, nr,
                                  first, last);
          }
        }
      }
    }
  }
}

// All of op(A)'s rows of a slab fit the per-thread A buffer (kApack: M <=
// MC always; more rows when K is shallow, as a 1x1 layer's 256 x 64
// weights, or the ISA's buffer is larger): a shared packed B panel would be
// written and read back for only 2*M flops per element, with barriers
// around it. Instead each thread packs all of A and takes chunks of
// kChunkTiles column tiles, packs the chunk's B privately and runs it
// against every row tile.
// Read in place (row stride ldb), a tile's kc rows sit on kc different
// pages and are re-read for every row tile (measured on the AVX2 machine,
// 2 threads: copied wins at M = 96, 143 vs 88 GFLOP/s at K = 1024, N =
// 4096, and ties at M = 64). Packed row by row over 8 tiles, each B row is
// read 512 bytes at a stretch; copied a tile (64 bytes per row) at a time,
// the kc rows were as many streams, more than the hardware prefetcher
// follows, and the copy took ~25% of a 64 x 363 x 48400 profile.
constexpr int64_t kChunkTiles = 8;

template <class Micro>
void gemm_small_m(const GemmParams& p, const GemmBatch& bt, const GemmEpilogue& ep,
                  const float* a, const float* b, float* c, float* apack, float* bpack) {
  constexpr int MR = Micro::MR, NR = Micro::NR;
  constexpr int64_t KC = Micro::KC, MC = Micro::MC, NC = Micro::NC;
  const int64_t cols_total = global_cols(p, bt), depth_total = global_depth(p, bt);
  const int64_t kstep = slab_depth(depth_total, KC);
  const int64_t m_tiles = ceil_div(p.m, MR), n_tiles = ceil_div(cols_total, NR);
  // Tiles packed at a time: every thread's chunk fits in the buffer's
  // KC * max(NC, threads * NR) floats, and a narrow C (a Winograd weight
  // gradient's 64 columns: 4 tiles) still gives every thread chunks.
  const int64_t nthreads = omp_threads();
  int64_t chunk = imin(imin(kChunkTiles, NC / NR / nthreads), n_tiles / (4 * nthreads));
  if (chunk < 1) chunk = 1;
  const int64_t n_chunks = ceil_div(n_tiles, chunk);

#pragma omp parallel
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float* my_apack = apack + tid * Micro::kApack;
    float* my_bpack = bpack + tid * chunk * NR * KC;
    for (int64_t pc = 0; pc < depth_total; pc += kstep) {
      const int64_t kc = imin(kstep, depth_total - pc);
      bool packed = false;
      // Chunks are handed out dynamically: on a shared or preempted core a
      // static split left the other thread waiting at the slab's barrier.
      // Every tile's sums are the same whichever thread computes it (the
      // depth is never split), so results stay bitwise identical.
#pragma omp for schedule(dynamic, 1)
      for (int64_t ch = 0; ch < n_chunks; ++ch) {
        if (!packed) pack_a<MR>(p, bt, a, 0, p.m, pc, kc, my_apack), packed = true;
        const int64_t tc = ch * chunk;
        const int64_t tiles = imin(chunk, n_tiles - tc), g0 = tc * NR;
        const int64_t cols = imin(tiles * NR, cols_total - g0);
        if (p.trans_b) {
          for (int64_t t = 0; t < tiles; ++t)
            pack_bt_tile<NR>(p, bt, b, pc, kc, g0 + t * NR, imin(NR, cols - t * NR),
                             my_bpack + t * NR * kc);
        } else if (bt.im2col) {
          pack_b_im2col<NR>(p, bt, b, pc, kc, 0, kc, g0, cols, my_bpack);
        } else {
          for (int64_t k = 0; k < kc; ++k) pack_b_row<NR>(p, bt, b, pc, kc, k, g0, cols, my_bpack);
        }
        // Row tiles outer: each C row is then written 8 tiles (512 bytes) in
        // a row rather than 64 bytes per visit; with K = 64 (256 x 64 x
        // 50176, a 1x1 expand) the C writes dominate and this order ran
        // +14% at one thread; neutral at K = 256-576. The A tile stays in
        // L1, the chunk's B tiles in L2.
        for (int64_t ti = 0; ti < m_tiles; ++ti)
          for (int64_t t = 0; t < tiles; ++t) {
            const int64_t g = g0 + t * NR;
            tile_product<Micro>(p, bt, ep, c, kc, my_apack + ti * MR * kc,
                                my_bpack + t * NR * kc, ti * MR, imin(MR, p.m - ti * MR), g,
                                imin(NR, cols_total - g), pc == 0, pc + kc == depth_total);
          }
      }
    }
  }
}

template <class Micro>
void gemm_entry(const GemmParams& p, const GemmBatch& bt, const GemmEpilogue& ep,
                const float* a, const float* b, float* c, float* apack, float* bpack) {
  // The small-M path packs all of A's rows per slab into one kApack buffer
  // and splits only the columns: past MC rows it is taken only when there
  // are columns enough for every thread (a 192 x 64 Winograd weight
  // gradient is 4 column tiles: the row blocks split it better).
  constexpr int64_t MR = Micro::MR, NR = Micro::NR;
  if (p.m <= Micro::MC ||
      (ceil_div(p.m, MR) * MR * slab_depth(global_depth(p, bt), Micro::KC) <= Micro::kApack &&
       ceil_div(global_cols(p, bt), NR) >= 8 * omp_threads()))
    gemm_small_m<Micro>(p, bt, ep, a, b, c, apack, bpack);
  else
    gemm_driver<Micro>(p, bt, ep, a, b, c, apack, bpack);
}

}  // namespace
}  // namespace striate::cpu
