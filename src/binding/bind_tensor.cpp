#include <string>
#include <vector>

#include "arrays.h"
#include "striate/ops.h"

namespace striate::binding {

namespace {
FloatArray copy_of(const float* x, const Shape& s, int64_t n) {
  FloatArray y = empty(s);
  float* yp = y.mutable_data();
  {
    KernelScope scope;
    ops::copy_forward(n, x, yp);
  }
  return y;
}
}  // namespace

void bind_tensor(py::module_& m) {
  m.def(
      "add",
      [](const py::array& a, const py::array& b) {
        const float* ap = in(a, "a");
        const float* bp = in(b, "b");
        const int64_t n = ops::add_plan(shape_of(a), shape_of(b));
        FloatArray y = empty(shape_of(a));
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::add_forward(n, ap, bp, yp);
        }
        return y;
      },
      py::arg("a"), py::arg("b"));

  m.def(
      "add_backward",
      [](const py::array& gy, const py::array& a, const py::array& b) {
        const float* gyp = in(gy, "grad_out");
        in(a, "a");
        in(b, "b");
        const int64_t n = ops::add_plan(shape_of(a), shape_of(b));
        ops::check_grad_shape("add_backward", shape_of(gy), shape_of(a));
        return py::make_tuple(copy_of(gyp, shape_of(a), n), copy_of(gyp, shape_of(b), n));
      },
      py::arg("grad_out"), py::arg("a"), py::arg("b"));

  m.def(
      "mul",
      [](const py::array& a, const py::array& b) {
        const float* ap = in(a, "a");
        const float* bp = in(b, "b");
        const ops::MulPlan plan = ops::mul_plan(shape_of(a), shape_of(b));
        FloatArray y = empty(plan.y_shape);
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::mul_forward(plan, ap, bp, yp);
        }
        return y;
      },
      py::arg("a"), py::arg("b"));

  m.def(
      "mul_backward",
      [](const py::array& gy, const py::array& a, const py::array& b) {
        const float* gyp = in(gy, "grad_out");
        const float* ap = in(a, "a");
        const float* bp = in(b, "b");
        const ops::MulPlan plan = ops::mul_plan(shape_of(a), shape_of(b));
        ops::check_grad_shape("mul_backward", shape_of(gy), plan.y_shape);
        FloatArray ga = empty(shape_of(a)), gb = empty(shape_of(b));
        float* gap = ga.mutable_data();
        float* gbp = gb.mutable_data();
        {
          KernelScope scope;
          ops::mul_backward(plan, gyp, ap, bp, gap, gbp);
        }
        return py::make_tuple(ga, gb);
      },
      py::arg("grad_out"), py::arg("a"), py::arg("b"));

  m.def(
      "cat",
      [](const std::vector<py::array>& xs, int64_t dim) {
        std::vector<Shape> shapes;
        std::vector<const float*> ptrs;
        for (size_t k = 0; k < xs.size(); ++k) {
          ptrs.push_back(in(xs[k], ("tensors[" + std::to_string(k) + "]").c_str()));
          shapes.push_back(shape_of(xs[k]));
        }
        const ops::CatPlan plan = ops::cat_plan(shapes, dim);
        FloatArray y = empty(plan.y_shape);
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::cat_forward(plan, ptrs.data(), yp);
        }
        return y;
      },
      py::arg("tensors"), py::arg("dim"));

  m.def(
      "cat_backward",
      [](const py::array& gy, const std::vector<py::array>& xs, int64_t dim) {
        const float* gyp = in(gy, "grad_out");
        std::vector<Shape> shapes;
        for (size_t k = 0; k < xs.size(); ++k) {
          in(xs[k], ("tensors[" + std::to_string(k) + "]").c_str());
          shapes.push_back(shape_of(xs[k]));
        }
        const ops::CatPlan plan = ops::cat_plan(shapes, dim);
        ops::check_grad_shape("cat_backward", shape_of(gy), plan.y_shape);
        py::tuple grads(xs.size());
        std::vector<float*> ptrs;
        for (size_t k = 0; k < xs.size(); ++k) {
          FloatArray g = empty(shapes[k]);
          ptrs.push_back(g.mutable_data());
          grads[k] = g;
        }
        {
          KernelScope scope;
          ops::cat_backward(plan, gyp, ptrs.data());
        }
        return grads;
      },
      py::arg("grad_out"), py::arg("tensors"), py::arg("dim"));

  m.def(
      "dropout",
      [](const py::array& x, double p, bool training, uint64_t seed) {
        const float* xp = in(x, "x");
        const ops::DropoutPlan plan = ops::dropout_plan(shape_of(x), p, training, seed);
        FloatArray y = empty(shape_of(x));
        float* yp = y.mutable_data();
        {
          KernelScope scope;
          ops::dropout_forward(plan, xp, yp);
        }
        return y;
      },
      py::arg("x"), py::arg("p"), py::arg("training"), py::arg("seed"));

  m.def(
      "dropout_backward",
      [](const py::array& gy, const py::array& x, double p, bool training, uint64_t seed) {
        const float* gyp = in(gy, "grad_out");
        in(x, "x");
        const ops::DropoutPlan plan = ops::dropout_plan(shape_of(x), p, training, seed);
        ops::check_grad_shape("dropout_backward", shape_of(gy), shape_of(x));
        FloatArray gx = empty(shape_of(x));
        float* gxp = gx.mutable_data();
        {
          KernelScope scope;
          ops::dropout_backward(plan, gyp, gxp);
        }
        return py::make_tuple(gx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("p"), py::arg("training"), py::arg("seed"));

  m.def(
      "mse_loss",
      [](const py::array& x, const py::array& t, const std::string& reduction) {
        const float* xp = in(x, "input");
        const float* tp = in(t, "target");
        const ops::MseLossPlan plan = ops::mse_loss_plan(shape_of(x), shape_of(t), reduction);
        FloatArray out = empty(plan.out_shape);
        float* op = out.mutable_data();
        {
          KernelScope scope;
          ops::mse_loss_forward(plan, xp, tp, op);
        }
        return out;
      },
      py::arg("input"), py::arg("target"), py::arg("reduction"));

  m.def(
      "mse_loss_backward",
      [](const py::array& gy, const py::array& x, const py::array& t,
         const std::string& reduction) {
        const float* gyp = in(gy, "grad_out");
        const float* xp = in(x, "input");
        const float* tp = in(t, "target");
        const ops::MseLossPlan plan = ops::mse_loss_plan(shape_of(x), shape_of(t), reduction);
        ops::check_grad_shape("mse_loss_backward", shape_of(gy), plan.out_shape);
        FloatArray gx = empty(shape_of(x)), gt = empty(shape_of(t));
        float* gxp = gx.mutable_data();
        float* gtp = gt.mutable_data();
        {
          KernelScope scope;
          ops::mse_loss_backward(plan, gyp, xp, tp, gxp, gtp);
        }
        return py::make_tuple(gx, gt);
      },
      py::arg("grad_out"), py::arg("input"), py::arg("target"), py::arg("reduction"));
}

}  // namespace striate::binding
