// Winograd F(m x m, r x r) convolution -- F(2,3), F(4,3), F(2,5) (on
// F(4,3)'s six points) and F(4,2) (r = the kernel size; 2x2 is the kernel
// of a 3x3 stride-2 layer's space-to-depth rewrite): blocking plan, filter
// transform and dispatch to the driver of the selected ISA level
// (conv2d_winograd_driver.h). docs/winograd.md has the design and the
// measured accuracy.
//
// Backward-data is the same forward kernel run on the transposed problem:
// gx = conv(gy, w'), w'[ci][co][i][j] = w[co][ci][r-1-i][r-1-j], low
// padding r - 1 - pad (negative padding crops, which the driver's bounds checks handle),
// so every padding is covered without a fallback.
#include <cassert>

#include "conv2d_winograd.h"
#include "conv_common.h"
#include "sgemm_isa.h"
#include "striate/isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

// Floats of transformed input + GEMM output per block. The forward pass
// (and backward-data, the same kernel) aims at kBlockBudgetFwd (3 MB: the
// block's V and M mostly stay in the two L2s + L3 slice between the three
// stages; ResNet-18 layer1 64->64 @56 b16 ran 10-14% faster than with the
// 8 MB block, interleaved in one process), but never below kMinBlockTiles
// tiles where the 8 MB budget allows them: every block re-reads all of U
// (alpha^2 * c_in * c_out floats), so wide layers need wide blocks (2x256
// @56 ran 25-30% slower at 3 MB without the floor, separate processes).
// When U itself is over kBigFilterBytes (F(4x4) from 256 x 512 channels:
// 19 MB, beyond what the shared L3 keeps from one block to the next) the
// floor holds even past the 8 MB budget: at 512 x 512 the budget allowed 32
// tiles, one GEMM strip per pass over U, and the GEMM ran at ~50% of peak
// (AVX-512 machine, 2 threads, same process: VGG-16 conv4_2 b2 F(4x4)
// 11.2 -> 7.7 ms, ResNet-18 layer4 b16 6.0 -> 5.1 ms, its backward 20.2 ->
// 18.1-19.1, conv4_1 256 -> 512 4.4 -> 4.0; at 256 x 384 and below, 128
// tiles measured 5-10% slower than the budget's 64-96). Neutral on the AVX2
// level (same machine, STRIATE_ISA=avx2: 12.3-12.8 vs 12.6-12.8 ms at conv4_2),
// whose GEMM is half as fast, so U's traffic matters less.
// The weight gradient keeps kBlockBudget: its GEMMs reduce over the
// block's tiles, and smaller blocks mean more, shorter GEMM calls -- and as
// many read-modify-write passes over dU, as large as U: past
// kBigFilterBytes it takes the 128-tile floor too (VGG-16 conv4_2 b2 F(4x4)
// backward 36 -> 21 ms, ResNet-18 layer4 b16 18-22 -> 17-18 ms; F(2x2)
// unchanged).
constexpr int64_t kBlockBudget = int64_t{2} << 20;
constexpr int64_t kBlockBudgetFwd = int64_t{3} << 18;
constexpr int64_t kMinBlockTiles = 128;
constexpr int64_t kBigFilterBytes = int64_t{16} << 20;

const WinogradImpl& impl() {
  switch (isa_selected()) {
#ifdef STRIATE_HAVE_X86_ISA
    case Isa::avx512: return winograd_avx512_impl;
    case Isa::avx2: return winograd_avx2_impl;
#endif
    default: return winograd_baseline_impl;
  }
}

Conv2dParams transposed(const Conv2dParams& p) {
  Conv2dParams t = p;
  t.c_in = p.c_out, t.h_in = p.h_out, t.w_in = p.w_out;
  t.c_out = p.c_in, t.h_out = p.h_in, t.w_out = p.w_in;
  t.pad_top = p.kh - 1 - p.pad_top, t.pad_left = p.kw - 1 - p.pad_left;
  t.relu = false;
  return t;
}

WinogradPlan make_plan(const Conv2dParams& p, int m, bool wgrad = false) {
  assert(p.kh == p.kw && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 &&
         p.groups == 1 &&
         ((p.kh == 3 && (m == 2 || m == 4)) || (p.kh == 5 && m == 2) || (p.kh == 2 && m == 4)));
  WinogradPlan wp;
  wp.p = p;
  wp.m = m;
  wp.r = static_cast<int>(p.kh);
  wp.tiles_h = (p.h_out + m - 1) / m;
  wp.tiles_w = (p.w_out + m - 1) / m;
  wp.tiles = p.n * wp.tiles_h * wp.tiles_w;
  const int64_t a = m + wp.r - 1, per_tile = a * a * (p.c_in + p.c_out);
  const int64_t all = (wp.tiles + kWinoStrip - 1) / kWinoStrip * kWinoStrip;
  int64_t block = kBlockBudget / per_tile / kWinoStrip * kWinoStrip;
  const bool big_u = a * a * p.c_in * p.c_out * int64_t{4} > kBigFilterBytes;
  if (!wgrad) {
    const int64_t fwd = kBlockBudgetFwd / per_tile / kWinoStrip * kWinoStrip;
    const int64_t least = block < kMinBlockTiles && !big_u ? block : kMinBlockTiles;
    block = fwd > least ? fwd : least;
  } else if (big_u && block < kMinBlockTiles) {
    block = kMinBlockTiles;
  }
  block = block < kWinoStrip ? kWinoStrip : block;
  // all == 0 for an empty batch: keep one strip so no loop divides by zero
  // (the op layer skips empty batches anyway).
  wp.block = block < all ? block : (all > 0 ? all : kWinoStrip);
  // +16: rows a multiple of 64 bytes but never of 4 KB (cache-set aliasing
  // of the GEMM's strided B loads).
  wp.ld = wp.block + 16;
  wp.panels = (p.c_out + kWinoPanelRows - 1) / kWinoPanelRows;
  return wp;
}

int64_t alpha(const WinogradPlan& wp) { return wp.m + wp.r - 1; }

int64_t workspace_of(const WinogradPlan& wp) {
  const int64_t a = alpha(wp);
  return a * a * (wp.p.c_in + wp.p.c_out) * wp.ld + 16;  // +16: alignment slack
}

// The transpose of filter_1d: g_j = sum_i G[i][j] u_i (alpha values at
// stride si to r taps at stride so), the chain rule through u = G g.
void filter_1d_t(int m, int r, const double* u, int64_t si, double* g, int64_t so) {
  if (r == 2) {
    const double u0 = u[0], u1 = u[si], u2 = u[2 * si], u3 = u[3 * si], u4 = u[4 * si];
    g[0] = u0 / 2 - u1 / 2 - u2 / 6 + u3 / 6;
    g[so] = -u1 / 2 + u2 / 6 + u3 / 3 + u4;
    return;
  }
  if (r == 5) {
    const double u0 = u[0], u1 = u[si], u2 = u[2 * si], u3 = u[3 * si], u4 = u[4 * si],
                 u5 = u[5 * si];
    const double s1 = u1 + u2, d1 = u2 - u1, s2 = u3 + u4, d2 = u3 - u4;
    g[0] = u0 / 4 - s1 / 6 + s2 / 24;
    g[so] = d1 / 6 + d2 / 12;
    g[2 * so] = -s1 / 6 + s2 / 6;
    g[3 * so] = d1 / 6 + d2 / 3;
    g[4 * so] = -s1 / 6 + 2 * s2 / 3 + u5;
    return;
  }
  if (m == 2) {
    const double u0 = u[0], u1 = u[si], u2 = u[2 * si], u3 = u[3 * si];
    g[0] = u0 + (u1 + u2) / 2;
    g[so] = (u1 - u2) / 2;
    g[2 * so] = (u1 + u2) / 2 + u3;
  } else {
    const double u0 = u[0], u1 = u[si], u2 = u[2 * si], u3 = u[3 * si], u4 = u[4 * si],
                 u5 = u[5 * si];
    g[0] = u0 / 4 - (u1 + u2) / 6 + (u3 + u4) / 24;
    g[so] = (u2 - u1) / 6 + (u3 - u4) / 12;
    g[2 * so] = (u3 + u4 - u1 - u2) / 6 + u5;
  }
}

// G^T (kr x alpha, row-major): filter_1d_t's columns, for the drivers'
// filter_grad (dg = G^T dU G).
void filter_transform_t(int m, int kr, int a, double* gt) {
  for (int p = 0; p < a; ++p) {
    double e[6] = {}, col[5];
    e[p] = 1.0;
    filter_1d_t(m, kr, e, 1, col, 1);
    for (int r = 0; r < kr; ++r) gt[r * a + p] = col[r];
  }
}

}  // namespace

int64_t conv2d_winograd_filter_floats(const Conv2dParams& p, int m, bool backward_data) {
  const WinogradPlan wp = make_plan(backward_data ? transposed(p) : p, m);
  return alpha(wp) * alpha(wp) * wp.panels * kWinoPanelRows * wp.p.c_in;
}

void conv2d_winograd_filter(const Conv2dParams& p, int m, bool backward_data, const float* w,
                            float* u) {
  impl().filter(make_plan(backward_data ? transposed(p) : p, m), backward_data, w, u);
}

int64_t conv2d_winograd_workspace(const Conv2dParams& p, int m, bool backward_data) {
  return workspace_of(make_plan(backward_data ? transposed(p) : p, m));
}

void conv2d_winograd(const Conv2dParams& p, int m, const float* x, const float* u,
                     const float* bias, float* y, float* workspace) {
  impl().run(make_plan(p, m), x, u, bias, y, workspace);
}

void conv2d_winograd_backward_data(const Conv2dParams& p, int m, const float* gy,
                                   const float* u, float* gx, float* workspace) {
  impl().run(make_plan(transposed(p), m), gy, u, nullptr, gx, workspace);
}

int64_t conv2d_winograd_backward_weights_workspace(const Conv2dParams& p, int m) {
  const WinogradPlan wp = make_plan(p, m, true);
  return workspace_of(wp) + alpha(wp) * alpha(wp) * p.c_out * p.c_in;
}

// Weight gradient through the transform (Lavin & Gray's scheme run
// backwards): y = A^T [sum_c U (.) V] A per tile with U = G g G^T, so
// dU[o][xi][c] = sum over tiles of dM[xi][o][t] V[xi][c][t] with
// dM = A dY A^T, and dg = G^T dU G. The alpha^2 GEMMs reduce over tiles --
// 4x (F4) / 2.25x (F2) fewer multiplies than the direct correlation; each
// sums its block's tiles in order and the blocks in order (beta = 1), and
// the block size depends only on the shape: bitwise identical for any
// thread count.
bool conv2d_winograd_backward_weights(const Conv2dParams& p, int m, const float* gy,
                                      const float* x, float* gw, float* gbias,
                                      float* workspace) {
  const WinogradPlan wp = make_plan(p, m, true);
  const int64_t a = alpha(wp), xis = a * a, ci = p.c_in, co = p.c_out, ld = wp.ld;
  const int kr = wp.r, taps = kr * kr;
  float* du = workspace;
  float* v = reinterpret_cast<float*>(
      (reinterpret_cast<uintptr_t>(du + xis * co * ci) + 63) & ~uintptr_t{63});
  float* dm = v + xis * ci * ld;
  if (wp.tiles == 0)  // an empty batch sums nothing
    for (int64_t i = 0; i < xis * co * ci; ++i) du[i] = 0.0f;
  for (int64_t t0 = 0; t0 < wp.tiles; t0 += wp.block) {
    const int64_t nt = wp.tiles - t0 < wp.block ? wp.tiles - t0 : wp.block;
    impl().wgrad_block(wp, x, gy, t0, nt, v, dm);
    GemmParams gp;
    gp.m = co, gp.n = ci, gp.k = nt;
    gp.trans_b = true;
    // Channel-major dm, v; dU filter-row-major, du[o][xi][i] (what the
    // filter back-transform reads: a filter's alpha^2 values in one row).
    gp.lda = xis * ld, gp.ldb = xis * ld, gp.ldc = xis * ci;
    gp.beta = t0 == 0 ? 0.0f : 1.0f;  // the first block overwrites dU
    for (int64_t xi = 0; xi < xis; ++xi)
      sgemm_batched(gp, GemmBatch{}, GemmEpilogue{}, dm + xi * ld, v + xi * ld, du + xi * ci);
  }
  double gt[5 * 6];
  filter_transform_t(m, kr, int(a), gt);
  impl().filter_grad(wp, gt, du, co * ci, gw);
  if (!all_finite(gw, co * ci * taps)) return false;
  if (gbias) conv2d_bias_backward(p, gy, gbias);
  return true;
}

const char* conv2d_winograd_kernel_name() { return impl().name; }

}  // namespace striate::cpu
