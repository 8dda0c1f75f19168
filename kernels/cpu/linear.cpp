// Fully connected layer and cross-entropy loss.
#include <algorithm>
#include <cmath>
#include <limits>

#include "striate/kernels_cpu.h"

namespace striate::cpu {

void linear(int64_t m, int64_t in, int64_t out, const float* x, const float* w,
            const float* bias, float* y) {
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

namespace {
// logsumexp of one row, in double.
inline double row_logsumexp(const float* z, int64_t c) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t k = 0; k < c; ++k) m = (z[k] > m || std::isnan(z[k])) ? z[k] : m;
  if (std::isnan(m) || std::isinf(m)) {
    // NaN propagates; an infinite max makes z - max NaN/-inf, as in PyTorch.
    double s = 0.0;
    for (int64_t k = 0; k < c; ++k) s += std::exp(static_cast<double>(z[k]));
    return std::log(s);
  }
  double s = 0.0;
  for (int64_t k = 0; k < c; ++k) s += std::exp(static_cast<double>(z[k]) - m);
  return m + std::log(s);
}
}  // namespace

void cross_entropy(int64_t n, int64_t c, const float* logits,
                   const int64_t* target, float* loss) {
#pragma omp parallel for schedule(static) if (n * c >= (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits + i * c;
    loss[i] = static_cast<float>(row_logsumexp(z, c) - z[target[i]]);
  }
}

void cross_entropy_backward(int64_t n, int64_t c, const float* scale,
                            const float* logits, const int64_t* target,
                            float* gz) {
#pragma omp parallel for schedule(static) if (n * c >= (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits + i * c;
    float* g = gz + i * c;
    const double lse = row_logsumexp(z, c);
    for (int64_t k = 0; k < c; ++k)
      g[k] = static_cast<float>(std::exp(static_cast<double>(z[k]) - lse) * scale[i]);
    g[target[i]] -= scale[i];
  }
}

}  // namespace striate::cpu
