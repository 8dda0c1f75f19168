// One SGEMM implementation per ISA level; sgemm.cpp picks one at run time.
// Also the batched entry point the convolution kernels use (private to
// kernels/cpu).
#pragma once

#include <cstdint>

#include "striate/params.h"

namespace striate::cpu {

// A batch of GEMMs sharing one GemmParams (shape, transposes, leading
// dimensions, alpha, beta). Item i reads A + i*stride_a, B + i*stride_b and
// writes C + i*stride_c.
// - reduce == false: C_i = op(A) op(B_i) with one shared A (stride_a == 0).
//   The items' columns are laid side by side into one wide GEMM, so A is
//   packed once for all of them (a convolution's images: one GEMM per image
//   would repack the weights per image, and a 7x7 plane is a 49-column GEMM).
// - reduce == true: one C = sum_i op(A_i) op(B_i), the items' depths laid
//   end to end in item order (backward-weights summed over images).
// - im2col != nullptr (reduce == false, trans_b == false): op(B_i) is the
//   im2col column matrix of image i of that convolution, never stored: B
//   points at the group's first input channel of image 0 (stride_b apart
//   per image), p.k = C_g*KH*KW rows, p.n = Ho*Wo columns, and packing
//   gathers each row of a B panel straight from the input (implicit GEMM).
struct GemmBatch {
  int64_t count = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  bool reduce = false;
  const Conv2dParams* im2col = nullptr;
};

// Fused epilogue: C = relu(beta*C + row_bias[i] + alpha*op(A)op(B)), the
// bias (may be null) added on the first depth slab and the ReLU applied on
// the last, while each tile is in cache.
struct GemmEpilogue {
  const float* row_bias = nullptr;
  bool relu = false;
};

void sgemm_batched(const GemmParams& p, const GemmBatch& batch, const GemmEpilogue& ep,
                   const float* a, const float* b, float* c);

struct SgemmImpl {
  const char* name;  // e.g. "sgemm_12x32_avx512"
  int64_t mr, nr, kc, mc, nc;
  int64_t apack;  // floats of packed A per thread (>= mc*kc)
  // apack: `apack` floats per thread; bpack: kc*nc floats (shared) or kc*nr
  // per thread, whichever is larger.
  void (*run)(const GemmParams& p, const GemmBatch& batch, const GemmEpilogue& ep,
              const float* a, const float* b, float* c, float* apack, float* bpack);
};

extern const SgemmImpl sgemm_baseline_impl;
#ifdef STRIATE_HAVE_X86_ISA
extern const SgemmImpl sgemm_avx2_impl;
extern const SgemmImpl sgemm_avx512_impl;
#endif

}  // namespace striate::cpu
