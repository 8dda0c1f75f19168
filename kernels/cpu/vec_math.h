// Branch-free float math that the compiler vectorizes inside elementwise
// loops at any ISA level (libm's expf/tanhf/logf are scalar calls).
//
// Included by the per-ISA units (eltwise_*.cpp), so everything here has
// internal linkage (anonymous namespace) and uses builtins rather than
// standard-library templates: a copy compiled with AVX-512 flags must never be
// merged by the linker into code that runs on an older CPU.
//
// The error bounds below were measured against double-precision libm over
// every float in the stated range.
#pragma once

#include <cstdint>

namespace striate::cpu {
namespace {

inline float bits_to_f32(int32_t b) {
  float f;
  __builtin_memcpy(&f, &b, sizeof f);
  return f;
}
inline int32_t f32_to_bits(float f) {
  int32_t b;
  __builtin_memcpy(&b, &f, sizeof b);
  return b;
}

// exp(x): Cephes' expf (range reduction x = n ln2 + r with ln2 split in two
// for exactness, degree-6 polynomial on |r| <= ln2/2), max 1 ulp on
// [-87.33, 88.3] (down to ln(FLT_MIN): every normal result). Beyond: +inf
// above (2^n must stay a normal float), 0 below (where exp is subnormal); NaN
// propagates (every comparison with NaN is false, so no select replaces it).
inline float exp_f32(float x) {
  const float xc = x < -87.33654f ? -87.33654f : (x > 88.3f ? 88.3f : x);
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
  // 2^n, n in [-126, 127], built from t's bits (0x4B400000 + n, since t's ulp
  // is 1): its exponent field is the low 8 bits of n + 127, and unsigned
  // arithmetic wraps the rest away. No float-to-int conversion, which was
  // undefined for a NaN x (so is a signed shift of the negative result); a
  // NaN x gives some finite scale, and y is NaN through p.
  const float scale =
      bits_to_f32(static_cast<int32_t>((static_cast<uint32_t>(f32_to_bits(t)) + 127u) << 23));
  float y = p * scale;
  y = x > 88.3f ? __builtin_inff() : y;
  y = x < -87.33654f ? 0.0f : y;
  return y;
}

// log(x): Cephes' logf (x = 2^e * m with m in [sqrt(1/2), sqrt(2)), degree-8
// polynomial in m - 1, ln2 split in two), max 1 ulp for normal and subnormal
// x > 0. log(0) = -inf, log(+inf) = +inf, log(x < 0) and log(NaN) = NaN.
inline float log_f32(float x) {
  // Subnormals: scale by 2^25 first so the exponent field is meaningful.
  const bool sub = x < 1.17549435e-38f;
  const float xs = sub ? x * 33554432.0f : x;
  const int32_t b = f32_to_bits(xs);
  float e = static_cast<float>(((b >> 23) & 0xff) - 126) - (sub ? 25.0f : 0.0f);
  float m = bits_to_f32((b & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const bool lo = m < 0.707106781186547524f;
  e = lo ? e - 1.0f : e;
  m = lo ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z;
  y = y + e * -2.12194440e-4f;
  y = y - 0.5f * z;
  float r = m + y;
  r = r + e * 0.693359375f;
  r = x == __builtin_inff() ? x : r;
  r = x == 0.0f ? -__builtin_inff() : r;
  r = (x < 0.0f || x != x) ? __builtin_nanf("") : r;
  return r;
}

// tanh(x). |x| < 0.625: Cephes' odd polynomial x + x^3 P(x^2), which keeps
// full relative accuracy near 0 (1 - 2/(e^2x + 1) would cancel there).
// Otherwise 1 - 2/(exp(2|x|) + 1) with the sign of x: no cancellation there
// (the result is >= 0.55), exp overflow gives exactly +-1. Max error 1.3 ulp
// over all floats; NaN propagates through the exp branch.
inline float tanh_f32(float x) {
  const float a = x < 0.0f ? -x : x;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  float big = 1.0f - 2.0f / (exp_f32(a + a) + 1.0f);
  big = x < 0.0f ? -big : big;
  return a < 0.625f ? small : big;
}

// exp(-|x|): the building block of an overflow-free sigmoid.
inline float exp_neg_abs(float x) { return exp_f32(x < 0.0f ? x : -x); }

// sigmoid with e = exp(-|x|): 1/(1+e) for x >= 0 and e/(1+e) for x < 0
// (exp(-x) would overflow for very negative x). Both forms are free of
// cancellation, so a 1-ulp exp gives a ~2-ulp sigmoid (to 0 where the
// result is subnormal).
inline float sigmoid_f32(float x) {
  const float e = exp_neg_abs(x);
  return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

// sigmoid'(x) = s (1 - s) = e / (1 + e)^2 for either sign of x: computing it
// from e avoids 1 - s, which loses all relative precision once s rounds to 1.
inline float sigmoid_grad_f32(float x) {
  const float e = exp_neg_abs(x);
  const float d = 1.0f + e;
  return e / (d * d);
}

// tanh'(x) = 1 - tanh(x)^2 = 4u / (1 + u)^2 with u = exp(-2|x|) <= 1: no
// overflow, and no cancellation near 0 (where 1 - t^2 is close to 1 anyway)
// nor for large |x| (where 1 - t^2 would be 1 - 1 = 0 long before the true
// value underflows). Relative error < 3e-7 (measured) down to ~5e-38; 0 once
// u underflows (|x| > 43.6). NaN propagates.
inline float tanh_grad_f32(float x) {
  const float a = x < 0.0f ? -x : x;
  const float u = exp_f32(-(a + a));
  const float d = 1.0f + u;
  return 4.0f * u / (d * d);
}

}  // namespace
}  // namespace striate::cpu
