// Batch normalization over x viewed as (n, c, spatial).
//
// Statistics and the backward reductions run one thread per channel; each
// thread walks its channel's (n, spatial) values in a fixed order (n outer,
// spatial inner, contiguous) and accumulates in double, so the result does
// not depend on the thread count. The elementwise forward runs one thread per
// (n, c) plane.
#include <cmath>
#include <cstdint>

#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

// sum_i p[i] in double, four interleaved partial sums combined in a fixed
// order (breaks the add latency chain; deterministic).
inline double sum_d(const float* p, int64_t len) {
  double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
  int64_t i = 0;
  for (; i + 4 <= len; i += 4) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
  }
  for (; i < len; ++i) a0 += p[i];
  return (a0 + a1) + (a2 + a3);
}

// sum_i (p[i] - mean)^2 in double.
inline double sum_sq_dev(const float* p, int64_t len, double mean) {
  double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
  int64_t i = 0;
  for (; i + 4 <= len; i += 4) {
    const double d0 = p[i] - mean, d1 = p[i + 1] - mean;
    const double d2 = p[i + 2] - mean, d3 = p[i + 3] - mean;
    a0 += d0 * d0;
    a1 += d1 * d1;
    a2 += d2 * d2;
    a3 += d3 * d3;
  }
  for (; i < len; ++i) {
    const double d = p[i] - mean;
    a0 += d * d;
  }
  return (a0 + a1) + (a2 + a3);
}

// sg += sum_i g[i]; sgx += sum_i g[i] * (x[i] - mean), in double.
inline void sum_g_gx(const float* g, const float* x, int64_t len, double mean,
                     double& sg, double& sgx) {
  double g0 = 0.0, g1 = 0.0, h0 = 0.0, h1 = 0.0;
  int64_t i = 0;
  for (; i + 2 <= len; i += 2) {
    const double a = g[i], b = g[i + 1];
    g0 += a;
    g1 += b;
    h0 += a * (x[i] - mean);
    h1 += b * (x[i + 1] - mean);
  }
  for (; i < len; ++i) {
    const double a = g[i];
    g0 += a;
    h0 += a * (x[i] - mean);
  }
  sg += g0 + g1;
  sgx += h0 + h1;
}

}  // namespace

void batch_norm_stats(const BatchNormParams& p, const float* x, double* mean,
                      double* var) {
  const int64_t sp = p.spatial, plane = p.c * sp;
  const double count = static_cast<double>(p.n) * static_cast<double>(sp);

#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < p.c; ++c) {
    // Two passes (mean, then squared deviations) avoid the cancellation of
    // E[x^2] - E[x]^2.
    double s = 0.0;
    for (int64_t n = 0; n < p.n; ++n) s += sum_d(x + n * plane + c * sp, sp);
    const double m = s / count;
    double q = 0.0;
    for (int64_t n = 0; n < p.n; ++n) q += sum_sq_dev(x + n * plane + c * sp, sp, m);
    mean[c] = m;
    var[c] = q / count;
  }
}

// Elementwise in double (x - mean must not see a float-rounded mean).
void batch_norm_forward(const BatchNormParams& p, const float* x,
                        const double* mean, const double* var,
                        const float* weight, const float* bias, float* y) {
  const int64_t sp = p.spatial;
  const double eps = p.eps;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const double scale = (weight ? weight[c] : 1.0) / std::sqrt(var[c] + eps);
      const double shift = bias ? bias[c] : 0.0;
      const double m = mean[c];
      const int64_t off = (n * p.c + c) * sp;
      const float* xp = x + off;
      float* yp = y + off;
      for (int64_t s = 0; s < sp; ++s)
        yp[s] = static_cast<float>((xp[s] - m) * scale + shift);
    }
}

// With xhat = (x - mean) * inv_std and per-channel sums over m values:
//   gbias = sum g, gweight = sum g * xhat,
//   gx = gamma * inv_std * g                                  (eval)
//   gx = gamma * inv_std * (g - sum g / m - xhat * sum(g * xhat) / m)  (training)
// One thread per channel does the reductions and then writes that channel's
// gx. In training mode the terms of gx nearly cancel (exactly, up to eps, when
// a channel has only 2 values), so gx is formed in double from double
// statistics.
void batch_norm_backward(const BatchNormParams& p, bool training,
                         const float* gy, const float* x, const double* mean,
                         const double* var, const float* weight, float* gx,
                         float* gweight, float* gbias) {
  const int64_t sp = p.spatial, plane = p.c * sp;
  const double count = static_cast<double>(p.n) * static_cast<double>(sp);
  const double eps = p.eps;

#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < p.c; ++c) {
    const double mu = mean[c];
    const double inv_std = 1.0 / std::sqrt(var[c] + eps);
    const double gamma = weight ? weight[c] : 1.0;
    double sg = 0.0, sgx = 0.0;
    if (training || gweight || gbias)
      for (int64_t n = 0; n < p.n; ++n) {
        const int64_t off = n * plane + c * sp;
        sum_g_gx(gy + off, x + off, sp, mu, sg, sgx);
      }
    if (gbias) gbias[c] = static_cast<float>(sg);
    if (gweight) gweight[c] = static_cast<float>(sgx * inv_std);

    const double a = gamma * inv_std;
    if (training) {
      const double mg = sg / count;
      const double k = inv_std * inv_std * sgx / count;
      for (int64_t n = 0; n < p.n; ++n) {
        const int64_t off = n * plane + c * sp;
        const float* gp = gy + off;
        const float* xp = x + off;
        float* op = gx + off;
        for (int64_t s = 0; s < sp; ++s)
          op[s] = static_cast<float>(a * ((gp[s] - mg) - (xp[s] - mu) * k));
      }
    } else {
      for (int64_t n = 0; n < p.n; ++n) {
        const int64_t off = n * plane + c * sp;
        const float* gp = gy + off;
        float* op = gx + off;
        for (int64_t s = 0; s < sp; ++s) op[s] = static_cast<float>(a * gp[s]);
      }
    }
  }
}

}  // namespace striate::cpu
