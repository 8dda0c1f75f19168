// Winograd F(m x m, r x r) internals shared by conv2d_winograd.cpp (plan,
// filter transform, dispatch) and the per-ISA drivers
// (conv2d_winograd_{baseline,avx2,avx512}.cpp via conv2d_winograd_driver.h).
#pragma once

#include <cstdint>

#include "striate/params.h"

namespace striate::cpu {

// Transformed filters are packed per transform point xi (alpha*alpha of
// them) into panels of kWinoPanelRows output channels, k-major:
// u[((xi * panels + panel) * c_in + ci) * kWinoPanelRows + r]. The layout is
// the same for every ISA level (each microkernel covers a panel in one or
// more row strips), so a cached transform survives set_isa.
constexpr int64_t kWinoPanelRows = 12;
// Tiles per GEMM column strip: the transformed-input and GEMM-output block
// rows are padded to a multiple of this.
constexpr int64_t kWinoStrip = 32;

// Everything the per-ISA driver needs, computed once in conv2d_winograd.cpp
// (so the workspace size and the driver agree on the blocking). `p` is the
// convolution actually run: for backward-data it is the transposed one
// (c_in/c_out swapped, pads r - 1 - pad, possibly negative = cropping).
struct WinogradPlan {
  Conv2dParams p;
  int m = 4;                      // output tile size (2 or 4)
  int r = 3;                      // kernel size (3, or 5 with m = 2); alpha = m + r - 1
  int64_t tiles_h = 0, tiles_w = 0;
  int64_t tiles = 0;              // n * tiles_h * tiles_w
  int64_t block = 0;              // tiles per block (multiple of kWinoStrip)
  int64_t ld = 0;                 // row stride of the V / M block buffers
  int64_t panels = 0;             // ceil(c_out / kWinoPanelRows)
};

struct WinogradImpl {
  const char* name;
  // y = conv(x) (+ bias, relu per wp.p) from packed filters u; ws holds
  // winograd_block_floats(wp) floats.
  void (*run)(const WinogradPlan& wp, const float* x, const float* u, const float* bias,
              float* y, float* ws);
  // Weight gradient, tiles [t0, t0 + nt): transformed input v[c_in][xi][ld]
  // and transformed output gradient dm[c_out][xi][ld] (conv2d_winograd.cpp
  // runs the GEMMs).
  void (*wgrad_block)(const WinogradPlan& wp, const float* x, const float* gy, int64_t t0,
                      int64_t nt, float* v, float* dm);
  // u = the packed transformed filters of w (OIHW; for backward_data wp.p
  // is the transposed problem and w is read flipped, roles swapped).
  void (*filter)(const WinogradPlan& wp, bool backward_data, const float* w, float* u);
  // dg = G^T dU G for nf = c_out * c_in filters f = o * c_in + i, dU
  // filter-row-major (du[(o * alpha^2 + xi) * c_in + i]), to
  // gw[f * r * r + tap]; gt is G^T (r x alpha, row-major), in double.
  void (*filter_grad)(const WinogradPlan& wp, const double* gt, const float* du, int64_t nf,
                      float* gw);
};

extern const WinogradImpl winograd_baseline_impl;
#ifdef STRIATE_HAVE_X86_ISA
extern const WinogradImpl winograd_avx2_impl;
extern const WinogradImpl winograd_avx512_impl;
#endif

}  // namespace striate::cpu
