#include <array>
#include <string>
#include <tuple>

#include <pybind11/stl.h>

#include "arrays.h"
#include "striate/ops.h"

namespace striate::binding {

using Pair = std::array<int64_t, 2>;

static ops::Conv2dPlan plan_for(const py::array& x, const py::array& w,
                                const OptArray& b, Pair stride,
                                const std::string& padding_mode, Pair padding,
                                Pair dilation, int64_t groups,
                                const std::string& algorithm,
                                const std::string& activation = "none",
                                bool backward = false) {
  ops::Conv2dArgs a;
  a.stride_h = stride[0], a.stride_w = stride[1];
  a.padding_mode = padding_mode;
  a.pad_h = padding[0], a.pad_w = padding[1];
  a.dil_h = dilation[0], a.dil_w = dilation[1];
  a.groups = groups;
  a.algorithm = algorithm;
  a.activation = activation;
  a.backward = backward;
  Shape bs;
  if (b) bs = shape_of(*b);
  return ops::conv2d_plan(shape_of(x), shape_of(w), b ? &bs : nullptr, a);
}

void bind_conv2d(py::module_& m) {
  m.def(
      "conv2d",
      [](const py::array& x, const py::array& w, const OptArray& b, Pair stride,
         const std::string& padding_mode, Pair padding, Pair dilation,
         int64_t groups, const std::string& algorithm, const std::string& activation) {
        const float* xp = in(x, "x");
        const float* wp = in(w, "weight");
        const float* bp = b ? in(*b, "bias") : nullptr;
        const ops::Conv2dPlan plan =
            plan_for(x, w, b, stride, padding_mode, padding, dilation, groups, algorithm,
                     activation);
        FloatArray y = empty(plan.y_shape);
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::conv2d_forward(plan, xp, wp, bp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"),
      py::arg("padding_mode"), py::arg("padding"), py::arg("dilation"),
      py::arg("groups"), py::arg("algorithm"), py::arg("activation") = "none");

  m.def(
      "conv2d_backward",
      [](const py::array& gy, const py::array& x, const py::array& w,
         const OptArray& b, Pair stride, const std::string& padding_mode,
         Pair padding, Pair dilation, int64_t groups, const std::string& algorithm) {
        const float* gyp = in(gy, "grad_out");
        const float* xp = in(x, "x");
        const float* wp = in(w, "weight");
        if (b) in(*b, "bias");
        const ops::Conv2dPlan plan =
            plan_for(x, w, b, stride, padding_mode, padding, dilation, groups, algorithm,
                     "none", /*backward=*/true);
        ops::check_grad_shape("conv2d_backward", shape_of(gy), plan.y_shape);
        FloatArray gx = empty(shape_of(x));
        FloatArray gw = empty(shape_of(w));
        py::object gb = py::none();
        float* gbp = nullptr;
        if (plan.has_bias) {
          FloatArray g = empty({plan.p.c_out});
          gbp = g.mutable_data();
          gb = g;
        }
        float* gxp = gx.mutable_data();
        float* gwp = gw.mutable_data();
        {
          KernelScope scope;
          ops::conv2d_backward(plan, gyp, xp, wp, gxp, gwp, gbp);
        }
        return py::make_tuple(gx, gw, gb);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("weight"), py::arg("bias"),
      py::arg("stride"), py::arg("padding_mode"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"), py::arg("algorithm"));

  m.def(
      "conv2d_algorithm",
      [](const py::array& x, const py::array& w, const OptArray& b, Pair stride,
         const std::string& padding_mode, Pair padding, Pair dilation,
         int64_t groups, const std::string& algorithm, bool backward) {
        return std::string(ops::algorithm_name(
            plan_for(x, w, b, stride, padding_mode, padding, dilation, groups, algorithm,
                     "none", backward)
                .algorithm));
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"),
      py::arg("padding_mode"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
      py::arg("algorithm"), py::arg("backward") = false,
      "The algorithm `conv2d` (or with backward=True, `conv2d_backward`) would run "
      "for these arguments (after validation).");

  m.def(
      "conv2d_algorithms",
      [](const py::array& x, const py::array& w, const OptArray& b, Pair stride,
         const std::string& padding_mode, Pair padding, Pair dilation, int64_t groups) {
        const ops::Conv2dPlan plan =
            plan_for(x, w, b, stride, padding_mode, padding, dilation, groups, "direct");
        py::list out;
        for (ops::Conv2dAlgorithm a : ops::conv2d_algorithms(plan.p))
          out.append(std::string(ops::algorithm_name(a)));
        return out;
      },
      "The algorithms that can run these arguments (after validation).");

  m.def("conv2d_filter_cache_bytes", &ops::conv2d_filter_cache_bytes,
        "Bytes held by the Winograd filter cache.");
  m.def("conv2d_filter_cache_clear", &ops::conv2d_filter_cache_clear,
        "Drop the Winograd filter cache; returns the bytes it held.");
}

}  // namespace striate::binding
