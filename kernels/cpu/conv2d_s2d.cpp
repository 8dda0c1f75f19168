// Space-to-depth rewrite of a strided convolution into a stride-1 one, so
// that a layer like AlexNet's conv1 (11x11, stride 4) can run by Winograd.
//
// Per axis, with stride s, kernel k and kp = ceil(k / s) phase taps: output
// o reads padded input s*o + t for taps t < k; writing t = s*q + a (phase a
// < s, q < kp) gives y[o] = sum_a sum_q w[s*q + a] x_a[o + q] with the phase
// image x_a[i] = xpad[s*i + a]. The phases become input channels
// (c*s_h + a_h)*s_w + a_w of a kp x kp stride-1 unpadded convolution whose
// weights are w[s*q + a], zero where s*q + a >= k. AlexNet conv1: 48
// channels of 57x57, a 3x3 kernel (432 taps against 363, but F(4x4,3x3)
// then does 4x fewer multiplies).
//
// Only input positions the strided convolution reads are copied; the rest of
// the phase images is zero, so no value it never touches (the rows the
// output size rounds away) can reach an output.
#include <algorithm>
#include <cstdint>

#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Input coordinate of phase-image position i, phase a, or -1 where the
// strided convolution never reads it (padding, or past its last window).
int64_t source(int64_t i, int64_t a, int64_t s, int64_t pad, int64_t n_in, int64_t last) {
  const int64_t r = s * i + a - pad;
  return r < 0 || r >= n_in || r > last ? -1 : r;
}

}  // namespace

Conv2dParams conv2d_s2d_params(const Conv2dParams& p) {
  Conv2dParams q = p;
  const int64_t kph = ceil_div(p.kh, p.stride_h), kpw = ceil_div(p.kw, p.stride_w);
  // The op layer asks for these params of every strided layer, strides of
  // 2^40 included (where the phases are 1x1 and the rewrite never runs):
  // the phase-channel count saturates instead of overflowing.
  int64_t phases = 0;
  if (__builtin_mul_overflow(p.stride_h, p.stride_w, &phases) ||
      __builtin_mul_overflow(p.c_in, phases, &q.c_in))
    q.c_in = INT64_MAX;
  q.kh = kph, q.kw = kpw;
  q.h_in = p.h_out + kph - 1, q.w_in = p.w_out + kpw - 1;
  q.stride_h = q.stride_w = 1;
  q.pad_top = q.pad_left = 0;
  return q;
}

namespace {

// The copy x -> xs (kAdjoint false) or, with the same position map, its
// adjoint gxs -> gx (kAdjoint true). The copy is injective (each input
// position sits in at most one phase image, at one place), so the adjoint
// is a gather back into a zeroed gx: every element is written by one
// thread, and positions the convolution never read keep their zero.
template <bool kAdjoint>
void s2d_map(const Conv2dParams& p, const float* src, float* dst) {
  const Conv2dParams q = conv2d_s2d_params(p);
  const int64_t sh = p.stride_h, sw = p.stride_w;
  const int64_t last_h = sh * (p.h_out - 1) + p.kh - 1 - p.pad_top;
  const int64_t last_w = sw * (p.w_out - 1) + p.kw - 1 - p.pad_left;
  if (kAdjoint) {
    const int64_t hw = p.h_in * p.w_in;
#pragma omp parallel for schedule(static)
    for (int64_t plane = 0; plane < p.n * p.c_in; ++plane)
      for (int64_t i = 0; i < hw; ++i) dst[plane * hw + i] = 0.0f;
  }
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < q.c_in; ++c) {
      const int64_t ci = c / (sh * sw), ah = c / sw % sh, aw = c % sw;
      const int64_t x_off = (n * p.c_in + ci) * p.h_in * p.w_in;
      const int64_t xs_off = (n * q.c_in + c) * q.h_in * q.w_in;
      // Phase columns [j_lo, j_hi) read the input (col = sw * j + aw -
      // pad_left inside it and inside the last window); the rest is zero.
      // Whole ranges instead of a test per element let the copy vectorize
      // (a stride-2 load is a permute): ResNet-18's 3x3/2 layer, 16 x 64 x
      // 56 x 56, spent 16% of its Winograd call here with the test.
      const int64_t lim = std::min(p.w_in - 1, last_w) + p.pad_left - aw;
      const int64_t j_lo = std::min(q.w_in, std::max<int64_t>(0, ceil_div(p.pad_left - aw, sw)));
      const int64_t j_hi = lim < 0 ? j_lo : std::clamp(lim / sw + 1, j_lo, q.w_in);
      const int64_t col0 = aw - p.pad_left;  // column of phase column 0
      for (int64_t i = 0; i < q.h_in; ++i) {
        const int64_t r = source(i, ah, sh, p.pad_top, p.h_in, last_h);
        const int64_t xs_row = xs_off + i * q.w_in;
        if (kAdjoint) {
          if (r < 0) continue;
          const float* __restrict g = src + xs_row;
          float* __restrict gx = dst + x_off + r * p.w_in;
          for (int64_t j = j_lo; j < j_hi; ++j) gx[sw * j + col0] = g[j];
        } else {
          float* __restrict xs = dst + xs_row;
          const int64_t hi = r < 0 ? j_lo : j_hi;
          const float* __restrict x = src + x_off + (r < 0 ? 0 : r) * p.w_in;
          std::fill(xs, xs + j_lo, 0.0f);
          for (int64_t j = j_lo; j < hi; ++j) xs[j] = x[sw * j + col0];
          std::fill(xs + hi, xs + q.w_in, 0.0f);
        }
      }
    }
}

}  // namespace

void conv2d_s2d_input(const Conv2dParams& p, const float* x, float* xs) {
  s2d_map<false>(p, x, xs);
}

void conv2d_s2d_input_backward(const Conv2dParams& p, const float* gxs, float* gx) {
  s2d_map<true>(p, gxs, gx);
}

void conv2d_s2d_weight(const Conv2dParams& p, const float* w, float* ws) {
  const Conv2dParams q = conv2d_s2d_params(p);
  const int64_t sh = p.stride_h, sw = p.stride_w;
  for (int64_t o = 0; o < p.c_out; ++o)
    for (int64_t c = 0; c < q.c_in; ++c) {
      const int64_t ci = c / (sh * sw), ah = c / sw % sh, aw = c % sw;
      for (int64_t u = 0; u < q.kh; ++u)
        for (int64_t v = 0; v < q.kw; ++v) {
          const int64_t th = sh * u + ah, tw = sw * v + aw;
          ws[((o * q.c_in + c) * q.kh + u) * q.kw + v] =
              th < p.kh && tw < p.kw ? w[((o * p.c_in + ci) * p.kh + th) * p.kw + tw] : 0.0f;
        }
    }
}

void conv2d_s2d_weight_backward(const Conv2dParams& p, const float* gws, float* gw) {
  const Conv2dParams q = conv2d_s2d_params(p);
  const int64_t sh = p.stride_h, sw = p.stride_w;
  for (int64_t o = 0; o < p.c_out; ++o)
    for (int64_t ci = 0; ci < p.c_in; ++ci)
      for (int64_t th = 0; th < p.kh; ++th)
        for (int64_t tw = 0; tw < p.kw; ++tw) {
          const int64_t c = (ci * sh + th % sh) * sw + tw % sw;
          gw[((o * p.c_in + ci) * p.kh + th) * p.kw + tw] =
              gws[((o * q.c_in + c) * q.kh + th / sh) * q.kw + tw / sw];
        }
}

}  // namespace striate::cpu
