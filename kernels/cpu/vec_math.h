// Branch-free float math that the compiler vectorizes inside elementwise
// loops at any ISA level (libm's expf is a scalar call per element).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

namespace striate::cpu {

// exp(x) for float: Cephes' expf (range reduction x = n ln2 + r with ln2
// split in two for exactness, degree-6 polynomial on |r| <= ln2/2), about
// 2 ulp on [-87.3, 88.3]. Beyond: +inf above, 0 below (where exp is
// subnormal); NaN propagates (every comparison with NaN is false).
inline float exp_f32(float x) {
  const float xc = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  // Round x*log2(e) to nearest by adding and removing 1.5 * 2^23 (kept as
  // written: no -ffast-math, so the compiler may not fold it away).
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 127]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float y = p * scale;
  y = x > 88.3f ? std::numeric_limits<float>::infinity() : y;
  y = x < -87.3f ? 0.0f : y;
  return y;
}

}  // namespace striate::cpu
