// Direct convolution vectorized over output channels (private to
// kernels/cpu): the driver is conv2d_direct_ocv.cpp, the register-blocked
// row kernel is per ISA level (AVX-512 only so far: conv2d_direct_ocv_avx512.cpp).
//
// Why. The im2col GEMM puts output pixels in the SIMD lanes, so its B panel
// has to be gathered from x (a permute per vector at stride 2) and written
// once per column block; on ResNet-18's 3x3/2 layer and the 1x1 layers that
// copy is 10-15% of the call. Here the lanes hold 16 output channels and
// the pixels are broadcast, so x is read where it lies -- one scalar
// broadcast per (pixel, tap), whatever the stride -- and only the weights
// (small, once per call) are repacked. It is the transposed GEMM
// y^T[pixel, oc] = sum_k x_col[k, pixel] * w^T[k, oc] with A read in place.
//
// Register block: R output rows x PB columns x OCV vectors of 16 output
// channels, R*PB*OCV <= 28 zmm accumulators (+ OCV weight vectors; the
// broadcast is the FMA's memory operand). Per tap: OCV weight loads and
// R*PB broadcasts feed R*PB*OCV FMAs, the whole reduction (C_in * kh * kw)
// stays in registers, and the block is transposed (16x16 in registers) into
// NCHW rows with bias and ReLU on the way out.
#pragma once

#include <cstdint>

namespace striate::cpu {

constexpr int64_t kOcvLanes = 16;       // output channels per vector
constexpr int64_t kOcvBlock = 32;       // output channels per weight block (OCV = 2)

// The cache lines of the next task's input rows, prefetched a few at a time
// from inside the register blocks: the task reads its input from memory
// once (x streams from DRAM), and issued at the start of the task, a
// thousand prefetches mostly fall on full miss buffers and are dropped
// (measured: a 72 KB burst cut a later copy's misses by a third, the same
// prefetches spread over the compute by four fifths).
struct OcvPrefetch {
  const char* chan = nullptr;             // current channel's first row
  int64_t chan_bytes = 0, row_bytes = 0;  // strides between channels / rows
  int64_t rows = 0, lines = 0;            // rows per channel, lines per row
  int64_t row = 0, line = 0, left = 0;    // position; lines still to issue
  int per_step = 0;                       // lines per issue() call
  __attribute__((always_inline)) void issue() {
    for (int t = 0; t < per_step && left > 0; ++t, --left) {
      __builtin_prefetch(chan + row * row_bytes + line * 64, 0, 2);
      if (++line == lines) {
        line = 0;
        if (++row == rows) row = 0, chan += chan_bytes;
      }
    }
  }
};

// One call: `rows` (1 or 2) output rows of one image, all w_out columns,
// output channels [oc0, oc0 + oc_valid) of one weight block.
struct DirectOcvRows {
  // x at (channel 0, the first output row's first tap row, column of output
  // 0's first tap): output (r, col), tap (c, i, j) reads
  // x[c*x_cs + r*x_rs + i*x_dh + col*stride_w + j*x_dw].
  const float* x;
  int64_t x_cs, x_rs, x_dh, x_dw;
  int64_t c_in, kh, kw;
  int stride_w;        // 1 or 2
  // Packed weights of the block: w[((c*kh + i)*kw + j)*16*ocv + lane].
  const float* w;
  int ocv;             // vectors per block: 1 or 2
  int64_t oc_valid;    // channels of the block to store (<= 16*ocv)
  const float* bias;   // bias of the block's first channel, or nullptr
  bool relu;
  // y at (block's first channel, first row, column 0).
  float* y;
  int64_t y_cs, y_rs;  // floats between channels / rows of y
  int64_t rows, w_out;
  OcvPrefetch* pf;     // issue() once per input channel of each block, or null
};

using DirectOcvRowsFn = void (*)(const DirectOcvRows& a);

#ifdef STRIATE_HAVE_X86_ISA
void direct_ocv_rows_avx512(const DirectOcvRows& a);
// One weight block: dst[t*16*ocv + lane] = w[lane*k + t] for lanes < valid,
// zero for the others (w: the block's first output channel, OIHW).
void direct_ocv_pack_avx512(const float* w, int64_t k, int64_t valid, int ocv, float* dst);
#endif

}  // namespace striate::cpu
