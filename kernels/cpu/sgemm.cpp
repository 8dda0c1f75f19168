// Portable packed SGEMM (row-major). The structure is the classic
// Goto/BLIS one -- pack a KC-deep slab of op(A) and op(B) into tile-major
// panels, then run an MR x NR register-blocked microkernel over the tiles --
// so that the fast-kernels work can swap in per-ISA microkernels without
// touching the blocking. The microkernel is plain C++ that the compiler
// vectorizes over NR.
//
// Determinism: threads split the (M, N) tiles, never K; every C element is
// summed in the same k order whatever the thread count.
#include <algorithm>
#include <cassert>
#include <vector>

#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

constexpr int64_t MR = 4;
constexpr int64_t NR = 16;
constexpr int64_t KC = 256;
constexpr int64_t NC = 2048;

// Pack rows [0, m) x depth [k0, k0 + kc) of op(A) as ceil(m/MR) tiles, each
// laid out k-major (tile[k * MR + r]); rows past m are zero.
void pack_a(const GemmParams& p, const float* a, int64_t k0, int64_t kc,
            float* dst) {
  const int64_t tiles = (p.m + MR - 1) / MR;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    float* d = dst + t * MR * kc;
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = 0; r < MR; ++r) {
        const int64_t i = t * MR + r;
        d[k * MR + r] = i >= p.m ? 0.0f
                        : p.trans_a ? a[(k0 + k) * p.lda + i]
                                    : a[i * p.lda + k0 + k];
      }
  }
}

// Pack depth [k0, k0 + kc) x columns [j0, j0 + nc) of op(B) as ceil(nc/NR)
// tiles laid out k-major (tile[k * NR + c]); columns past nc are zero.
void pack_b(const GemmParams& p, const float* b, int64_t k0, int64_t kc,
            int64_t j0, int64_t nc, float* dst) {
  const int64_t tiles = (nc + NR - 1) / NR;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    float* d = dst + t * NR * kc;
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t c = 0; c < NR; ++c) {
        const int64_t j = t * NR + c;
        d[k * NR + c] = j >= nc ? 0.0f
                        : p.trans_b ? b[(j0 + j) * p.ldb + k0 + k]
                                    : b[(k0 + k) * p.ldb + j0 + j];
      }
  }
}

inline void microkernel(int64_t kc, const float* __restrict a,
                        const float* __restrict b, float* __restrict acc) {
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t r = 0; r < MR; ++r) {
      const float av = a[k * MR + r];
      for (int64_t c = 0; c < NR; ++c) acc[r * NR + c] += av * b[k * NR + c];
    }
}

std::vector<float>& scratch_a() {
  static thread_local std::vector<float> buf;
  return buf;
}
std::vector<float>& scratch_b() {
  static thread_local std::vector<float> buf;
  return buf;
}

}  // namespace

void sgemm(const GemmParams& p, const float* a, const float* b, float* c) {
  assert(p.m >= 0 && p.n >= 0 && p.k >= 0);
  if (p.m == 0 || p.n == 0) return;

  // beta first: beta == 0 overwrites (so NaNs already in C do not leak in).
  if (p.beta != 1.0f) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < p.m; ++i) {
      float* row = c + i * p.ldc;
      if (p.beta == 0.0f)
        std::fill(row, row + p.n, 0.0f);
      else
        for (int64_t j = 0; j < p.n; ++j) row[j] *= p.beta;
    }
  }
  if (p.k == 0 || p.alpha == 0.0f) return;

  const int64_t m_tiles = (p.m + MR - 1) / MR;
  std::vector<float>& ap = scratch_a();
  std::vector<float>& bp = scratch_b();
  ap.resize(static_cast<size_t>(m_tiles * MR * std::min(KC, p.k)));
  bp.resize(static_cast<size_t>(((std::min(NC, p.n) + NR - 1) / NR) * NR *
                                std::min(KC, p.k)));

  for (int64_t k0 = 0; k0 < p.k; k0 += KC) {
    const int64_t kc = std::min(KC, p.k - k0);
    pack_a(p, a, k0, kc, ap.data());
    for (int64_t j0 = 0; j0 < p.n; j0 += NC) {
      const int64_t nc = std::min(NC, p.n - j0);
      pack_b(p, b, k0, kc, j0, nc, bp.data());
      const int64_t n_tiles = (nc + NR - 1) / NR;
      const float* apd = ap.data();
      const float* bpd = bp.data();
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t ti = 0; ti < m_tiles; ++ti)
        for (int64_t tj = 0; tj < n_tiles; ++tj) {
          alignas(64) float acc[MR * NR] = {};
          microkernel(kc, apd + ti * MR * kc, bpd + tj * NR * kc, acc);
          const int64_t i0 = ti * MR, jj = j0 + tj * NR;
          const int64_t mr = std::min(MR, p.m - i0);
          const int64_t nr = std::min(NR, p.n - jj);
          for (int64_t r = 0; r < mr; ++r) {
            float* crow = c + (i0 + r) * p.ldc + jj;
            for (int64_t cc = 0; cc < nr; ++cc)
              crow[cc] += p.alpha * acc[r * NR + cc];
          }
        }
    }
  }
}

}  // namespace striate::cpu
