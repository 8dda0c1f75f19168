// Build and runtime facts (striate.build_info) and the runtime knobs: ISA
// level and thread count.
#include <string>

#include "arrays.h"
#include "striate/errors.h"
#include "striate/isa.h"
#include "striate/kernels_cpu.h"

namespace striate::binding {

static std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

void bind_runtime(py::module_& m) {
  m.def("compiler", &compiler);
  m.def("openmp", &openmp_enabled);
#ifdef STRIATE_SANITIZE
  m.def("sanitize", [] { return std::string(STRIATE_SANITIZE); });  // CMake STRIATE_SANITIZE
#else
  m.def("sanitize", [] { return std::string(); });
#endif
  m.def("isa_compiled", [] {
    py::list out;
    for (Isa i : isa_compiled()) out.append(isa_name(i));
    return out;
  });
  m.def("isa_best_supported", [] { return std::string(isa_name(isa_best_supported())); });
  m.def("isa_selected", [] { return std::string(isa_name(isa_selected())); });
  m.def("set_isa", [](const std::string& name) { isa_select(isa_parse(name, "isa")); },
        py::arg("isa"));
  m.def("sgemm_kernel", [] { return std::string(cpu::sgemm_kernel_name()); });
  m.def(
      "peak_fma",
      [](const std::string& isa, int64_t iters) {
        const Isa level = isa_parse(isa, "isa");
        if (static_cast<int>(level) > static_cast<int>(isa_best_supported()))
          throw_value_error("peak_fma: ISA level '", isa, "' is not available here (the best ",
                            "this build and CPU support is '", isa_name(isa_best_supported()),
                            "')");
        if (iters < 1 || iters > (int64_t(1) << 40))
          throw_value_error("peak_fma: iters must be between 1 and 2^40, got ", iters);
        cpu::PeakFmaResult r;
        {
          KernelScope scope;
          r = cpu::peak_fma(static_cast<int>(level), iters);
        }
        return py::make_tuple(r.flops, r.seconds, r.threads);
      },
      py::arg("isa"), py::arg("iters"),
      "(flops, seconds, threads) of the fp32 multiply-add peak loop at this ISA level.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
}

}  // namespace striate::binding
