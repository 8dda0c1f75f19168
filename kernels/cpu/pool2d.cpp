// Pooling kernels: max, average and adaptive average, forward and backward.
//
// Every kernel parallelizes over (image, channel) planes: one thread owns a
// whole output (forward) or input-gradient (backward) plane and fills it in a
// fixed order, so results are bitwise identical for any thread count and the
// backward scatters need no atomics.
//
// Window geometry along one axis (output o, tap t):
//   input index = o * stride - pad + t * dilation
// Indices outside [0, n_in) are padding. The valid taps of one window and the
// valid outputs of one tap are both contiguous ranges (valid_range), computed
// once per row / column instead of being tested per element.
#include <algorithm>
#include <cmath>
#include <limits>

#include "conv_common.h"
#include "eltwise_isa.h"
#include "maxpool_impl.h"
#include "striate/isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {

#ifdef STRIATE_HAVE_X86_ISA
void max_pool2d_plane_avx2(const Pool2dParams& p, const float* x, float* y, float* buf);
void max_pool2d_plane_avx512(const Pool2dParams& p, const float* x, float* y, float* buf);
#endif

namespace {

using MaxPoolPlaneFn = void (*)(const Pool2dParams&, const float*, float*, float*);

// The row-buffer plane kernel (maxpool_impl.h) of the selected ISA level.
MaxPoolPlaneFn max_pool2d_plane_fn() {
  switch (isa_selected()) {
#ifdef STRIATE_HAVE_X86_ISA
    case Isa::avx512: return max_pool2d_plane_avx512;
    case Isa::avx2: return max_pool2d_plane_avx2;
#endif
    default: return max_pool2d_plane_k;
  }
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// PyTorch's max rule: v replaces the running max iff v > max or v is NaN.
inline bool max_takes(float v, float best) { return v > best || std::isnan(v); }

// Taps t in [lo, hi) of the window starting at input index `start` that land
// inside [0, n_in).
inline Range window_taps(int64_t start, int64_t dil, int64_t n_in, int64_t k) {
  return valid_range(start, dil, n_in, k);
}

// Average-pool window along one axis (PyTorch's rule): the divisor factor and
// the input range [lo, hi) actually summed.
struct AvgWindow {
  int64_t lo, hi, pool;
};
inline AvgWindow avg_window(int64_t o, int64_t stride, int64_t pad, int64_t k,
                            int64_t n_in) {
  int64_t s = o * stride - pad;
  int64_t e = std::min(s + k, n_in + pad);
  const int64_t pool = e - s;  // includes the padding, not the ceil_mode overhang
  s = std::max<int64_t>(s, 0);
  e = std::min(e, n_in);
  return {s, e, pool};
}

// PyTorch's divisor: the window clipped to the padded extent, or to the
// input alone when padding is not counted. In double: a 2^40 x 2^40 window
// (with 2^39 padding) is valid and its area overflows int64; below 2^53 the
// value is exact, so ordinary windows divide exactly as before.
inline double avg_divisor(const AvgWindow& wh, const AvgWindow& ww,
                          bool count_include_pad) {
  return count_include_pad ? static_cast<double>(wh.pool) * static_cast<double>(ww.pool)
                           : static_cast<double>((wh.hi - wh.lo) * (ww.hi - ww.lo));
}

// Adaptive bin i of `out` over `n` inputs: [floor(i*n/out), ceil((i+1)*n/out)).
inline Range adaptive_bin(int64_t i, int64_t n, int64_t out) {
  return {(i * n) / out, ((i + 1) * n + out - 1) / out};
}

// Sum of the rectangle [r0, r1) x [q0, q1) of a plane with row length w:
// each row is summed in float over a contiguous run, rows are accumulated in
// double (adaptive bins can cover a whole feature map).
inline double rect_sum(const float* xp, int64_t w, int64_t r0, int64_t r1,
                       int64_t q0, int64_t q1) {
  if (q0 == 0 && q1 == w) {
    // Whole rows (a global pool: ResNet's 7x7 head) are one contiguous run,
    // summed in double by four interleaved accumulators combined in a fixed
    // order: the float row sums were one serial chain of dependent adds
    // (resnet18 head 512@7 b16: 0.065 ms against PyTorch's 0.022).
    const float* s = xp + r0 * w;
    const int64_t len = (r1 - r0) * w;
    double a[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t t = 0;
    for (; t + 4 <= len; t += 4)
      for (int u = 0; u < 4; ++u) a[u] += static_cast<double>(s[t + u]);
    for (; t < len; ++t) a[t % 4] += static_cast<double>(s[t]);
    return (a[0] + a[1]) + (a[2] + a[3]);
  }
  double acc = 0.0;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = xp + r * w;
    float row = 0.0f;
    for (int64_t q = q0; q < q1; ++q) row += xr[q];
    acc += row;
  }
  return acc;
}

// Adds g to the rectangle [r0, r1) x [q0, q1) of a plane with row length w.
inline void rect_add(float* gxp, int64_t w, int64_t r0, int64_t r1, int64_t q0,
                     int64_t q1, float g) {
  for (int64_t r = r0; r < r1; ++r) {
    float* gr = gxp + r * w;
    for (int64_t q = q0; q < q1; ++q) gr[q] += g;
  }
}

}  // namespace

// ---- max pooling -------------------------------------------------------------

// Rows whose padded window reach fits the row buffer (every ordinary pool)
// take the separable per-ISA plane kernel (maxpool_impl.h). Wider ones take
// tap-outer loops: for each output row, every valid tap updates a contiguous
// run of outputs (stride-1 access to y, stride_w access to x). The running
// max starts at -inf; since the result value of the max rule does not depend
// on the scan order (ties are equal, NaN wins), both give exactly the value
// of PyTorch's row-major scan, and -inf for windows entirely in the padding.
void max_pool2d(const Pool2dParams& p, const float* x, float* y) {
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  if (maxpool_row_len(p) >= 0) {
    const MaxPoolPlaneFn plane_fn = max_pool2d_plane_fn();
#pragma omp parallel
    {
      float buf[kMaxPoolRowBuf + kMaxPoolSlack];
#pragma omp for collapse(2) schedule(static)
      for (int64_t n = 0; n < p.n; ++n)
        for (int64_t c = 0; c < p.c; ++c) {
          const int64_t plane = n * p.c + c;
          plane_fn(p, x + plane * hw_in, y + plane * hw_out, buf);
        }
    }
    return;
  }
  const Range tw = taps_in_reach(p.pad_w, p.dil_w, p.stride_w, p.w_in, p.w_out, p.kw);

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const int64_t plane = n * p.c + c;
      const float* xp = x + plane * hw_in;
      float* yp = y + plane * hw_out;
      std::fill(yp, yp + hw_out, kNegInf);
      for (int64_t oh = 0; oh < p.h_out; ++oh) {
        const int64_t hs = oh * p.stride_h - p.pad_h;
        const Range ri = window_taps(hs, p.dil_h, p.h_in, p.kh);
        float* yr = yp + oh * p.w_out;
        for (int64_t i = ri.lo; i < ri.hi; ++i) {
          const float* xrow = xp + (hs + i * p.dil_h) * p.w_in;
          for (int64_t j = tw.lo; j < tw.hi; ++j) {
            const int64_t off_w = j * p.dil_w - p.pad_w;
            const Range rw = valid_range(off_w, p.stride_w, p.w_in, p.w_out);
            const float* xr = xrow + off_w;
            if (p.stride_w == 1) {
              for (int64_t ow = rw.lo; ow < rw.hi; ++ow) {
                const float v = xr[ow], b = yr[ow];
                yr[ow] = max_takes(v, b) ? v : b;
              }
            } else {
              for (int64_t ow = rw.lo; ow < rw.hi; ++ow) {
                const float v = xr[ow * p.stride_w], b = yr[ow];
                yr[ow] = max_takes(v, b) ? v : b;
              }
            }
          }
        }
      }
    }
}

// Recomputes each window's argmax from x with PyTorch's exact scan (row-major,
// the first valid element as the initial candidate, then `v > max || isnan(v)`),
// so ties go to the first occurrence and an all -inf window to its first valid
// element; windows entirely in the padding route nothing. One thread owns a
// whole gx plane: the per-ISA plane kernel (eltwise_isa.h) scans a row of
// windows at once with vectorized selects and scatters in output order.
// Planes of 2^31 elements or more (int32 indices would overflow) take the
// scalar scan below.
void max_pool2d_backward(const Pool2dParams& p, const float* gy, const float* x,
                         float* gx) {
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const auto plane_fn = eltwise_impl().max_pool2d_backward_plane;
  const bool small_plane = hw_in < (int64_t{1} << 31);

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const int64_t plane = n * p.c + c;
      const float* xp = x + plane * hw_in;
      const float* gyp = gy + plane * hw_out;
      float* gxp = gx + plane * hw_in;
      if (small_plane) {
        plane_fn(p, gyp, xp, gxp);
        continue;
      }
      std::fill(gxp, gxp + hw_in, 0.0f);
      for (int64_t oh = 0; oh < p.h_out; ++oh) {
        const int64_t hs = oh * p.stride_h - p.pad_h;
        const Range ri = window_taps(hs, p.dil_h, p.h_in, p.kh);
        if (ri.lo >= ri.hi) continue;
        for (int64_t ow = 0; ow < p.w_out; ++ow) {
          const int64_t ws = ow * p.stride_w - p.pad_w;
          const Range rj = window_taps(ws, p.dil_w, p.w_in, p.kw);
          if (rj.lo >= rj.hi) continue;
          int64_t arg = (hs + ri.lo * p.dil_h) * p.w_in + ws + rj.lo * p.dil_w;
          float best = xp[arg];
          for (int64_t i = ri.lo; i < ri.hi; ++i) {
            const int64_t row = (hs + i * p.dil_h) * p.w_in + ws;
            for (int64_t j = rj.lo; j < rj.hi; ++j) {
              const int64_t idx = row + j * p.dil_w;
              const float v = xp[idx];
              if (max_takes(v, best)) best = v, arg = idx;
            }
          }
          gxp[arg] += gyp[oh * p.w_out + ow];
        }
      }
    }
}

// ---- average pooling ---------------------------------------------------------

void avg_pool2d(const Pool2dParams& p, const float* x, float* y) {
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const int64_t plane = n * p.c + c;
      const float* xp = x + plane * hw_in;
      float* yp = y + plane * hw_out;
      for (int64_t oh = 0; oh < p.h_out; ++oh) {
        const AvgWindow wh = avg_window(oh, p.stride_h, p.pad_h, p.kh, p.h_in);
        for (int64_t ow = 0; ow < p.w_out; ++ow) {
          const AvgWindow ww = avg_window(ow, p.stride_w, p.pad_w, p.kw, p.w_in);
          const double div = avg_divisor(wh, ww, p.count_include_pad);
          const double s = rect_sum(xp, p.w_in, wh.lo, wh.hi, ww.lo, ww.hi);
          yp[oh * p.w_out + ow] = static_cast<float>(s / div);
        }
      }
    }
}

void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx) {
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const int64_t plane = n * p.c + c;
      const float* gyp = gy + plane * hw_out;
      float* gxp = gx + plane * hw_in;
      std::fill(gxp, gxp + hw_in, 0.0f);
      for (int64_t oh = 0; oh < p.h_out; ++oh) {
        const AvgWindow wh = avg_window(oh, p.stride_h, p.pad_h, p.kh, p.h_in);
        for (int64_t ow = 0; ow < p.w_out; ++ow) {
          const AvgWindow ww = avg_window(ow, p.stride_w, p.pad_w, p.kw, p.w_in);
          const double div = avg_divisor(wh, ww, p.count_include_pad);
          const float g = gyp[oh * p.w_out + ow] / static_cast<float>(div);
          rect_add(gxp, p.w_in, wh.lo, wh.hi, ww.lo, ww.hi, g);
        }
      }
    }
}

// ---- adaptive average pooling ------------------------------------------------

void adaptive_avg_pool2d(const AdaptivePool2dParams& p, const float* x, float* y) {
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const int64_t plane = n * p.c + c;
      const float* xp = x + plane * hw_in;
      float* yp = y + plane * hw_out;
      for (int64_t i = 0; i < p.h_out; ++i) {
        const Range bh = adaptive_bin(i, p.h_in, p.h_out);
        for (int64_t j = 0; j < p.w_out; ++j) {
          const Range bw = adaptive_bin(j, p.w_in, p.w_out);
          const double s = rect_sum(xp, p.w_in, bh.lo, bh.hi, bw.lo, bw.hi);
          const double count = static_cast<double>((bh.hi - bh.lo) * (bw.hi - bw.lo));
          yp[i * p.w_out + j] = static_cast<float>(s / count);
        }
      }
    }
}

void adaptive_avg_pool2d_backward(const AdaptivePool2dParams& p, const float* gy,
                                  float* gx) {
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const int64_t plane = n * p.c + c;
      const float* gyp = gy + plane * hw_out;
      float* gxp = gx + plane * hw_in;
      std::fill(gxp, gxp + hw_in, 0.0f);
      for (int64_t i = 0; i < p.h_out; ++i) {
        const Range bh = adaptive_bin(i, p.h_in, p.h_out);
        for (int64_t j = 0; j < p.w_out; ++j) {
          const Range bw = adaptive_bin(j, p.w_in, p.w_out);
          const float count = static_cast<float>((bh.hi - bh.lo) * (bw.hi - bw.lo));
          rect_add(gxp, p.w_in, bh.lo, bh.hi, bw.lo, bw.hi, gyp[i * p.w_out + j] / count);
        }
      }
    }
}

}  // namespace striate::cpu
