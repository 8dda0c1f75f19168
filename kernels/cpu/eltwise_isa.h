// Per-ISA inner kernels of the activation, softmax, cross-entropy, batch-norm,
// LRN and max-pool-backward ops. The same source (eltwise_impl.h) is compiled
// once per level (eltwise_baseline.cpp, eltwise_avx2.cpp, eltwise_avx512.cpp)
// with that level's flags and auto-vectorized; eltwise_impl() returns the
// table of the level isa_selected() names.
//
// Every function here is single-threaded and works on one independent piece
// of an op (a chunk of elements, a softmax lane block, a channel, a plane);
// the public kernels (activation.cpp, softmax.cpp, ...) split the work over
// threads, so each output element is written by exactly one thread.
//
// Reductions use a fixed number of lanes (kLanes) at every ISA level, so
// their summation order depends neither on the thread count nor on the
// vector width.
#pragma once

#include <cstdint>

#include "striate/params.h"

namespace striate::cpu {

// Softmax-family lane operations (see softmax_lanes).
enum class SoftmaxKind : int { softmax, log_softmax, softmax_backward, log_softmax_backward };

struct EltwiseImpl {
  const char* isa;

  // Elementwise over n values.
  void (*relu)(int64_t n, const float* x, float* y);
  void (*relu_backward)(int64_t n, const float* gy, const float* x, float* gx);
  void (*leaky_relu)(int64_t n, float slope, const float* x, float* y);
  void (*leaky_relu_backward)(int64_t n, float slope, const float* gy, const float* x,
                              float* gx);
  void (*sigmoid)(int64_t n, const float* x, float* y);
  void (*sigmoid_backward)(int64_t n, const float* gy, const float* x, float* gx);
  void (*tanh)(int64_t n, const float* x, float* y);
  void (*tanh_backward)(int64_t n, const float* gy, const float* x, float* gx);

  // `len` adjacent lanes (len <= kSoftmaxBlock) of a softmax over `dim`
  // values spaced `stride` apart: lane j is x[j + k * stride], k < dim.
  // len == 1 with stride == 1 is one contiguous row. gy is read by the
  // backward kinds only.
  void (*softmax_lanes)(SoftmaxKind kind, int64_t dim, int64_t stride, int64_t len,
                        const float* gy, const float* x, float* out);
  // One row of c logits: returns logsumexp(z) - z[t] (double); the backward
  // writes g = softmax(z) * scale - scale * onehot(t).
  double (*cross_entropy_row)(int64_t c, const float* z, int64_t t);
  void (*cross_entropy_backward_row)(int64_t c, float scale, const float* z, int64_t t,
                                     float* g);

  // Batch-norm pieces over one contiguous run of len values, in double.
  double (*sum)(int64_t len, const float* x);
  double (*sum_sq_dev)(int64_t len, const float* x, double mean);
  // sg += sum g; sgx += sum g * (x - mean).
  void (*sum_g_gx)(int64_t len, const float* g, const float* x, double mean, double* sg,
                   double* sgx);
  // y = ((x - m_hi) - m_lo) * scale + shift, with mean = m_hi + m_lo split so
  // that x - mean keeps double accuracy in float arithmetic.
  void (*affine)(int64_t len, const float* x, float m_hi, float m_lo, float scale,
                 float shift, float* y);
  // gx = a * ((g - mg) - (x - mu) * k), formed in double (the terms cancel).
  void (*bn_backward_train)(int64_t len, const float* g, const float* x, double a, double mg,
                            double mu, double k, float* gx);

  // LRN on `len` adjacent spatial columns of one image (x, y at channel 0).
  void (*lrn_block)(const LrnParams& p, int64_t len, const float* x, float* y);
  void (*lrn_backward_block)(const LrnParams& p, int64_t len, const float* gy,
                             const float* x, float* gx);

  // Max-pool backward on one (image, channel) plane: gx plane overwritten.
  void (*max_pool2d_backward_plane)(const Pool2dParams& p, const float* gy, const float* x,
                                    float* gx);
};

constexpr int64_t kSoftmaxBlock = 64;
// Largest number of LRN columns per block.
constexpr int64_t kLrnBlock = 64;

extern const EltwiseImpl eltwise_baseline_impl;
#ifdef STRIATE_HAVE_X86_ISA
extern const EltwiseImpl eltwise_avx2_impl;
extern const EltwiseImpl eltwise_avx512_impl;
#endif

// The table of the selected ISA level.
const EltwiseImpl& eltwise_impl();

}  // namespace striate::cpu
