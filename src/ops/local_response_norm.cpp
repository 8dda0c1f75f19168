// local_response_norm op: argument checks and the (n, c, spatial) view.
#include <cmath>

#include "common.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"

namespace striate::ops {
namespace {

constexpr const char* kOp = "local_response_norm";

// alpha, beta and k are stored as float: they must be finite there.
float finite_float(const char* name, double v) {
  const float f = static_cast<float>(v);
  if (!std::isfinite(f))
    throw_value_error(kOp, ": ", name, " must be a finite number, got ", v);
  return f;
}

}  // namespace

LrnParams local_response_norm_plan(const Shape& x, int64_t size, double alpha,
                                   double beta, double k) {
  if (x.size() < 3)
    throw_value_error(kOp, ": x must be (N, C, *) with at least 3 dimensions, got shape ",
                      shape_str(x));
  check_nonempty(kOp, "x", x, 1);
  checked_numel(x, "local_response_norm input x");
  checked_numel(Shape(x.begin() + 1, x.end()), "local_response_norm input x");
  check_scalar(kOp, "size", size, 1);

  LrnParams p;
  p.n = x[0];
  p.c = x[1];
  p.spatial = 1;
  for (size_t i = 2; i < x.size(); ++i) p.spatial *= x[i];  // cannot overflow (checked)
  p.size = size;
  p.alpha = finite_float("alpha", alpha);
  p.beta = finite_float("beta", beta);
  p.k = finite_float("k", k);
  return p;
}

void local_response_norm_forward(const LrnParams& p, const float* x, float* y) {
  cpu::local_response_norm(p, x, y);
}

void local_response_norm_backward(const LrnParams& p, const float* gy,
                                  const float* x, float* gx) {
  cpu::local_response_norm_backward(p, gy, x, gx);
}

}  // namespace striate::ops
