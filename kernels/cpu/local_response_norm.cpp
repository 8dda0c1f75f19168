// Local response normalization across channels of x viewed as (n, c, spatial):
//
//   d_c = k + alpha / size * sum_{c' = c - lo}^{c + hi} x_{c'}^2,   lo = size / 2,
//   y_c = x_c * d_c^(-beta)                                        hi = (size - 1) / 2
//
// with channels outside [0, C) contributing 0.
//
// One thread owns a block of up to kLrnBlock spatial columns of one image and
// walks the channels with the per-ISA kernels of eltwise_isa.h (inner loops
// contiguous over the block, window sums formed from scratch so Inf/NaN stay
// in their own windows; see norm_pool_impl.h). The cost per element is
// O(min(size, C)), as in PyTorch's pooling-based implementation.
#include <cstdint>

#include "eltwise_isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

template <class F>
void for_each_block(const LrnParams& p, F f) {
  const int64_t blocks = (p.spatial + kLrnBlock - 1) / kLrnBlock;
  const int64_t plane = p.c * p.spatial;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t s0 = b * kLrnBlock;
      const int64_t len = p.spatial - s0 < kLrnBlock ? p.spatial - s0 : kLrnBlock;
      f(n * plane + s0, len);
    }
}

}  // namespace

void local_response_norm(const LrnParams& p, const float* x, float* y) {
  const auto fn = eltwise_impl().lrn_block;
  for_each_block(p, [&](int64_t off, int64_t len) { fn(p, len, x + off, y + off); });
}

void local_response_norm_backward(const LrnParams& p, const float* gy,
                                  const float* x, float* gx) {
  const auto fn = eltwise_impl().lrn_backward_block;
  for_each_block(p, [&](int64_t off, int64_t len) {
    fn(p, len, gy + off, x + off, gx + off);
  });
}

}  // namespace striate::cpu
