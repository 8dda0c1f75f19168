// Portable level of the elementwise / normalization inner kernels
// (eltwise_isa.h): the compiler vectorizes them with what x86-64 always has
// (SSE2). Also holds the run-time choice of level.
#include "norm_pool_impl.h"
#include "striate/isa.h"

namespace striate::cpu {

STRIATE_ELTWISE_TABLE(baseline)

const EltwiseImpl& eltwise_impl() {
  switch (isa_selected()) {
#ifdef STRIATE_HAVE_X86_ISA
    case Isa::avx512: return eltwise_avx512_impl;
    case Isa::avx2: return eltwise_avx2_impl;
#endif
    default: return eltwise_baseline_impl;
  }
}

}  // namespace striate::cpu
