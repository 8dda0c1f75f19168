// Elementwise activations. Each is a flat loop the compiler can vectorize;
// the `if` clause keeps small tensors off the thread pool, where the fork/join
// would cost more than the work.
#include <cmath>

#include "striate/kernels_cpu.h"
#include "vec_math.h"

namespace striate::cpu {
namespace {
constexpr int64_t kParallelMin = int64_t{1} << 15;

// sigmoid without overflow: with e = exp(-|x|), 1/(1+e) for x >= 0 and
// e/(1+e) for x < 0 (exp(-x) would overflow for very negative x). Both forms
// are free of cancellation, so a ~2-ulp exp gives a ~3-ulp sigmoid.
inline float sigmoid1(float x) {
  const float e = exp_f32(-std::fabs(x));
  return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}
}  // namespace

void relu(int64_t n, const float* x, float* y) {
  // (x < 0) ? 0 : x keeps NaN as NaN, like max(x, 0) in PyTorch.
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

// The backward selects are written with both operands loaded unconditionally
// so the compiler emits a compare + blend; a conditional load compiles to a
// branch that mispredicts on every other element of random-signed data (10x
// slower). A select, not gy * (x > 0): inf * 0 would turn into NaN.
void relu_backward(int64_t n, const float* gy, const float* x, float* gx) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gy[i];
    gx[i] = x[i] > 0.0f ? g : 0.0f;
  }
}

void leaky_relu(int64_t n, float slope, const float* x, float* y) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * (x[i] > 0.0f ? 1.0f : slope);
}

void leaky_relu_backward(int64_t n, float slope, const float* gy, const float* x,
                         float* gx) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * (x[i] > 0.0f ? 1.0f : slope);
}

void sigmoid(int64_t n, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid1(x[i]);
}

void sigmoid_backward(int64_t n, const float* gy, const float* x, float* gx) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float s = sigmoid1(x[i]);
    gx[i] = gy[i] * s * (1.0f - s);
  }
}

void tanh(int64_t n, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void tanh_backward(int64_t n, const float* gy, const float* x, float* gx) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float t = std::tanh(x[i]);
    gx[i] = gy[i] * (1.0f - t * t);
  }
}

}  // namespace striate::cpu
