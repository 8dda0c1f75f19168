// Softmax and log-softmax along the middle axis of x viewed as
// (outer, dim, inner). The work is split into independent lane blocks, each
// owned by one thread: a contiguous row when inner == 1, otherwise up to
// kSoftmaxBlock adjacent lanes of one outer index, so the per-ISA loops
// (eltwise_isa.h) run contiguously across inner. Sums of exponentials are in
// double.
#include "eltwise_isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

void run(SoftmaxKind kind, const SoftmaxParams& p, const float* gy, const float* x,
         float* out) {
  // Nothing to write; and with dim == 0 the lane loop below would still
  // visit every (outer, inner) lane, up to 2^61 of them in a (0, 2^61) array.
  if (p.outer == 0 || p.dim == 0 || p.inner == 0) return;
  const auto fn = eltwise_impl().softmax_lanes;
  const int64_t blocks_per_outer =
      p.inner == 1 ? 1 : (p.inner + kSoftmaxBlock - 1) / kSoftmaxBlock;
  const int64_t tasks = p.outer * blocks_per_outer;
#pragma omp parallel for schedule(static) if (tasks > 1 && p.outer * p.dim * p.inner >= (1 << 14))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / blocks_per_outer, b = t % blocks_per_outer;
    const int64_t j0 = b * kSoftmaxBlock;
    const int64_t len = p.inner == 1 ? 1 : (p.inner - j0 < kSoftmaxBlock ? p.inner - j0 : kSoftmaxBlock);
    const int64_t off = o * p.dim * p.inner + j0;
    fn(kind, p.dim, p.inner, len, gy ? gy + off : nullptr, x + off, out + off);
  }
}

}  // namespace

void softmax(const SoftmaxParams& p, const float* x, float* y) {
  run(SoftmaxKind::softmax, p, nullptr, x, y);
}

void log_softmax(const SoftmaxParams& p, const float* x, float* y) {
  run(SoftmaxKind::log_softmax, p, nullptr, x, y);
}

// grad_x = y * (g - sum_k g_k y_k), with y = softmax(x) recomputed.
void softmax_backward(const SoftmaxParams& p, const float* gy, const float* x, float* gx) {
  run(SoftmaxKind::softmax_backward, p, gy, x, gx);
}

// grad_x = g - softmax(x) * sum_k g_k.
void log_softmax_backward(const SoftmaxParams& p, const float* gy, const float* x,
                          float* gx) {
  run(SoftmaxKind::log_softmax_backward, p, gy, x, gx);
}

}  // namespace striate::cpu
