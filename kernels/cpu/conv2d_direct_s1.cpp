// Stride-1 direct convolution driver (the flat formulation and register
// blocks are described in conv2d_direct_s1.h): input padding, weight
// packing, threading and the write-back of the valid columns. The backward
// data pass is the same forward on gy with the rotated, channel-transposed
// kernel; the weight gradient reduces over images in a fixed number of
// chunks that depends on the shape only, so every result is bitwise
// identical for any thread count.
//
// Non-finite inputs. The flat planes multiply zeros (padding, dropped
// columns) that torch's kernels never touch, so an Inf would turn them into
// NaNs where torch has none. Every entry point therefore probes its inputs
// while copying them (copy_probe) and returns false when one is non-finite;
// the op layer then runs the exact strided kernel (conv2d_direct.cpp), which
// visits only real taps. Finite data -- the normal case -- pays one FMA per
// copied vector.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv2d_depthwise.h"
#include "conv2d_direct_s1.h"
#include "conv_common.h"
#include "striate/isa.h"
#include "striate/kernels_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace striate::cpu {
namespace {

// Portable level: 4-lane arrays the compiler maps onto SSE2 (separate
// multiply and add, no FMA at this level).
struct VBase {
  struct reg {
    float v[4];
  };
  static constexpr int L = 4;
  static reg zero() { return reg{{0.0f, 0.0f, 0.0f, 0.0f}}; }
  static reg load(const float* p) {
    reg r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static reg bcast(const float* p) { return reg{{*p, *p, *p, *p}}; }
  static reg fma(reg a, reg b, reg c) {
    for (int l = 0; l < 4; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
  }
  static void store(float* p, reg r) { std::memcpy(p, r.v, sizeof r.v); }
  static float sum(reg a) { return (a.v[0] + a.v[2]) + (a.v[1] + a.v[3]); }
};

const DirectS1Impl& impl() {
  switch (isa_selected()) {
#ifdef STRIATE_HAVE_X86_ISA
    case Isa::avx512: return direct_s1_avx512_impl;
    case Isa::avx2: return direct_s1_avx2_impl;
#endif
    default: return direct_s1_baseline_impl;
  }
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Floats of input (all channels) a chunk of flat outputs may read: half of a
// 512 KB L2, so the chunk stays there while every channel block reuses it.
constexpr int64_t kChunkFloats = 64 * 1024;

struct Geom {
  int64_t wp, hp;   // padded plane: hp rows of wp
  int64_t len;      // flat outputs computed per plane (h_out*wp, whole strips)
  int64_t chunk;    // flat outputs per cache chunk (whole strips, <= len)
  int64_t plane;    // floats per padded input plane (len + the largest tap offset)
  int64_t taps, blocks;
};

Geom geom(const Conv2dParams& p) {
  Geom g;
  // A row needs max(pad_left, pad_right) zero columns, not their sum: the
  // flat grid wraps, so one row's right padding is the next row's left
  // padding (8x8 planes with a 3x3 kernel: 72 flat outputs, whole strips,
  // instead of 80 rounded up to 96). Negative pads (cropping) and pads
  // wider than the kernel's reach keep the full width.
  g.wp = p.w_out + (p.kw - 1) * p.dil_w;
  const int64_t pad_right = g.wp - p.w_in - p.pad_left;
  const int64_t shared = p.w_in + std::max(p.pad_left, pad_right);
  if (p.pad_left >= 0 && pad_right >= 0 && shared >= p.w_out) g.wp = shared;
  g.hp = p.h_out + (p.kh - 1) * p.dil_h;
  g.len = round_up(p.h_out * g.wp, kDirectStrip);
  g.plane = g.len + (p.kh - 1) * p.dil_h * g.wp + (p.kw - 1) * p.dil_w;
  g.taps = p.kh * p.kw;
  g.blocks = (p.c_out + kDirectOB - 1) / kDirectOB;
  const int64_t reach = g.plane - g.len;  // the largest tap offset
  const int64_t fit = kChunkFloats / std::max<int64_t>(1, p.c_in) - reach;
  g.chunk = std::min(g.len, std::max<int64_t>(1, fit / kDirectStrip) * kDirectStrip);
  return g;
}

std::vector<int64_t> tap_offsets(const Conv2dParams& p, const Geom& g) {
  std::vector<int64_t> off(static_cast<size_t>(g.taps));
  for (int64_t i = 0; i < p.kh; ++i)
    for (int64_t j = 0; j < p.kw; ++j) off[i * p.kw + j] = i * p.dil_h * g.wp + j * p.dil_w;
  return off;
}

// Copies n floats and returns the largest |value| as bits: Inf and NaN are
// exactly the bit patterns >= kNonFinite (conv_common.h). The probe costs
// about one instruction per vector of a copy the kernel makes anyway.

uint32_t copy_probe(const float* src, float* dst, int64_t n) {
  uint32_t top = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, src + i, sizeof u);
    dst[i] = src[i];
    top = std::max(top, u & 0x7fffffffu);
  }
  return top;
}


// x_pad[c][r][s] = x[c][r - pad_top][s - pad_left] inside x, 0 elsewhere;
// negative pads crop (the backward-data convolution has pad k-1-pad).
// Returns the copy's probe (>= kNonFinite when x holds Inf or NaN).
uint32_t pad_planes(const Conv2dParams& p, const Geom& g, const float* x, float* dst) {
  uint32_t probe = 0;
  const int64_t lo = std::clamp<int64_t>(p.pad_left, 0, g.wp);
  const int64_t hi = std::clamp<int64_t>(p.pad_left + p.w_in, lo, g.wp);
  for (int64_t c = 0; c < p.c_in; ++c) {
    float* d = dst + c * g.plane;
    const float* s = x + c * p.h_in * p.w_in;
    for (int64_t r = 0; r < g.hp; ++r) {
      float* row = d + r * g.wp;
      const int64_t sr = r - p.pad_top;
      if (sr < 0 || sr >= p.h_in || hi <= lo) {
        std::fill(row, row + g.wp, 0.0f);
        continue;
      }
      std::fill(row, row + lo, 0.0f);
      probe = std::max(probe, copy_probe(s + sr * p.w_in + (lo - p.pad_left), row + lo, hi - lo));
      std::fill(row + hi, row + g.wp, 0.0f);
    }
    std::fill(d + g.hp * g.wp, d + g.plane, 0.0f);
  }
  return probe;
}

int64_t fwd_thread_floats(const Conv2dParams& p, const Geom& g) {
  return p.c_in * g.plane + kDirectOB * g.len;
}

// y = conv(x, packed weights) + bias (relu per p) for the stride-1 params p.
// wpk[((b*c_in + c)*taps + tap)*OB + ob] holds output channel b*OB + ob
// (zeros past c_out). False when x holds a non-finite value.
bool run_forward(const Conv2dParams& p, const float* x, const float* wpk, const float* bias,
                 float* y, float* ws, int threads) {
  const Geom g = geom(p);
  const DirectS1Impl& k = impl();
  const std::vector<int64_t> off = tap_offsets(p, g);
  const int64_t per_thread = fwd_thread_floats(p, g);
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  // Images are the parallel axis (each thread pads an image once for all its
  // channel blocks); a batch smaller than the threads also splits blocks.
  const int64_t parts =
      p.n >= 2 * threads ? 1 : std::min<int64_t>(g.blocks, (2 * threads + p.n - 1) / std::max<int64_t>(p.n, 1));
  const int64_t tasks = p.n * parts;
  bool finite = true;
#pragma omp parallel num_threads(threads) reduction(&& : finite)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float* xpad = ws + tid * per_thread;
    float* out = xpad + p.c_in * g.plane;
    int64_t padded = -1;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n = task / parts, part = task % parts;
      if (n != padded) {
        finite = pad_planes(p, g, x + n * p.c_in * hw_in, xpad) < kNonFinite && finite;
        padded = n;
      }
      const int64_t b0 = part * g.blocks / parts, b1 = (part + 1) * g.blocks / parts;
      // Flat outputs in L2-sized chunks, every channel block per chunk: the
      // chunk's input rows (all channels) are then read from L2 once per
      // block instead of the whole padded image streaming from memory once
      // per block (VGG's 224x224x64 image is 13 MB).
      for (int64_t t_lo = 0; t_lo < g.len; t_lo += g.chunk) {
        const int64_t t_hi = std::min(g.len, t_lo + g.chunk);
        for (int64_t b = b0; b < b1; ++b) {
          const float* wb = wpk + b * p.c_in * g.taps * kDirectOB;
          for (int64_t t0 = t_lo; t0 < t_hi; t0 += kDirectStrip)
            k.fwd_strip(p.c_in, g.taps, off.data(), xpad + t0, g.plane, wb, out + (t0 - t_lo),
                        g.chunk);
          const int64_t nob = std::min(kDirectOB, p.c_out - b * kDirectOB);
          for (int64_t ob = 0; ob < nob; ++ob) {
            const int64_t oc = b * kDirectOB + ob;
            const float bv = bias ? bias[oc] : 0.0f;
            float* yo = y + (n * p.c_out + oc) * hw_out;
            // The output rows this chunk covers, each clipped to it and to
            // the W_out valid columns.
            for (int64_t i = t_lo / g.wp; i < p.h_out && i * g.wp < t_hi; ++i) {
              const int64_t j_lo = std::max<int64_t>(0, t_lo - i * g.wp);
              const int64_t j_hi = std::min(p.w_out, t_hi - i * g.wp);
              const float* src = out + ob * g.chunk + (i * g.wp - t_lo);
              float* dst = yo + i * p.w_out;
              if (p.relu) {
                // `v < 0 ? 0 : v` keeps NaN, as torch's relu (conv_common.h).
                for (int64_t j = j_lo; j < j_hi; ++j) {
                  const float v = src[j] + bv;
                  dst[j] = v < 0.0f ? 0.0f : v;
                }
              } else {
                for (int64_t j = j_lo; j < j_hi; ++j) dst[j] = src[j] + bv;
              }
            }
          }
        }
      }
    }
  }
  return finite;
}

int64_t packed_floats(int64_t c_out, int64_t c_in, int64_t taps) {
  return round_up(c_out, kDirectOB) * c_in * taps;
}

// The data gradient of a stride-1 convolution as a forward convolution of gy:
// channels swapped, the kernel rotated by 180 degrees, pads (k-1)*d - pad.
// The weight gradient sums images in this many fixed ranges, each into its
// own double partial of gw: at most 16, fewer where 16 partials of a large
// layer's gw would pass 16M doubles. A function of the shape only, so the
// summation order does not depend on the thread count.
// Images per weight-gradient register pass: enough for ~768 flat outputs
// (an 8x8 plane is 72 of them), so the 12 horizontal sums and partial
// updates per pass stay small next to its FMAs.
int64_t wgrad_group(const Geom& g) { return std::clamp<int64_t>(768 / g.len, 1, 8); }

int64_t wgrad_chunks(const Conv2dParams& p) {
  const int64_t gw_size = p.c_out * p.c_in * p.kh * p.kw;
  return std::min<int64_t>({p.n, 16, std::max<int64_t>(1, (int64_t{1} << 24) / gw_size)});
}

Conv2dParams transposed(const Conv2dParams& p) {
  Conv2dParams q = p;
  q.c_in = p.c_out, q.c_out = p.c_in;
  q.h_in = p.h_out, q.w_in = p.w_out;
  q.h_out = p.h_in, q.w_out = p.w_in;
  q.pad_top = (p.kh - 1) * p.dil_h - p.pad_top;
  q.pad_left = (p.kw - 1) * p.dil_w - p.pad_left;
  q.relu = false;
  return q;
}

}  // namespace

const DirectS1Impl direct_s1_baseline_impl = {"direct_s1_4x24_baseline",
                                              direct_s1_fwd_strip<VBase>,
                                              direct_s1_wgrad_pass<VBase>, dw_plane};

bool conv2d_direct_s1_applies(const Conv2dParams& p) {
  if (p.stride_h != 1 || p.stride_w != 1 || p.groups != 1) return false;
  // The padded planes must stay of the order of the input and output planes
  // (a 2^40 dilation with 'same' padding is a valid 1x1 convolution, whose
  // padded plane would not fit in memory).
  const int64_t hp = p.h_out + (p.kh - 1) * p.dil_h, wp = p.w_out + (p.kw - 1) * p.dil_w;
  const int64_t limit = 4 * (std::max(p.h_in, p.h_out) + 8);
  const int64_t limit_w = 4 * (std::max(p.w_in, p.w_out) + 8);
  return hp <= limit && wp <= limit_w;
}

const char* conv2d_direct_s1_kernel_name() { return impl().name; }

bool conv2d_depthwise_applies(const Conv2dParams& p) {
  return p.groups > 1 && p.c_in == p.groups && p.c_out == p.groups;
}

// One (image, channel) plane per task, handed out dynamically (a shared or
// preempted core then delays its last planes, not a fixed half); no
// reductions, so any thread count and order gives the same bits.
void conv2d_depthwise(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                      float* y) {
  const DirectS1Impl& k = impl();
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out, taps = p.kh * p.kw;
#pragma omp parallel for collapse(2) schedule(dynamic, 4)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c_out; ++c)
      k.dw_plane(p, x + (n * p.c_in + c) * hw_in, w + c * taps, bias ? bias[c] : 0.0f,
                 y + (n * p.c_out + c) * hw_out);
}

int64_t conv2d_direct_s1_workspace(const Conv2dParams& p, int threads, bool backward) {
  const Geom g = geom(p);
  int64_t fwd = packed_floats(p.c_out, p.c_in, g.taps) + threads * fwd_thread_floats(p, g);
  if (!backward) return fwd;
  const Conv2dParams q = transposed(p);
  const Geom gq = geom(q);
  const int64_t data = packed_floats(q.c_out, q.c_in, gq.taps) + threads * fwd_thread_floats(q, gq);
  // weights: per-chunk double partials + per-thread padded x and flat gy.
  const int64_t chunks = wgrad_chunks(p);
  const int64_t weights = 2 * chunks * p.c_out * p.c_in * g.taps +
                          threads * wgrad_group(g) * (p.c_in * g.plane + kDirectOB * g.len);
  return std::max({fwd, data, weights});
}

bool conv2d_direct_s1(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                      float* y, float* ws, int threads) {
  const int64_t taps = p.kh * p.kw;
  if (!all_finite(w, p.c_out * p.c_in * taps)) return false;
  float* wpk = ws;
  const int64_t packed = packed_floats(p.c_out, p.c_in, taps);
  std::fill(wpk, wpk + packed, 0.0f);
  for (int64_t o = 0; o < p.c_out; ++o)
    for (int64_t c = 0; c < p.c_in; ++c)
      for (int64_t t = 0; t < taps; ++t)
        wpk[(((o / kDirectOB) * p.c_in + c) * taps + t) * kDirectOB + o % kDirectOB] =
            w[(o * p.c_in + c) * taps + t];
  return run_forward(p, x, wpk, bias, y, ws + packed, threads);
}

bool conv2d_direct_s1_backward_data(const Conv2dParams& p, const float* gy, const float* w,
                                    float* gx, float* ws, int threads) {
  const Conv2dParams q = transposed(p);
  const int64_t taps = p.kh * p.kw;
  if (!all_finite(w, p.c_out * p.c_in * taps)) return false;
  float* wpk = ws;
  const int64_t packed = packed_floats(q.c_out, q.c_in, taps);
  std::fill(wpk, wpk + packed, 0.0f);
  // q's output channel c (= p's input channel), input channel o, tap t reads
  // w[o, c, taps-1-t] (the 180-degree rotation).
  for (int64_t c = 0; c < q.c_out; ++c)
    for (int64_t o = 0; o < q.c_in; ++o)
      for (int64_t t = 0; t < taps; ++t)
        wpk[(((c / kDirectOB) * q.c_in + o) * taps + t) * kDirectOB + c % kDirectOB] =
            w[(o * p.c_in + c) * taps + (taps - 1 - t)];
  return run_forward(q, gy, wpk, nullptr, gx, ws + packed, threads);
}

bool conv2d_direct_s1_backward_weights(const Conv2dParams& p, const float* gy, const float* x,
                                       float* gw, float* gbias, float* ws, int threads) {
  const Geom g = geom(p);
  const DirectS1Impl& k = impl();
  const std::vector<int64_t> off = tap_offsets(p, g);
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t gw_size = p.c_out * p.c_in * g.taps;
  // Images are summed in fixed ranges, each into its own double partial;
  // the partials are then added in chunk order.
  const int64_t chunks = wgrad_chunks(p);
  double* partial = reinterpret_cast<double*>(ws);
  float* thread_ws = ws + 2 * chunks * gw_size;
  const int64_t group = wgrad_group(g);
  const int64_t xs = p.c_in * g.plane, gs = kDirectOB * g.len;  // per-image strides
  const int64_t per_thread = group * (xs + gs);
  uint32_t probe = 0;
#pragma omp parallel num_threads(threads) reduction(max : probe)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float* xpad = thread_ws + tid * per_thread;
    float* gflat = xpad + group * xs;
    float s[kDirectOB * kDirectTapBlock];
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      double* part = partial + ch * gw_size;
      std::fill(part, part + gw_size, 0.0);
      const int64_t n_end = (ch + 1) * p.n / chunks;
      for (int64_t n0 = ch * p.n / chunks; n0 < n_end; n0 += group) {
        const int64_t cnt = std::min(group, n_end - n0);
        for (int64_t i = 0; i < cnt; ++i)
          probe = std::max(probe, pad_planes(p, g, x + (n0 + i) * p.c_in * hw_in, xpad + i * xs));
        for (int64_t b = 0; b < g.blocks; ++b) {
          const int64_t nob = std::min(kDirectOB, p.c_out - b * kDirectOB);
          // gy rows on the padded-width grid, zeros in the dropped columns,
          // past the last row and in the rows of missing channels.
          std::fill(gflat, gflat + cnt * gs, 0.0f);
          for (int64_t i = 0; i < cnt; ++i)
            for (int64_t ob = 0; ob < nob; ++ob) {
              const float* src = gy + ((n0 + i) * p.c_out + b * kDirectOB + ob) * hw_out;
              for (int64_t r = 0; r < p.h_out; ++r)
                probe = std::max(probe, copy_probe(src + r * p.w_out,
                                                   gflat + i * gs + ob * g.len + r * g.wp, p.w_out));
            }
          for (int64_t c = 0; c < p.c_in; ++c)
            for (int64_t t0 = 0; t0 < g.taps; t0 += kDirectTapBlock) {
              const int nt = static_cast<int>(std::min<int64_t>(kDirectTapBlock, g.taps - t0));
              k.wgrad_pass(cnt, g.len, gflat, gs, g.len, xpad + c * g.plane, xs,
                           off.data() + t0, nt, s);
              for (int64_t ob = 0; ob < nob; ++ob)
                for (int j = 0; j < nt; ++j)
                  part[((b * kDirectOB + ob) * p.c_in + c) * g.taps + t0 + j] +=
                      s[ob * kDirectTapBlock + j];
            }
        }
      }
    }
#pragma omp for schedule(static)
    for (int64_t e = 0; e < gw_size; ++e) {
      double acc = 0.0;
      for (int64_t ch = 0; ch < chunks; ++ch) acc += partial[ch * gw_size + e];
      gw[e] = static_cast<float>(acc);
    }
  }
  if (probe >= kNonFinite) return false;
  if (gbias) conv2d_bias_backward(p, gy, gbias);
  return true;
}

}  // namespace striate::cpu
