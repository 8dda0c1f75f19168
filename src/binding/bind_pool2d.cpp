#include <array>
#include <optional>

#include <pybind11/stl.h>

#include "arrays.h"
#include "striate/ops.h"

namespace striate::binding {

using Pair = std::array<int64_t, 2>;
using OptPair = std::array<std::optional<int64_t>, 2>;

static ops::Pool2dArgs pool_args(Pair kernel_size, Pair stride, Pair padding,
                                 Pair dilation, bool ceil_mode,
                                 bool count_include_pad) {
  ops::Pool2dArgs a;
  a.kh = kernel_size[0], a.kw = kernel_size[1];
  a.stride_h = stride[0], a.stride_w = stride[1];
  a.pad_h = padding[0], a.pad_w = padding[1];
  a.dil_h = dilation[0], a.dil_w = dilation[1];
  a.ceil_mode = ceil_mode;
  a.count_include_pad = count_include_pad;
  return a;
}

static AdaptivePool2dParams adaptive_plan_for(const py::array& x,
                                              const OptPair& output_size) {
  return ops::adaptive_avg_pool2d_plan(shape_of(x), output_size[0], output_size[1]);
}

void bind_pool2d(py::module_& m) {
  m.def(
      "max_pool2d",
      [](const py::array& x, Pair kernel_size, Pair stride, Pair padding,
         Pair dilation, bool ceil_mode) {
        const float* xp = in(x, "x");
        const Pool2dParams p = ops::max_pool2d_plan(
            shape_of(x), pool_args(kernel_size, stride, padding, dilation, ceil_mode, true));
        FloatArray y = empty(ops::pool2d_out_shape(p));
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::max_pool2d_forward(p, xp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("ceil_mode"));

  m.def(
      "max_pool2d_backward",
      [](const py::array& gy, const py::array& x, Pair kernel_size, Pair stride,
         Pair padding, Pair dilation, bool ceil_mode) {
        const float* gyp = in(gy, "grad_out");
        const float* xp = in(x, "x");
        const Pool2dParams p = ops::max_pool2d_plan(
            shape_of(x), pool_args(kernel_size, stride, padding, dilation, ceil_mode, true));
        ops::check_grad_shape("max_pool2d_backward", shape_of(gy), ops::pool2d_out_shape(p));
        FloatArray gx = empty(shape_of(x));
        float* gxp = gx.mutable_data();
        {
          KernelScope scope;
          ops::max_pool2d_backward(p, gyp, xp, gxp);
        }
        return py::make_tuple(gx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
      py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"));

  m.def(
      "avg_pool2d",
      [](const py::array& x, Pair kernel_size, Pair stride, Pair padding,
         bool ceil_mode, bool count_include_pad) {
        const float* xp = in(x, "x");
        const Pool2dParams p = ops::avg_pool2d_plan(
            shape_of(x),
            pool_args(kernel_size, stride, padding, {1, 1}, ceil_mode, count_include_pad));
        FloatArray y = empty(ops::pool2d_out_shape(p));
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::avg_pool2d_forward(p, xp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
      py::arg("ceil_mode"), py::arg("count_include_pad"));

  m.def(
      "avg_pool2d_backward",
      [](const py::array& gy, const py::array& x, Pair kernel_size, Pair stride,
         Pair padding, bool ceil_mode, bool count_include_pad) {
        const float* gyp = in(gy, "grad_out");
        in(x, "x");
        const Pool2dParams p = ops::avg_pool2d_plan(
            shape_of(x),
            pool_args(kernel_size, stride, padding, {1, 1}, ceil_mode, count_include_pad));
        ops::check_grad_shape("avg_pool2d_backward", shape_of(gy), ops::pool2d_out_shape(p));
        FloatArray gx = empty(shape_of(x));
        float* gxp = gx.mutable_data();
        {
          KernelScope scope;
          ops::avg_pool2d_backward(p, gyp, gxp);
        }
        return py::make_tuple(gx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
      py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"));

  m.def(
      "adaptive_avg_pool2d",
      [](const py::array& x, const OptPair& output_size) {
        const float* xp = in(x, "x");
        const AdaptivePool2dParams p = adaptive_plan_for(x, output_size);
        FloatArray y = empty(ops::adaptive_pool2d_out_shape(p));
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::adaptive_avg_pool2d_forward(p, xp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("output_size"),
      "output_size entries may be None (same as the input).");

  m.def(
      "adaptive_avg_pool2d_backward",
      [](const py::array& gy, const py::array& x, const OptPair& output_size) {
        const float* gyp = in(gy, "grad_out");
        in(x, "x");
        const AdaptivePool2dParams p = adaptive_plan_for(x, output_size);
        ops::check_grad_shape("adaptive_avg_pool2d_backward", shape_of(gy),
                              ops::adaptive_pool2d_out_shape(p));
        FloatArray gx = empty(shape_of(x));
        float* gxp = gx.mutable_data();
        {
          KernelScope scope;
          ops::adaptive_avg_pool2d_backward(p, gyp, gxp);
        }
        return py::make_tuple(gx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("output_size"));
}

}  // namespace striate::binding
