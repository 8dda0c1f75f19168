// Shapes and the size arithmetic every op shares. All sizes are int64: a
// 2^31-element tensor is ordinary for an activation of a large batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace striate {

using Shape = std::vector<int64_t>;

// "(2, 3, 32, 32)"
std::string shape_str(const Shape& s);

// Product of the dimensions; throws ValueError naming `what` when it would
// overflow int64 (absurd sizes must never wrap into small allocations).
int64_t checked_numel(const Shape& s, const char* what);

// Overflow-checked a * b for non-negative sizes.
int64_t checked_mul(int64_t a, int64_t b, const char* what);

// Overflow-checked a + b for non-negative sizes (a concatenation's length:
// arrays with a zero dimension may have other dimensions near 2^62).
int64_t checked_add(int64_t a, int64_t b, const char* what);

// Convolution / pooling output length along one axis:
//   floor((n + pad_lo + pad_hi - dilation*(k-1) - 1) / stride) + 1
// computed without overflow; may be <= 0, which callers reject.
int64_t conv_out_size(int64_t n, int64_t k, int64_t stride, int64_t pad_lo,
                      int64_t pad_hi, int64_t dilation);

// PyTorch's pooling output length, including ceil_mode's rule that the last
// window must start inside the input or the low padding.
int64_t pool_out_size(int64_t n, int64_t k, int64_t stride, int64_t pad,
                      int64_t dilation, bool ceil_mode);

}  // namespace striate
