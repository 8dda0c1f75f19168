// The op layer: every public op is a `*_plan` that validates arguments and
// shapes (throwing striate::ValueError / TypeError / IndexError with a message
// naming the argument, its value and what was expected) and computes the
// output shape and kernel parameters, plus `*_forward` / `*_backward` that run
// a validated plan on raw pointers. Callers (the Python binding, C++ users)
// allocate the outputs the plan describes; the op layer owns workspaces and
// algorithm choice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "striate/params.h"
#include "striate/shape.h"

namespace striate::ops {

// Checks that a gradient has the shape of the forward output.
void check_grad_shape(const char* op, const Shape& grad, const Shape& expected);

// ---- conv2d ----------------------------------------------------------------
enum class Conv2dAlgorithm { direct, im2col, winograd_f2, winograd_f4 };
const char* algorithm_name(Conv2dAlgorithm a);

struct Conv2dArgs {
  int64_t stride_h = 1, stride_w = 1;
  std::string padding_mode = "explicit";  // "explicit", "same" or "valid"
  int64_t pad_h = 0, pad_w = 0;           // used when padding_mode == "explicit"
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  std::string algorithm = "auto";  // auto|direct|im2col|winograd|winograd_f2|winograd_f4
  std::string activation = "none";  // none|relu: fused forward epilogue
  // The plan is for conv2d_backward: "auto" then picks for the backward
  // passes, whose best algorithm can differ from the forward's.
  bool backward = false;
};

struct Conv2dPlan {
  Conv2dParams p;
  Conv2dAlgorithm algorithm = Conv2dAlgorithm::direct;
  bool has_bias = false;
  Shape y_shape;
};

// The algorithms that can run a convolution with these (validated) params,
// in a fixed order: direct, im2col, then winograd_f2 / winograd_f4 where
// Winograd applies (3x3, stride 1, dilation 1, groups 1).
std::vector<Conv2dAlgorithm> conv2d_algorithms(const Conv2dParams& p);

// The Winograd filter cache (transformed weights kept for inference): bytes
// held now, and dropping every entry (returns the bytes it held).
size_t conv2d_filter_cache_bytes();
size_t conv2d_filter_cache_clear();

Conv2dPlan conv2d_plan(const Shape& x, const Shape& w, const Shape* bias,
                       const Conv2dArgs& args);
void conv2d_forward(const Conv2dPlan& plan, const float* x, const float* w,
                    const float* bias, float* y);
// gx, gw and gbias (when the plan has a bias) are all written.
void conv2d_backward(const Conv2dPlan& plan, const float* gy, const float* x,
                     const float* w, float* gx, float* gw, float* gbias);

// ---- pooling ---------------------------------------------------------------
struct Pool2dArgs {
  int64_t kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;
  bool ceil_mode = false;
  bool count_include_pad = true;
};
Pool2dParams max_pool2d_plan(const Shape& x, const Pool2dArgs& args);
Pool2dParams avg_pool2d_plan(const Shape& x, const Pool2dArgs& args);
Shape pool2d_out_shape(const Pool2dParams& p);
void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y);
void max_pool2d_backward(const Pool2dParams& p, const float* gy, const float* x,
                         float* gx);
void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y);
void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx);

// An absent out_h / out_w means "same as the input" (PyTorch's None).
AdaptivePool2dParams adaptive_avg_pool2d_plan(const Shape& x,
                                              std::optional<int64_t> out_h,
                                              std::optional<int64_t> out_w);
Shape adaptive_pool2d_out_shape(const AdaptivePool2dParams& p);
void adaptive_avg_pool2d_forward(const AdaptivePool2dParams& p, const float* x,
                                 float* y);
void adaptive_avg_pool2d_backward(const AdaptivePool2dParams& p,
                                  const float* gy, float* gx);

// ---- batch_norm ------------------------------------------------------------
struct BatchNormPlan {
  BatchNormParams p;
  bool training = false;
  bool has_running = false;  // running_mean / running_var given
  bool has_weight = false, has_bias = false;
};
// Pass null for an absent (None) array.
BatchNormPlan batch_norm_plan(const Shape& x, const Shape* running_mean,
                              const Shape* running_var, const Shape* weight,
                              const Shape* bias, bool training, double momentum,
                              double eps);
// Training mode updates running_mean / running_var in place (when present).
void batch_norm_forward(const BatchNormPlan& plan, const float* x,
                        float* running_mean, float* running_var,
                        const float* weight, const float* bias, float* y);
// Never mutates its inputs. gweight / gbias are written when the plan has
// weight / bias.
void batch_norm_backward(const BatchNormPlan& plan, const float* gy,
                         const float* x, const float* running_mean,
                         const float* running_var, const float* weight,
                         float* gx, float* gweight, float* gbias);

// ---- local_response_norm ---------------------------------------------------
LrnParams local_response_norm_plan(const Shape& x, int64_t size, double alpha,
                                   double beta, double k);
void local_response_norm_forward(const LrnParams& p, const float* x, float* y);
void local_response_norm_backward(const LrnParams& p, const float* gy,
                                  const float* x, float* gx);

// ---- activations -----------------------------------------------------------
enum class Activation { relu, leaky_relu, sigmoid, tanh };
void activation_forward(Activation a, int64_t n, float slope, const float* x,
                        float* y);
void activation_backward(Activation a, int64_t n, float slope, const float* gy,
                         const float* x, float* gx);

// ---- softmax / log_softmax ---------------------------------------------------
SoftmaxParams softmax_plan(const char* op, const Shape& x, int64_t dim);
void softmax_forward(const SoftmaxParams& p, bool log, const float* x, float* y);
void softmax_backward(const SoftmaxParams& p, bool log, const float* gy,
                      const float* x, float* gx);

// ---- linear ----------------------------------------------------------------
struct LinearPlan {
  int64_t m = 0, in = 0, out = 0;
  bool has_bias = false;
  Shape y_shape;
};
LinearPlan linear_plan(const Shape& x, const Shape& w, const Shape* bias);
void linear_forward(const LinearPlan& plan, const float* x, const float* w,
                    const float* bias, float* y);
void linear_backward(const LinearPlan& plan, const float* gy, const float* x,
                     const float* w, float* gx, float* gw, float* gbias);

// ---- matmul ----------------------------------------------------------------
struct MatmulPlan {
  int64_t m = 0, k = 0, n = 0;
  Shape y_shape;
};
MatmulPlan matmul_plan(const Shape& a, const Shape& b);
void matmul_forward(const MatmulPlan& plan, const float* a, const float* b, float* y);
void matmul_backward(const MatmulPlan& plan, const float* gy, const float* a,
                     const float* b, float* ga, float* gb);

// ---- cross_entropy ---------------------------------------------------------
enum class Reduction { none, mean, sum };
struct CrossEntropyPlan {
  int64_t n = 0, c = 0;
  Reduction reduction = Reduction::mean;
  Shape out_shape;  // () for mean/sum, (N,) for none
};
CrossEntropyPlan cross_entropy_plan(const Shape& input, const Shape& target,
                                    const std::string& reduction);
// Throws IndexError naming the first target outside [0, C).
void cross_entropy_check_target(const CrossEntropyPlan& plan,
                                const int64_t* target);
void cross_entropy_forward(const CrossEntropyPlan& plan, const float* input,
                           const int64_t* target, float* out);
// gy has plan.out_shape.
void cross_entropy_backward(const CrossEntropyPlan& plan, const float* gy,
                            const float* input, const int64_t* target,
                            float* ginput);

// ---- tensor ops: add, mul, cat, dropout (src/ops/tensor.cpp) ---------------
// Elementwise ops on n values; copy backs add_backward's two gradients.
int64_t add_plan(const Shape& a, const Shape& b);  // numel; shapes must match
void add_forward(int64_t n, const float* a, const float* b, float* y);
void copy_forward(int64_t n, const float* x, float* y);

// b has a's shape, or a's leading dims followed by ones ((N, C, 1, 1) gating
// (N, C, H, W)): a is viewed as (outer, inner) and b as (outer,).
struct MulPlan {
  int64_t outer = 0, inner = 1;
  Shape y_shape;
};
MulPlan mul_plan(const Shape& a, const Shape& b);
void mul_forward(const MulPlan& plan, const float* a, const float* b, float* y);
void mul_backward(const MulPlan& plan, const float* gy, const float* a,
                  const float* b, float* ga, float* gb);

// Inputs viewed as (outer, widths[k]) with widths[k] = size along dim x inner.
struct CatPlan {
  int64_t outer = 1, dim = 0;
  std::vector<int64_t> widths;
  Shape y_shape;
};
CatPlan cat_plan(const std::vector<Shape>& xs, int64_t dim);
void cat_forward(const CatPlan& plan, const float* const* xs, float* y);
void cat_backward(const CatPlan& plan, const float* gy, float* const* gxs);

struct DropoutPlan {
  int64_t n = 0;
  double p = 0.5;
  bool training = true;
  uint64_t seed = 0;
};
DropoutPlan dropout_plan(const Shape& x, double p, bool training, uint64_t seed);
void dropout_forward(const DropoutPlan& plan, const float* x, float* y);
// The mask is regenerated from (seed, index): gx = gy * mask / (1 - p).
void dropout_backward(const DropoutPlan& plan, const float* gy, float* gx);

// ---- mse_loss (src/ops/loss.cpp) -------------------------------------------
struct MseLossPlan {
  int64_t n = 0;
  Reduction reduction = Reduction::mean;
  Shape out_shape;  // () for mean/sum, the input's shape for none
};
MseLossPlan mse_loss_plan(const Shape& input, const Shape& target,
                          const std::string& reduction);
void mse_loss_forward(const MseLossPlan& plan, const float* input,
                      const float* target, float* out);
// gy has plan.out_shape; ginput and gtarget are both written.
void mse_loss_backward(const MseLossPlan& plan, const float* gy,
                       const float* input, const float* target, float* ginput,
                       float* gtarget);

// ---- optimizer updates (src/ops/optim.cpp), in place -------------------------
struct SgdArgs {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, first_step = false;
};
// Validates shapes (grad and momentum_buffer, when given, match param) and
// hyper-parameters as torch.optim.SGD does; returns numel.
int64_t sgd_plan(const Shape& param, const Shape& grad, const Shape* momentum_buffer,
                 const SgdArgs& args);
void sgd_update(const SgdArgs& args, int64_t n, float* param, const float* grad,
                float* momentum_buffer);

struct AdamArgs {
  int64_t step = 1;
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled_weight_decay = false;
};
int64_t adam_plan(const Shape& param, const Shape& grad, const Shape& exp_avg,
                  const Shape& exp_avg_sq, const AdamArgs& args);
void adam_update(const AdamArgs& args, int64_t n, float* param, const float* grad,
                 float* exp_avg, float* exp_avg_sq);

}  // namespace striate::ops
