// Driver of the output-channel-vectorized direct convolution (the kernel
// and why it exists: conv2d_direct_ocv.h): weight packing, the zero-padded
// copy of the input rows a task reads, tasks over (image, row block) and the
// call of the per-ISA row kernel.
//
// Padding. The row kernel reads every tap without bounds checks, so a layer
// with padding reads a zero-padded copy of the rows one task needs (all
// input channels, about 128 KB: it stays in L2 while every weight block
// reuses it); a layer without padding reads x in place. Zeros are only
// multiplied by weights, so only a non-finite weight can turn padding into
// a NaN torch would not have: such a call returns false and the op layer
// runs the exact strided loops.
#include <algorithm>
#include <cstring>

#include "conv2d_direct_ocv.h"
#include "conv_common.h"
#include "striate/isa.h"
#include "striate/kernels_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace striate::cpu {
namespace {

DirectOcvRowsFn rows_fn() {
#ifdef STRIATE_HAVE_X86_ISA
  if (isa_selected() == Isa::avx512) return direct_ocv_rows_avx512;
#endif
  return nullptr;
}

// Input floats (all channels) one task reads, at most: about a quarter of
// a 1 MB L2, shared with the weight block (c_in*kh*kw*32 floats).
constexpr int64_t kTaskFloats = 32 * 1024;
// Packed weights up to this size (half of L2) are read by every task; past
// it, tasks go in runs of kRunFloats of input (see conv2d_direct_ocv).
constexpr int64_t kWeightFloats = 128 * 1024;
constexpr int64_t kRunFloats = 128 * 1024;
constexpr int64_t kSmallInputFloats = 1024 * 1024;
// Largest per-thread copy accepted; past it (kernels dilated to thousands of
// columns) the exact strided loops run instead.
constexpr int64_t kMaxCopyFloats = int64_t{4} << 20;

// Products of sizes saturate: a kernel dilated or padded past 2^40 columns
// (valid, if useless) must not wrap to a small copy size.
int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

struct Geom {
  bool in_place;      // every tap of every output lies inside x
  int64_t row_len;    // floats per input row the kernel reads (w_in in place)
  int64_t rows_blk;   // output rows per task
  int64_t in_rows;    // input rows a task reads
  int64_t copy;       // floats of the per-thread copy (0 in place)
  int64_t task_in;    // input floats one task reads
  int64_t blocks;     // weight blocks of kOcvBlock output channels
  int64_t k;          // reduction length c_in * kh * kw
};

Geom geom(const Conv2dParams& p, int threads) {
  Geom g;
  const int64_t reach_h = (p.h_out - 1) * p.stride_h + (p.kh - 1) * p.dil_h + 1;
  const int64_t reach_w = (p.w_out - 1) * p.stride_w + (p.kw - 1) * p.dil_w + 1;
  g.in_place = p.pad_top <= 0 && p.pad_left <= 0 && reach_h - p.pad_top <= p.h_in &&
               reach_w - p.pad_left <= p.w_in;
  g.row_len = g.in_place ? p.w_in : reach_w;
  const int64_t span = (p.kh - 1) * p.dil_h + 1;  // input rows of one output row
  const int64_t per_row = std::max<int64_t>(1, sat_mul(sat_mul(p.c_in, p.stride_h), g.row_len));
  const int64_t fixed = sat_mul(sat_mul(p.c_in, span), g.row_len);
  g.rows_blk = std::clamp<int64_t>((kTaskFloats - fixed) / per_row + 1, 1, p.h_out);
  // At least 4 tasks per thread, for balance.
  const int64_t spread = std::max<int64_t>(1, p.n * p.h_out / (4 * std::max(threads, 1)));
  g.rows_blk = std::max<int64_t>(1, std::min(g.rows_blk, spread));
  if (g.rows_blk > 1 && g.rows_blk % 2 && g.rows_blk < p.h_out) --g.rows_blk;  // row pairs
  g.in_rows = (g.rows_blk - 1) * p.stride_h + span;
  // Rows a task really reads (a 1x1/2 kernel skips every other row).
  g.task_in = sat_mul(sat_mul(p.c_in, std::min(g.in_rows, g.rows_blk * p.kh)), g.row_len);
  g.copy = g.in_place ? 0 : sat_mul(sat_mul(p.c_in, g.in_rows), g.row_len);
  g.blocks = (p.c_out + kOcvBlock - 1) / kOcvBlock;
  g.k = p.c_in * p.kh * p.kw;
  return g;
}

// Vectors (of 16 channels) in block b: the last block of a c_out that
// leaves <= 16 channels is one vector wide.
int block_ocv(const Conv2dParams& p, int64_t b) {
  return p.c_out - b * kOcvBlock <= kOcvLanes ? 1 : 2;
}

// wpk[b*32*K + k*16*ocv + lane] = w[(32*b + lane)*K + k], zero past c_out:
// a transpose per block (16x16 in registers; ResNet-50's 4 MB layer4 expand
// weights took 0.6 ms as a scalar loop, 6% of the call).
void pack_weights(const Conv2dParams& p, const Geom& g, const float* w, float* wpk,
                  int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < g.blocks; ++b) {
    const int ocv = block_ocv(p, b);
    const int64_t valid = std::min<int64_t>(ocv * kOcvLanes, p.c_out - b * kOcvBlock);
#ifdef STRIATE_HAVE_X86_ISA
    direct_ocv_pack_avx512(w + b * kOcvBlock * g.k, g.k, valid, ocv, wpk + b * kOcvBlock * g.k);
#endif
  }
}

// copy[c][r][s] = x[c][ih0 + r][s - pad_left], zero outside x.
void copy_rows(const Conv2dParams& p, const Geom& g, const float* x, int64_t ih0, float* copy) {
  const int64_t lo = std::clamp<int64_t>(p.pad_left, 0, g.row_len);
  const int64_t hi = std::clamp<int64_t>(p.pad_left + p.w_in, lo, g.row_len);
  for (int64_t c = 0; c < p.c_in; ++c)
    for (int64_t r = 0; r < g.in_rows; ++r) {
      float* row = copy + (c * g.in_rows + r) * g.row_len;
      const int64_t ih = ih0 + r;
      if (ih < 0 || ih >= p.h_in || hi <= lo) {
        std::fill(row, row + g.row_len, 0.0f);
        continue;
      }
      std::fill(row, row + lo, 0.0f);
      std::memcpy(row + lo, x + (c * p.h_in + ih) * p.w_in + (lo - p.pad_left),
                  sizeof(float) * (hi - lo));
      std::fill(row + hi, row + g.row_len, 0.0f);
    }
}

// The stream of the input rows (all channels) task `task` reads, spread
// over about `steps` issue() calls.
OcvPrefetch next_rows(const Conv2dParams& p, const Geom& g, const float* x, int64_t task,
                      int64_t row_blocks, int64_t steps) {
  const int64_t n = task / row_blocks, oh0 = task % row_blocks * g.rows_blk;
  const int64_t top = oh0 * p.stride_h - p.pad_top;
  // A 1x1 kernel reads one row per output row (every other one at stride 2).
  const int64_t step = p.kh == 1 ? p.stride_h : 1;
  const int64_t want = p.kh == 1 ? std::min(g.rows_blk, p.h_out - oh0) : g.in_rows;
  const int64_t lo = std::max<int64_t>(0, top), hi = std::min(p.h_in, top + (want - 1) * step + 1);
  OcvPrefetch pf;
  if (hi <= lo) return pf;
  const int64_t first = lo + (step - (lo - top) % step) % step;  // a row the task reads
  pf.chan = reinterpret_cast<const char*>(x + (n * p.c_in * p.h_in + first) * p.w_in);
  pf.chan_bytes = p.h_in * p.w_in * 4;
  pf.row_bytes = step * p.w_in * 4;
  pf.rows = first < hi ? (hi - 1 - first) / step + 1 : 0;
  pf.lines = (p.w_in * 4 + 63) / 64 + 1;  // rows start anywhere in a line
  if (pf.rows == 0 || p.w_in > 4096) return OcvPrefetch{};  // long rows stream well anyway
  pf.left = p.c_in * pf.rows * pf.lines;
  pf.per_step = static_cast<int>(std::min<int64_t>(64, 2 * pf.left / std::max<int64_t>(1, steps) + 1));
  return pf;
}

}  // namespace

bool conv2d_direct_ocv_applies(const Conv2dParams& p) {
  if (!rows_fn() || p.groups != 1 || p.c_out < kOcvLanes) return false;
  if (p.stride_w != 1 && p.stride_w != 2) return false;
  return geom(p, 1).copy <= kMaxCopyFloats;
}

int64_t conv2d_direct_ocv_workspace(const Conv2dParams& p, int threads) {
  const Geom g = geom(p, threads);
  return g.blocks * kOcvBlock * g.k + std::max(threads, 1) * g.copy;
}

bool conv2d_direct_ocv(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                       float* y, float* workspace, int threads) {
  const DirectOcvRowsFn rows = rows_fn();
  const Geom g = geom(p, threads);
  if (!g.in_place && !all_finite(w, p.c_out * g.k)) return false;
  float* wpk = workspace;
  pack_weights(p, g, w, wpk, threads);
  const int64_t row_blocks = (p.h_out + g.rows_blk - 1) / g.rows_blk;
  const int64_t tasks = p.n * row_blocks;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  // Weights beyond half of L2 (ResNet-50's layer4 expand: 4 MB) would
  // stream from L3 once per task. A thread then takes its tasks in runs
  // whose input fits in half of L2 and, per run, the weights in groups of
  // at most a quarter of L2: every group is read once per run, the run's
  // input once from memory and then from L2.
  const int64_t block_floats = kOcvBlock * g.k;
  int64_t groups = 1, run = tasks;
  if (g.blocks * block_floats > kWeightFloats) {
    groups = std::min(g.blocks, (g.blocks * block_floats + kWeightFloats / 2 - 1) /
                                    (kWeightFloats / 2));
    run = std::max<int64_t>(1, kRunFloats / std::max<int64_t>(1, g.task_in));
  }
  // A small input (ResNet-50 layer4's 7x7 planes: 1.6 MB for the batch)
  // is cheaper to re-read per group than the weights per run: the items
  // then go group-major, each thread a contiguous range of output channels.
  const bool group_major = groups > 1 && p.n * p.c_in * hw_in <= kSmallInputFloats;
  const int64_t per_group = (g.blocks + groups - 1) / groups;
  // issue() calls per (task, group): one per input channel of each tile.
  const int64_t steps = per_group * g.rows_blk * ((p.w_out + 13) / 14) * p.c_in;
#pragma omp parallel num_threads(threads)
  {
    int tid = 0, nth = 1;
#ifdef _OPENMP
    tid = omp_get_thread_num(), nth = omp_get_num_threads();
#endif
    float* copy = wpk + g.blocks * kOcvBlock * g.k + tid * g.copy;
    // Each thread runs a contiguous range of items, so it knows its next
    // task and prefetches that task's input rows (into L2) from inside the
    // register blocks (OcvPrefetch): the copy / the in-place reads then hit
    // cache instead of waiting on memory. Each output is one register
    // block's full reduction, so any thread count gives the same bits.
    //
    // One (weight group, task) item; `next` is the task whose rows to
    // prefetch (-1: none).
    const auto item = [&](int64_t grp, int64_t task, int64_t next) {
      OcvPrefetch pf = next >= 0 ? next_rows(p, g, x, next, row_blocks, steps) : OcvPrefetch{};
      const int64_t n = task / row_blocks, oh0 = task % row_blocks * g.rows_blk;
      const int64_t oh1 = std::min(p.h_out, oh0 + g.rows_blk);
      const int64_t ih0 = oh0 * p.stride_h - p.pad_top;
      DirectOcvRows a{};
      if (g.in_place) {
        a.x = x + n * p.c_in * hw_in + ih0 * p.w_in - p.pad_left;
        a.x_cs = hw_in;
      } else {
        copy_rows(p, g, x + n * p.c_in * hw_in, ih0, copy);
        a.x = copy;
        a.x_cs = g.in_rows * g.row_len;
      }
      a.x_rs = p.stride_h * g.row_len;
      a.x_dh = p.dil_h * g.row_len;
      a.x_dw = p.dil_w;
      a.c_in = p.c_in, a.kh = p.kh, a.kw = p.kw;
      a.stride_w = static_cast<int>(p.stride_w);
      a.relu = p.relu;
      a.pf = pf.left > 0 ? &pf : nullptr;
      a.y_cs = hw_out, a.y_rs = p.w_out, a.w_out = p.w_out;
      const float* x_task = a.x;
      const int64_t b_hi = std::min(g.blocks, (grp + 1) * per_group);
      for (int64_t b = grp * per_group; b < b_hi; ++b) {
        a.w = wpk + b * block_floats;
        a.ocv = block_ocv(p, b);
        a.oc_valid = std::min(kOcvBlock, p.c_out - b * kOcvBlock);
        a.bias = bias ? bias + b * kOcvBlock : nullptr;
        for (int64_t oh = oh0; oh < oh1; oh += 2) {
          a.rows = std::min<int64_t>(2, oh1 - oh);
          a.x = x_task + (oh - oh0) * a.x_rs;
          a.y = y + (n * p.c_out + b * kOcvBlock) * hw_out + oh * p.w_out;
          rows(a);
        }
      }
    };
    if (group_major) {
      const int64_t items = groups * tasks;
      const int64_t i_lo = items * tid / nth, i_hi = items * (tid + 1) / nth;
      for (int64_t i = i_lo; i < i_hi; ++i)
        item(i / tasks, i % tasks, i + 1 < i_hi ? (i + 1) % tasks : -1);
    } else {
      const int64_t t_lo = tasks * tid / nth, t_hi = tasks * (tid + 1) / nth;
      for (int64_t r_lo = t_lo; r_lo < t_hi; r_lo += run) {
        const int64_t r_hi = std::min(t_hi, r_lo + run);
        for (int64_t grp = 0; grp < groups; ++grp)
          for (int64_t task = r_lo; task < r_hi; ++task) {
            // Prefetch the run's next task while the first group passes over
            // it, the next run's first task during the last group's last task.
            int64_t next = -1;
            if (grp == 0 && task + 1 < r_hi) next = task + 1;
            if (grp == groups - 1 && task + 1 == r_hi && r_hi < t_hi) next = r_hi;
            item(grp, task, next);
          }
      }
    }
  }
  return true;
}

const char* conv2d_direct_ocv_kernel_name() {
  return rows_fn() ? "direct_ocv_28acc_avx512" : "none";
}

}  // namespace striate::cpu
