// linear and cross_entropy ops.
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"

namespace striate::ops {

LinearPlan linear_plan(const Shape& x, const Shape& w, const Shape* bias) {
  constexpr const char* op = "linear";
  check_rank(op, "weight", w, 2, "(out_features, in_features)");
  if (x.empty())
    throw_value_error(op, ": x must have at least 1 dimension (*, in_features), got a 0-d array");
  LinearPlan plan;
  plan.out = w[0], plan.in = w[1];
  if (x.back() != plan.in)
    throw_value_error(op, ": x's last dimension ", x.back(), " (x shape ", shape_str(x),
                      ") must equal in_features = weight.shape[1] = ", plan.in);
  if (bias && (bias->size() != 1 || (*bias)[0] != plan.out))
    throw_value_error(op, ": bias must have shape (", plan.out,
                      ",) to match weight.shape[0], got ", shape_str(*bias));
  plan.has_bias = bias != nullptr;
  plan.m = checked_numel(Shape(x.begin(), x.end() - 1), "linear input");
  plan.y_shape = Shape(x.begin(), x.end() - 1);
  plan.y_shape.push_back(plan.out);
  checked_numel(plan.y_shape, "linear output");
  return plan;
}

void linear_forward(const LinearPlan& plan, const float* x, const float* w,
                    const float* bias, float* y) {
  cpu::linear(plan.m, plan.in, plan.out, x, w, plan.has_bias ? bias : nullptr, y);
}

void linear_backward(const LinearPlan& plan, const float* gy, const float* x,
                     const float* w, float* gx, float* gw, float* gbias) {
  cpu::linear_backward(plan.m, plan.in, plan.out, gy, x, w, gx, gw,
                       plan.has_bias ? gbias : nullptr);
}

MatmulPlan matmul_plan(const Shape& a, const Shape& b) {
  constexpr const char* op = "matmul";
  check_rank(op, "a", a, 2, "(M, K)");
  check_rank(op, "b", b, 2, "(K, N)");
  if (a[1] != b[0])
    throw_value_error(op, ": a ", shape_str(a), " and b ", shape_str(b),
                      " cannot be multiplied (a.shape[1] = ", a[1], " != b.shape[0] = ", b[0], ")");
  MatmulPlan plan;
  plan.m = a[0], plan.k = a[1], plan.n = b[1];
  plan.y_shape = {plan.m, plan.n};
  checked_numel(plan.y_shape, "matmul output");
  return plan;
}

void matmul_forward(const MatmulPlan& plan, const float* a, const float* b, float* y) {
  GemmParams gp;
  gp.m = plan.m, gp.n = plan.n, gp.k = plan.k;
  gp.lda = plan.k, gp.ldb = plan.n, gp.ldc = plan.n;
  cpu::sgemm(gp, a, b, y);
}

void matmul_backward(const MatmulPlan& plan, const float* gy, const float* a,
                     const float* b, float* ga, float* gb) {
  GemmParams pa;  // ga[m x k] = gy[m x n] * b^T
  pa.m = plan.m, pa.n = plan.k, pa.k = plan.n;
  pa.trans_b = true;
  pa.lda = plan.n, pa.ldb = plan.n, pa.ldc = plan.k;
  cpu::sgemm(pa, gy, b, ga);
  GemmParams pb;  // gb[k x n] = a^T * gy
  pb.m = plan.k, pb.n = plan.n, pb.k = plan.m;
  pb.trans_a = true;
  pb.lda = plan.k, pb.ldb = plan.n, pb.ldc = plan.n;
  cpu::sgemm(pb, a, gy, gb);
}

CrossEntropyPlan cross_entropy_plan(const Shape& input, const Shape& target,
                                    const std::string& reduction) {
  constexpr const char* op = "cross_entropy";
  check_rank(op, "input", input, 2, "(N, C) logits");
  if (input[1] < 1)
    throw_value_error(op, ": input must have at least one class, got shape ", shape_str(input));
  if (target.size() != 1 || target[0] != input[0])
    throw_value_error(op, ": target must have shape (", input[0],
                      ",) (one class index per row of input ", shape_str(input), "), got ",
                      shape_str(target));
  CrossEntropyPlan plan;
  plan.n = input[0], plan.c = input[1];
  plan.reduction = parse_reduction(op, reduction);
  if (plan.reduction == Reduction::none) plan.out_shape = {plan.n};
  return plan;
}

void cross_entropy_check_target(const CrossEntropyPlan& plan, const int64_t* target) {
  for (int64_t i = 0; i < plan.n; ++i)
    if (target[i] < 0 || target[i] >= plan.c)
      throw_index_error("cross_entropy: target[", i, "] = ", target[i],
                        " is out of range for ", plan.c, " classes (expected 0 <= target < ",
                        plan.c, ")");
}

void cross_entropy_forward(const CrossEntropyPlan& plan, const float* input,
                           const int64_t* target, float* out) {
  if (plan.reduction == Reduction::none) {
    cpu::cross_entropy(plan.n, plan.c, input, target, out);
    return;
  }
  float* losses = workspace_floats(plan.n);
  cpu::cross_entropy(plan.n, plan.c, input, target, losses);
  double s = 0.0;  // sequential: the same order for any thread count
  for (int64_t i = 0; i < plan.n; ++i) s += losses[i];
  if (plan.reduction == Reduction::mean)
    s = plan.n ? s / static_cast<double>(plan.n) : std::numeric_limits<double>::quiet_NaN();
  *out = static_cast<float>(s);
}

void cross_entropy_backward(const CrossEntropyPlan& plan, const float* gy,
                            const float* input, const int64_t* target,
                            float* ginput) {
  // Per-row weight of the softmax-minus-onehot gradient.
  float* scale = workspace_floats(plan.n);
  for (int64_t i = 0; i < plan.n; ++i)
    scale[i] = plan.reduction == Reduction::none ? gy[i]
               : plan.reduction == Reduction::sum
                   ? gy[0]
                   : static_cast<float>(static_cast<double>(gy[0]) / plan.n);
  cpu::cross_entropy_backward(plan.n, plan.c, scale, input, target, ginput);
}

}  // namespace striate::ops
