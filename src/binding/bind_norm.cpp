#include <optional>

#include <pybind11/stl.h>

#include "arrays.h"
#include "striate/ops.h"

namespace striate::binding {

namespace {

// A running statistic: None, or an ndarray used as it is (never converted:
// in training mode it is written in place, and a converted copy would
// silently swallow the update).
std::optional<py::array> running_stat(const py::object& o, const char* name) {
  if (o.is_none()) return std::nullopt;
  if (!py::isinstance<py::array>(o))
    throw_type_error(name, " must be a float32 ndarray or None, got ",
                     std::string(py::str(py::type::of(o))));
  return py::reinterpret_borrow<py::array>(o);
}

ops::BatchNormPlan bn_plan(const py::array& x, const OptArray& rm, const OptArray& rv,
                           const OptArray& w, const OptArray& b, bool training,
                           double momentum, double eps) {
  const Shape rms = shape_of(rm), rvs = shape_of(rv), ws = shape_of(w), bs = shape_of(b);
  return ops::batch_norm_plan(shape_of(x), rm ? &rms : nullptr, rv ? &rvs : nullptr,
                              w ? &ws : nullptr, b ? &bs : nullptr, training, momentum,
                              eps);
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def(
      "batch_norm",
      [](const py::array& x, const py::object& running_mean,
         const py::object& running_var, const OptArray& w, const OptArray& b,
         bool training, double momentum, double eps) {
        OptArray rm = running_stat(running_mean, "running_mean");
        OptArray rv = running_stat(running_var, "running_var");
        const float* xp = in(x, "x");
        float* rmp = nullptr;
        float* rvp = nullptr;
        if (training) {  // updated in place
          if (rm) rmp = inout(*rm, "running_mean");
          if (rv) rvp = inout(*rv, "running_var");
        } else {  // read only (the op does not write them in eval mode)
          rmp = const_cast<float*>(in(rm, "running_mean"));
          rvp = const_cast<float*>(in(rv, "running_var"));
        }
        const float* wp = in(w, "weight");
        const float* bp = in(b, "bias");
        const ops::BatchNormPlan plan = bn_plan(x, rm, rv, w, b, training, momentum, eps);
        FloatArray y = empty(shape_of(x));
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::batch_norm_forward(plan, xp, rmp, rvp, wp, bp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight"),
      py::arg("bias"), py::arg("training"), py::arg("momentum"), py::arg("eps"),
      "Batch norm; in training mode the given running statistics are updated in place.");

  m.def(
      "batch_norm_backward",
      [](const py::array& gy, const py::array& x, const py::object& running_mean,
         const py::object& running_var, const OptArray& w, const OptArray& b,
         bool training, double momentum, double eps) {
        OptArray rm = running_stat(running_mean, "running_mean");
        OptArray rv = running_stat(running_var, "running_var");
        const float* gyp = in(gy, "grad_out");
        const float* xp = in(x, "x");
        const float* rmp = in(rm, "running_mean");
        const float* rvp = in(rv, "running_var");
        const float* wp = in(w, "weight");
        in(b, "bias");
        const ops::BatchNormPlan plan = bn_plan(x, rm, rv, w, b, training, momentum, eps);
        ops::check_grad_shape("batch_norm_backward", shape_of(gy), shape_of(x));
        FloatArray gx = empty(shape_of(x));
        py::object gw = py::none(), gb = py::none();
        float* gwp = nullptr;
        float* gbp = nullptr;
        if (plan.has_weight) {
          FloatArray g = empty({plan.p.c});
          gwp = g.mutable_data();
          gw = g;
        }
        if (plan.has_bias) {
          FloatArray g = empty({plan.p.c});
          gbp = g.mutable_data();
          gb = g;
        }
        float* gxp = gx.mutable_data();
        {
          KernelScope scope;
          ops::batch_norm_backward(plan, gyp, xp, rmp, rvp, wp, gxp, gwp, gbp);
        }
        return py::make_tuple(gx, py::none(), py::none(), gw, gb);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("running_mean"), py::arg("running_var"),
      py::arg("weight"), py::arg("bias"), py::arg("training"), py::arg("momentum"),
      py::arg("eps"));

  m.def(
      "local_response_norm",
      [](const py::array& x, int64_t size, double alpha, double beta, double k) {
        const float* xp = in(x, "x");
        const LrnParams p = ops::local_response_norm_plan(shape_of(x), size, alpha, beta, k);
        FloatArray y = empty(shape_of(x));
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::local_response_norm_forward(p, xp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("size"), py::arg("alpha"), py::arg("beta"), py::arg("k"));

  m.def(
      "local_response_norm_backward",
      [](const py::array& gy, const py::array& x, int64_t size, double alpha,
         double beta, double k) {
        const float* gyp = in(gy, "grad_out");
        const float* xp = in(x, "x");
        const LrnParams p = ops::local_response_norm_plan(shape_of(x), size, alpha, beta, k);
        ops::check_grad_shape("local_response_norm_backward", shape_of(gy), shape_of(x));
        FloatArray gx = empty(shape_of(x));
        float* gxp = gx.mutable_data();
        {
          KernelScope scope;
          ops::local_response_norm_backward(p, gyp, xp, gxp);
        }
        return py::make_tuple(gx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("size"), py::arg("alpha"),
      py::arg("beta"), py::arg("k"));
}

}  // namespace striate::binding
