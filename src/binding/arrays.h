// Array conversion for the binding. The Python layer converts user input to
// float32 C-contiguous arrays before calling _C; these checks only guarantee
// that nothing else can reach a kernel (a raw _C call with the wrong dtype is
// a TypeError, never a misread buffer).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>

#include "striate/errors.h"
#include "striate/shape.h"
#include "striate/threads.h"

namespace striate::binding {

namespace py = pybind11;
using FloatArray = py::array_t<float, py::array::c_style>;

inline Shape shape_of(const py::array& a) {
  return Shape(a.shape(), a.shape() + a.ndim());
}

inline void check_float32(const py::array& a, const char* name) {
  if (!a.dtype().is(py::dtype::of<float>()))
    throw_type_error(name, " must be a float32 array, got dtype ",
                     std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw_type_error(name, " must be C-contiguous");
}

inline const float* in(const py::array& a, const char* name) {
  check_float32(a, name);
  return static_cast<const float*>(a.data());
}

// An array the op writes into in place (e.g. batch_norm running statistics).
inline float* inout(py::array& a, const char* name) {
  check_float32(a, name);
  if (!a.writeable()) throw_value_error(name, " must be writeable (it is updated in place)");
  return static_cast<float*>(a.mutable_data());
}

inline const int64_t* in_int64(const py::array& a, const char* name) {
  if (!a.dtype().is(py::dtype::of<int64_t>()))
    throw_type_error(name, " must be an int64 array, got dtype ",
                     std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw_type_error(name, " must be C-contiguous");
  return static_cast<const int64_t*>(a.data());
}

// Optional array argument (None -> nullopt). The argument loader keeps any
// converted temporary alive for the whole call.
using OptArray = std::optional<py::array>;

inline const float* in(const OptArray& a, const char* name) {
  return a ? in(*a, name) : nullptr;
}
inline Shape shape_of(const OptArray& a) { return a ? shape_of(*a) : Shape{}; }

// Scope of a kernel call: releases the GIL (other Python threads run while
// the kernel does) and applies the thread count set by set_num_threads.
class KernelScope {
 public:
  KernelScope() { apply_num_threads(); }

 private:
  py::gil_scoped_release release_;
};

// Output buffers planned per network and input shape (bind_buffers.cpp,
// striate.nn's planned training steps). While a plan is active on this
// thread, the k-th output array an op asks for is the plan's slot k -- the
// same memory on every step with the same shapes -- provided nothing outside
// the plan still references it (its refcount is 1); otherwise the slot gets a
// fresh array and the old one stays with whoever holds it. A buffer is thus
// never handed out twice at once: reuse cannot change any result.
struct BufferPlan {
  std::vector<py::object> slots;
  size_t cursor = 0;
  int64_t allocated = 0, reused = 0;
};
BufferPlan*& active_buffer_plan();
FloatArray planned_empty(BufferPlan& plan, const Shape& s);

inline FloatArray empty(const Shape& s) {
  if (BufferPlan* plan = active_buffer_plan()) return planned_empty(*plan, s);
  return FloatArray(std::vector<py::ssize_t>(s.begin(), s.end()));
}

}  // namespace striate::binding
