// AVX-512 level of the elementwise / normalization inner kernels
// (eltwise_isa.h): 16 floats per vector, masked tails. Compiled with
// -mavx512f/bw/dq/vl (this file only).
#include "norm_pool_impl.h"

namespace striate::cpu {

STRIATE_ELTWISE_TABLE(avx512)

}  // namespace striate::cpu
