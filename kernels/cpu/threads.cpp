#include "striate/threads.h"

#include <atomic>

#include "striate/errors.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace striate {
namespace {
// 0 = not set by the user: OpenMP's default (OMP_NUM_THREADS or all cores).
std::atomic<int> g_threads{0};
}  // namespace

void set_num_threads(int n) {
  if (n < 1) throw_value_error("set_num_threads: n must be positive, got ", n);
  g_threads.store(n, std::memory_order_relaxed);
  apply_num_threads();
}

int get_num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
#ifdef _OPENMP
  return n > 0 ? n : omp_get_max_threads();
#else
  return n > 0 ? n : 1;
#endif
}

void apply_num_threads() {
#ifdef _OPENMP
  const int n = g_threads.load(std::memory_order_relaxed);
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
#endif
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace striate
