// Direct convolution. Loop order: for each (image, output channel) plane,
// accumulate one kernel tap at a time over a whole run of output rows, so the
// innermost loop is a contiguous axpy over output columns (stride 1) that
// the compiler vectorizes. This is the algorithm of choice for depthwise and
// grouped layers and for layers with very few input channels, where an
// im2col buffer would be mostly copying.
#include <algorithm>
#include <vector>

#include "conv_common.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {

void conv2d_direct(const Conv2dParams& p, const float* x, const float* w,
                   const float* bias, float* y) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t taps = p.kh * p.kw;
  if (conv2d_depthwise_applies(p)) return conv2d_depthwise(p, x, w, bias, y);

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t oc = 0; oc < p.c_out; ++oc) {
      float* yp = y + (n * p.c_out + oc) * hw_out;
      std::fill(yp, yp + hw_out, bias ? bias[oc] : 0.0f);
      const int64_t g = oc / cout_g;
      for (int64_t ic = 0; ic < cin_g; ++ic) {
        const float* xp = x + (n * p.c_in + g * cin_g + ic) * hw_in;
        const float* wp = w + (oc * cin_g + ic) * taps;
        for (int64_t i = 0; i < p.kh; ++i) {
          const int64_t off_h = i * p.dil_h - p.pad_top;
          const Range rh = valid_range(off_h, p.stride_h, p.h_in, p.h_out);
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t off_w = j * p.dil_w - p.pad_left;
            const Range rw = valid_range(off_w, p.stride_w, p.w_in, p.w_out);
            const float wv = wp[i * p.kw + j];
            for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              const float* xr = xp + (oh * p.stride_h + off_h) * p.w_in + off_w;
              float* yr = yp + oh * p.w_out;
              if (p.stride_w == 1) {
                for (int64_t ow = rw.lo; ow < rw.hi; ++ow) yr[ow] += wv * xr[ow];
              } else {
                for (int64_t ow = rw.lo; ow < rw.hi; ++ow)
                  yr[ow] += wv * xr[ow * p.stride_w];
              }
            }
          }
        }
      }
      if (p.relu) relu_inplace(yp, hw_out);
    }
}

// The transpose of the forward: each (image, input channel) plane of gx is
// owned by one thread, which scatters every output gradient of its group
// through the kernel taps (no atomics, fixed order).
void conv2d_direct_backward_data(const Conv2dParams& p, const float* gy,
                                 const float* w, float* gx) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t taps = p.kh * p.kw;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c_in; ++c) {
      float* gxp = gx + (n * p.c_in + c) * hw_in;
      std::fill(gxp, gxp + hw_in, 0.0f);
      const int64_t g = c / cin_g, ic = c % cin_g;
      for (int64_t oc = g * cout_g; oc < (g + 1) * cout_g; ++oc) {
        const float* gyp = gy + (n * p.c_out + oc) * hw_out;
        const float* wp = w + (oc * cin_g + ic) * taps;
        for (int64_t i = 0; i < p.kh; ++i) {
          const int64_t off_h = i * p.dil_h - p.pad_top;
          const Range rh = valid_range(off_h, p.stride_h, p.h_in, p.h_out);
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t off_w = j * p.dil_w - p.pad_left;
            const Range rw = valid_range(off_w, p.stride_w, p.w_in, p.w_out);
            const float wv = wp[i * p.kw + j];
            for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              float* gxr = gxp + (oh * p.stride_h + off_h) * p.w_in + off_w;
              const float* gyr = gyp + oh * p.w_out;
              if (p.stride_w == 1) {
                for (int64_t ow = rw.lo; ow < rw.hi; ++ow) gxr[ow] += wv * gyr[ow];
              } else {
                for (int64_t ow = rw.lo; ow < rw.hi; ++ow)
                  gxr[ow * p.stride_w] += wv * gyr[ow];
              }
            }
          }
        }
      }
    }
}

// gw[oc, ic, i, j] = sum_{n, oh, ow} gy[n, oc, oh, ow] * x[n, c(ic), ih, iw].
// One thread per (oc, ic) owns all taps of that filter slice. Each output
// row's dot product is summed in float, rows are accumulated in double: the
// reduction runs over N*Ho*Wo terms, which float alone would blur.
void conv2d_direct_backward_weights(const Conv2dParams& p, const float* gy,
                                    const float* x, float* gw, float* gbias) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t taps = p.kh * p.kw;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t oc = 0; oc < p.c_out; ++oc)
    for (int64_t ic = 0; ic < cin_g; ++ic) {
      const int64_t g = oc / cout_g;
      float* gwp = gw + (oc * cin_g + ic) * taps;
      for (int64_t i = 0; i < p.kh; ++i) {
        const int64_t off_h = i * p.dil_h - p.pad_top;
        const Range rh = valid_range(off_h, p.stride_h, p.h_in, p.h_out);
        for (int64_t j = 0; j < p.kw; ++j) {
          const int64_t off_w = j * p.dil_w - p.pad_left;
          const Range rw = valid_range(off_w, p.stride_w, p.w_in, p.w_out);
          double acc = 0.0;
          for (int64_t n = 0; n < p.n; ++n) {
            const float* xp = x + (n * p.c_in + g * cin_g + ic) * hw_in;
            const float* gyp = gy + (n * p.c_out + oc) * hw_out;
            for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              const float* xr = xp + (oh * p.stride_h + off_h) * p.w_in + off_w;
              const float* gyr = gyp + oh * p.w_out;
              float row = 0.0f;
              for (int64_t ow = rw.lo; ow < rw.hi; ++ow)
                row += gyr[ow] * xr[ow * p.stride_w];
              acc += row;
            }
          }
          gwp[i * p.kw + j] = static_cast<float>(acc);
        }
      }
    }
  if (gbias) conv2d_bias_backward(p, gy, gbias);
}

void conv2d_bias_backward(const Conv2dParams& p, const float* gy, float* gbias) {
  const int64_t hw_out = p.h_out * p.w_out;
#pragma omp parallel for schedule(static)
  for (int64_t oc = 0; oc < p.c_out; ++oc) {
    double acc = 0.0;
    for (int64_t n = 0; n < p.n; ++n) {
      const float* gyp = gy + (n * p.c_out + oc) * hw_out;
      for (int64_t k = 0; k < hw_out; ++k) acc += gyp[k];
    }
    gbias[oc] = static_cast<float>(acc);
  }
}

}  // namespace striate::cpu
