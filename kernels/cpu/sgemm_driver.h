// The packed SGEMM driver, included by exactly one translation unit per ISA
// level (sgemm_baseline.cpp, sgemm_avx2.cpp, sgemm_avx512.cpp), each compiled
// with its own flags. Everything here sits in an anonymous namespace and
// uses no standard-library templates: an inline function instantiated in an
// AVX-512 unit must never be merged by the linker into code that runs on an
// older CPU.
//
// Structure (Goto/BLIS): for each KC-deep slab, op(A) is packed into MR-row
// tiles and op(B), NC columns at a time, into NR-column tiles, both k-major so
// the microkernel streams them linearly. Threads split the (column tile, row
// tile) grid of C, never K, so every element of C is summed in the same order
// for any thread count. Column tiles are the outer index: consecutive tasks
// of one thread reuse the same B tile (KC x NR, in L1) across row tiles.
#pragma once

#include <cstdint>

#include "sgemm_isa.h"

namespace striate::cpu {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// Rows [0, m) x depth [k0, k0 + kc) of op(A) as ceil(m/MR) k-major tiles
// (tile[k * MR + r]); rows past m are zero.
template <int MR>
void pack_a(const GemmParams& p, const float* a, int64_t k0, int64_t kc, float* dst) {
  const int64_t tiles = (p.m + MR - 1) / MR;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    float* d = dst + t * MR * kc;
    const int64_t rows = imin(MR, p.m - t * MR);
    if (!p.trans_a) {
      for (int64_t r = 0; r < rows; ++r) {
        const float* src = a + (t * MR + r) * p.lda + k0;
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = src[k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = a + (k0 + k) * p.lda + t * MR;
        for (int64_t r = 0; r < rows; ++r) d[k * MR + r] = src[r];
      }
    }
    for (int64_t r = rows; r < MR; ++r)
      for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = 0.0f;
  }
}

// Depth [k0, k0 + kc) x columns [j0, j0 + nc) of op(B) as ceil(nc/NR)
// k-major tiles (tile[k * NR + c]); columns past nc are zero.
template <int NR>
void pack_b(const GemmParams& p, const float* b, int64_t k0, int64_t kc, int64_t j0,
            int64_t nc, float* dst) {
  const int64_t tiles = (nc + NR - 1) / NR;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    float* d = dst + t * NR * kc;
    const int64_t cols = imin(NR, nc - t * NR);
    const int64_t jt = j0 + t * NR;
    if (!p.trans_b) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = b + (k0 + k) * p.ldb + jt;
        float* dk = d + k * NR;
        for (int64_t c = 0; c < cols; ++c) dk[c] = src[c];
        for (int64_t c = cols; c < NR; ++c) dk[c] = 0.0f;
      }
    } else {
      for (int64_t c = 0; c < cols; ++c) {
        const float* src = b + (jt + c) * p.ldb + k0;
        for (int64_t k = 0; k < kc; ++k) d[k * NR + c] = src[k];
      }
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t c = cols; c < NR; ++c) d[k * NR + c] = 0.0f;
    }
  }
}

// Micro::run(kc, a_tile, b_tile, out) writes the MR x NR product of one A
// tile and one B tile to out (row-major, NR per row).
template <class Micro>
void gemm_driver(const GemmParams& p, const float* a, const float* b, float* c,
                 float* apack, float* bpack) {
  constexpr int MR = Micro::MR, NR = Micro::NR;
  const int64_t m_tiles = (p.m + MR - 1) / MR;
  for (int64_t k0 = 0; k0 < p.k; k0 += Micro::KC) {
    const int64_t kc = imin(Micro::KC, p.k - k0);
    pack_a<MR>(p, a, k0, kc, apack);
    for (int64_t j0 = 0; j0 < p.n; j0 += Micro::NC) {
      const int64_t nc = imin(Micro::NC, p.n - j0);
      pack_b<NR>(p, b, k0, kc, j0, nc, bpack);
      const int64_t n_tiles = (nc + NR - 1) / NR;
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t tj = 0; tj < n_tiles; ++tj)
        for (int64_t ti = 0; ti < m_tiles; ++ti) {
          alignas(64) float acc[MR * NR];
          Micro::run(kc, apack + ti * MR * kc, bpack + tj * NR * kc, acc);
          const int64_t i0 = ti * MR, jj = j0 + tj * NR;
          const int64_t mr = imin(MR, p.m - i0), nr = imin(NR, p.n - jj);
          for (int64_t r = 0; r < mr; ++r) {
            float* crow = c + (i0 + r) * p.ldc + jj;
            const float* arow = acc + r * NR;
            for (int64_t q = 0; q < nr; ++q) crow[q] += p.alpha * arow[q];
          }
        }
    }
  }
}

template <class Micro>
void gemm_entry(const GemmParams& p, const float* a, const float* b, float* c, float* apack,
                float* bpack) {
  gemm_driver<Micro>(p, a, b, c, apack, bpack);
}

}  // namespace
}  // namespace striate::cpu
