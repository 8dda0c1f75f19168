// im2col + GEMM convolution. Per image and group, the receptive fields are
// unrolled into a (C_g*KH*KW) x (Ho*Wo) column matrix so the convolution is
// one GEMM: y_g[Co_g x HoWo] = W_g[Co_g x C_g*KH*KW] * col. A 1x1, stride-1,
// unpadded convolution is already in that form and skips the copy.
//
// Images are processed one after another with the GEMM threaded inside: the
// workspace is then one column matrix, and backward-weights can accumulate
// over the batch with beta = 1 in a fixed order (bitwise reproducible).
#include <algorithm>

#include "conv_common.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

bool is_pointwise(const Conv2dParams& p) {
  return p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.pad_top == 0 && p.pad_left == 0 && p.h_out == p.h_in &&
         p.w_out == p.w_in;
}

// col[(c*KH + i)*KW + j, oh*Wo + ow] = x[c, oh*sh + i*dh - pt, ow*sw + j*dw - pl]
// (zero outside the input), for the cin_g channels starting at x.
void im2col(const Conv2dParams& p, int64_t cin_g, const float* x, float* col) {
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t rows = cin_g * p.kh * p.kw;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (p.kh * p.kw), i = (r / p.kw) % p.kh, j = r % p.kw;
    const float* xp = x + c * hw_in;
    float* dst = col + r * hw_out;
    const int64_t off_h = i * p.dil_h - p.pad_top, off_w = j * p.dil_w - p.pad_left;
    const Range rh = valid_range(off_h, p.stride_h, p.h_in, p.h_out);
    const Range rw = valid_range(off_w, p.stride_w, p.w_in, p.w_out);
    for (int64_t oh = 0; oh < p.h_out; ++oh) {
      float* d = dst + oh * p.w_out;
      if (oh < rh.lo || oh >= rh.hi) {
        std::fill(d, d + p.w_out, 0.0f);
        continue;
      }
      const float* xr = xp + (oh * p.stride_h + off_h) * p.w_in + off_w;
      std::fill(d, d + rw.lo, 0.0f);
      for (int64_t ow = rw.lo; ow < rw.hi; ++ow) d[ow] = xr[ow * p.stride_w];
      std::fill(d + rw.hi, d + p.w_out, 0.0f);
    }
  }
}

// The adjoint of im2col: gx[c, ...] = sum of the col entries that copied it.
// One thread per channel, which owns every row that writes into its plane.
void col2im(const Conv2dParams& p, int64_t cin_g, const float* col, float* gx) {
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cin_g; ++c) {
    float* gxp = gx + c * hw_in;
    std::fill(gxp, gxp + hw_in, 0.0f);
    for (int64_t i = 0; i < p.kh; ++i)
      for (int64_t j = 0; j < p.kw; ++j) {
        const float* src = col + ((c * p.kh + i) * p.kw + j) * hw_out;
        const int64_t off_h = i * p.dil_h - p.pad_top, off_w = j * p.dil_w - p.pad_left;
        const Range rh = valid_range(off_h, p.stride_h, p.h_in, p.h_out);
        const Range rw = valid_range(off_w, p.stride_w, p.w_in, p.w_out);
        for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          float* gr = gxp + (oh * p.stride_h + off_h) * p.w_in + off_w;
          const float* s = src + oh * p.w_out;
          for (int64_t ow = rw.lo; ow < rw.hi; ++ow) gr[ow * p.stride_w] += s[ow];
        }
      }
  }
}

}  // namespace

int64_t conv2d_im2col_workspace(const Conv2dParams& p) {
  if (is_pointwise(p)) return 0;
  return (p.c_in / p.groups) * p.kh * p.kw * p.h_out * p.w_out;
}

void conv2d_im2col(const Conv2dParams& p, const float* x, const float* w,
                   const float* bias, float* y, float* workspace) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t kdim = cin_g * p.kh * p.kw;
  const bool pointwise = is_pointwise(p);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* xg = x + (n * p.c_in + g * cin_g) * hw_in;
      float* yg = y + (n * p.c_out + g * cout_g) * hw_out;
      const float* col = xg;
      if (!pointwise) {
        im2col(p, cin_g, xg, workspace);
        col = workspace;
      }
      GemmParams gp;
      gp.m = cout_g, gp.n = hw_out, gp.k = kdim;
      gp.lda = kdim, gp.ldb = hw_out, gp.ldc = hw_out;
      gp.beta = 0.0f;
      if (bias) {
        for (int64_t o = 0; o < cout_g; ++o)
          std::fill(yg + o * hw_out, yg + (o + 1) * hw_out, bias[g * cout_g + o]);
        gp.beta = 1.0f;
      }
      sgemm(gp, w + g * cout_g * kdim, col, yg);
      if (p.relu) relu_inplace(yg, cout_g * hw_out);
    }
}

void conv2d_im2col_backward_data(const Conv2dParams& p, const float* gy,
                                 const float* w, float* gx, float* workspace) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t kdim = cin_g * p.kh * p.kw;
  const bool pointwise = is_pointwise(p);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* gyg = gy + (n * p.c_out + g * cout_g) * hw_out;
      float* gxg = gx + (n * p.c_in + g * cin_g) * hw_in;
      // gcol[kdim x HoWo] = W_g^T * gy_g
      GemmParams gp;
      gp.m = kdim, gp.n = hw_out, gp.k = cout_g;
      gp.trans_a = true;
      gp.lda = kdim, gp.ldb = hw_out, gp.ldc = hw_out;
      float* gcol = pointwise ? gxg : workspace;
      sgemm(gp, w + g * cout_g * kdim, gyg, gcol);
      if (!pointwise) col2im(p, cin_g, gcol, gxg);
    }
}

void conv2d_im2col_backward_weights(const Conv2dParams& p, const float* gy,
                                    const float* x, float* gw, float* gbias,
                                    float* workspace) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t kdim = cin_g * p.kh * p.kw;
  const bool pointwise = is_pointwise(p);
  if (p.n == 0) std::fill(gw, gw + p.c_out * kdim, 0.0f);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* xg = x + (n * p.c_in + g * cin_g) * hw_in;
      const float* gyg = gy + (n * p.c_out + g * cout_g) * hw_out;
      const float* col = xg;
      if (!pointwise) {
        im2col(p, cin_g, xg, workspace);
        col = workspace;
      }
      // gW_g[Co_g x kdim] (+)= gy_g * col^T, images accumulated in order.
      GemmParams gp;
      gp.m = cout_g, gp.n = kdim, gp.k = hw_out;
      gp.trans_b = true;
      gp.lda = hw_out, gp.ldb = hw_out, gp.ldc = kdim;
      gp.beta = n == 0 ? 0.0f : 1.0f;
      sgemm(gp, gyg, col, gw + g * cout_g * kdim);
    }
  if (gbias) conv2d_bias_backward(p, gy, gbias);
}

}  // namespace striate::cpu
