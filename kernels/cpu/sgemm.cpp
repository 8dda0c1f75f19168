// SGEMM entry point: applies beta, sizes the packing buffers and runs the
// implementation of the selected ISA level (see include/striate/isa.h).
#include <algorithm>
#include <vector>

#include "sgemm_isa.h"
#include "striate/isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {

const SgemmImpl& sgemm_impl() {
  switch (isa_selected()) {
#ifdef STRIATE_HAVE_X86_ISA
    case Isa::avx512: return sgemm_avx512_impl;
    case Isa::avx2: return sgemm_avx2_impl;
#endif
    default: return sgemm_baseline_impl;
  }
}

const char* sgemm_kernel_name() { return sgemm_impl().name; }

void sgemm(const GemmParams& p, const float* a, const float* b, float* c) {
  if (p.m == 0 || p.n == 0) return;

  // beta first: beta == 0 overwrites (so NaNs already in C do not leak in).
  if (p.beta != 1.0f) {
#pragma omp parallel for schedule(static) if (p.m * p.n >= (1 << 15))
    for (int64_t i = 0; i < p.m; ++i) {
      float* row = c + i * p.ldc;
      if (p.beta == 0.0f)
        std::fill(row, row + p.n, 0.0f);
      else
        for (int64_t j = 0; j < p.n; ++j) row[j] *= p.beta;
    }
  }
  if (p.k == 0 || p.alpha == 0.0f) return;

  const SgemmImpl& impl = sgemm_impl();
  // Packing buffers are thread-local and kept: a training loop calls the
  // GEMM with the same shapes every step.
  static thread_local std::vector<float> apack, bpack;
  const int64_t kc = std::min(impl.kc, p.k);
  const size_t a_floats = static_cast<size_t>((p.m + impl.mr - 1) / impl.mr * impl.mr * kc);
  const size_t b_floats =
      static_cast<size_t>((std::min(impl.nc, p.n) + impl.nr - 1) / impl.nr * impl.nr * kc);
  if (apack.size() < a_floats) apack.resize(a_floats);
  if (bpack.size() < b_floats) bpack.resize(b_floats);
  impl.run(p, a, b, c, apack.data(), bpack.data());
}

}  // namespace striate::cpu
