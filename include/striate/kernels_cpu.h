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

// ---- fp32 peak probe (benchmark only; peak_fma*.cpp) -----------------------
// Every thread of the current count runs `iters` iterations of independent
// multiply-add chains at ISA level isa_level (static_cast<int>(striate::Isa);
// the caller checks the CPU supports it). FLOPs / seconds is the peak.
struct PeakFmaResult {
  double flops = 0, seconds = 0;
  int threads = 1;
};
PeakFmaResult peak_fma(int isa_level, int64_t iters);

// ---- Convolution -----------------------------------------------------------
// Direct convolution: loops over kernel taps with contiguous inner loops over
// output columns; best for depthwise/grouped and very few channels.
void conv2d_direct(const Conv2dParams& p, const float* x, const float* w,
                   const float* bias, float* y);
// Depthwise layers (groups == C_in == C_out): conv2d_direct runs them
// through conv2d_depthwise, a row chunk at a time taking every tap
// (conv2d_depthwise.h).
bool conv2d_depthwise_applies(const Conv2dParams& p);
void conv2d_depthwise(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                      float* y);
void conv2d_direct_backward_data(const Conv2dParams& p, const float* gy,
                                 const float* w, float* gx);
// gw is overwritten; gbias (may be null) is overwritten.
void conv2d_direct_backward_weights(const Conv2dParams& p, const float* gy,
                                    const float* x, float* gw, float* gbias);

// Stride-1, ungrouped direct convolution on padded-width flat planes with
// register-blocked per-ISA inner loops (conv2d_direct_s1.h): what
// conv2d_direct runs when conv2d_direct_s1_applies. Workspace in floats for
// `threads` threads (backward: enough for both backward passes). Each entry
// returns false, its outputs unspecified, when an input holds Inf or NaN:
// the caller then runs conv2d_direct, whose NaN/Inf pattern is torch's.
bool conv2d_direct_s1_applies(const Conv2dParams& p);
int64_t conv2d_direct_s1_workspace(const Conv2dParams& p, int threads, bool backward);
bool conv2d_direct_s1(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                      float* y, float* workspace, int threads);
bool conv2d_direct_s1_backward_data(const Conv2dParams& p, const float* gy, const float* w,
                                    float* gx, float* workspace, int threads);
// gw and gbias (may be null) are overwritten.
bool conv2d_direct_s1_backward_weights(const Conv2dParams& p, const float* gy, const float* x,
                                       float* gw, float* gbias, float* workspace, int threads);
const char* conv2d_direct_s1_kernel_name();

// Ungrouped direct convolution vectorized over output channels, stride_w 1
// or 2, c_out >= 16, on the AVX-512 level (conv2d_direct_ocv.h): what
// conv2d_direct runs first when conv2d_direct_ocv_applies. Returns false,
// y unspecified, when a weight is non-finite and the layer is padded (the
// padded copy would turn Inf * 0 into NaNs torch has not); the caller then
// runs the other direct kernels.
bool conv2d_direct_ocv_applies(const Conv2dParams& p);
int64_t conv2d_direct_ocv_workspace(const Conv2dParams& p, int threads);
bool conv2d_direct_ocv(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                       float* y, float* workspace, int threads);
const char* conv2d_direct_ocv_kernel_name();

// im2col + GEMM. The forward gathers the column matrix inside the GEMM's
// packing and needs no workspace; the backward passes take
// conv2d_im2col_workspace floats.
int64_t conv2d_im2col_workspace(const Conv2dParams& p);
void conv2d_im2col(const Conv2dParams& p, const float* x, const float* w,
                   const float* bias, float* y);
void conv2d_im2col_backward_data(const Conv2dParams& p, const float* gy,
                                 const float* w, float* gx, float* workspace);
void conv2d_im2col_backward_weights(const Conv2dParams& p, const float* gy,
                                    const float* x, float* gw, float* gbias,
                                    float* workspace);

// Space-to-depth rewrite of a strided convolution (conv2d_s2d.cpp): the
// stride-1, unpadded convolution with C_in * stride_h * stride_w input
// channels (the stride phases) and ceil(k / stride) taps per axis that
// computes the same output. xs holds N x C_in' x H_in' x W_in' floats of
// conv2d_s2d_params(p), ws its C_out x C_in' x kh' x kw' weights; the
// _backward functions are the adjoints (gx, gw overwritten).
Conv2dParams conv2d_s2d_params(const Conv2dParams& p);
void conv2d_s2d_input(const Conv2dParams& p, const float* x, float* xs);
void conv2d_s2d_input_backward(const Conv2dParams& p, const float* gxs, float* gx);
void conv2d_s2d_weight(const Conv2dParams& p, const float* w, float* ws);
void conv2d_s2d_weight_backward(const Conv2dParams& p, const float* gws, float* gw);

// Winograd F(m x m, r x r) (conv2d_winograd.cpp): r = p.kh = p.kw = 3 with
// m = 2 or 4, r = 5 with m = 2, or r = 2 with m = 4; stride 1, dilation 1, groups 1, any
// padding. Filters are transformed once into u
// (conv2d_winograd_filter_floats floats; the op layer caches them);
// backward_data transforms them for the data gradient, which is the r x r
// convolution of gy with the flipped, channel-transposed kernel.
int64_t conv2d_winograd_filter_floats(const Conv2dParams& p, int m, bool backward_data);
void conv2d_winograd_filter(const Conv2dParams& p, int m, bool backward_data,
                            const float* w, float* u);
int64_t conv2d_winograd_workspace(const Conv2dParams& p, int m, bool backward_data);
void conv2d_winograd(const Conv2dParams& p, int m, const float* x, const float* u,
                     const float* bias, float* y, float* workspace);
void conv2d_winograd_backward_data(const Conv2dParams& p, int m, const float* gy,
                                   const float* u, float* gx, float* workspace);
// Weight gradient by the same transforms (needs
// conv2d_winograd_backward_weights_workspace floats); gbias may be null.
// Returns false, gw then unusable, when gw came out non-finite: an Inf or
// NaN in x or gy reaches every tap of its channel through the transforms
// (0 * Inf = NaN), where the exact correlation keeps +-Inf and leaves the
// taps it never meets finite -- the caller recomputes it exactly.
int64_t conv2d_winograd_backward_weights_workspace(const Conv2dParams& p, int m);
bool conv2d_winograd_backward_weights(const Conv2dParams& p, int m, const float* gy,
                                      const float* x, float* gw, float* gbias,
                                      float* workspace);
const char* conv2d_winograd_kernel_name();

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

// ---- Tensor ops, dropout, mse_loss (tensor.cpp, loss.cpp) -----------------
void tensor_copy(int64_t n, const float* x, float* y);
void add(int64_t n, const float* a, const float* b, float* y);
// a viewed as (outer, inner), b as (outer,): y[o, i] = a[o, i] * b[o]
// (inner == 1 is the plain elementwise product).
void mul(int64_t outer, int64_t inner, const float* a, const float* b, float* y);
// ga = gy * b (broadcast); gb[o] = sum_i gy[o, i] * a[o, i] in double.
void mul_backward(int64_t outer, int64_t inner, const float* gy, const float* a,
                  const float* b, float* ga, float* gb);
// Inputs viewed as (outer, widths[k]); y rows are the inputs' rows side by side.
void cat(int64_t outer, int64_t count, const float* const* xs,
         const int64_t* widths, float* y);
void cat_backward(int64_t outer, int64_t count, const float* gy,
                  const int64_t* widths, float* const* gxs);
// y[i] = x[i] * (u(seed, i) >= p ? scale : 0) with u from splitmix64
// (tensor.cpp); the backward is the same map applied to gy.
void dropout(int64_t n, double p, float scale, uint64_t seed, const float* x,
             float* y);
// Per-block partial sums of (x - t)^2 over fixed 4096-element blocks, in
// double; sq (may be null) receives the elementwise (x - t)^2.
int64_t mse_loss_blocks(int64_t n);
void mse_loss(int64_t n, const float* x, const float* t, float* sq,
              double* block_sums);
// gx[i] = norm * (x[i] - t[i]) * gy[i * gy_stride] (torch's order), gt = -gx;
// gy_stride is 0 for a scalar grad_out.
void mse_loss_backward(int64_t n, float norm, const float* gy, int64_t gy_stride,
                       const float* x, const float* t, float* gx, float* gt);

// ---- Optimizer updates (optim.cpp), in place, torch.optim's formulas -------
// The scalar factors are computed by the op layer in double and rounded to
// float once, as torch does when it passes Python scalars to float32 ops.
struct SgdCoeffs {
  float lr = 0, momentum = 0, one_minus_dampening = 1, weight_decay = 0;
  bool nesterov = false, first_step = false;
};
// buf may be null when momentum == 0.
void sgd_update(const SgdCoeffs& c, int64_t n, float* param, const float* grad,
                float* buf);
struct AdamCoeffs {
  float weight_decay = 0;       // L2 term added to the gradient (0 if decoupled)
  float decay = 1;              // 1 - lr * weight_decay (decoupled), else 1
  float one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0;
  float bias_correction2_sqrt = 1, eps = 0, neg_step_size = 0;
};
void adam_update(const AdamCoeffs& c, int64_t n, float* param, const float* grad,
                 float* exp_avg, float* exp_avg_sq);

}  // namespace striate::cpu
