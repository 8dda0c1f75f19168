#include "arrays.h"
namespace striate::binding {
void bind_pool2d(py::module_& m) {}  // placeholder until the op family lands
}
