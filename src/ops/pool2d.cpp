// Pooling ops: argument checks and output shapes (PyTorch's rules), then the
// CPU kernels.
#include "common.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"

namespace striate::ops {
namespace {

Pool2dParams pool_plan(const char* op, const Shape& x, const Pool2dArgs& a,
                       bool has_dilation) {
  check_rank(op, "x", x, 4, "(N, C, H, W)");
  check_nonempty(op, "x", x, 1);
  check_pair(op, "kernel_size", a.kh, a.kw, 1);
  check_pair(op, "stride", a.stride_h, a.stride_w, 1);
  check_pair(op, "padding", a.pad_h, a.pad_w, 0);
  check_pair(op, "dilation", a.dil_h, a.dil_w, 1);
  if (!has_dilation && (a.dil_h != 1 || a.dil_w != 1))
    throw_value_error(op, ": dilation must be 1 (average pooling has no dilation), got (",
                      a.dil_h, ", ", a.dil_w, ")");
  // PyTorch's rule: a window must always overlap the input.
  if (a.pad_h > a.kh / 2 || a.pad_w > a.kw / 2)
    throw_value_error(op, ": padding (", a.pad_h, ", ", a.pad_w,
                      ") must be at most half of kernel_size (", a.kh, ", ", a.kw,
                      "), i.e. at most (", a.kh / 2, ", ", a.kw / 2, ")");

  Pool2dParams p;
  p.n = x[0], p.c = x[1], p.h_in = x[2], p.w_in = x[3];
  p.kh = a.kh, p.kw = a.kw;
  p.stride_h = a.stride_h, p.stride_w = a.stride_w;
  p.pad_h = a.pad_h, p.pad_w = a.pad_w;
  p.dil_h = a.dil_h, p.dil_w = a.dil_w;
  p.count_include_pad = a.count_include_pad;
  p.h_out = pool_out_size(p.h_in, p.kh, p.stride_h, p.pad_h, p.dil_h, a.ceil_mode);
  p.w_out = pool_out_size(p.w_in, p.kw, p.stride_w, p.pad_w, p.dil_w, a.ceil_mode);
  if (p.h_out < 1 || p.w_out < 1)
    throw_value_error(op, ": output size (", p.h_out, ", ", p.w_out,
                      ") is too small: the kernel (", p.dil_h * (p.kh - 1) + 1, "x",
                      p.dil_w * (p.kw - 1) + 1, " with dilation) is larger than the padded input (",
                      p.h_in + 2 * p.pad_h, "x", p.w_in + 2 * p.pad_w, ") of x ", shape_str(x));
  checked_numel(pool2d_out_shape(p), op);
  return p;
}

}  // namespace

Pool2dParams max_pool2d_plan(const Shape& x, const Pool2dArgs& args) {
  return pool_plan("max_pool2d", x, args, true);
}

Pool2dParams avg_pool2d_plan(const Shape& x, const Pool2dArgs& args) {
  return pool_plan("avg_pool2d", x, args, false);
}

Shape pool2d_out_shape(const Pool2dParams& p) { return {p.n, p.c, p.h_out, p.w_out}; }

void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  cpu::max_pool2d(p, x, y);
}

void max_pool2d_backward(const Pool2dParams& p, const float* gy, const float* x,
                         float* gx) {
  cpu::max_pool2d_backward(p, gy, x, gx);
}

void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  cpu::avg_pool2d(p, x, y);
}

void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx) {
  cpu::avg_pool2d_backward(p, gy, gx);
}

AdaptivePool2dParams adaptive_avg_pool2d_plan(const Shape& x,
                                              std::optional<int64_t> out_h,
                                              std::optional<int64_t> out_w) {
  constexpr const char* kOp = "adaptive_avg_pool2d";
  check_rank(kOp, "x", x, 4, "(N, C, H, W)");
  check_nonempty(kOp, "x", x, 1);
  AdaptivePool2dParams p;
  p.n = x[0], p.c = x[1], p.h_in = x[2], p.w_in = x[3];
  p.h_out = out_h.value_or(p.h_in);
  p.w_out = out_w.value_or(p.w_in);
  check_scalar(kOp, "output_size", p.h_out, 1);
  check_scalar(kOp, "output_size", p.w_out, 1);
  // The kernels compute bin edges as (i + 1) * h_in / h_out.
  checked_mul(p.h_out, p.h_in + 1, kOp);
  checked_mul(p.w_out, p.w_in + 1, kOp);
  checked_numel(adaptive_pool2d_out_shape(p), kOp);
  return p;
}

Shape adaptive_pool2d_out_shape(const AdaptivePool2dParams& p) {
  return {p.n, p.c, p.h_out, p.w_out};
}

void adaptive_avg_pool2d_forward(const AdaptivePool2dParams& p, const float* x,
                                 float* y) {
  cpu::adaptive_avg_pool2d(p, x, y);
}

void adaptive_avg_pool2d_backward(const AdaptivePool2dParams& p,
                                  const float* gy, float* gx) {
  cpu::adaptive_avg_pool2d_backward(p, gy, gx);
}

}  // namespace striate::ops
