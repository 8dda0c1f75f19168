// _C.BufferPlan: the output-buffer plan of one network step (arrays.h).
// Entered as a context manager around a forward or backward; the plan keeps
// its slots (numpy arrays) between steps, so a step with the same shapes
// runs without allocating its outputs.
#include <algorithm>

#include "arrays.h"

namespace striate::binding {

BufferPlan*& active_buffer_plan() {
  static thread_local BufferPlan* plan = nullptr;
  return plan;
}

FloatArray planned_empty(BufferPlan& plan, const Shape& s) {
  const size_t k = plan.cursor++;
  if (k < plan.slots.size()) {
    py::object& slot = plan.slots[k];
    // Refcount 1: only the plan holds it -- no layer context, view, gradient
    // or user variable from the last step can see its contents change.
    if (Py_REFCNT(slot.ptr()) == 1) {
      auto cached = py::reinterpret_borrow<FloatArray>(slot);
      if (cached.ndim() == static_cast<py::ssize_t>(s.size()) &&
          std::equal(s.begin(), s.end(), cached.shape())) {
        ++plan.reused;
        return cached;
      }
    }
  }
  FloatArray fresh(std::vector<py::ssize_t>(s.begin(), s.end()));
  if (k < plan.slots.size())
    plan.slots[k] = fresh;
  else
    plan.slots.push_back(fresh);
  ++plan.allocated;
  return fresh;
}

namespace {

struct PlanScope {
  BufferPlan plan;
  std::vector<BufferPlan*> saved;  // the plans active when entered (nesting)
};

int64_t plan_bytes(const BufferPlan& plan) {
  int64_t bytes = 0;
  for (const py::object& o : plan.slots) bytes += py::reinterpret_borrow<py::array>(o).nbytes();
  return bytes;
}

}  // namespace

void bind_buffers(py::module_& m) {
  py::class_<PlanScope>(m, "BufferPlan",
                        "Output buffers of one network step, reused while free (striate.nn).")
      .def(py::init<>())
      .def("__enter__",
           [](PlanScope& self) -> PlanScope& {
             self.saved.push_back(active_buffer_plan());
             self.plan.cursor = 0;
             active_buffer_plan() = &self.plan;
             return self;
           },
           py::return_value_policy::reference)
      .def("__exit__",
           [](PlanScope& self, py::args) {
             if (!self.saved.empty()) {
               active_buffer_plan() = self.saved.back();
               self.saved.pop_back();
             }
             return false;
           })
      .def_property_readonly("allocated", [](const PlanScope& s) { return s.plan.allocated; },
                             "Arrays allocated so far (first step, or a slot still held).")
      .def_property_readonly("reused", [](const PlanScope& s) { return s.plan.reused; },
                             "Outputs served from a slot allocated by an earlier step.")
      .def_property_readonly("slots", [](const PlanScope& s) { return s.plan.slots.size(); })
      .def_property_readonly("nbytes", [](const PlanScope& s) { return plan_bytes(s.plan); })
      .def("clear", [](PlanScope& s) { s.plan.slots.clear(); }, "Drop every buffer.");
  m.def("buffer_plan_active", [] { return active_buffer_plan() != nullptr; },
        "Whether a BufferPlan is active on this thread.");
}

}  // namespace striate::binding
