// batch_norm op: argument checks, the (n, c, spatial) view, batch statistics
// and the in-place running-statistics update.
#include <cmath>
#include <vector>

#include "common.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"

namespace striate::ops {
namespace {

constexpr const char* kOp = "batch_norm";

void check_channel_vector(const char* name, const Shape* s, int64_t c, const Shape& x) {
  if (s && (s->size() != 1 || (*s)[0] != c))
    throw_value_error(kOp, ": ", name, " must have shape (", c,
                      ",) to match the channels x.shape[1] of x ", shape_str(x),
                      ", got ", shape_str(*s));
}

// eps and momentum are stored as float: they must be finite there too.
void check_float_arg(const char* name, double v) {
  if (!(v >= 0.0) || !std::isfinite(static_cast<float>(v)))
    throw_value_error(kOp, ": ", name, " must be a finite non-negative number, got ", v);
}

// Per-channel statistics in double (2 * c values), reused across calls like
// workspace_floats; thread-local so concurrent calls never share it.
double* stats_workspace(int64_t c) {
  static thread_local std::vector<double> buf;
  if (2 * c > static_cast<int64_t>(buf.size())) buf.resize(static_cast<size_t>(2 * c));
  return buf.data();
}

void load_running(int64_t c, const float* running_mean, const float* running_var,
                  double* mean, double* var) {
  for (int64_t i = 0; i < c; ++i) {
    mean[i] = running_mean[i];
    var[i] = running_var[i];
  }
}

}  // namespace

BatchNormPlan batch_norm_plan(const Shape& x, const Shape* running_mean,
                              const Shape* running_var, const Shape* weight,
                              const Shape* bias, bool training, double momentum,
                              double eps) {
  if (x.size() < 2)
    throw_value_error(kOp, ": x must be (N, C) or (N, C, *) with at least 2 dimensions, got shape ",
                      shape_str(x));
  check_nonempty(kOp, "x", x, 1);
  checked_numel(x, "batch_norm input x");
  // Per-image size too (numel alone does not bound it when N == 0).
  checked_numel(Shape(x.begin() + 1, x.end()), "batch_norm input x");
  check_float_arg("eps", eps);
  check_float_arg("momentum", momentum);

  BatchNormPlan plan;
  BatchNormParams& p = plan.p;
  p.n = x[0];
  p.c = x[1];
  p.spatial = 1;
  for (size_t i = 2; i < x.size(); ++i) p.spatial *= x[i];  // cannot overflow (checked)
  p.eps = static_cast<float>(eps);
  p.momentum = static_cast<float>(momentum);

  check_channel_vector("running_mean", running_mean, p.c, x);
  check_channel_vector("running_var", running_var, p.c, x);
  check_channel_vector("weight", weight, p.c, x);
  check_channel_vector("bias", bias, p.c, x);

  if (training) {
    if (p.n * p.spatial <= 1)
      throw_value_error(kOp, ": expected more than 1 value per channel when training, got x of shape ",
                        shape_str(x), " (N * spatial = ", p.n * p.spatial, ")");
  } else if (!running_mean || !running_var) {
    const char* missing = !running_mean && !running_var ? "running_mean and running_var are"
                          : !running_mean               ? "running_mean is"
                                                        : "running_var is";
    throw_value_error(kOp, ": ", missing, " required when training=False");
  }

  plan.training = training;
  // In training mode either may be None: a given one is updated, the other not.
  plan.has_running = running_mean || running_var;
  plan.has_weight = weight != nullptr;
  plan.has_bias = bias != nullptr;
  return plan;
}

void batch_norm_forward(const BatchNormPlan& plan, const float* x,
                        float* running_mean, float* running_var,
                        const float* weight, const float* bias, float* y) {
  const BatchNormParams& p = plan.p;
  const float* w = plan.has_weight ? weight : nullptr;
  const float* b = plan.has_bias ? bias : nullptr;
  double* mean = stats_workspace(p.c);
  double* var = mean + p.c;
  if (!plan.training) {
    load_running(p.c, running_mean, running_var, mean, var);
    cpu::batch_norm_forward(p, x, mean, var, w, b, y);
    return;
  }
  cpu::batch_norm_stats(p, x, mean, var);
  cpu::batch_norm_forward(p, x, mean, var, w, b, y);
  // The update comes last, so an array passed both as a running statistic and
  // as weight/bias/x does not change this call's output.
  const double m = p.momentum;
  const double count = static_cast<double>(p.n) * static_cast<double>(p.spatial);
  const double unbias = count / (count - 1.0);
  for (int64_t c = 0; c < p.c; ++c) {
    if (running_mean)
      running_mean[c] = static_cast<float>((1.0 - m) * running_mean[c] + m * mean[c]);
    if (running_var)
      running_var[c] = static_cast<float>((1.0 - m) * running_var[c] + m * (var[c] * unbias));
  }
}

void batch_norm_backward(const BatchNormPlan& plan, const float* gy,
                         const float* x, const float* running_mean,
                         const float* running_var, const float* weight,
                         float* gx, float* gweight, float* gbias) {
  const BatchNormParams& p = plan.p;
  const float* w = plan.has_weight ? weight : nullptr;
  float* gw = plan.has_weight ? gweight : nullptr;
  float* gb = plan.has_bias ? gbias : nullptr;
  double* mean = stats_workspace(p.c);
  double* var = mean + p.c;
  // Training mode recomputes the batch statistics; the running statistics
  // are then neither read nor written.
  if (plan.training)
    cpu::batch_norm_stats(p, x, mean, var);
  else
    load_running(p.c, running_mean, running_var, mean, var);
  cpu::batch_norm_backward(p, plan.training, gy, x, mean, var, w, gx, gw, gb);
}

}  // namespace striate::ops
