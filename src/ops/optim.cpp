// SGD and Adam/AdamW parameter updates: torch.optim's hyper-parameter checks,
// and the scalar factors computed in double exactly as torch computes them in
// Python before rounding them to float for the float32 tensor ops.
#include <cmath>

#include "common.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"

namespace striate::ops {
namespace {

void check_same_shape(const char* op, const char* name, const Shape& s, const Shape& param) {
  if (s != param)
    throw_value_error(op, ": ", name, " must have the shape of param ", shape_str(param),
                      ", got ", shape_str(s));
}

void check_finite_min(const char* op, const char* name, double v, double lo) {
  if (!std::isfinite(v)) throw_value_error(op, ": ", name, " must be finite, got ", v);
  if (v < lo) throw_value_error(op, ": invalid ", name, " ", v, " (expected >= ", lo, ")");
}

void check_beta(const char* op, const char* name, double v) {
  if (!(v >= 0.0 && v < 1.0))
    throw_value_error(op, ": invalid ", name, " ", v, " (expected 0 <= ", name, " < 1)");
}

}  // namespace

int64_t sgd_plan(const Shape& param, const Shape& grad, const Shape* momentum_buffer,
                 const SgdArgs& a) {
  constexpr const char* op = "sgd_update";
  check_same_shape(op, "grad", grad, param);
  if (momentum_buffer) check_same_shape(op, "momentum_buffer", *momentum_buffer, param);
  check_finite_min(op, "lr", a.lr, 0.0);
  check_finite_min(op, "momentum", a.momentum, 0.0);
  check_finite_min(op, "weight_decay", a.weight_decay, 0.0);
  if (!std::isfinite(a.dampening))
    throw_value_error(op, ": dampening must be finite, got ", a.dampening);
  if (a.nesterov && (a.momentum <= 0.0 || a.dampening != 0.0))
    throw_value_error(op, ": nesterov requires momentum > 0 and dampening == 0, got momentum=",
                      a.momentum, ", dampening=", a.dampening);
  if (a.momentum != 0.0 && !momentum_buffer)
    throw_value_error(op, ": momentum_buffer is required when momentum != 0 (got None)");
  return checked_numel(param, "param");
}

void sgd_update(const SgdArgs& a, int64_t n, float* param, const float* grad,
                float* momentum_buffer) {
  cpu::SgdCoeffs c;
  c.lr = static_cast<float>(a.lr);
  c.momentum = static_cast<float>(a.momentum);
  c.one_minus_dampening = static_cast<float>(1.0 - a.dampening);
  c.weight_decay = static_cast<float>(a.weight_decay);
  c.nesterov = a.nesterov;
  c.first_step = a.first_step;
  cpu::sgd_update(c, n, param, grad, a.momentum != 0.0 ? momentum_buffer : nullptr);
}

int64_t adam_plan(const Shape& param, const Shape& grad, const Shape& exp_avg,
                  const Shape& exp_avg_sq, const AdamArgs& a) {
  constexpr const char* op = "adam_update";
  check_same_shape(op, "grad", grad, param);
  check_same_shape(op, "exp_avg", exp_avg, param);
  check_same_shape(op, "exp_avg_sq", exp_avg_sq, param);
  check_scalar(op, "step", a.step, 1);
  check_finite_min(op, "lr", a.lr, 0.0);
  check_finite_min(op, "eps", a.eps, 0.0);
  check_beta(op, "beta1", a.beta1);
  check_beta(op, "beta2", a.beta2);
  check_finite_min(op, "weight_decay", a.weight_decay, 0.0);
  return checked_numel(param, "param");
}

void adam_update(const AdamArgs& a, int64_t n, float* param, const float* grad,
                 float* exp_avg, float* exp_avg_sq) {
  // adam.py (_single_tensor_adam, not capturable): step is a float there.
  const double step = static_cast<double>(a.step);
  const double bias_correction1 = 1.0 - std::pow(a.beta1, step);
  const double bias_correction2 = 1.0 - std::pow(a.beta2, step);
  cpu::AdamCoeffs c;
  if (a.weight_decay != 0.0) {
    if (a.decoupled_weight_decay)
      c.decay = static_cast<float>(1.0 - a.lr * a.weight_decay);
    else
      c.weight_decay = static_cast<float>(a.weight_decay);
  }
  c.one_minus_beta1 = static_cast<float>(1.0 - a.beta1);
  c.beta2 = static_cast<float>(a.beta2);
  c.one_minus_beta2 = static_cast<float>(1.0 - a.beta2);
  c.bias_correction2_sqrt = static_cast<float>(std::pow(bias_correction2, 0.5));
  c.eps = static_cast<float>(a.eps);
  c.neg_step_size = static_cast<float>(-(a.lr / bias_correction1));
  cpu::adam_update(c, n, param, grad, exp_avg, exp_avg_sq);
}

}  // namespace striate::ops
