// Batch normalization over x viewed as (n, c, spatial).
//
// Statistics and the backward reductions run one task per group of kGroup
// channels; each channel's sum adds its per-image plane sums (each reduced
// over a fixed number of lanes by the per-ISA kernels of eltwise_isa.h) in
// image order, in double, so the result depends on neither the thread count
// nor the vector width. The elementwise forward runs one thread per (n, c)
// plane.
#include <cmath>
#include <cstdint>

#include "eltwise_isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {

namespace {
// Channels per task. A task walks its channels image by image, so each image's
// slice of the group (kGroup planes) is one contiguous run of memory; walking
// one channel's planes (a plane per image, C planes apart) defeats the
// hardware prefetchers and ran at a third of the bandwidth.
constexpr int64_t kGroup = 8;
}  // namespace

void batch_norm_stats(const BatchNormParams& p, const float* x, double* mean,
                      double* var) {
  const EltwiseImpl& k = eltwise_impl();
  const int64_t sp = p.spatial, plane = p.c * sp;
  const double count = static_cast<double>(p.n) * static_cast<double>(sp);
  const int64_t groups = (p.c + kGroup - 1) / kGroup;

#pragma omp parallel for schedule(static)
  for (int64_t grp = 0; grp < groups; ++grp) {
    const int64_t c0 = grp * kGroup, c1 = c0 + kGroup < p.c ? c0 + kGroup : p.c;
    // Two passes (mean, then squared deviations) avoid the cancellation of
    // E[x^2] - E[x]^2. Per channel, the plane sums are added in image order.
    double s[kGroup] = {}, q[kGroup] = {};
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t c = c0; c < c1; ++c) s[c - c0] += k.sum(sp, x + n * plane + c * sp);
    for (int64_t c = c0; c < c1; ++c) mean[c] = s[c - c0] / count;
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t c = c0; c < c1; ++c)
        q[c - c0] += k.sum_sq_dev(sp, x + n * plane + c * sp, mean[c]);
    for (int64_t c = c0; c < c1; ++c) var[c] = q[c - c0] / count;
  }
}

// Elementwise in float, with the double mean split into hi + lo parts so
// that x - mean does not see a float-rounded mean (affine in eltwise_isa.h).
void batch_norm_forward(const BatchNormParams& p, const float* x,
                        const double* mean, const double* var,
                        const float* weight, const float* bias, float* y) {
  const auto affine = eltwise_impl().affine;
  const int64_t sp = p.spatial;
  const double eps = p.eps;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const float scale =
          static_cast<float>((weight ? weight[c] : 1.0) / std::sqrt(var[c] + eps));
      const float shift = bias ? bias[c] : 0.0f;
      const float m_hi = static_cast<float>(mean[c]);
      const float m_lo = static_cast<float>(mean[c] - m_hi);
      const int64_t off = (n * p.c + c) * sp;
      affine(sp, x + off, m_hi, m_lo, scale, shift, y + off);
    }
}

// With xhat = (x - mean) * inv_std and per-channel sums over m values:
//   gbias = sum g, gweight = sum g * xhat,
//   gx = gamma * inv_std * g                                  (eval)
//   gx = gamma * inv_std * (g - sum g / m - xhat * sum(g * xhat) / m)  (training)
// One task per channel group does the reductions and then writes the group's
// gx. In training mode the terms of gx nearly cancel (exactly, up to eps, when
// a channel has only 2 values), so gx is formed in double from double
// statistics.
void batch_norm_backward(const BatchNormParams& p, bool training,
                         const float* gy, const float* x, const double* mean,
                         const double* var, const float* weight, float* gx,
                         float* gweight, float* gbias) {
  const EltwiseImpl& kern = eltwise_impl();
  const int64_t sp = p.spatial, plane = p.c * sp;
  const double count = static_cast<double>(p.n) * static_cast<double>(sp);
  const double eps = p.eps;
  const int64_t groups = (p.c + kGroup - 1) / kGroup;

#pragma omp parallel for schedule(static)
  for (int64_t grp = 0; grp < groups; ++grp) {
    const int64_t c0 = grp * kGroup, c1 = c0 + kGroup < p.c ? c0 + kGroup : p.c;
    double sg[kGroup] = {}, sgx[kGroup] = {}, a[kGroup], mg[kGroup], k[kGroup];
    if (training || gweight || gbias)
      for (int64_t n = 0; n < p.n; ++n)
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t off = n * plane + c * sp;
          kern.sum_g_gx(sp, gy + off, x + off, mean[c], &sg[c - c0], &sgx[c - c0]);
        }
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i = c - c0;
      const double inv_std = 1.0 / std::sqrt(var[c] + eps);
      if (gbias) gbias[c] = static_cast<float>(sg[i]);
      if (gweight) gweight[c] = static_cast<float>(sgx[i] * inv_std);
      a[i] = (weight ? weight[c] : 1.0) * inv_std;
      mg[i] = sg[i] / count;
      k[i] = inv_std * inv_std * sgx[i] / count;
    }
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t off = n * plane + c * sp, i = c - c0;
        if (training)
          kern.bn_backward_train(sp, gy + off, x + off, a[i], mg[i], mean[c], k[i], gx + off);
        else  // gx = g * a
          kern.affine(sp, gy + off, 0.0f, 0.0f, static_cast<float>(a[i]), 0.0f, gx + off);
      }
  }
}

}  // namespace striate::cpu
