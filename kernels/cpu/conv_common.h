// Index helpers shared by the convolution and pooling kernels (private to
// kernels/cpu).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

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

// Taps t < k whose input index o * stride + t * dil - pad lies in [0, n_in)
// for at least one output o < n_out. A pooling window may be 2^40 taps wide
// with 2^39 padding (PyTorch accepts it; the output is one window), so tap
// loops run over this range instead of visiting taps that only read padding.
inline Range taps_in_reach(int64_t pad, int64_t dil, int64_t stride, int64_t n_in,
                           int64_t n_out, int64_t k) {
  const int64_t need = pad - (n_out - 1) * stride;  // t * dil >= need
  const int64_t top = n_in - 1 + pad;               // t * dil <= top
  const int64_t hi = top < 0 ? 0 : std::min(k, top / dil + 1);
  const int64_t lo = need <= 0 ? 0 : (need + dil - 1) / dil;
  return {std::min(lo, hi), hi};
}

// The fused forward epilogue (Conv2dParams::relu): clamp a freshly written
// block of outputs at zero while it is still in cache. `y < 0 ? 0 : y` (one
// maxps) keeps NaN as NaN, like torch's relu; `y > 0 ? y : 0` would zero it.
inline void relu_inplace(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] < 0.0f ? 0.0f : y[i];
}

// Inf and NaN are exactly the float bit patterns whose magnitude bits are
// >= kNonFinite. An integer max reduction (unlike a float sum) vectorizes
// without reassociating anything.
constexpr uint32_t kNonFinite = 0x7f800000u;

inline bool all_finite(const float* v, int64_t n) {
  uint32_t top = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, v + i, sizeof u);
    top = std::max(top, u & 0x7fffffffu);
  }
  return top < kNonFinite;
}

}  // namespace striate::cpu
