// Stride-1 direct convolution on a flat, padded-width plane (private to
// kernels/cpu): the driver is conv2d_direct_s1.cpp, the register-blocked
// inner loops are instantiated per ISA level from the templates below.
//
// The flat formulation. Pad every input plane to Hp x Wp (Wp = W_in +
// max(pad_left, pad_right): the grid wraps, so a row's right padding is the
// next row's left padding) and compute the output on the same Wp-wide grid:
// output t = i*Wp + j then reads input t + off[tap], off = p*dil_h*Wp +
// q*dil_w, for every tap -- one contiguous run of outputs whatever the row
// width, so a SIMD strip spans row ends (columns j >= W_out are computed and
// dropped). That keeps the lanes full on 8x8 or 10x10 planes where a row is
// one vector or less, at a cost of max(pad)/W_out extra columns (3% at 32
// wide, 12% at 8). Why direct at all: with 3..64 channels an im2col copy is
// as big as the GEMM's work (ResNet-20, LeNet), and Winograd's transforms
// (linear in channels) outweigh the multiplies they save (quadratic).
//
// Register block (AVX2): 4 output channels x 24 flat outputs = 12 ymm
// accumulators (AVX-512: x 48 in 12 zmm); per (channel, tap) 3 input loads and 4 weight broadcasts
// feed 12 FMAs. The weight gradient uses the same plane: gw[o,c,tap] =
// sum_t gy_flat[o,t] * x_pad[c, t + off[tap]] with zeros in gy_flat's
// dropped columns, blocked as 4 output channels x 3 taps.
#pragma once

#include <cstdint>

#include "striate/params.h"

namespace striate::cpu {

constexpr int64_t kDirectOB = 4;      // output channels per register block
// Flat outputs per strip: one AVX-512 block (3 zmm), two AVX2 blocks (3 ymm
// each), four portable ones. Rounding the flat plane up to 48 rather than
// 24 costs nothing on the planes measured (LeNet's 10x10 on a 14-wide grid:
// 144 either way; 8x8, 16x16 and 32x32 with 3x3 kernels: 96, 288, 1104),
// and the AVX2 level measured unchanged with it (STRIATE_ISA=avx2 on the
// AVX-512 machine: LeNet conv2, VGG conv1_1, ResNet-20's three stages).
constexpr int64_t kDirectStrip = 48;
constexpr int kDirectTapBlock = 3;    // taps per weight-gradient pass

struct DirectS1Impl {
  const char* name;
  // out[ob*ld + s] = sum_{c, tap} w[(c*taps + tap)*OB + ob] * x[c*plane + off[tap] + s]
  // for ob < OB, s < kDirectStrip (x points at the strip's first output).
  void (*fwd_strip)(int64_t c_in, int64_t taps, const int64_t* off, const float* x,
                    int64_t plane, const float* w, float* out, int64_t ld);
  // s[ob*kDirectTapBlock + k] = sum_{i < count} sum_{t < len} g[i*gs + ob*ld + t] *
  // x[i*xs + off[k] + t] for ob < OB, k < ntap (1..3): `count` images in one
  // register pass (small planes would otherwise spend their time in the
  // horizontal sums); len is a multiple of kDirectStrip.
  void (*wgrad_pass)(int64_t count, int64_t len, const float* g, int64_t gs, int64_t ld,
                     const float* x, int64_t xs, const int64_t* off, int ntap, float* s);
  // One plane of a depthwise convolution, any stride / dilation / padding
  // (conv2d_depthwise.h).
  void (*dw_plane)(const Conv2dParams& p, const float* x, const float* w, float bias, float* y);
};

extern const DirectS1Impl direct_s1_baseline_impl;
#ifdef STRIATE_HAVE_X86_ISA
extern const DirectS1Impl direct_s1_avx2_impl;
extern const DirectS1Impl direct_s1_avx512_impl;
#endif

// V supplies reg, L (lanes; 3*L divides kDirectStrip), zero(), load(p),
// bcast(p), fma(a, b, acc), store(p, r) and sum(r) (a fixed reduction tree).
template <class V>
void direct_s1_fwd_strip(int64_t c_in, int64_t taps, const int64_t* off, const float* x,
                         int64_t plane, const float* w, float* out, int64_t ld) {
  constexpr int L = V::L;
  static_assert(kDirectStrip % (3 * L) == 0, "strip is whole register blocks");
  for (int64_t s0 = 0; s0 < kDirectStrip; s0 += 3 * L) {
    typename V::reg acc[kDirectOB][3];
#pragma GCC unroll 4
    for (int ob = 0; ob < kDirectOB; ++ob)
      for (int v = 0; v < 3; ++v) acc[ob][v] = V::zero();
    for (int64_t c = 0; c < c_in; ++c) {
      const float* xc = x + c * plane + s0;
      const float* wc = w + c * taps * kDirectOB;
      for (int64_t t = 0; t < taps; ++t) {
        const float* xt = xc + off[t];
        const typename V::reg x0 = V::load(xt), x1 = V::load(xt + L), x2 = V::load(xt + 2 * L);
        const float* wt = wc + t * kDirectOB;
#pragma GCC unroll 4
        for (int ob = 0; ob < kDirectOB; ++ob) {
          const typename V::reg b = V::bcast(wt + ob);
          acc[ob][0] = V::fma(b, x0, acc[ob][0]);
          acc[ob][1] = V::fma(b, x1, acc[ob][1]);
          acc[ob][2] = V::fma(b, x2, acc[ob][2]);
        }
      }
    }
#pragma GCC unroll 4
    for (int ob = 0; ob < kDirectOB; ++ob)
      for (int v = 0; v < 3; ++v) V::store(out + ob * ld + s0 + v * L, acc[ob][v]);
  }
}

template <class V, int NT>
void direct_s1_wgrad_pass_n(int64_t count, int64_t len, const float* g, int64_t gs, int64_t ld,
                            const float* x, int64_t xs, const int64_t* off, float* s) {
  typename V::reg acc[kDirectOB][NT];
#pragma GCC unroll 4
  for (int ob = 0; ob < kDirectOB; ++ob)
    for (int k = 0; k < NT; ++k) acc[ob][k] = V::zero();
  for (int64_t i = 0; i < count; ++i) {
    const float* xk[NT];
    for (int k = 0; k < NT; ++k) xk[k] = x + i * xs + off[k];
    const float* gi = g + i * gs;
    for (int64_t t = 0; t < len; t += V::L) {
      typename V::reg xv[NT];
      for (int k = 0; k < NT; ++k) xv[k] = V::load(xk[k] + t);
#pragma GCC unroll 4
      for (int ob = 0; ob < kDirectOB; ++ob) {
        const typename V::reg gv = V::load(gi + ob * ld + t);
        for (int k = 0; k < NT; ++k) acc[ob][k] = V::fma(gv, xv[k], acc[ob][k]);
      }
    }
  }
  for (int ob = 0; ob < kDirectOB; ++ob)
    for (int k = 0; k < NT; ++k) s[ob * kDirectTapBlock + k] = V::sum(acc[ob][k]);
}

template <class V>
void direct_s1_wgrad_pass(int64_t count, int64_t len, const float* g, int64_t gs, int64_t ld,
                          const float* x, int64_t xs, const int64_t* off, int ntap, float* s) {
  switch (ntap) {
    case 1: direct_s1_wgrad_pass_n<V, 1>(count, len, g, gs, ld, x, xs, off, s); return;
    case 2: direct_s1_wgrad_pass_n<V, 2>(count, len, g, gs, ld, x, xs, off, s); return;
    default: direct_s1_wgrad_pass_n<V, 3>(count, len, g, gs, ld, x, xs, off, s); return;
  }
}

}  // namespace striate::cpu
