// In-place optimizer updates with torch.optim's single-tensor formulas
// (sgd.py / adam.py, maximize=False, amsgrad=False), evaluated in float32 in
// torch's operation order so a run tracks torch to rounding: every factor is
// one float rounded once by the op layer, and each line below is one torch
// tensor op. Elementwise, so any split over threads gives the same bits.
#include <cmath>

#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {
constexpr int64_t kParallelMin = int64_t{1} << 14;

// One loop per (momentum, first step, nesterov) case: a buffer load under a
// runtime condition inside the loop would stop it from vectorizing.
template <bool kMomentum, bool kFirst, bool kNesterov>
void sgd_loop(const SgdCoeffs& c, int64_t n, float* param, const float* grad, float* buf) {
  // Coefficients in locals: read through `c` they could alias the arrays
  // being stored to, and the loop would be versioned against that.
  const float wd = c.weight_decay, mom = c.momentum, omd = c.one_minus_dampening;
  const float neg_lr = -c.lr;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float p = param[i];
    // torch skips the weight-decay add when wd == 0 (0 * inf param is NaN).
    float g = wd != 0.0f ? grad[i] + wd * p : grad[i];
    if (kMomentum) {
      const float b = kFirst ? g : buf[i] * mom + omd * g;
      buf[i] = b;
      g = kNesterov ? g + mom * b : b;
    }
    param[i] = p + neg_lr * g;
  }
}
}  // namespace

void sgd_update(const SgdCoeffs& c, int64_t n, float* param, const float* grad,
                float* buf) {
  if (c.momentum == 0.0f) return sgd_loop<false, false, false>(c, n, param, grad, buf);
  if (c.first_step)
    return c.nesterov ? sgd_loop<true, true, true>(c, n, param, grad, buf)
                      : sgd_loop<true, true, false>(c, n, param, grad, buf);
  return c.nesterov ? sgd_loop<true, false, true>(c, n, param, grad, buf)
                    : sgd_loop<true, false, false>(c, n, param, grad, buf);
}

void adam_update(const AdamCoeffs& c, int64_t n, float* param, const float* grad,
                 float* exp_avg, float* exp_avg_sq) {
  // torch's lerp: self + w * (end - self) for |w| < 0.5, else
  // end - (end - self) * (1 - w), the form that is exact at w = 1.
  const float w = c.one_minus_beta1;
  const bool small_w = std::fabs(w) < 0.5f;
  const float one_minus_w = 1.0f - w;
  const bool l2 = c.weight_decay != 0.0f, decay = c.decay != 1.0f;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float p = param[i];
    if (decay) p = p * c.decay;
    const float g = l2 ? grad[i] + c.weight_decay * p : grad[i];
    const float m0 = exp_avg[i];
    const float m = small_w ? m0 + w * (g - m0) : g - (g - m0) * one_minus_w;
    const float v = exp_avg_sq[i] * c.beta2 + c.one_minus_beta2 * g * g;
    const float denom = std::sqrt(v) / c.bias_correction2_sqrt + c.eps;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] = p + c.neg_step_size * m / denom;
  }
}

}  // namespace striate::cpu
