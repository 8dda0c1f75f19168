// Thread count used by the CPU kernels. OpenMP keeps the count per calling
// thread, so the chosen value is stored once here and applied to whichever
// thread runs the next kernel (apply_num_threads, called on every kernel
// entry from the binding).
#pragma once

namespace striate {

// n >= 1; throws ValueError otherwise.
void set_num_threads(int n);
int get_num_threads();
void apply_num_threads();
bool openmp_enabled();

}  // namespace striate
