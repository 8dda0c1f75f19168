// mse_loss (torch.nn.functional.mse_loss without broadcasting).
#include <limits>

#include "common.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"

namespace striate::ops {

MseLossPlan mse_loss_plan(const Shape& input, const Shape& target,
                          const std::string& reduction) {
  constexpr const char* op = "mse_loss";
  if (input != target)
    throw_value_error(op, ": target must have the shape of input ", shape_str(input),
                      " (no broadcasting), got ", shape_str(target));
  MseLossPlan plan;
  plan.n = checked_numel(input, "input");
  plan.reduction = parse_reduction(op, reduction);
  if (plan.reduction == Reduction::none) plan.out_shape = input;
  return plan;
}

void mse_loss_forward(const MseLossPlan& plan, const float* input,
                      const float* target, float* out) {
  if (plan.reduction == Reduction::none) {
    cpu::mse_loss(plan.n, input, target, out, nullptr);
    return;
  }
  // Fixed-size blocks (a few per MiB of input) summed in order here: the
  // same bits for any thread count.
  const int64_t blocks = cpu::mse_loss_blocks(plan.n);
  static thread_local std::vector<double> sums;
  if (static_cast<int64_t>(sums.size()) < blocks) sums.resize(static_cast<size_t>(blocks));
  cpu::mse_loss(plan.n, input, target, nullptr, sums.data());
  double s = 0.0;
  for (int64_t b = 0; b < blocks; ++b) s += sums[static_cast<size_t>(b)];
  if (plan.reduction == Reduction::mean)
    s = plan.n ? s / static_cast<double>(plan.n) : std::numeric_limits<double>::quiet_NaN();
  *out = static_cast<float>(s);
}

void mse_loss_backward(const MseLossPlan& plan, const float* gy,
                       const float* input, const float* target, float* ginput,
                       float* gtarget) {
  // torch: norm = 2 / numel for mean, else 2, rounded to float.
  const double norm = plan.reduction == Reduction::mean && plan.n
                          ? 2.0 / static_cast<double>(plan.n)
                          : 2.0;
  const int64_t stride = plan.reduction == Reduction::none ? 1 : 0;
  cpu::mse_loss_backward(plan.n, static_cast<float>(norm), gy, stride, input, target,
                         ginput, gtarget);
}

}  // namespace striate::ops
