// Index helpers shared by the convolution and pooling kernels (private to
// kernels/cpu).
#pragma once

#include <algorithm>
#include <cstdint>

namespace striate::cpu {

// Output positions o in [lo, hi) whose input index o * stride + off lies in
// [0, n_in). Hoisting this range out of the inner loops keeps them free of
// bounds checks (and contiguous when stride == 1).
struct Range {
  int64_t lo, hi;
};
inline Range valid_range(int64_t off, int64_t stride, int64_t n_in,
                         int64_t n_out) {
  if (stride == 1) {  // no divisions: im2col calls this per row of 10 floats
    const int64_t hi = std::max<int64_t>(0, std::min(n_out, n_in - off));
    return {std::min(std::max<int64_t>(0, -off), hi), hi};
  }
  int64_t lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t hi = (n_in - 1 - off) >= 0 ? (n_in - 1 - off) / stride + 1 : 0;
  hi = std::min(hi, n_out);
  lo = std::min(lo, hi);
  return {lo, hi};
}

// The fused forward epilogue (Conv2dParams::relu): clamp a freshly written
// block of outputs at zero while it is still in cache.
inline void relu_inplace(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

}  // namespace striate::cpu
