// add, mul, cat, dropout: shape checks and the views the kernels work on.
#include <cmath>

#include "common.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"

namespace striate::ops {

int64_t add_plan(const Shape& a, const Shape& b) {
  if (a != b)
    throw_value_error("add: a and b must have the same shape (no broadcasting), got a ",
                      shape_str(a), " and b ", shape_str(b));
  return checked_numel(a, "a");
}

void add_forward(int64_t n, const float* a, const float* b, float* y) {
  cpu::add(n, a, b, y);
}

void copy_forward(int64_t n, const float* x, float* y) { cpu::tensor_copy(n, x, y); }

MulPlan mul_plan(const Shape& a, const Shape& b) {
  // b's last non-1 dim ends the part shared with a; everything after it is
  // broadcast, so b is one scalar per row of a viewed as (outer, inner).
  int64_t last = -1;
  for (size_t i = 0; i < b.size(); ++i)
    if (b[i] != 1) last = static_cast<int64_t>(i);
  bool ok = a.size() == b.size();
  for (int64_t i = 0; ok && i <= last; ++i) ok = a[i] == b[i];
  if (!ok)
    throw_value_error("mul: b must have the shape of a ", shape_str(a),
                      " or a's leading dims followed by ones (e.g. (N, C, 1, 1) for"
                      " (N, C, H, W)), got b ", shape_str(b));
  MulPlan plan;
  plan.y_shape = a;
  const Shape lead(a.begin(), a.begin() + (last + 1)), rest(a.begin() + (last + 1), a.end());
  plan.outer = checked_numel(lead, "a");
  plan.inner = checked_numel(rest, "a");
  checked_numel(a, "a");
  return plan;
}

void mul_forward(const MulPlan& plan, const float* a, const float* b, float* y) {
  cpu::mul(plan.outer, plan.inner, a, b, y);
}

void mul_backward(const MulPlan& plan, const float* gy, const float* a,
                  const float* b, float* ga, float* gb) {
  cpu::mul_backward(plan.outer, plan.inner, gy, a, b, ga, gb);
}

CatPlan cat_plan(const std::vector<Shape>& xs, int64_t dim) {
  constexpr const char* op = "cat";
  if (xs.empty()) throw_value_error(op, ": tensors must be a non-empty sequence of arrays");
  const Shape& first = xs[0];
  const int64_t ndim = static_cast<int64_t>(first.size());
  if (ndim == 0)
    throw_value_error(op, ": tensors[0] is 0-d; zero-dimensional arrays cannot be concatenated");
  if (dim < -ndim || dim >= ndim)
    throw_value_error(op, ": dim=", dim, " is out of range for tensors of rank ", ndim,
                      " (expected ", -ndim, " <= dim <= ", ndim - 1, ")");
  CatPlan plan;
  plan.dim = dim < 0 ? dim + ndim : dim;
  plan.y_shape = first;
  plan.y_shape[plan.dim] = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const Shape& s = xs[k];
    bool ok = s.size() == first.size();
    for (int64_t i = 0; ok && i < ndim; ++i) ok = i == plan.dim || s[i] == first[i];
    if (!ok)
      throw_value_error(op, ": tensors[", k, "] has shape ", shape_str(s),
                        ", expected the shape of tensors[0] ", shape_str(first),
                        " in every dim except dim ", plan.dim);
    checked_numel(s, "tensors");
    plan.y_shape[plan.dim] = checked_add(plan.y_shape[plan.dim], s[plan.dim],
                                         "cat: the concatenated dim");
  }
  checked_numel(plan.y_shape, "the concatenation");
  const Shape lead(first.begin(), first.begin() + plan.dim),
      rest(first.begin() + plan.dim + 1, first.end());
  plan.outer = checked_numel(lead, "tensors");
  const int64_t inner = checked_numel(rest, "tensors");
  for (const Shape& s : xs) plan.widths.push_back(s[plan.dim] * inner);
  return plan;
}

void cat_forward(const CatPlan& plan, const float* const* xs, float* y) {
  cpu::cat(plan.outer, static_cast<int64_t>(plan.widths.size()), xs, plan.widths.data(), y);
}

void cat_backward(const CatPlan& plan, const float* gy, float* const* gxs) {
  cpu::cat_backward(plan.outer, static_cast<int64_t>(plan.widths.size()), gy,
                    plan.widths.data(), gxs);
}

DropoutPlan dropout_plan(const Shape& x, double p, bool training, uint64_t seed) {
  if (!(p >= 0.0 && p <= 1.0))
    throw_value_error("dropout: p must be a probability in [0, 1], got ", p);
  DropoutPlan plan;
  plan.n = checked_numel(x, "x");
  plan.p = p;
  plan.training = training;
  plan.seed = seed;
  return plan;
}

namespace {
// y = x * mask / (1 - p), the keep scale rounded to float as torch's
// noise.div_(1 - p) does; training=False and p == 0 are the identity.
void dropout_apply(const DropoutPlan& plan, const float* x, float* y) {
  if (!plan.training || plan.p == 0.0) return cpu::tensor_copy(plan.n, x, y);
  const float scale = plan.p == 1.0 ? 0.0f : 1.0f / static_cast<float>(1.0 - plan.p);
  cpu::dropout(plan.n, plan.p, scale, plan.seed, x, y);
}
}  // namespace

void dropout_forward(const DropoutPlan& plan, const float* x, float* y) {
  dropout_apply(plan, x, y);
}

void dropout_backward(const DropoutPlan& plan, const float* gy, float* gx) {
  dropout_apply(plan, gy, gx);
}

}  // namespace striate::ops
