// avx2 level of the max-pool forward plane kernel (maxpool_impl.h).
#include "maxpool_impl.h"

namespace striate::cpu {

void max_pool2d_plane_avx2(const Pool2dParams& p, const float* x, float* y, float* buf) {
  max_pool2d_plane_k(p, x, y, buf);
}

}  // namespace striate::cpu
