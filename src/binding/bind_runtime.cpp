// Build and runtime facts (striate.build_info) and the runtime knobs: ISA
// level and thread count.
#include <string>

#include "arrays.h"
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
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
}

}  // namespace striate::binding
