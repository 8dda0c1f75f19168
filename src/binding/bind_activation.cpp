#include "arrays.h"
#include "striate/ops.h"

namespace striate::binding {

void bind_activation(py::module_& m) {
  py::enum_<ops::Activation>(m, "Activation")
      .value("relu", ops::Activation::relu)
      .value("leaky_relu", ops::Activation::leaky_relu)
      .value("sigmoid", ops::Activation::sigmoid)
      .value("tanh", ops::Activation::tanh);

  m.def(
      "activation",
      [](ops::Activation kind, const py::array& x, float slope) {
        const float* xp = in(x, "x");
        const Shape s = shape_of(x);
        const int64_t n = checked_numel(s, "x");
        FloatArray y = empty(s);
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::activation_forward(kind, n, slope, xp, yp);
        }
        return y;
      },
      py::arg("kind"), py::arg("x"), py::arg("negative_slope") = 0.0f);

  m.def(
      "activation_backward",
      [](ops::Activation kind, const py::array& gy, const py::array& x, float slope) {
        const float* gyp = in(gy, "grad_out");
        const float* xp = in(x, "x");
        const Shape s = shape_of(x);
        ops::check_grad_shape("activation backward", shape_of(gy), s);
        const int64_t n = checked_numel(s, "x");
        FloatArray gx = empty(s);
        float* gxp = gx.mutable_data();
        {
          KernelScope scope;
          ops::activation_backward(kind, n, slope, gyp, xp, gxp);
        }
        return py::make_tuple(gx);
      },
      py::arg("kind"), py::arg("grad_out"), py::arg("x"), py::arg("negative_slope") = 0.0f);

  m.def(
      "softmax",
      [](const py::array& x, int64_t dim, bool log) {
        const float* xp = in(x, "x");
        const Shape s = shape_of(x);
        const SoftmaxParams p = ops::softmax_plan(log ? "log_softmax" : "softmax", s, dim);
        FloatArray y = empty(s);
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::softmax_forward(p, log, xp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("dim"), py::arg("log"));

  m.def(
      "softmax_backward",
      [](const py::array& gy, const py::array& x, int64_t dim, bool log) {
        const char* op = log ? "log_softmax_backward" : "softmax_backward";
        const float* gyp = in(gy, "grad_out");
        const float* xp = in(x, "x");
        const Shape s = shape_of(x);
        const SoftmaxParams p = ops::softmax_plan(op, s, dim);
        ops::check_grad_shape(op, shape_of(gy), s);
        FloatArray gx = empty(s);
        float* gxp = gx.mutable_data();
        {
          KernelScope scope;
          ops::softmax_backward(p, log, gyp, xp, gxp);
        }
        return py::make_tuple(gx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("dim"), py::arg("log"));
}

}  // namespace striate::binding
