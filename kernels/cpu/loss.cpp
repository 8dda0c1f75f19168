// mse_loss. The reduction is split into fixed 4096-element blocks (never
// into one block per thread), each summed in double by one thread; the op
// layer adds the block sums in order, so the result is the same bits for any
// thread count.
#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {
constexpr int64_t kParallelMin = int64_t{1} << 15;
constexpr int64_t kBlock = 4096;

// Sum of (x - t)^2 in double over one block: 8 lane accumulators in a fixed
// order, so the loop vectorizes without reassociating.
inline double block_sum(int64_t n, const float* x, const float* t) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const double d = static_cast<double>(x[i + j]) - static_cast<double>(t[i + j]);
      acc[j] += d * d;
    }
  for (int j = 0; i < n; ++i, ++j) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(t[i]);
    acc[j] += d * d;
  }
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}
}  // namespace

int64_t mse_loss_blocks(int64_t n) { return (n + kBlock - 1) / kBlock; }

void mse_loss(int64_t n, const float* x, const float* t, float* sq,
              double* block_sums) {
  if (sq) {
    // As torch: the difference and its square rounded to float.
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float d = x[i] - t[i];
      sq[i] = d * d;
    }
  }
  if (block_sums) {
    const int64_t blocks = mse_loss_blocks(n);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t lo = b * kBlock, len = n - lo < kBlock ? n - lo : kBlock;
      block_sums[b] = block_sum(len, x + lo, t + lo);
    }
  }
}

void mse_loss_backward(int64_t n, float norm, const float* gy, int64_t gy_stride,
                       const float* x, const float* t, float* gx, float* gt) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = norm * (x[i] - t[i]) * gy[i * gy_stride];
    gx[i] = g;
    gt[i] = -g;
  }
}

}  // namespace striate::cpu
