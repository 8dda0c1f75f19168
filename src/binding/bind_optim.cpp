// In-place optimizer updates. The arrays updated in place must already be
// writeable float32 C-contiguous ndarrays: converting them would update a
// temporary copy and silently lose the step.
#include "arrays.h"
#include "striate/ops.h"

namespace striate::binding {

void bind_optim(py::module_& m) {
  m.def(
      "sgd_update",
      [](py::array param, const py::array& grad, OptArray momentum_buffer, double lr,
         double momentum, double dampening, bool nesterov, double weight_decay,
         bool first_step) {
        float* pp = inout(param, "param");
        const float* gp = in(grad, "grad");
        float* bp = momentum_buffer ? inout(*momentum_buffer, "momentum_buffer") : nullptr;
        ops::SgdArgs args;
        args.lr = lr;
        args.momentum = momentum;
        args.dampening = dampening;
        args.nesterov = nesterov;
        args.weight_decay = weight_decay;
        args.first_step = first_step;
        const Shape bs = shape_of(momentum_buffer);
        const int64_t n = ops::sgd_plan(shape_of(param), shape_of(grad),
                                        momentum_buffer ? &bs : nullptr, args);
        KernelScope scope;
        ops::sgd_update(args, n, pp, gp, bp);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"),
      py::arg("momentum"), py::arg("dampening"), py::arg("nesterov"),
      py::arg("weight_decay"), py::arg("first_step"));

  m.def(
      "adam_update",
      [](py::array param, const py::array& grad, py::array exp_avg, py::array exp_avg_sq,
         int64_t step, double lr, double beta1, double beta2, double eps,
         double weight_decay, bool decoupled_weight_decay) {
        float* pp = inout(param, "param");
        const float* gp = in(grad, "grad");
        float* mp = inout(exp_avg, "exp_avg");
        float* vp = inout(exp_avg_sq, "exp_avg_sq");
        ops::AdamArgs args;
        args.step = step;
        args.lr = lr;
        args.beta1 = beta1;
        args.beta2 = beta2;
        args.eps = eps;
        args.weight_decay = weight_decay;
        args.decoupled_weight_decay = decoupled_weight_decay;
        const int64_t n = ops::adam_plan(shape_of(param), shape_of(grad), shape_of(exp_avg),
                                         shape_of(exp_avg_sq), args);
        KernelScope scope;
        ops::adam_update(args, n, pp, gp, mp, vp);
      },
      py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
      py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
      py::arg("weight_decay"), py::arg("decoupled_weight_decay"));
}

}  // namespace striate::binding
