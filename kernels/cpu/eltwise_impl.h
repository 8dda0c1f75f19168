// Activations, softmax and cross-entropy inner kernels, compiled once per ISA
// level by eltwise_{baseline,avx2,avx512}.cpp (see eltwise_isa.h). Plain C++
// written so that the compiler vectorizes every inner loop at the level's
// vector width: contiguous loops, selects instead of branches, reductions
// spread over kLanes independent accumulators.
//
// Everything sits in an anonymous namespace and uses builtins, no
// standard-library templates: an inline function compiled with AVX-512 flags
// must never be merged by the linker into code that runs on an older CPU.
#pragma once

#include <cstdint>

#include "eltwise_isa.h"
#include "vec_math.h"

namespace striate::cpu {
namespace {

// Reduction lanes: 16 floats or doubles are one to eight vectors at every
// level, enough independent add chains to hide the latency, and the same
// number everywhere, so the summation order is a property of the input size.
constexpr int kLanes = 16;

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// Fixed pairwise combination of the lanes.
inline double lane_total(double* a) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) a[j] += a[j + w];
  return a[0];
}

// PyTorch's max rule: v replaces the running max iff v > max or v is NaN.
inline float max_nan(float v, float m) { return (v > m || v != v) ? v : m; }

// Sums in double of float data over kLanes accumulators, combined pairwise
// (as fast as a float reduction here: the loops are bound by loads and exp).
inline double sum_f32(int64_t n, const float* a) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j];
  for (; i < n; ++i) acc[0] += a[i];
  return lane_total(acc);
}

// sum a[i] * b[i] in double (the products are exact in double).
inline double dot_f32(int64_t n, const float* a, const float* b) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(a[i + j]) * b[i + j];
  for (; i < n; ++i) acc[0] += static_cast<double>(a[i]) * b[i];
  return lane_total(acc);
}

// Native-width GCC/Clang vector types of this unit's level. The compiler
// does not vectorize a float max reduction under IEEE rules (nor keeps an
// array of lane maxima in registers), so the row max is written with them.
#if defined(__AVX512F__)
constexpr int kVec = 16;
#elif defined(__AVX2__)
constexpr int kVec = 8;
#else
constexpr int kVec = 4;
#endif
typedef float vfloat __attribute__((vector_size(kVec * 4)));
typedef int32_t vint __attribute__((vector_size(kVec * 4)));

// max of z[0..n) with PyTorch's rule: any NaN makes it NaN. The value does not
// depend on the order of comparisons, so the lane count may differ per level.
inline float row_max(int64_t n, const float* z) {
  vfloat mx = vfloat{} - __builtin_inff();
  vint bad = vint{};
  int64_t k = 0;
  for (; k + kVec <= n; k += kVec) {
    vfloat v;
    __builtin_memcpy(&v, z + k, sizeof v);
    mx = v > mx ? v : mx;
    bad |= v != v;
  }
  float m = -__builtin_inff();
  int32_t b = 0;
  for (; k < n; ++k) {
    m = z[k] > m ? z[k] : m;
    b |= z[k] != z[k];
  }
  for (int j = 0; j < kVec; ++j) {
    m = mx[j] > m ? mx[j] : m;
    b |= bad[j];
  }
  return b ? __builtin_nanf("") : m;
}

// ---- activations -----------------------------------------------------------

void relu_k(int64_t n, const float* x, float* y) {
  // (x < 0) ? 0 : x keeps NaN as NaN, like max(x, 0) in PyTorch.
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

// Selects, not gy * (x > 0): inf * 0 would turn into NaN. Both operands are
// loaded unconditionally so the compiler emits a compare + blend. Written as
// torch's threshold_backward (y <= 0 ? 0 : g): a NaN x passes g through.
void relu_backward_k(int64_t n, const float* gy, const float* x, float* gx) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gy[i];
    gx[i] = x[i] <= 0.0f ? 0.0f : g;
  }
}

void leaky_relu_k(int64_t n, float slope, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * (x[i] > 0.0f ? 1.0f : slope);
}

void leaky_relu_backward_k(int64_t n, float slope, const float* gy, const float* x,
                           float* gx) {
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * (x[i] > 0.0f ? 1.0f : slope);
}

void sigmoid_k(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_f32(x[i]);
}

void sigmoid_backward_k(int64_t n, const float* gy, const float* x, float* gx) {
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * sigmoid_grad_f32(x[i]);
}

void tanh_k(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = tanh_f32(x[i]);
}

void tanh_backward_k(int64_t n, const float* gy, const float* x, float* gx) {
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * tanh_grad_f32(x[i]);
}

// ---- softmax family --------------------------------------------------------
//
// Passes over a lane: the max (NaN wins, as in PyTorch); e = exp(x - max)
// into `out` (log-softmax overwrites it at the end), so exp runs once per
// element even in the backward; the sums of e (and of g*e or g for the
// backward) in double; the output.
// exp_f32 is 1 ulp, so a softmax value is within a few ulp and a log-softmax
// value within 1 ulp of log(sum) plus 1 ulp of x - max.
//
// A lane of all -inf, or one holding +inf, gives NaN (x - max is NaN
// somewhere), which is also what PyTorch returns.

template <SoftmaxKind K>
void softmax_row(int64_t dim, const float* gy, const float* x, float* out) {
  const float m = row_max(dim, x);
  int64_t k;
  // e in `out` (the log-softmax result overwrites it in the last pass):
  // a flat loop vectorizes exp best; the sums then run over contiguous e.
  for (k = 0; k < dim; ++k) out[k] = exp_f32(x[k] - m);
  const double sum = sum_f32(dim, out);
  double tot = 0.0;
  if (K == SoftmaxKind::softmax_backward) tot = dot_f32(dim, gy, out);
  if (K == SoftmaxKind::log_softmax_backward) tot = sum_f32(dim, gy);

  if (K == SoftmaxKind::softmax) {
    const float inv = static_cast<float>(1.0 / sum);
    for (k = 0; k < dim; ++k) out[k] *= inv;
  } else if (K == SoftmaxKind::log_softmax) {
    const float lse = static_cast<float>(__builtin_log(sum));
    for (k = 0; k < dim; ++k) out[k] = (x[k] - m) - lse;
  } else if (K == SoftmaxKind::softmax_backward) {
    // grad = y * (g - sum g y), y = e / sum.
    const float inv = static_cast<float>(1.0 / sum);
    const float dot = static_cast<float>(tot / sum);
    for (k = 0; k < dim; ++k) out[k] = out[k] * inv * (gy[k] - dot);
  } else {
    // grad = g - y * sum g.
    const float c = static_cast<float>(tot / sum);
    for (k = 0; k < dim; ++k) out[k] = gy[k] - out[k] * c;
  }
}

// len <= kSoftmaxBlock lanes side by side (x[j + k * stride]): the same
// passes with the lane index innermost, so every loop is contiguous; each
// lane's sums run in double over k in order.
template <SoftmaxKind K>
void softmax_cols(int64_t dim, int64_t stride, int64_t len, const float* gy, const float* x,
                  float* out) {
  constexpr bool keep_e = K != SoftmaxKind::log_softmax;
  float m[kSoftmaxBlock], a[kSoftmaxBlock], b[kSoftmaxBlock];
  double s[kSoftmaxBlock], t[kSoftmaxBlock];
  for (int64_t j = 0; j < len; ++j) m[j] = -__builtin_inff(), s[j] = 0.0, t[j] = 0.0;
  for (int64_t k = 0; k < dim; ++k) {
    const float* xr = x + k * stride;
    for (int64_t j = 0; j < len; ++j) m[j] = max_nan(xr[j], m[j]);
  }
  for (int64_t k = 0; k < dim; ++k) {
    const float* xr = x + k * stride;
    const float* gr = gy ? gy + k * stride : nullptr;
    float* orow = out + k * stride;
    for (int64_t j = 0; j < len; ++j) {
      const float e = exp_f32(xr[j] - m[j]);
      if (keep_e) orow[j] = e;
      s[j] += e;
      if (K == SoftmaxKind::softmax_backward) t[j] += static_cast<double>(gr[j]) * e;
      if (K == SoftmaxKind::log_softmax_backward) t[j] += gr[j];
    }
  }
  for (int64_t j = 0; j < len; ++j) {
    if (K == SoftmaxKind::log_softmax) {
      a[j] = static_cast<float>(__builtin_log(s[j]));
    } else {
      a[j] = static_cast<float>(1.0 / s[j]);
      b[j] = static_cast<float>(t[j] / s[j]);
    }
  }
  for (int64_t k = 0; k < dim; ++k) {
    const float* xr = x + k * stride;
    const float* gr = gy ? gy + k * stride : nullptr;
    float* orow = out + k * stride;
    for (int64_t j = 0; j < len; ++j) {
      if (K == SoftmaxKind::softmax) orow[j] *= a[j];
      if (K == SoftmaxKind::log_softmax) orow[j] = (xr[j] - m[j]) - a[j];
      if (K == SoftmaxKind::softmax_backward) orow[j] = orow[j] * a[j] * (gr[j] - b[j]);
      if (K == SoftmaxKind::log_softmax_backward) orow[j] = gr[j] - orow[j] * b[j];
    }
  }
}

template <SoftmaxKind K>
void softmax_dispatch(int64_t dim, int64_t stride, int64_t len, const float* gy,
                      const float* x, float* out) {
  if (len == 1 && stride == 1)
    softmax_row<K>(dim, gy, x, out);
  else
    softmax_cols<K>(dim, stride, len, gy, x, out);
}

void softmax_lanes_k(SoftmaxKind kind, int64_t dim, int64_t stride, int64_t len,
                     const float* gy, const float* x, float* out) {
  switch (kind) {
    case SoftmaxKind::softmax:
      return softmax_dispatch<SoftmaxKind::softmax>(dim, stride, len, gy, x, out);
    case SoftmaxKind::log_softmax:
      return softmax_dispatch<SoftmaxKind::log_softmax>(dim, stride, len, gy, x, out);
    case SoftmaxKind::softmax_backward:
      return softmax_dispatch<SoftmaxKind::softmax_backward>(dim, stride, len, gy, x, out);
    case SoftmaxKind::log_softmax_backward:
      return softmax_dispatch<SoftmaxKind::log_softmax_backward>(dim, stride, len, gy, x, out);
  }
}

// ---- cross-entropy -----------------------------------------------------------

// loss = max + log(sum exp(z - max)) - z[t]. An infinite or NaN logit makes
// the loss NaN (z - max is NaN somewhere), as in PyTorch.
double cross_entropy_row_k(int64_t c, const float* z, int64_t t) {
  const float m = row_max(c, z);
  // exp in stack blocks (flat loops vectorize exp best), each block summed in
  // double and the block sums added in order.
  constexpr int64_t kBlock = 256;
  float e[kBlock];
  double s = 0.0;
  for (int64_t k0 = 0; k0 < c; k0 += kBlock) {
    const int64_t n = imin(kBlock, c - k0);
    for (int64_t k = 0; k < n; ++k) e[k] = exp_f32(z[k0 + k] - m);
    s += sum_f32(n, e);
  }
  return static_cast<double>(m) + __builtin_log(s) - static_cast<double>(z[t]);
}

void cross_entropy_backward_row_k(int64_t c, float scale, const float* z, int64_t t,
                                  float* g) {
  const float m = row_max(c, z);
  for (int64_t k = 0; k < c; ++k) g[k] = exp_f32(z[k] - m);
  const float f = static_cast<float>(scale / sum_f32(c, g));
  for (int64_t k = 0; k < c; ++k) g[k] *= f;
  g[t] -= scale;
}

}  // namespace
}  // namespace striate::cpu
