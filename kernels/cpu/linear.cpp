// Fully connected layer and cross-entropy loss.
#include <algorithm>

#include "eltwise_isa.h"
#include "gemv_isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {

void linear(int64_t m, int64_t in, int64_t out, const float* x, const float* w,
            const float* bias, float* y) {
  if (m <= kGemvMaxRows) {
    if (m == 0 || out == 0) return;
    // Threads split the output features in blocks of 16 (a multiple of every
    // level's W-row block, so each W row is streamed by one thread only).
    const auto rows = gemv_impl().rows;
    constexpr int64_t kBlock = 16;
    const int64_t blocks = (out + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (m * in * out >= (1 << 16))
    for (int64_t b = 0; b < blocks; ++b)
      rows(m, in, out, b * kBlock, std::min(out, (b + 1) * kBlock), x, w, bias, y);
    return;
  }
  // y = x * w^T (+ bias): the bias is written first and the GEMM accumulates.
  GemmParams gp;
  gp.m = m, gp.n = out, gp.k = in;
  gp.trans_b = true;
  gp.lda = in, gp.ldb = in, gp.ldc = out;
  gp.beta = 0.0f;
  if (bias) {
    for (int64_t i = 0; i < m; ++i) std::copy(bias, bias + out, y + i * out);
    gp.beta = 1.0f;
  }
  sgemm(gp, x, w, y);
}

void linear_backward(int64_t m, int64_t in, int64_t out, const float* gy,
                     const float* x, const float* w, float* gx, float* gw,
                     float* gbias) {
  if (gx) {  // gx[m x in] = gy[m x out] * w[out x in]
    GemmParams gp;
    gp.m = m, gp.n = in, gp.k = out;
    gp.lda = out, gp.ldb = in, gp.ldc = in;
    sgemm(gp, gy, w, gx);
  }
  if (gw) {  // gw[out x in] = gy^T[out x m] * x[m x in]
    GemmParams gp;
    gp.m = out, gp.n = in, gp.k = m;
    gp.trans_a = true;
    gp.lda = out, gp.ldb = in, gp.ldc = in;
    sgemm(gp, gy, x, gw);
  }
  if (gbias) {
    // Column sums in double, one thread per column: fixed order.
#pragma omp parallel for schedule(static) if (m * out >= (1 << 15))
    for (int64_t j = 0; j < out; ++j) {
      double acc = 0.0;
      for (int64_t i = 0; i < m; ++i) acc += gy[i * out + j];
      gbias[j] = static_cast<float>(acc);
    }
  }
}

// Cross-entropy rows run the per-ISA kernels of eltwise_isa.h (vectorized
// max and exp, sums in double), one thread per row.
void cross_entropy(int64_t n, int64_t c, const float* logits,
                   const int64_t* target, float* loss) {
  const auto fn = eltwise_impl().cross_entropy_row;
#pragma omp parallel for schedule(static) if (n * c >= (1 << 15))
  for (int64_t i = 0; i < n; ++i)
    loss[i] = static_cast<float>(fn(c, logits + i * c, target[i]));
}

void cross_entropy_backward(int64_t n, int64_t c, const float* scale,
                            const float* logits, const int64_t* target,
                            float* gz) {
  const auto fn = eltwise_impl().cross_entropy_backward_row;
#pragma omp parallel for schedule(static) if (n * c >= (1 << 15))
  for (int64_t i = 0; i < n; ++i) fn(c, scale[i], logits + i * c, target[i], gz + i * c);
}

}  // namespace striate::cpu
