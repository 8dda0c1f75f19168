// CPU kernels: pure functions on pointers and a params struct. They assume
// the op layer validated everything (preconditions are asserts only), do not
// allocate beyond small stack buffers, and take any workspace from the caller.
//
// Determinism: every kernel writes each output element from exactly one
// thread, with a fixed summation order, so results are bitwise identical for
// any thread count.
//
// Names match the op everywhere (reference, op layer, tests, benchmark):
// conv2d_direct, conv2d_im2col, max_pool2d, ...
#pragma once

#include <cstddef>
#include <cstdint>

#include "striate/params.h"

namespace striate::cpu {

// ---- GEMM ------------------------------------------------------------------
// Row-major C = alpha * op(A) op(B) + beta * C with the microkernel of the
// selected ISA level (include/striate/isa.h).
void sgemm(const GemmParams& p, const float* a, const float* b, float* c);
// Name of the microkernel sgemm runs now, e.g. "sgemm_12x32_avx512".
const char* sgemm_kernel_name();

// ---- Convolution -----------------------------------------------------------
// Direct convolution: loops over kernel taps with contiguous inner loops over
// output columns; best for depthwise/grouped and very few channels.
void conv2d_direct(const Conv2dParams& p, const float* x, const float* w,
                   const float* bias, float* y);
void conv2d_direct_backward_data(const Conv2dParams& p, const float* gy,
                                 const float* w, float* gx);
// gw is overwritten; gbias (may be null) is overwritten.
void conv2d_direct_backward_weights(const Conv2dParams& p, const float* gy,
                                    const float* x, float* gw, float* gbias);

// im2col + GEMM. Workspace sizes are in floats.
int64_t conv2d_im2col_workspace(const Conv2dParams& p);
void conv2d_im2col(const Conv2dParams& p, const float* x, const float* w,
                   const float* bias, float* y, float* workspace);
void conv2d_im2col_backward_data(const Conv2dParams& p, const float* gy,
                                 const float* w, float* gx, float* workspace);
void conv2d_im2col_backward_weights(const Conv2dParams& p, const float* gy,
                                    const float* x, float* gw, float* gbias,
                                    float* workspace);

// Shared by both algorithms: gbias[o] = sum over n, h, w of gy.
void conv2d_bias_backward(const Conv2dParams& p, const float* gy, float* gbias);

// ---- Pooling ---------------------------------------------------------------
void max_pool2d(const Pool2dParams& p, const float* x, float* y);
void max_pool2d_backward(const Pool2dParams& p, const float* gy, const float* x,
                         float* gx);
void avg_pool2d(const Pool2dParams& p, const float* x, float* y);
void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx);
void adaptive_avg_pool2d(const AdaptivePool2dParams& p, const float* x, float* y);
void adaptive_avg_pool2d_backward(const AdaptivePool2dParams& p, const float* gy,
                                  float* gx);

// ---- Normalization ---------------------------------------------------------
// Per-channel batch mean and biased variance, accumulated and returned in
// double: rounding the mean to float would shift x - mean by up to half an
// ulp of the mean, which is not small next to the standard deviation.
void batch_norm_stats(const BatchNormParams& p, const float* x, double* mean,
                      double* var);
// y = (x - mean) * rsqrt(var + eps) * weight + bias; weight/bias may be null.
void batch_norm_forward(const BatchNormParams& p, const float* x,
                        const double* mean, const double* var,
                        const float* weight, const float* bias, float* y);
// Gradients; `training` selects the full gradient through batch statistics
// (mean/var are then the batch statistics). gweight/gbias may be null.
void batch_norm_backward(const BatchNormParams& p, bool training,
                         const float* gy, const float* x, const double* mean,
                         const double* var, const float* weight, float* gx,
                         float* gweight, float* gbias);

void local_response_norm(const LrnParams& p, const float* x, float* y);
void local_response_norm_backward(const LrnParams& p, const float* gy,
                                  const float* x, float* gx);

// ---- Activations (elementwise over n values) ------------------------------
void relu(int64_t n, const float* x, float* y);
void relu_backward(int64_t n, const float* gy, const float* x, float* gx);
void leaky_relu(int64_t n, float slope, const float* x, float* y);
void leaky_relu_backward(int64_t n, float slope, const float* gy,
                         const float* x, float* gx);
void sigmoid(int64_t n, const float* x, float* y);
void sigmoid_backward(int64_t n, const float* gy, const float* x, float* gx);
void tanh(int64_t n, const float* x, float* y);
void tanh_backward(int64_t n, const float* gy, const float* x, float* gx);

// ---- Softmax ---------------------------------------------------------------
void softmax(const SoftmaxParams& p, const float* x, float* y);
void log_softmax(const SoftmaxParams& p, const float* x, float* y);
// Backward recomputes the forward from x (the backward contract gives x, not y).
void softmax_backward(const SoftmaxParams& p, const float* gy, const float* x,
                      float* gx);
void log_softmax_backward(const SoftmaxParams& p, const float* gy,
                          const float* x, float* gx);

// ---- Linear and loss -------------------------------------------------------
// y[m x out] = x[m x in] * w[out x in]^T + bias
void linear(int64_t m, int64_t in, int64_t out, const float* x, const float* w,
            const float* bias, float* y);
// gx/gw/gbias may each be null (not requested).
void linear_backward(int64_t m, int64_t in, int64_t out, const float* gy,
                     const float* x, const float* w, float* gx, float* gw,
                     float* gbias);

// Per-sample loss[i] = logsumexp(z_i) - z_i[t_i] for (n x c) logits.
void cross_entropy(int64_t n, int64_t c, const float* logits,
                   const int64_t* target, float* loss);
// gz[i] = (softmax(z_i) - onehot(t_i)) * scale[i]
void cross_entropy_backward(int64_t n, int64_t c, const float* scale,
                            const float* logits, const int64_t* target,
                            float* gz);

}  // namespace striate::cpu
