// SGEMM entry points: size the packing buffers and run the implementation of
// the selected ISA level (see include/striate/isa.h).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "sgemm_isa.h"
#include "striate/isa.h"
#include "striate/kernels_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace striate::cpu {
namespace {

const SgemmImpl& sgemm_impl() {
  switch (isa_selected()) {
#ifdef STRIATE_HAVE_X86_ISA
    case Isa::avx512: return sgemm_avx512_impl;
    case Isa::avx2: return sgemm_avx2_impl;
#endif
    default: return sgemm_baseline_impl;
  }
}

// No product to add (k == 0, alpha == 0 or an empty reduction): only the
// beta scaling and the epilogue. beta == 0 overwrites, so NaNs already in C
// do not leak in.
void epilogue_only(const GemmParams& p, const GemmBatch& bt, const GemmEpilogue& ep, float* c) {
  const int64_t items = bt.reduce ? 1 : bt.count;
  for (int64_t it = 0; it < items; ++it)
    for (int64_t i = 0; i < p.m; ++i) {
      float* row = c + it * bt.stride_c + i * p.ldc;
      const float bias = ep.row_bias ? ep.row_bias[i] : 0.0f;
      for (int64_t j = 0; j < p.n; ++j) {
        float v = (p.beta == 0.0f ? 0.0f : p.beta * row[j]) + bias;
        row[j] = ep.relu ? (v < 0.0f ? 0.0f : v) : v;  // NaN stays NaN
      }
    }
}

// A plain GEMM with fewer than 64 columns and many rows (ResNet layer4's
// per-image convolution, 512 x 4608 x 49) runs as its transpose,
// C^T = op(B)^T op(A)^T, into a scratch block, then the epilogue writes C:
// the 12 x 32 tile on 49 columns left a partial last column tile and packed
// all of A per slab for little work; transposed, the few columns are the
// broadcast operand's rows and the many rows fill whole 32-wide vectors.
// Intel AVX-512 host, 2 threads, alternating processes: 512 x 4608 x 49
// 173-187 -> 204-225 GFLOP/s, 256 x 4096 x 63 158-171 -> 194-202. Not
// wider: 256 x 2304 x 196 gained 8%, but 512 x 512 x 128 lost 15% and
// 1024 x 1024 x 200 was even. Every element sums the same products in the
// same k order (products commute exactly); only the bias and beta terms are
// added after the product instead of before it.
bool small_n_transposed(const GemmParams& p, const GemmBatch& bt) {
  return bt.count == 1 && !bt.reduce && bt.im2col == nullptr && p.n < 64 && p.m >= 4 * p.n &&
         p.m * p.k >= (int64_t{1} << 18);
}

void sgemm_transposed(const GemmParams& p, const GemmEpilogue& ep, const float* a,
                      const float* b, float* c) {
  static thread_local std::vector<float> scratch;
  if (scratch.size() < static_cast<size_t>(p.n * p.m)) scratch.resize(p.n * p.m);
  float* ct = scratch.data();  // C^T, n x m
  GemmParams q;
  q.m = p.n, q.n = p.m, q.k = p.k;
  q.trans_a = !p.trans_b, q.lda = p.ldb;  // op(B)^T
  q.trans_b = !p.trans_a, q.ldb = p.lda;  // op(A)^T
  q.ldc = p.m;
  q.alpha = p.alpha, q.beta = 0.0f;
  sgemm_batched(q, GemmBatch{}, GemmEpilogue{}, b, a, ct);
  const int64_t m = p.m, n = p.n;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * p.ldc;
    const float bias = ep.row_bias ? ep.row_bias[i] : 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      float v = ct[j * m + i];
      if (p.beta != 0.0f) v += p.beta * row[j];
      if (ep.row_bias) v += bias;
      row[j] = ep.relu ? (v < 0.0f ? 0.0f : v) : v;  // NaN stays NaN
    }
  }
}

}  // namespace

const char* sgemm_kernel_name() { return sgemm_impl().name; }

void sgemm_batched(const GemmParams& p, const GemmBatch& bt, const GemmEpilogue& ep,
                   const float* a, const float* b, float* c) {
  if (p.m == 0 || p.n == 0 || (!bt.reduce && bt.count == 0)) return;
  if (p.k == 0 || p.alpha == 0.0f || bt.count == 0) {
    epilogue_only(p, bt, ep, c);
    return;
  }
  if (small_n_transposed(p, bt)) return sgemm_transposed(p, ep, a, b, c);
  const SgemmImpl& impl = sgemm_impl();
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  // Packing buffers are thread-local and kept: a training loop calls the
  // GEMM with the same shapes every step. Both start on a cache line: the
  // microkernels load whole 64-byte B rows, and from a vector's storage (a
  // large malloc sits 16 bytes into its page) every such load split two
  // lines -- 5-8% of the AVX-512 kernel's rate on the Intel host (2026-12-05).
  static thread_local std::vector<float> apack, bpack;
  constexpr size_t kLine = 16;  // floats per 64-byte line
  const size_t a_floats = static_cast<size_t>(threads * impl.apack) + kLine;
  const size_t b_floats =
      static_cast<size_t>(impl.kc * std::max(impl.nc, threads * impl.nr)) + kLine;
  if (apack.size() < a_floats) apack.resize(a_floats);
  if (bpack.size() < b_floats) bpack.resize(b_floats);
  const auto line = [](float* f) {
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(f) + 63) & ~uintptr_t{63});
  };
  impl.run(p, bt, ep, a, b, c, line(apack.data()), line(bpack.data()));
}

void sgemm(const GemmParams& p, const float* a, const float* b, float* c) {
  sgemm_batched(p, GemmBatch{}, GemmEpilogue{}, a, b, c);
}

}  // namespace striate::cpu
