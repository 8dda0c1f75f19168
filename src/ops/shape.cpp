#include "striate/shape.h"

#include <limits>
#include <sstream>

#include "striate/errors.h"

namespace striate {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ',';
  os << ')';
  return os.str();
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    throw_value_error(what, ": size overflows int64 (", a, " * ", b, ")");
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    throw_value_error(what, ": size overflows int64 (", a, " + ", b, ")");
  return r;
}

int64_t checked_numel(const Shape& s, const char* what) {
  int64_t n = 1;
  for (int64_t d : s) n = checked_mul(n, d, what);
  return n;
}

int64_t conv_out_size(int64_t n, int64_t k, int64_t stride, int64_t pad_lo,
                      int64_t pad_hi, int64_t dilation) {
  // The callers bound every term well below 2^62, so this cannot overflow;
  // the numerator may be negative (kernel larger than the padded input).
  const int64_t span = dilation * (k - 1) + 1;
  const int64_t num = n + pad_lo + pad_hi - span;
  if (num < 0) return 0;
  return num / stride + 1;
}

int64_t pool_out_size(int64_t n, int64_t k, int64_t stride, int64_t pad,
                      int64_t dilation, bool ceil_mode) {
  const int64_t span = dilation * (k - 1) + 1;
  const int64_t num = n + 2 * pad - span + (ceil_mode ? stride - 1 : 0);
  if (num < 0) return 0;
  int64_t out = num / stride + 1;
  // ceil_mode may add a window that starts in the high padding; PyTorch drops it.
  if (ceil_mode && (out - 1) * stride >= n + pad) --out;
  return out;
}

}  // namespace striate
