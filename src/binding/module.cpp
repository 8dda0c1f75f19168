// striate._C: the compiled module. One bind_* function per op family; this
// file only maps the op layer's exceptions to Python's.
#include <pybind11/pybind11.h>

#include "striate/errors.h"
#include "striate/isa.h"

namespace py = pybind11;

namespace striate::binding {
void bind_conv2d(py::module_& m);
void bind_pool2d(py::module_& m);
void bind_norm(py::module_& m);
void bind_activation(py::module_& m);
void bind_linear(py::module_& m);
void bind_runtime(py::module_& m);
void bind_tensor(py::module_& m);
void bind_optim(py::module_& m);
void bind_buffers(py::module_& m);
}  // namespace striate::binding

PYBIND11_MODULE(_C, m) {
  m.doc() = "striate compiled kernels (use striate.ops, not this module directly)";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const striate::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const striate::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const striate::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const striate::NotImplementedError& e) {
      PyErr_SetString(PyExc_NotImplementedError, e.what());
    }
  });

  striate::binding::bind_conv2d(m);
  striate::binding::bind_pool2d(m);
  striate::binding::bind_norm(m);
  striate::binding::bind_activation(m);
  striate::binding::bind_linear(m);
  striate::binding::bind_runtime(m);
  striate::binding::bind_tensor(m);
  striate::binding::bind_optim(m);
  striate::binding::bind_buffers(m);

  // Choose the kernels' ISA level once, at import (STRIATE_ISA may force a
  // lower one; an invalid value fails the import with a ValueError).
  striate::isa_init_from_env();

#ifdef STRIATE_VERSION
  m.attr("__version__") = STRIATE_VERSION;
#endif
}
