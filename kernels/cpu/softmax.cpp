// Softmax and log-softmax along the middle axis of x viewed as
// (outer, dim, inner). Each (outer, inner) lane is one independent reduction
// owned by one thread; sums of exponentials accumulate in double so long rows
// (e.g. 1000 ImageNet classes) lose nothing to float rounding.
#include <cmath>
#include <limits>

#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

// Max and sum_k exp(x_k - max) of one lane.
struct LaneStats {
  float max;
  double sum;
};

inline LaneStats lane_stats(const float* x, int64_t dim, int64_t stride) {
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (int64_t k = 0; k < dim; ++k) {
    const float v = x[k * stride];
    nan |= std::isnan(v);
    m = v > m ? v : m;
  }
  if (nan) m = std::numeric_limits<float>::quiet_NaN();
  // A lane of all -inf has no finite max; exp(x - max) would be NaN, which is
  // also what PyTorch returns, so no special case.
  double s = 0.0;
  for (int64_t k = 0; k < dim; ++k) s += std::exp(static_cast<double>(x[k * stride]) - m);
  return {m, s};
}

template <class Body>
inline void for_each_lane(const SoftmaxParams& p, Body body) {
  const int64_t lanes = p.outer * p.inner;
#pragma omp parallel for schedule(static) if (lanes * p.dim >= (1 << 14))
  for (int64_t l = 0; l < lanes; ++l) {
    const int64_t o = l / p.inner, i = l % p.inner;
    body(o * p.dim * p.inner + i);
  }
}

}  // namespace

void softmax(const SoftmaxParams& p, const float* x, float* y) {
  const int64_t s = p.inner;
  for_each_lane(p, [&](int64_t base) {
    const LaneStats st = lane_stats(x + base, p.dim, s);
    const double inv = 1.0 / st.sum;
    for (int64_t k = 0; k < p.dim; ++k)
      y[base + k * s] = static_cast<float>(
          std::exp(static_cast<double>(x[base + k * s]) - st.max) * inv);
  });
}

void log_softmax(const SoftmaxParams& p, const float* x, float* y) {
  const int64_t s = p.inner;
  for_each_lane(p, [&](int64_t base) {
    const LaneStats st = lane_stats(x + base, p.dim, s);
    const double shift = st.max + std::log(st.sum);
    for (int64_t k = 0; k < p.dim; ++k)
      y[base + k * s] = static_cast<float>(static_cast<double>(x[base + k * s]) - shift);
  });
}

// grad_x = y * (g - sum_k g_k y_k), with y = softmax(x) recomputed.
void softmax_backward(const SoftmaxParams& p, const float* gy, const float* x,
                      float* gx) {
  const int64_t s = p.inner;
  for_each_lane(p, [&](int64_t base) {
    const LaneStats st = lane_stats(x + base, p.dim, s);
    const double inv = 1.0 / st.sum;
    double dot = 0.0;
    for (int64_t k = 0; k < p.dim; ++k)
      dot += gy[base + k * s] * std::exp(static_cast<double>(x[base + k * s]) - st.max) * inv;
    for (int64_t k = 0; k < p.dim; ++k) {
      const double y = std::exp(static_cast<double>(x[base + k * s]) - st.max) * inv;
      gx[base + k * s] = static_cast<float>(y * (gy[base + k * s] - dot));
    }
  });
}

// grad_x = g - softmax(x) * sum_k g_k.
void log_softmax_backward(const SoftmaxParams& p, const float* gy,
                          const float* x, float* gx) {
  const int64_t s = p.inner;
  for_each_lane(p, [&](int64_t base) {
    const LaneStats st = lane_stats(x + base, p.dim, s);
    const double inv = 1.0 / st.sum;
    double gsum = 0.0;
    for (int64_t k = 0; k < p.dim; ++k) gsum += gy[base + k * s];
    for (int64_t k = 0; k < p.dim; ++k) {
      const double y = std::exp(static_cast<double>(x[base + k * s]) - st.max) * inv;
      gx[base + k * s] = static_cast<float>(gy[base + k * s] - y * gsum);
    }
  });
}

}  // namespace striate::cpu
