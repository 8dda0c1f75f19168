// im2col + GEMM convolution. Per image and group, the receptive fields are
// unrolled into a (C_g*KH*KW) x (Ho*Wo) column matrix so the convolution is
// one GEMM: y_g[Co_g x HoWo] = W_g[Co_g x C_g*KH*KW] * col. A 1x1, stride-1,
// unpadded convolution is already in that form and skips the copy.
//
// Forward: the column matrix is never stored. One batched GEMM (GemmBatch
// in sgemm_isa.h) spans all images' columns, and its packing gathers each B
// panel straight from x (GemmBatch::im2col, implicit GEMM), so the column
// matrix (29 MB for ResNet-18's 3x3/2 layer at batch 16, 118 MB for its
// 7x7/2 stem) is neither written nor read back. Measured on an AVX-512
// Zen 4, 2 threads, batch 16, against the stored matrix, alternating
// processes: 3x3/2 layer 9.96 vs 11.14 ms, stem 27 vs 37, LeNet conv2
// 0.36 vs 0.67, AlexNet conv1 16.0 vs 18.8, 1x1/2 512->1024 equal (17.5);
// at STRIATE_ISA=avx2 (scalar gathers) 12.4 vs 12.7, 33-37 vs 37-38,
// 0.49 vs 0.67, 18.1 vs 20.2, 18.6 vs 18.4; portable 145 vs 153.
// Backward: images go through in blocks (block_images). Backward-data's
// column gradients of a block lie side by side -- row r holds image 0's
// Ho*Wo columns, then image 1's, ... -- so a block is one batched GEMM
// whose columns span all its images (a 7x7 plane is not a 49-column GEMM)
// and the weights are packed once per block. Backward-weights sums the
// images of a block inside one GEMM (reduce) and the blocks with beta = 1,
// in image order: the block size depends on the shape only, never on the
// thread count, so results are bitwise reproducible.
#include <algorithm>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "conv_common.h"
#include "sgemm_isa.h"
#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

bool is_pointwise(const Conv2dParams& p) {
  return p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.pad_top == 0 && p.pad_left == 0 && p.h_out == p.h_in &&
         p.w_out == p.w_in;
}

int64_t col_floats(const Conv2dParams& p) {
  return (p.c_in / p.groups) * p.kh * p.kw * p.h_out * p.w_out;
}

// Images per block: at least ~1024 GEMM columns, so that packing the
// weights is amortized; up to ~4096 while the column buffer stays within
// 256K floats (1 MB, one core's L2: the GEMM reads it right after im2col
// wrote it); never a buffer above 4M floats (16 MB) unless one image alone
// needs more.
int64_t block_images(const Conv2dParams& p) {
  const int64_t hw_out = p.h_out * p.w_out, per_image = col_floats(p);
  int64_t nb = std::max((1024 + hw_out - 1) / hw_out,
                        std::min((4096 + hw_out - 1) / hw_out, (int64_t{1} << 18) / per_image));
  nb = std::min(nb, std::max<int64_t>(1, (int64_t{1} << 22) / per_image));
  return std::max<int64_t>(1, std::min(nb, p.n));
}

// d[ow] = xr[2 * ow] for ow in [lo, hi), xr[q] readable for q < avail. The
// stride-2 gather of a downsampling layer (ResNet's 3x3/2 and 1x1/2): as a
// scalar loop it was ~15% of a 3x3/2 layer's forward profile; SSE2 (every
// x86-64) takes the even lanes of two loads in one shuffle. Loads stop
// where they would read past the input row's last needed element.
inline void gather_stride2(const float* xr, int64_t lo, int64_t hi, int64_t avail, float* d) {
  int64_t ow = lo;
#ifdef __SSE2__
  for (; ow + 4 <= hi && 2 * ow + 8 <= avail; ow += 4) {
    const __m128 a = _mm_loadu_ps(xr + 2 * ow), b = _mm_loadu_ps(xr + 2 * ow + 4);
    _mm_storeu_ps(d + ow, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
  }
#endif
  for (; ow < hi; ++ow) d[ow] = xr[2 * ow];
}

// Row (c*KH + i)*KW + j of the column matrix of one image:
// dst[oh*Wo + ow] = x[c, oh*sh + i*dh - pt, ow*sw + j*dw - pl] (zero outside
// the input), xp pointing at channel c. Plain loops: LeNet's rows are 10
// floats, too short for library calls to pay off.
void im2col_row(const Conv2dParams& p, const float* xp, int64_t i, int64_t j, float* dst) {
  const int64_t off_h = i * p.dil_h - p.pad_top, off_w = j * p.dil_w - p.pad_left;
  const Range rh = valid_range(off_h, p.stride_h, p.h_in, p.h_out);
  const Range rw = valid_range(off_w, p.stride_w, p.w_in, p.w_out);
  for (int64_t q = 0; q < rh.lo * p.w_out; ++q) dst[q] = 0.0f;
  for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
    float* d = dst + oh * p.w_out;
    const float* xr = xp + (oh * p.stride_h + off_h) * p.w_in + off_w;
    for (int64_t ow = 0; ow < rw.lo; ++ow) d[ow] = 0.0f;
    if (p.stride_w == 1)
      for (int64_t ow = rw.lo; ow < rw.hi; ++ow) d[ow] = xr[ow];
    else if (p.stride_w == 2)
      gather_stride2(xr, rw.lo, rw.hi, p.w_in - off_w, d);
    else
      for (int64_t ow = rw.lo; ow < rw.hi; ++ow) d[ow] = xr[ow * p.stride_w];
    for (int64_t ow = rw.hi; ow < p.w_out; ++ow) d[ow] = 0.0f;
  }
  for (int64_t q = rh.hi * p.w_out; q < p.h_out * p.w_out; ++q) dst[q] = 0.0f;
}

// Column matrices of images [n0, n0 + nb), group g, one image's matrix
// after another: col[b, r, q] (backward-weights; the forward gathers its
// columns inside the GEMM).
void im2col_block(const Conv2dParams& p, const float* x, int64_t n0, int64_t nb, int64_t g,
                  float* col) {
  const int64_t rows = p.c_in / p.groups * p.kh * p.kw;
  const int64_t cin_g = p.c_in / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t c = 0; c < cin_g; ++c) {
      const float* xp = x + ((n0 + b) * p.c_in + g * cin_g + c) * hw_in;
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          const int64_t r = (c * p.kh + i) * p.kw + j;
          im2col_row(p, xp, i, j, col + (b * rows + r) * hw_out);
        }
    }
}

// The adjoint of im2col for images [n0, n0 + nb), group g: gx[c, ...] = sum
// of the col entries that copied it. One thread per (image, channel), which
// owns every row that writes into its plane.
void col2im_block(const Conv2dParams& p, const float* col, int64_t n0, int64_t nb, int64_t g,
                  float* gx) {
  const int64_t cin_g = p.c_in / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t c = 0; c < cin_g; ++c) {
      float* gxp = gx + ((n0 + b) * p.c_in + g * cin_g + c) * hw_in;
      std::fill(gxp, gxp + hw_in, 0.0f);
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          const float* src = col + (((c * p.kh + i) * p.kw + j) * nb + b) * hw_out;
          const int64_t off_h = i * p.dil_h - p.pad_top, off_w = j * p.dil_w - p.pad_left;
          const Range rh = valid_range(off_h, p.stride_h, p.h_in, p.h_out);
          const Range rw = valid_range(off_w, p.stride_w, p.w_in, p.w_out);
          for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
            float* gr = gxp + (oh * p.stride_h + off_h) * p.w_in + off_w;
            const float* s = src + oh * p.w_out;
            for (int64_t ow = rw.lo; ow < rw.hi; ++ow) gr[ow * p.stride_w] += s[ow];
          }
        }
    }
}

}  // namespace

int64_t conv2d_im2col_workspace(const Conv2dParams& p) {
  if (is_pointwise(p)) return 0;
  return block_images(p) * col_floats(p);
}

void conv2d_im2col(const Conv2dParams& p, const float* x, const float* w,
                   const float* bias, float* y) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t kdim = cin_g * p.kh * p.kw;
  // y_g[n] = W_g * col[n] for all images in one batched GEMM, bias and ReLU
  // fused. The column matrix is never stored: the GEMM gathers its B panels
  // from x (GemmBatch::im2col), or reads x in place when pointwise.
  GemmParams gp;
  gp.m = cout_g, gp.n = hw_out, gp.k = kdim;
  gp.lda = kdim, gp.ldb = hw_out, gp.ldc = hw_out;
  GemmBatch bt;
  bt.count = p.n;
  bt.stride_b = p.c_in * hw_in, bt.stride_c = p.c_out * hw_out;
  if (!is_pointwise(p)) bt.im2col = &p;
  for (int64_t g = 0; g < p.groups; ++g) {
    GemmEpilogue ep;
    ep.row_bias = bias ? bias + g * cout_g : nullptr;
    ep.relu = p.relu;
    sgemm_batched(gp, bt, ep, w + g * cout_g * kdim, x + g * cin_g * hw_in,
                  y + g * cout_g * hw_out);
  }
}

void conv2d_im2col_backward_data(const Conv2dParams& p, const float* gy,
                                 const float* w, float* gx, float* workspace) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t kdim = cin_g * p.kh * p.kw;
  const bool pointwise = is_pointwise(p);
  // gcol[n] = W_g^T * gy_g[n] for every image of the block (straight into
  // gx when pointwise), then scattered back by col2im.
  GemmParams gp;
  gp.m = kdim, gp.n = hw_out, gp.k = cout_g;
  gp.trans_a = true;
  gp.lda = kdim, gp.ldb = hw_out;
  GemmBatch bt;
  bt.stride_b = p.c_out * hw_out;
  const int64_t nb = pointwise ? p.n : block_images(p);
  for (int64_t n0 = 0; n0 < p.n; n0 += nb)
    for (int64_t g = 0; g < p.groups; ++g) {
      bt.count = std::min(nb, p.n - n0);
      float* gcol = pointwise ? gx + (n0 * p.c_in + g * cin_g) * hw_in : workspace;
      gp.ldc = pointwise ? hw_out : bt.count * hw_out;
      bt.stride_c = pointwise ? p.c_in * hw_in : hw_out;
      sgemm_batched(gp, bt, GemmEpilogue{}, w + g * cout_g * kdim,
                    gy + (n0 * p.c_out + g * cout_g) * hw_out, gcol);
      if (!pointwise) col2im_block(p, gcol, n0, bt.count, g, gx);
    }
}

void conv2d_im2col_backward_weights(const Conv2dParams& p, const float* gy,
                                    const float* x, float* gw, float* gbias,
                                    float* workspace) {
  const int64_t cin_g = p.c_in / p.groups, cout_g = p.c_out / p.groups;
  const int64_t hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
  const int64_t kdim = cin_g * p.kh * p.kw;
  const bool pointwise = is_pointwise(p);
  if (p.n == 0) std::fill(gw, gw + p.c_out * kdim, 0.0f);
  // gW_g[Co_g x kdim] (+)= sum over the block's images of gy_g[n] * col[n]^T:
  // one GEMM whose depth is the block's images' planes end to end.
  GemmParams gp;
  gp.m = cout_g, gp.n = kdim, gp.k = hw_out;
  gp.trans_b = true;
  gp.lda = hw_out, gp.ldc = kdim;
  GemmBatch bt;
  bt.reduce = true;
  bt.stride_a = p.c_out * hw_out;
  const int64_t nb = pointwise ? p.n : block_images(p);
  for (int64_t n0 = 0; n0 < p.n; n0 += nb)
    for (int64_t g = 0; g < p.groups; ++g) {
      bt.count = std::min(nb, p.n - n0);
      const float* col = x + (n0 * p.c_in + g * cin_g) * hw_in;
      gp.ldb = hw_out, bt.stride_b = p.c_in * hw_in;
      if (!pointwise) {
        // Image-major: the GEMM packs op(B) = col^T by transposing 16 rows
        // at a time, which are then HoWo floats apart instead of nb * HoWo
        // (measured 30 vs 34 ms for 256 channels @14, batch 16, one thread).
        im2col_block(p, x, n0, bt.count, g, workspace);
        col = workspace;
        bt.stride_b = kdim * hw_out;
      }
      gp.beta = n0 == 0 ? 0.0f : 1.0f;
      sgemm_batched(gp, bt, GemmEpilogue{}, gy + (n0 * p.c_out + g * cout_g) * hw_out, col,
                    gw + g * cout_g * kdim);
    }
  if (gbias) conv2d_bias_backward(p, gy, gbias);
}

}  // namespace striate::cpu
