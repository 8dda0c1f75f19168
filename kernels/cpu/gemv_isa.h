// Matrix-vector (small-batch) linear forward, one implementation per ISA
// level; cpu::linear picks it for batches up to kGemvMaxRows.
//
// At batch 1..8 the linear is bound by reading the weight once: the packed
// SGEMM would first copy all of W (VGG-16's fc6: 411 MB) and then use each
// packed value m times. Here every W row is streamed straight from memory
// and dotted with all m rows of x while it is in registers/L1.
//
// Numerics: float32 accumulation like the SGEMM. Each output (i, o) has one
// vector accumulator over k in chunks of L lanes (the last chunk masked),
// reduced across lanes in a fixed order at the end. Its summation order thus
// depends on (in, L) only, never on which register block or thread computes
// it, so results are bitwise identical for any thread count.
#pragma once

#include <algorithm>
#include <cstdint>

namespace striate::cpu {

struct GemvImpl {
  const char* name;
  // y[i*out + o] = (bias ? bias[o] : 0) + dot(w[o, :], x[i, :]) for i < m and
  // o0 <= o < o1 (single-threaded; the caller splits o over threads).
  void (*rows)(int64_t m, int64_t in, int64_t out, int64_t o0, int64_t o1, const float* x,
               const float* w, const float* bias, float* y);
};

// Largest batch that takes the GEMV path. Measured on AVX-512 (1 thread,
// in 4096/25088, out 1000/4096): GEMV is 1.3-1.8x faster than the SGEMM at
// m = 8 and about even at m = 10-12, where the SGEMM's reuse of each packed
// weight across rows catches up; 8 keeps a margin.
constexpr int64_t kGemvMaxRows = 8;

extern const GemvImpl gemv_baseline_impl;
#ifdef STRIATE_HAVE_X86_ISA
extern const GemvImpl gemv_avx2_impl;
extern const GemvImpl gemv_avx512_impl;
#endif

const GemvImpl& gemv_impl();

// The driver shared by the per-ISA files. V supplies: reg, L (lanes), R (W
// rows per register block), X (x rows per block), zero(), load(p),
// load_tail(p, n) (n < L lanes, rest zero), fma(a, b, acc) and sum(reg).
// R * X accumulators + X x-vectors + one W vector must fit the register file.
template <class V, int R, int X>
inline void gemv_block(int64_t in, const float* x, const float* w, float* s /* [R][X] */) {
  typename V::reg acc[R][X];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < X; ++j) acc[r][j] = V::zero();
  int64_t k = 0;
  for (; k + V::L <= in; k += V::L) {
    typename V::reg xv[X];
    for (int j = 0; j < X; ++j) xv[j] = V::load(x + j * in + k);
    for (int r = 0; r < R; ++r) {
      const typename V::reg wv = V::load(w + r * in + k);
      for (int j = 0; j < X; ++j) acc[r][j] = V::fma(wv, xv[j], acc[r][j]);
    }
  }
  if (k < in) {
    const int n = static_cast<int>(in - k);
    typename V::reg xv[X];
    for (int j = 0; j < X; ++j) xv[j] = V::load_tail(x + j * in + k, n);
    for (int r = 0; r < R; ++r) {
      const typename V::reg wv = V::load_tail(w + r * in + k, n);
      for (int j = 0; j < X; ++j) acc[r][j] = V::fma(wv, xv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < X; ++j) s[r * X + j] = V::sum(acc[r][j]);
}

// Rows of x in groups of up to X (the group loop innermost, so a block of R
// W rows is re-read from L1/L2, not memory, for batches above X).
template <class V, int R>
inline void gemv_rows_r(int64_t m, int64_t in, int64_t out, int64_t o, const float* x,
                        const float* w, const float* bias, float* y) {
  float s[R * V::X];
  for (int64_t i = 0; i < m; i += V::X) {
    const int xx = static_cast<int>(std::min<int64_t>(V::X, m - i));
    const float* xi = x + i * in;
    const float* wo = w + o * in;
    switch (xx) {
      case 1: gemv_block<V, R, 1>(in, xi, wo, s); break;
      case 2: if constexpr (V::X >= 2) gemv_block<V, R, 2>(in, xi, wo, s); break;
      case 3: if constexpr (V::X >= 3) gemv_block<V, R, 3>(in, xi, wo, s); break;
      default: if constexpr (V::X >= 4) gemv_block<V, R, 4>(in, xi, wo, s); break;
    }
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < xx; ++j)
        y[(i + j) * out + o + r] = (bias ? bias[o + r] : 0.0f) + s[r * xx + j];
  }
}

template <class V>
void gemv_rows(int64_t m, int64_t in, int64_t out, int64_t o0, int64_t o1, const float* x,
               const float* w, const float* bias, float* y) {
  static_assert(V::X >= 1 && V::X <= 4, "x-row group of 1..4");
  int64_t o = o0;
  for (; o + V::R <= o1; o += V::R) gemv_rows_r<V, V::R>(m, in, out, o, x, w, bias, y);
  for (; o < o1; ++o) gemv_rows_r<V, 1>(m, in, out, o, x, w, bias, y);
}

}  // namespace striate::cpu
