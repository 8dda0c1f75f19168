// Parameter structs passed from the op layer to the kernels. Everything a
// kernel needs is here, already validated and with output sizes computed, so
// a kernel is a pure function of (params, pointers).
#pragma once

#include <cstdint>

namespace striate {

// NCHW input, OIHW weight (I = c_in / groups), NCHW output.
// Only the low-side padding is stored: the high side is implied by h_out /
// w_out, which lets asymmetric ("same" with an even kernel) padding through.
struct Conv2dParams {
  int64_t n = 0, c_in = 0, h_in = 0, w_in = 0;
  int64_t c_out = 0, h_out = 0, w_out = 0;
  int64_t kh = 0, kw = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  // Fused epilogue: forward kernels apply max(0, .) to each output right
  // after adding the bias, while the tile is still in registers / cache.
  bool relu = false;
};

// Max and average pooling (window kh x kw, zero / -inf padding implied).
struct Pool2dParams {
  int64_t n = 0, c = 0, h_in = 0, w_in = 0;
  int64_t h_out = 0, w_out = 0;
  int64_t kh = 0, kw = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;
  bool count_include_pad = true;  // average pooling only
};

// Adaptive average pooling: bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)).
struct AdaptivePool2dParams {
  int64_t n = 0, c = 0, h_in = 0, w_in = 0;
  int64_t h_out = 0, w_out = 0;
};

// Batch norm over x viewed as (n, c, spatial): statistics per channel.
struct BatchNormParams {
  int64_t n = 0, c = 0, spatial = 1;
  float eps = 1e-5f;
  float momentum = 0.1f;
};

// Local response norm across channels of x viewed as (n, c, spatial).
struct LrnParams {
  int64_t n = 0, c = 0, spatial = 1;
  int64_t size = 1;
  float alpha = 1e-4f, beta = 0.75f, k = 1.0f;
};

// Softmax along the middle axis of x viewed as (outer, dim, inner).
struct SoftmaxParams {
  int64_t outer = 1, dim = 1, inner = 1;
};

// Row-major GEMM: C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C.
struct GemmParams {
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
};

}  // namespace striate
