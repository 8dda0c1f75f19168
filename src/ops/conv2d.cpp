// conv2d op: argument checks, output shape, algorithm choice, workspace.
#include <algorithm>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include "common.h"
#include "striate/isa.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"
#include "striate/threads.h"

namespace striate::ops {
namespace {

constexpr const char* kOp = "conv2d";

bool strided(const Conv2dParams& p) { return p.stride_h != 1 || p.stride_w != 1; }

// Why Winograd cannot run these params with output tile m (0: any tile), or
// "" when it can: F(2x2, 3x3) and F(4x4, 3x3) for 3x3 kernels, F(2x2, 5x5)
// for 5x5 ones, F(4x4, 2x2) for 2x2 ones, all undilated and ungrouped;
// stride 1, or a stride whose phases (the space-to-depth rewrite,
// kernels/cpu/conv2d_s2d.cpp) have such a kernel: ceil(k / stride) = 2, 3
// or 5 per axis (ResNet's 3x3/2 downsampling, AlexNet conv1 11x11/4).
std::string winograd_unsupported(const Conv2dParams& p, int m = 0) {
  std::ostringstream why;
  const Conv2dParams q = cpu::conv2d_s2d_params(p);  // p itself at stride 1
  const int64_t kh = q.kh, kw = q.kw;
  const bool k2 = kh == 2 && kw == 2, k3 = kh == 3 && kw == 3, k5 = kh == 5 && kw == 5;
  if (!k2 && !k3 && !k5 && !strided(p))
    why << "needs a 2x2, 3x3 or 5x5 kernel, got " << p.kh << "x" << p.kw;
  else if (!k2 && !k3 && !k5)
    why << "needs stride 1, or a stride that splits the kernel into 2x2, 3x3 or 5x5 phases "
        << "(ceil(kernel / stride)), got a " << p.kh << "x" << p.kw << " kernel at stride ("
        << p.stride_h << ", " << p.stride_w << "): phases " << kh << "x" << kw;
  else if (k5 && m == 4)
    why << "has no 4x4 tile for a 5x5 kernel or 5x5 stride phases (F(2x2, 5x5) is "
           "'winograd_f2')";
  else if (k2 && m == 2)
    why << "has no 2x2 tile for a 2x2 kernel or 2x2 stride phases (F(4x4, 2x2) is "
           "'winograd_f4')";
  else if (p.dil_h != 1 || p.dil_w != 1)
    why << "needs dilation 1, got (" << p.dil_h << ", " << p.dil_w << ")";
  else if (p.groups != 1)
    why << "needs groups=1, got " << p.groups;
  return why.str();
}

constexpr bool kWinogradImplemented = true;

// F(4x4) does 4x fewer multiplies than direct against 2.25x for F(2x2), but
// its transforms cost more per tile, its error is ~20x larger (1e-5 vs 5e-7
// relative at C=512, docs/winograd.md), and a group of SIMD lanes never
// spans two tile rows, so a narrow plane leaves lanes idle (a 14-wide
// output is 4 F4 tiles per row). Measured side by side against torch on a
// quiet machine (docs/benchmarks.md): F(4x4) wins by 1.3-1.6x from 56x56
// outputs up, and at 28x28 up to 256 input channels; at 28x28 with 512
// input channels F(2x2) won (1.39-1.48x vs 1.24-1.26x torch), and on 13x13
// and 14x14 planes F(2x2) is as fast or faster (1.1-1.2x).
Conv2dAlgorithm pick_winograd_tile(const Conv2dParams& p) {
  if (strided(p)) return pick_winograd_tile(cpu::conv2d_s2d_params(p));
  if (p.kh == 5) return Conv2dAlgorithm::winograd_f2;  // the only 5x5 tile
  if (p.kh == 2) return Conv2dAlgorithm::winograd_f4;  // the only 2x2 tile
  const int64_t side = std::min(p.h_out, p.w_out);
  const bool f4 = side >= 56 || (side >= 28 && p.c_in < 512);
  return f4 ? Conv2dAlgorithm::winograd_f4 : Conv2dAlgorithm::winograd_f2;
}

// The AVX2 level's choice for stride-1 ungrouped non-1x1 layers, or nullopt
// to use the generic rules below. Re-measured side by side on this
// project's 2-core AVX2 machine after the Winograd GEMM stopped spilling its
// accumulators and the Winograd backward got its own weight gradient
// (2026-12-03; 3x3 layers of 16-512 channels on 7x7-224x224 planes,
// batches 2-128, docs/benchmarks.md):
// - the stride-1 direct kernel wins where the channel product is tiny
//   (16x16, ResNet-20's first stage: forward 6.4 vs F(2x2) 6.8 ms, backward
//   12.8 vs 25 ms at batch 128) and, up to 64x64 channels, on planes of at
//   most 8x8 forward / 16x16 backward, where tiles waste SIMD lanes and the
//   tile-sum GEMMs of the weight gradient are shallow; 7x7 (and larger)
//   stride-1 layers run direct too;
// - everywhere else F(4x4) wins forward on every plane from 7x7 up (13x13:
//   15-20 ms vs F(2x2) 19-23 and direct 26-43 at AlexNet's channels);
// - backward F(4x4) from 28x28 outputs up (ResNet-18 128@28 b16: 30 ms vs
//   F(2x2) 35, direct 57), F(2x2) below (13x13/14x14/7x7: 35-64 ms vs F(4x4)
//   39-75 and im2col 61-81): more tiles make the weight gradient's GEMMs
//   deeper and waste fewer lanes;
// - 5x5 (auto_avx2_5x5): F(2x2, 5x5) forward from 16 channels on planes of
//   28x28 and up, or from 32x32 channels on smaller ones (AlexNet conv2
//   64->192@27 b16: 26 ms vs direct 45, torch 46; GoogLeNet's 5x5 layers
//   1.1-1.9x over direct, 16->48@14 0.9 vs 1.0 ms direct); backward it
//   needs a deep tile sum (C_in*C_out*plane >= 2M: 64->192@27 78 ms vs
//   direct 106, 128->128@14 36 vs im2col 60), else im2col beyond 32x32
//   channels (48->128@7: 6.1 vs F(2x2) 7.4, direct 14) and direct below.
Conv2dAlgorithm auto_avx2_5x5(const Conv2dParams& p, bool backward) {
  const int64_t cc = p.c_in * p.c_out;
  const int64_t side = std::min(p.h_out, p.w_out), plane = p.h_out * p.w_out;
  if (p.c_in < 16 || p.c_out < 16) return Conv2dAlgorithm::direct;
  if (!backward)
    return side >= 28 || cc >= 32 * 32 ? Conv2dAlgorithm::winograd_f2 : Conv2dAlgorithm::direct;
  if (cc * plane >= (int64_t{2} << 20)) return Conv2dAlgorithm::winograd_f2;
  return cc > 32 * 32 ? Conv2dAlgorithm::im2col : Conv2dAlgorithm::direct;
}

std::optional<Conv2dAlgorithm> auto_avx2(const Conv2dParams& p, bool backward) {
  if (!cpu::conv2d_direct_s1_applies(p) || p.kh * p.kw == 1) return std::nullopt;
  if (p.kh == 2 && p.kw == 2) return std::nullopt;  // F(4x4, 2x2) unmeasured here
  if (!winograd_unsupported(p).empty()) return Conv2dAlgorithm::direct;
  if (p.kh == 5) return auto_avx2_5x5(p, backward);
  const int64_t cc = p.c_in * p.c_out;
  const int64_t side = std::min(p.h_out, p.w_out);
  const bool direct = cc <= 16 * 16 || (cc <= 64 * 64 && side <= (backward ? 16 : 8));
  if (direct || p.c_in < 16 || p.c_out < 16) return Conv2dAlgorithm::direct;
  if (backward && side < 28) return Conv2dAlgorithm::winograd_f2;
  return Conv2dAlgorithm::winograd_f4;
}

// The AVX-512 level's choice for stride-1 ungrouped non-1x1 layers, or
// nullopt for the generic rules below. Measured side by side on a 2-core
// AVX-512 machine with full-width 512-bit FMA units (AMD EPYC, fp32 peak
// ~520 GFLOP/s; 2026-12-04, 3x3 layers of 16-512 channels on 7x7-56x56
// planes, batches 2-128, and the 5x5 layers of AlexNet/GoogLeNet; times
// at 2 threads, min of interleaved rounds):
// - 3x3 forward: the stride-1 direct kernel (its 16-lane blocks) below 16
//   input or output channels (VGG-16 conv1_1 3->64 b2: 1.3 ms vs im2col
//   1.7); F(4x4) on every plane from 16x16 channels (ResNet-20's
//   16@32 b128: 1.3 ms vs F(2x2) 1.7, direct 2.9; AlexNet conv4 13x13:
//   5.3 vs 6.1; ResNet-18 layer4 512@7: 4.8 vs 6.1; VGG-16 conv4_2 512@28
//   b2: 7.6 vs 9.9, once 512 x 512 blocks hold 128 tiles, see
//   conv2d_winograd.cpp kBigFilterBytes);
// - 3x3 backward: im2col below 16 channels (conv1_1: 7.6 ms vs direct
//   9.5), direct for 16x16 channels (ResNet-20's first stage b128: 5.8 ms
//   vs F(4x4) 9.7); F(4x4) up to 64x64 channels, on planes from
//   28x28 (ResNet-18 layer1 11.4 vs F(2x2) 16.6; 32@16: 4.4 vs 5.2), and
//   for 256 x 512 channels and more over at least 64 F(4x4) tiles
//   (ResNet-18 layer4 b16: 16.4 vs 17.4); F(2x2) on the other small-plane
//   layers (AlexNet conv3 13x13: 13.3 vs 14.5 ms; conv4 and ResNet-18 layer3
//   tie; VGG-16 conv5 512@14 b2, 32 F(4x4) tiles: 9.2 vs 11.3);
// - 5x5: as auto_avx2_5x5 (AlexNet conv2 forward F(2x2, 5x5) 8.9 ms vs
//   im2col 25.8, backward 31.6 vs 49.3; GoogLeNet's 5x5 layers 1.1-2.6x
//   over im2col forward, backward im2col / direct where the tile sum is
//   shallow, as on AVX2).
std::optional<Conv2dAlgorithm> auto_avx512(const Conv2dParams& p, bool backward) {
  if (!cpu::conv2d_direct_s1_applies(p) || p.kh * p.kw == 1) return std::nullopt;
  if (!winograd_unsupported(p).empty()) return std::nullopt;
  if (p.kh == 2) {
    // F(4x4, 2x2) forward, 25 multiplies per 16 outputs against 64 (Intel
    // AVX-512 host, b16, 2026-12-05): 64@56 4.8 ms vs im2col 6.2, 128@28
    // 4.0 vs 5.3, 256@14 4.3 vs 5.1; at 512@7 even (4.5 vs 4.4). Backward
    // unmeasured: the generic rules.
    const bool f4 = !backward && p.c_in >= 16 && p.c_out >= 16 && std::min(p.h_out, p.w_out) >= 14;
    return f4 ? std::optional<Conv2dAlgorithm>(Conv2dAlgorithm::winograd_f4) : std::nullopt;
  }
  if (p.kh == 5) return auto_avx2_5x5(p, backward);
  if (p.c_in < 16 || p.c_out < 16)
    return backward ? std::nullopt : std::optional<Conv2dAlgorithm>(Conv2dAlgorithm::direct);
  if (!backward) return Conv2dAlgorithm::winograd_f4;
  const int64_t cc = p.c_in * p.c_out;
  const int64_t side = std::min(p.h_out, p.w_out);
  const int64_t f4_tiles = p.n * ((p.h_out + 3) / 4) * ((p.w_out + 3) / 4);
  if (cc <= 16 * 16) return Conv2dAlgorithm::direct;
  if (cc <= 64 * 64 || side >= 28 || (cc >= 256 * 512 && f4_tiles >= 64))
    return Conv2dAlgorithm::winograd_f4;
  return Conv2dAlgorithm::winograd_f2;
}

Conv2dAlgorithm auto_algorithm(const Conv2dParams& p, bool backward) {
  // Heuristic from the shape and the ISA level (measured on this project's
  // 2-core AVX-512 machine, docs/benchmarks.md, and on a 2-core AVX2 one for
  // the AVX2 level, see auto_avx2):
  // - depthwise-like layers (C_in/groups * C_out/groups <= 4) run direct,
  //   where the GEMMs would be 1-4 rows tall;
  // - AVX2: stride-1 ungrouped non-1x1 layers as auto_avx2 says;
  // - AVX-512: stride-1 ungrouped non-1x1 layers as auto_avx512 says;
  // - otherwise 3x3 stride-1 ungrouped layers with >= 16 input and output
  //   channels use Winograd (the tile as "winograd" picks it); with fewer
  //   channels the transforms outweigh the saved multiplies;
  // - strided layers whose stride phases form a 3x3 / 5x5 kernel take the
  //   space-to-depth rewrite wherever these rules give the rewritten
  //   stride-1 layer Winograd (AlexNet conv1 11x11/4 3->64 b16 on AVX2:
  //   forward 11.0 ms vs im2col 22.3, torch 21.1; backward 31 vs 48, torch
  //   70 -- the rewrite has 432 taps against 363, F(4x4) 4x fewer multiplies);
  //   not where the phases are 2x2 (a 3x3/2 layer): F(4x4, 2x2) on the
  //   rewrite does only 1.44x fewer multiplies than the strided layer and
  //   pays the copy and a 4x-channel input transform (ResNet-18 layer2.0
  //   64->128 @56 b16, AVX-512: 9.1 ms against im2col's 6.2);
  // - with a SIMD GEMM (avx2/avx512), im2col + GEMM on every other layer
  //   with a real channel reduction (5-25x over the strided direct loops on
  //   1x1 layers, AlexNet conv1 and the 7x7 stem);
  // - on the portable baseline the GEMM is only ~2x the direct loops, so
  //   im2col is used where the reduction is deep and the plane small.
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  if (cin_g * cout_g <= 4) return Conv2dAlgorithm::direct;
  const Isa isa = isa_selected();
  if (isa != Isa::baseline && strided(p) && winograd_unsupported(p).empty()) {
    const Conv2dParams q = cpu::conv2d_s2d_params(p);
    const Conv2dAlgorithm a = auto_algorithm(q, backward);
    if (q.kh != 2 && (a == Conv2dAlgorithm::winograd_f2 || a == Conv2dAlgorithm::winograd_f4))
      return a;
  }
  if (isa == Isa::avx2)
    if (const auto a = auto_avx2(p, backward)) return *a;
  if (isa == Isa::avx512)
    if (const auto a = auto_avx512(p, backward)) return *a;
  // AVX-512, strided layers on few input channels (the ResNet stem, 7x7/2
  // from 3 channels): the output-channel-vectorized direct kernel reads x in
  // place where im2col's panels gather 147 taps per column (stem b16: 15.5-16.3
  // ms vs 20-21.5, Intel AVX-512 host 2026-12-05; at 64 channels, ResNet-18's
  // 3x3/2, im2col is ahead: 6.0 vs 6.5).
  if (isa == Isa::avx512 && !backward && strided(p) && p.c_in < 16 &&
      cpu::conv2d_direct_ocv_applies(p))
    return Conv2dAlgorithm::direct;
  const bool simd = isa != Isa::baseline;
  if (simd && p.kh == 3 && !strided(p) && winograd_unsupported(p).empty() && p.c_in >= 16 &&
      p.c_out >= 16)
    return pick_winograd_tile(p);
  if (simd) return Conv2dAlgorithm::im2col;
  const int64_t depth = cin_g * p.kh * p.kw;
  const int64_t plane = p.h_out * p.w_out;
  return depth >= 64 && plane < 28 * 28 ? Conv2dAlgorithm::im2col : Conv2dAlgorithm::direct;
}

Conv2dAlgorithm parse_algorithm(const std::string& name, const Conv2dParams& p,
                                bool backward) {
  if (name == "direct") return Conv2dAlgorithm::direct;
  if (name == "im2col") return Conv2dAlgorithm::im2col;
  if (name == "winograd" || name == "winograd_f2" || name == "winograd_f4") {
    const int m = name == "winograd_f4" ? 4 : name == "winograd_f2" ? 2 : 0;
    const std::string why = winograd_unsupported(p, m);
    if (!why.empty()) throw_value_error(kOp, ": algorithm='", name, "' ", why);
    if (!kWinogradImplemented)
      throw_not_implemented(kOp, ": algorithm='", name,
                            "' is not implemented yet; use 'auto', 'direct' or 'im2col'");
    if (name == "winograd_f2") return Conv2dAlgorithm::winograd_f2;
    if (name == "winograd_f4") return Conv2dAlgorithm::winograd_f4;
    return pick_winograd_tile(p);
  }
  if (name == "auto") return auto_algorithm(p, backward);
  throw_value_error(kOp, ": algorithm must be one of 'auto', 'direct', 'im2col', "
                    "'winograd', 'winograd_f2', 'winograd_f4', got '", name, "'");
}

// ---- Winograd filter cache ---------------------------------------------------
// Transforming the filters reads C_out*C_in*K*K weights and writes 16/9
// (F(2,3)), 4x (F(4,3)) or 36/25 (F(2,5)) as many floats, a sizable part of
// a small layer's time, so inference reuses them. An entry is keyed by
// (weight pointer, shape, kernel size, tile, direction) and is only served
// after its stored copy of the raw weights compares equal (memcmp) to the
// weights passed now: weights changed in place, or a new array at a
// recycled address, rebuild it, never a stale result (the space-to-depth
// path passes its rearranged weights from the workspace, checked the same
// way). Entries are shared_ptrs so an eviction by another thread cannot
// free filters a kernel is still reading (the GIL is released meanwhile).
struct WinogradFilter {
  const float* w;
  int64_t c_out, c_in, k;
  int m;
  bool backward_data;
  std::vector<float> raw, u;
};

constexpr size_t kFilterCacheBytes = size_t{512} << 20;  // VGG-16 at F4 fits
constexpr size_t kFilterCacheEntries = 64;

std::mutex g_filter_mutex;
std::list<std::shared_ptr<const WinogradFilter>> g_filters;  // most recent first
size_t g_filter_bytes = 0;

size_t filter_bytes(const WinogradFilter& f) {
  return (f.raw.size() + f.u.size()) * sizeof(float);
}

std::shared_ptr<const WinogradFilter> winograd_filter(const Conv2dParams& p, int m,
                                                      bool backward_data, const float* w) {
  auto same_key = [&](const WinogradFilter& f) {
    return f.w == w && f.c_out == p.c_out && f.c_in == p.c_in && f.k == p.kh && f.m == m &&
           f.backward_data == backward_data;
  };
  const size_t n = static_cast<size_t>(p.c_out * p.c_in * p.kh * p.kw);
  std::shared_ptr<const WinogradFilter> hit;
  {
    std::lock_guard<std::mutex> lock(g_filter_mutex);
    for (auto it = g_filters.begin(); it != g_filters.end(); ++it)
      if (same_key(**it)) {
        hit = *it;
        g_filters.splice(g_filters.begin(), g_filters, it);
        break;
      }
  }
  // Compared outside the lock: the entry is immutable and kept alive by hit.
  if (hit && std::memcmp(hit->raw.data(), w, n * sizeof(float)) == 0) return hit;
  hit.reset();

  auto f = std::make_shared<WinogradFilter>();
  f->w = w, f->c_out = p.c_out, f->c_in = p.c_in, f->k = p.kh, f->m = m;
  f->backward_data = backward_data;
  {
    // Weights changed in place (every training step): the stale entry's
    // buffers are taken over when no kernel still reads them (the list holds
    // the only reference; copies are only made under this lock). A fresh
    // 38 MB transform (512 x 512 at F(4x4)) is above glibc's largest mmap
    // threshold, so each step paid its page faults and zero fill: ~8 ms of
    // a 512 x 512 forward on the Intel AVX-512 host.
    std::lock_guard<std::mutex> lock(g_filter_mutex);
    for (auto it = g_filters.begin(); it != g_filters.end(); ++it)
      if (same_key(**it)) {
        g_filter_bytes -= filter_bytes(**it);  // before its buffers move
        if (it->use_count() == 1) {
          auto& stale = const_cast<WinogradFilter&>(**it);
          f->raw.swap(stale.raw);
          f->u.swap(stale.u);
        }
        g_filters.erase(it);
        break;
      }
  }
  f->raw.assign(w, w + n);
  f->u.resize(static_cast<size_t>(cpu::conv2d_winograd_filter_floats(p, m, backward_data)));
  cpu::conv2d_winograd_filter(p, m, backward_data, f->raw.data(), f->u.data());
  std::lock_guard<std::mutex> lock(g_filter_mutex);
  for (auto it = g_filters.begin(); it != g_filters.end(); ++it)
    if (same_key(**it)) {
      g_filter_bytes -= filter_bytes(**it);
      g_filters.erase(it);
      break;
    }
  if (filter_bytes(*f) <= kFilterCacheBytes) {
    g_filters.push_front(f);
    g_filter_bytes += filter_bytes(*f);
    while (g_filter_bytes > kFilterCacheBytes || g_filters.size() > kFilterCacheEntries) {
      g_filter_bytes -= filter_bytes(*g_filters.back());
      g_filters.pop_back();
    }
  }
  return f;
}

int winograd_tile(Conv2dAlgorithm a) { return a == Conv2dAlgorithm::winograd_f2 ? 2 : 4; }

// Strided Winograd: the space-to-depth rewrite q of p (kernels/cpu/
// conv2d_s2d.cpp) runs as a stride-1 Winograd convolution. The phase
// images, the rewritten weights (and in backward their gradients) take the
// front of the one workspace, the Winograd kernels the rest.
struct S2dBuffers {
  float *xs, *gxs, *ws, *gws, *work;
};

// q: the rewritten params; work: floats for the Winograd kernels.
S2dBuffers s2d_buffers(const Conv2dParams& q, int64_t work, bool backward) {
  S2dBuffers b;
  const int64_t nx = q.n * q.c_in * q.h_in * q.w_in, nw = q.c_out * q.c_in * q.kh * q.kw;
  const int64_t copies = backward ? 2 : 1;
  float* f = workspace_floats(copies * (nx + nw) + work);
  b.xs = f, f += nx;
  b.gxs = backward ? f : nullptr, f += backward ? nx : 0;
  b.ws = f, f += nw;
  b.gws = backward ? f : nullptr, f += backward ? nw : 0;
  b.work = f;
  return b;
}

void winograd_s2d_forward(const Conv2dParams& p, int m, const float* x, const float* w,
                          const float* bias, float* y) {
  const Conv2dParams q = cpu::conv2d_s2d_params(p);
  const S2dBuffers b = s2d_buffers(q, cpu::conv2d_winograd_workspace(q, m, false), false);
  cpu::conv2d_s2d_input(p, x, b.xs);
  cpu::conv2d_s2d_weight(p, w, b.ws);
  const auto f = winograd_filter(q, m, false, b.ws);
  cpu::conv2d_winograd(q, m, b.xs, f->u.data(), bias, y, b.work);
}

void winograd_s2d_backward(const Conv2dParams& p, int m, const float* gy, const float* x,
                           const float* w, float* gx, float* gw, float* gb) {
  const Conv2dParams q = cpu::conv2d_s2d_params(p);
  const S2dBuffers b = s2d_buffers(
      q,
      std::max({cpu::conv2d_winograd_workspace(q, m, true),
                cpu::conv2d_winograd_backward_weights_workspace(q, m),
                cpu::conv2d_im2col_workspace(q)}),
      true);
  cpu::conv2d_s2d_input(p, x, b.xs);
  cpu::conv2d_s2d_weight(p, w, b.ws);
  const auto f = winograd_filter(q, m, true, b.ws);
  cpu::conv2d_winograd_backward_data(q, m, gy, f->u.data(), b.gxs, b.work);
  cpu::conv2d_s2d_input_backward(p, b.gxs, gx);
  if (!cpu::conv2d_winograd_backward_weights(q, m, gy, b.xs, b.gws, gb, b.work))
    cpu::conv2d_im2col_backward_weights(q, gy, b.xs, b.gws, gb, b.work);
  cpu::conv2d_s2d_weight_backward(p, b.gws, gw);
}

}  // namespace

size_t conv2d_filter_cache_bytes() {
  std::lock_guard<std::mutex> lock(g_filter_mutex);
  return g_filter_bytes;
}

size_t conv2d_filter_cache_clear() {
  // Entries a kernel is still reading stay alive through its shared_ptr and
  // go when it finishes; the cache just stops holding them.
  std::lock_guard<std::mutex> lock(g_filter_mutex);
  const size_t freed = g_filter_bytes;
  g_filters.clear();
  g_filter_bytes = 0;
  return freed;
}

std::vector<Conv2dAlgorithm> conv2d_algorithms(const Conv2dParams& p) {
  std::vector<Conv2dAlgorithm> out = {Conv2dAlgorithm::direct, Conv2dAlgorithm::im2col};
  if (kWinogradImplemented) {
    if (winograd_unsupported(p, 2).empty()) out.push_back(Conv2dAlgorithm::winograd_f2);
    if (winograd_unsupported(p, 4).empty()) out.push_back(Conv2dAlgorithm::winograd_f4);
  }
  return out;
}

const char* algorithm_name(Conv2dAlgorithm a) {
  switch (a) {
    case Conv2dAlgorithm::direct: return "direct";
    case Conv2dAlgorithm::im2col: return "im2col";
    case Conv2dAlgorithm::winograd_f2: return "winograd_f2";
    case Conv2dAlgorithm::winograd_f4: return "winograd_f4";
  }
  return "?";
}

Conv2dPlan conv2d_plan(const Shape& x, const Shape& w, const Shape* bias,
                       const Conv2dArgs& a) {
  check_rank(kOp, "x", x, 4, "(N, C, H, W)");
  check_rank(kOp, "weight", w, 4, "(C_out, C_in/groups, KH, KW)");
  check_nonempty(kOp, "x", x, 1);
  check_nonempty(kOp, "weight", w, 0);
  check_scalar(kOp, "groups", a.groups, 1);
  check_pair(kOp, "stride", a.stride_h, a.stride_w, 1);
  check_pair(kOp, "dilation", a.dil_h, a.dil_w, 1);

  Conv2dParams p;
  p.n = x[0], p.c_in = x[1], p.h_in = x[2], p.w_in = x[3];
  p.c_out = w[0], p.kh = w[2], p.kw = w[3];
  p.stride_h = a.stride_h, p.stride_w = a.stride_w;
  p.dil_h = a.dil_h, p.dil_w = a.dil_w;
  p.groups = a.groups;
  if (a.activation == "relu")
    p.relu = true;
  else if (a.activation != "none")
    throw_value_error(kOp, ": activation must be 'none' or 'relu', got '", a.activation, "'");
  check_scalar(kOp, "weight.shape[2] (kernel height)", p.kh, 1);
  check_scalar(kOp, "weight.shape[3] (kernel width)", p.kw, 1);

  if (p.c_in % p.groups != 0)
    throw_value_error(kOp, ": groups=", p.groups, " must divide the input channels ",
                      p.c_in, " of x ", shape_str(x));
  if (p.c_out % p.groups != 0)
    throw_value_error(kOp, ": groups=", p.groups,
                      " must divide the output channels weight.shape[0]=", p.c_out);
  if (w[1] * p.groups != p.c_in)
    throw_value_error(kOp, ": weight ", shape_str(w), " expects ", w[1] * p.groups,
                      " input channels (weight.shape[1]=", w[1], " x groups=", p.groups,
                      "), but x ", shape_str(x), " has ", p.c_in);
  if (bias) {
    if (bias->size() != 1 || (*bias)[0] != p.c_out)
      throw_value_error(kOp, ": bias must have shape (", p.c_out,
                        ",) to match weight.shape[0], got ", shape_str(*bias));
  }

  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  if (a.padding_mode == "explicit") {
    check_pair(kOp, "padding", a.pad_h, a.pad_w, 0);
    pad_top = pad_bottom = a.pad_h;
    pad_left = pad_right = a.pad_w;
  } else if (a.padding_mode == "same") {
    if (p.stride_h != 1 || p.stride_w != 1)
      throw_value_error(kOp, ": padding='same' is not supported for strided "
                        "convolutions, got stride (", p.stride_h, ", ", p.stride_w, ")");
    // PyTorch's rule: total padding d*(k-1) per axis; the low side gets
    // total/2 and the high side the rest (asymmetric for an even kernel).
    const int64_t th = p.dil_h * (p.kh - 1), tw = p.dil_w * (p.kw - 1);
    pad_top = th / 2, pad_bottom = th - th / 2;
    pad_left = tw / 2, pad_right = tw - tw / 2;
  } else if (a.padding_mode != "valid") {
    throw_value_error(kOp, ": padding must be an int, a pair, 'same' or 'valid', got '",
                      a.padding_mode, "'");
  }
  p.pad_top = pad_top, p.pad_left = pad_left;
  p.h_out = conv_out_size(p.h_in, p.kh, p.stride_h, pad_top, pad_bottom, p.dil_h);
  p.w_out = conv_out_size(p.w_in, p.kw, p.stride_w, pad_left, pad_right, p.dil_w);
  if (p.h_out < 1 || p.w_out < 1)
    throw_value_error(kOp, ": the kernel of weight ", shape_str(w), " (",
                      p.dil_h * (p.kh - 1) + 1, "x", p.dil_w * (p.kw - 1) + 1,
                      " with dilation) is larger than the padded input (",
                      p.h_in + pad_top + pad_bottom, "x", p.w_in + pad_left + pad_right,
                      ") of x ", shape_str(x));

  Conv2dPlan plan;
  plan.p = p;
  plan.has_bias = bias != nullptr;
  plan.y_shape = {p.n, p.c_out, p.h_out, p.w_out};
  checked_numel(plan.y_shape, "conv2d output");
  plan.algorithm = parse_algorithm(a.algorithm, p, a.backward);
  if (plan.algorithm == Conv2dAlgorithm::im2col)
    checked_mul(checked_mul(p.c_in / p.groups * p.kh * p.kw, p.h_out, "conv2d workspace"),
                p.w_out, "conv2d workspace");
  if (plan.algorithm != Conv2dAlgorithm::im2col && plan.algorithm != Conv2dAlgorithm::direct &&
      strided(p)) {  // the space-to-depth copy of x (twice in backward)
    const Conv2dParams q = cpu::conv2d_s2d_params(p);
    checked_mul(checked_mul(checked_mul(p.n, q.c_in, "conv2d workspace"), q.h_in * q.w_in,
                            "conv2d workspace"),
                2, "conv2d workspace");
  }
  return plan;
}

void conv2d_forward(const Conv2dPlan& plan, const float* x, const float* w,
                    const float* bias, float* y) {
  const Conv2dParams& p = plan.p;
  switch (plan.algorithm) {
    case Conv2dAlgorithm::im2col:
      cpu::conv2d_im2col(p, x, w, bias, y);
      return;
    case Conv2dAlgorithm::winograd_f2:
    case Conv2dAlgorithm::winograd_f4: {
      // An empty batch has no tiles, and the Winograd tiling divides by the
      // tile-block size, which is then 0 (SIGFPE): y is empty, nothing to do.
      if (p.n == 0) return;
      const int m = winograd_tile(plan.algorithm);
      if (strided(p)) return winograd_s2d_forward(p, m, x, w, bias, y);
      const auto f = winograd_filter(p, m, false, w);
      cpu::conv2d_winograd(p, m, x, f->u.data(), bias, y,
                           workspace_floats(cpu::conv2d_winograd_workspace(p, m, false)));
      return;
    }
    default: {
      const int threads = get_num_threads();
      // The output-channel-vectorized kernel declines non-finite weights on
      // padded layers, the stride-1 kernel inputs holding Inf/NaN (their
      // padded copies would turn them into extra NaNs); the strided loops
      // are exact.
      if (cpu::conv2d_direct_ocv_applies(p) &&
          cpu::conv2d_direct_ocv(
              p, x, w, bias, y,
              workspace_floats(cpu::conv2d_direct_ocv_workspace(p, threads)), threads))
        return;
      if (cpu::conv2d_direct_s1_applies(p)) {
        if (cpu::conv2d_direct_s1(
                p, x, w, bias, y,
                workspace_floats(cpu::conv2d_direct_s1_workspace(p, threads, false)), threads))
          return;
      }
      cpu::conv2d_direct(p, x, w, bias, y);
      return;
    }
  }
}

void conv2d_backward(const Conv2dPlan& plan, const float* gy, const float* x,
                     const float* w, float* gx, float* gw, float* gbias) {
  const Conv2dParams& p = plan.p;
  float* gb = plan.has_bias ? gbias : nullptr;
  switch (plan.algorithm) {
    case Conv2dAlgorithm::im2col: {
      float* ws = workspace_floats(cpu::conv2d_im2col_workspace(p));
      cpu::conv2d_im2col_backward_data(p, gy, w, gx, ws);
      cpu::conv2d_im2col_backward_weights(p, gy, x, gw, gb, ws);
      return;
    }
    case Conv2dAlgorithm::winograd_f2:
    case Conv2dAlgorithm::winograd_f4: {
      // Data gradient by Winograd on the transposed problem (any padding,
      // see conv2d_winograd.cpp), weight gradient through the same
      // transforms.
      const int m = winograd_tile(plan.algorithm);
      if (strided(p)) {
        if (p.n == 0) {  // no tiles: gx is empty, the weight gradient zero
          std::fill(gw, gw + p.c_out * p.c_in * p.kh * p.kw, 0.0f);
          if (gb) std::fill(gb, gb + p.c_out, 0.0f);
          return;
        }
        return winograd_s2d_backward(p, m, gy, x, w, gx, gw, gb);
      }
      float* ws = workspace_floats(
          std::max({cpu::conv2d_winograd_workspace(p, m, true),
                    cpu::conv2d_winograd_backward_weights_workspace(p, m),
                    cpu::conv2d_im2col_workspace(p)}));
      if (p.n > 0) {  // an empty batch has no tiles (see conv2d_forward); gx is empty
        const auto f = winograd_filter(p, m, true, w);
        cpu::conv2d_winograd_backward_data(p, m, gy, f->u.data(), gx, ws);
      }
      // A non-finite Winograd weight gradient is recomputed exactly, with
      // torch's Inf/NaN pattern (see kernels_cpu.h).
      if (!cpu::conv2d_winograd_backward_weights(p, m, gy, x, gw, gb, ws))
        cpu::conv2d_im2col_backward_weights(p, gy, x, gw, gb, ws);
      return;
    }
    default:
      if (cpu::conv2d_direct_s1_applies(p)) {
        const int threads = get_num_threads();
        float* ws = workspace_floats(cpu::conv2d_direct_s1_workspace(p, threads, true));
        if (!cpu::conv2d_direct_s1_backward_data(p, gy, w, gx, ws, threads))
          cpu::conv2d_direct_backward_data(p, gy, w, gx);
        if (!cpu::conv2d_direct_s1_backward_weights(p, gy, x, gw, gb, ws, threads))
          cpu::conv2d_direct_backward_weights(p, gy, x, gw, gb);
        return;
      }
      cpu::conv2d_direct_backward_data(p, gy, w, gx);
      cpu::conv2d_direct_backward_weights(p, gy, x, gw, gb);
      return;
  }
}

}  // namespace striate::ops
