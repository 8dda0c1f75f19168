#include "common.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "striate/ops.h"

namespace striate::ops {

void check_rank(const char* op, const char* name, const Shape& s, size_t rank,
                const char* layout) {
  if (s.size() != rank)
    throw_value_error(op, ": ", name, " must be ", rank, "-D ", layout,
                      ", got shape ", shape_str(s));
}

void check_scalar(const char* op, const char* name, int64_t v, int64_t lo) {
  if (v < lo) {
    if (lo == 0) throw_value_error(op, ": ", name, " must be non-negative, got ", v);
    if (lo == 1) throw_value_error(op, ": ", name, " must be positive, got ", v);
    throw_value_error(op, ": ", name, " must be >= ", lo, ", got ", v);
  }
  if (v > kMaxScalar)
    throw_value_error(op, ": ", name, " = ", v, " is absurdly large (at most 2^40 is accepted)");
}

void check_pair(const char* op, const char* name, int64_t h, int64_t w, int64_t lo) {
  check_scalar(op, name, h, lo);
  check_scalar(op, name, w, lo);
}

void check_nonempty(const char* op, const char* name, const Shape& s,
                    size_t first_dim) {
  for (size_t i = first_dim; i < s.size(); ++i)
    if (s[i] < 1)
      throw_value_error(op, ": ", name, " has an empty dimension ", i,
                        ", got shape ", shape_str(s));
}

void check_grad_shape(const char* op, const Shape& grad, const Shape& expected) {
  if (grad != expected)
    throw_value_error(op, ": grad_out must have the forward output's shape ",
                      shape_str(expected), ", got ", shape_str(grad));
}

namespace {

// std::bad_alloc with a message: pybind11 raises MemoryError with what().
class WorkspaceAllocError : public std::bad_alloc {
 public:
  explicit WorkspaceAllocError(std::string msg) : msg_(std::move(msg)) {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

[[noreturn]] void workspace_alloc_error(int64_t count, const char* why) {
  throw WorkspaceAllocError(detail::concat(
      "cannot allocate a workspace of ", count, " floats (",
      static_cast<double>(count) * 4.0 / double(int64_t{1} << 30), " GiB): ", why));
}

int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : INT64_MAX;
}

// A buffer this large (1 GiB) is released as soon as a call needs less than
// a quarter of it: one huge convolution must not pin its workspace in every
// thread that ran it for the rest of the process.
constexpr int64_t kKeepFloats = int64_t{1} << 28;

// Ask for transparent huge pages over a large buffer (where the kernel's
// THP mode is "madvise", as NumPy does for its arrays): the workspaces are
// streamed through (Winograd blocks, column matrices), and with 4 KB pages
// every 4 KB of a pass is a TLB miss. A hint only; failure changes nothing.
void hugepage_hint(void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes < 2 * kHuge) return;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~uintptr_t(kHuge - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) & ~uintptr_t(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace

float* workspace_floats(int64_t count) {
  static thread_local std::vector<float> buf;
  // The workspace starts on a cache line (+16 floats of slack): kernels load
  // 64-byte vectors from it (packed weights, padded planes), which split two
  // lines each from a large vector's storage, 16 bytes into its page.
  const int64_t asked = count;
  count = asked > INT64_MAX - 16 ? INT64_MAX : asked + 16;
  const int64_t have = static_cast<int64_t>(buf.size());
  if (count > have || (have > kKeepFloats && count < have / 4)) {
    buf.clear();
    buf.shrink_to_fit();
    // More than the machine has: refuse up front (with overcommit the
    // allocation could succeed and the zero-fill below be OOM-killed).
    if (count > physical_memory_bytes() / 4)
      workspace_alloc_error(asked, "more than this machine's physical memory");
    try {
      buf.resize(static_cast<size_t>(count));
    } catch (const std::bad_alloc&) {
      workspace_alloc_error(asked, "out of memory");
    }
    hugepage_hint(buf.data(), buf.size() * sizeof(float));
  }
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) &
                                  ~uintptr_t{63});
}

Reduction parse_reduction(const char* op, const std::string& reduction) {
  if (reduction == "mean") return Reduction::mean;
  if (reduction == "sum") return Reduction::sum;
  if (reduction == "none") return Reduction::none;
  throw_value_error(op, ": reduction must be 'mean', 'sum' or 'none', got '", reduction, "'");
}

}  // namespace striate::ops
