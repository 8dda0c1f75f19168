#include <string>

#include "arrays.h"
#include "striate/ops.h"

namespace striate::binding {

void bind_linear(py::module_& m) {
  m.def(
      "linear",
      [](const py::array& x, const py::array& w, const OptArray& b) {
        const float* xp = in(x, "x");
        const float* wp = in(w, "weight");
        const float* bp = in(b, "bias");
        const Shape bs = shape_of(b);
        const ops::LinearPlan plan = ops::linear_plan(shape_of(x), shape_of(w), b ? &bs : nullptr);
        FloatArray y = empty(plan.y_shape);
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::linear_forward(plan, xp, wp, bp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"));

  m.def(
      "linear_backward",
      [](const py::array& gy, const py::array& x, const py::array& w, const OptArray& b) {
        const float* gyp = in(gy, "grad_out");
        const float* xp = in(x, "x");
        const float* wp = in(w, "weight");
        in(b, "bias");
        const Shape bs = shape_of(b);
        const ops::LinearPlan plan = ops::linear_plan(shape_of(x), shape_of(w), b ? &bs : nullptr);
        ops::check_grad_shape("linear_backward", shape_of(gy), plan.y_shape);
        FloatArray gx = empty(shape_of(x));
        FloatArray gw = empty(shape_of(w));
        py::object gb = py::none();
        float* gbp = nullptr;
        if (plan.has_bias) {
          FloatArray g = empty({plan.out});
          gbp = g.mutable_data();
          gb = g;
        }
        float* gxp = gx.mutable_data();
        float* gwp = gw.mutable_data();
        {
          KernelScope scope;
          ops::linear_backward(plan, gyp, xp, wp, gxp, gwp, gbp);
        }
        return py::make_tuple(gx, gw, gb);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("weight"), py::arg("bias"));

  m.def(
      "matmul",
      [](const py::array& a, const py::array& b) {
        const float* ap = in(a, "a");
        const float* bp = in(b, "b");
        const ops::MatmulPlan plan = ops::matmul_plan(shape_of(a), shape_of(b));
        FloatArray y = empty(plan.y_shape);
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::matmul_forward(plan, ap, bp, yp);
        }
        return y;
      },
      py::arg("a"), py::arg("b"));

  m.def(
      "matmul_backward",
      [](const py::array& gy, const py::array& a, const py::array& b) {
        const float* gyp = in(gy, "grad_out");
        const float* ap = in(a, "a");
        const float* bp = in(b, "b");
        const ops::MatmulPlan plan = ops::matmul_plan(shape_of(a), shape_of(b));
        ops::check_grad_shape("matmul_backward", shape_of(gy), plan.y_shape);
        FloatArray ga = empty(shape_of(a));
        FloatArray gb = empty(shape_of(b));
        float* gap = ga.mutable_data();
        float* gbp = gb.mutable_data();
        {
          KernelScope scope;
          ops::matmul_backward(plan, gyp, ap, bp, gap, gbp);
        }
        return py::make_tuple(ga, gb);
      },
      py::arg("grad_out"), py::arg("a"), py::arg("b"));

  m.def(
      "cross_entropy",
      [](const py::array& z, const py::array& t, const std::string& reduction) {
        const float* zp = in(z, "input");
        const int64_t* tp = in_int64(t, "target");
        const ops::CrossEntropyPlan plan =
            ops::cross_entropy_plan(shape_of(z), shape_of(t), reduction);
        ops::cross_entropy_check_target(plan, tp);
        FloatArray out = empty(plan.out_shape);
        float* op = out.mutable_data();
        {
          KernelScope scope;
          ops::cross_entropy_forward(plan, zp, tp, op);
        }
        return out;
      },
      py::arg("input"), py::arg("target"), py::arg("reduction"));

  m.def(
      "cross_entropy_backward",
      [](const py::array& gy, const py::array& z, const py::array& t,
         const std::string& reduction) {
        const float* gyp = in(gy, "grad_out");
        const float* zp = in(z, "input");
        const int64_t* tp = in_int64(t, "target");
        const ops::CrossEntropyPlan plan =
            ops::cross_entropy_plan(shape_of(z), shape_of(t), reduction);
        ops::check_grad_shape("cross_entropy_backward", shape_of(gy), plan.out_shape);
        ops::cross_entropy_check_target(plan, tp);
        FloatArray gz = empty(shape_of(z));
        float* gzp = gz.mutable_data();
        {
          KernelScope scope;
          ops::cross_entropy_backward(plan, gyp, zp, tp, gzp);
        }
        return py::make_tuple(gz, py::none());
      },
      py::arg("grad_out"), py::arg("input"), py::arg("target"), py::arg("reduction"));
}

}  // namespace striate::binding
