// One SGEMM implementation per ISA level; sgemm.cpp picks one at run time.
#pragma once

#include <cstdint>

#include "striate/params.h"

namespace striate::cpu {

// C += alpha * op(A) op(B) (beta is applied by the caller). apack / bpack
// are caller-owned packing buffers of apack_floats / bpack_floats floats.
struct SgemmImpl {
  const char* name;  // e.g. "sgemm_12x32_avx512"
  int64_t mr, nr, kc, nc;
  void (*run)(const GemmParams& p, const float* a, const float* b, float* c, float* apack,
              float* bpack);
};

extern const SgemmImpl sgemm_baseline_impl;
#ifdef STRIATE_HAVE_X86_ISA
extern const SgemmImpl sgemm_avx2_impl;
extern const SgemmImpl sgemm_avx512_impl;
#endif

}  // namespace striate::cpu
