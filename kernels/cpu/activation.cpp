// Elementwise activations: the per-ISA loops of eltwise_isa.h over fixed
// chunks of elements, one chunk per task. Small tensors stay off the thread
// pool, where the fork/join would cost more than the work.
#include "eltwise_isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {
// 16K floats (64 KB per array): big enough to amortize the call, small
// enough to balance two or more threads on a 1 MB tensor.
constexpr int64_t kChunk = int64_t{1} << 14;

template <class F>
void chunked(int64_t n, F f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i = c * kChunk;
    f(i, n - i < kChunk ? n - i : kChunk);
  }
}
}  // namespace

void relu(int64_t n, const float* x, float* y) {
  const auto fn = eltwise_impl().relu;
  chunked(n, [&](int64_t i, int64_t m) { fn(m, x + i, y + i); });
}

void relu_backward(int64_t n, const float* gy, const float* x, float* gx) {
  const auto fn = eltwise_impl().relu_backward;
  chunked(n, [&](int64_t i, int64_t m) { fn(m, gy + i, x + i, gx + i); });
}

void leaky_relu(int64_t n, float slope, const float* x, float* y) {
  const auto fn = eltwise_impl().leaky_relu;
  chunked(n, [&](int64_t i, int64_t m) { fn(m, slope, x + i, y + i); });
}

void leaky_relu_backward(int64_t n, float slope, const float* gy, const float* x,
                         float* gx) {
  const auto fn = eltwise_impl().leaky_relu_backward;
  chunked(n, [&](int64_t i, int64_t m) { fn(m, slope, gy + i, x + i, gx + i); });
}

void sigmoid(int64_t n, const float* x, float* y) {
  const auto fn = eltwise_impl().sigmoid;
  chunked(n, [&](int64_t i, int64_t m) { fn(m, x + i, y + i); });
}

void sigmoid_backward(int64_t n, const float* gy, const float* x, float* gx) {
  const auto fn = eltwise_impl().sigmoid_backward;
  chunked(n, [&](int64_t i, int64_t m) { fn(m, gy + i, x + i, gx + i); });
}

void tanh(int64_t n, const float* x, float* y) {
  const auto fn = eltwise_impl().tanh;
  chunked(n, [&](int64_t i, int64_t m) { fn(m, x + i, y + i); });
}

void tanh_backward(int64_t n, const float* gy, const float* x, float* gx) {
  const auto fn = eltwise_impl().tanh_backward;
  chunked(n, [&](int64_t i, int64_t m) { fn(m, gy + i, x + i, gx + i); });
}

}  // namespace striate::cpu
