#include "common.h"

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

float* workspace_floats(int64_t count) {
  static thread_local std::vector<float> buf;
  if (count > static_cast<int64_t>(buf.size())) {
    buf.clear();
    buf.shrink_to_fit();
    buf.resize(static_cast<size_t>(count));
  }
  return buf.data();
}

Reduction parse_reduction(const char* op, const std::string& reduction) {
  if (reduction == "mean") return Reduction::mean;
  if (reduction == "sum") return Reduction::sum;
  if (reduction == "none") return Reduction::none;
  throw_value_error(op, ": reduction must be 'mean', 'sum' or 'none', got '", reduction, "'");
}

}  // namespace striate::ops
