// AVX2+FMA level of the elementwise / normalization inner kernels
// (eltwise_isa.h): 8 floats per vector, fused multiply-adds in the
// polynomials. Compiled with -mavx2 -mfma (this file only).
#include "norm_pool_impl.h"

namespace striate::cpu {

STRIATE_ELTWISE_TABLE(avx2)

}  // namespace striate::cpu
