// Tensor ops the nn layer composes graphs with: copy, add, mul (with a
// per-(outer) broadcast for squeeze-and-excitation gating), cat and dropout.
// All are bandwidth bound: flat loops the compiler vectorizes, OpenMP static
// schedules over independent outputs, small tensors kept off the thread pool.
#include <cassert>
#include <cmath>
#include <cstring>

#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {
constexpr int64_t kParallelMin = int64_t{1} << 15;

// splitmix64 (Steele, Lea & Flood 2014; the seeding generator of
// xoshiro): the i-th output of the generator seeded with `seed` is
// mix(seed + (i + 1) * gamma). Being a function of (seed, i) alone, the
// dropout mask does not depend on the thread count or on how the loop is
// split, and the backward regenerates it instead of storing it.
constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;
inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Lane-parallel double sum of a[i] * b[i]: 8 independent partial sums in a
// fixed order (vectorizable without reassociating), combined pairwise.
inline double dot_f64(int64_t n, const float* a, const float* b) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j)
      acc[j] += static_cast<double>(a[i + j]) * static_cast<double>(b[i + j]);
  for (int j = 0; i < n; ++i, ++j) acc[j] += static_cast<double>(a[i]) * b[i];
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}
}  // namespace

void tensor_copy(int64_t n, const float* x, float* y) {
  // Chunks of 64 KiB so two threads can share the copy of a big activation.
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= 4 * kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * kChunk, len = n - lo < kChunk ? n - lo : kChunk;
    std::memcpy(y + lo, x + lo, static_cast<size_t>(len) * sizeof(float));
  }
}

void add(int64_t n, const float* a, const float* b, float* y) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void mul(int64_t outer, int64_t inner, const float* a, const float* b, float* y) {
  if (inner == 1) {
#pragma omp parallel for simd schedule(static) if (outer >= kParallelMin)
    for (int64_t i = 0; i < outer; ++i) y[i] = a[i] * b[i];
    return;
  }
#pragma omp parallel for schedule(static) if (outer * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    const float s = b[o];
    const float* ao = a + o * inner;
    float* yo = y + o * inner;
    for (int64_t i = 0; i < inner; ++i) yo[i] = ao[i] * s;
  }
}

void mul_backward(int64_t outer, int64_t inner, const float* gy, const float* a,
                  const float* b, float* ga, float* gb) {
  if (inner == 1) {
#pragma omp parallel for simd schedule(static) if (outer >= kParallelMin)
    for (int64_t i = 0; i < outer; ++i) {
      const float g = gy[i];
      ga[i] = g * b[i];
      gb[i] = g * a[i];
    }
    return;
  }
  // One thread owns each gb[o] and sums its H*W products in a fixed order.
#pragma omp parallel for schedule(static) if (outer * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    const float s = b[o];
    const float* go = gy + o * inner;
    float* gao = ga + o * inner;
    for (int64_t i = 0; i < inner; ++i) gao[i] = go[i] * s;
    gb[o] = static_cast<float>(dot_f64(inner, go, a + o * inner));
  }
}

// One work item is one contiguous block: input k's row o. The destination
// offset is recomputed per item (count is small: Inception concatenates 4,
// DenseNet a few dozen), which keeps the loop a single static schedule.
void cat(int64_t outer, int64_t count, const float* const* xs,
         const int64_t* widths, float* y) {
  int64_t row = 0;
  for (int64_t k = 0; k < count; ++k) row += widths[k];
  const int64_t items = outer * count;
#pragma omp parallel for schedule(static) if (outer * row >= kParallelMin && items > 1)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t o = it / count, k = it % count;
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) off += widths[j];
    std::memcpy(y + o * row + off, xs[k] + o * widths[k],
                static_cast<size_t>(widths[k]) * sizeof(float));
  }
}

void cat_backward(int64_t outer, int64_t count, const float* gy,
                  const int64_t* widths, float* const* gxs) {
  int64_t row = 0;
  for (int64_t k = 0; k < count; ++k) row += widths[k];
  const int64_t items = outer * count;
#pragma omp parallel for schedule(static) if (outer * row >= kParallelMin && items > 1)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t o = it / count, k = it % count;
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) off += widths[j];
    std::memcpy(gxs[k] + o * widths[k], gy + o * row + off,
                static_cast<size_t>(widths[k]) * sizeof(float));
  }
}

// keep[i] = u >= p with u = (top 24 bits of the i-th splitmix64 output) / 2^24,
// compared exactly as the integer test top24 >= ceil(p * 2^24) (p * 2^24 is
// exact in double). The multiply by 0 for dropped elements, not a select,
// keeps NaN/Inf inputs NaN as in torch (input * mask / (1 - p)); the factor
// is scale's bits masked by the comparison: a branch (which the compiler
// makes of any select) mispredicts on every other element at p = 0.5.
void dropout(int64_t n, double p, float scale, uint64_t seed, const float* x,
             float* y) {
  assert(p >= 0.0 && p <= 1.0);
  const uint64_t threshold = static_cast<uint64_t>(std::ceil(p * 16777216.0));
#pragma omp parallel for schedule(static) if (n >= kParallelMin / 4)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t u = splitmix64_mix(seed + (static_cast<uint64_t>(i) + 1) * kGamma) >> 40;
    // u, threshold < 2^25: the sign of u - threshold is the drop bit.
    const uint32_t keep = ~static_cast<uint32_t>(static_cast<int64_t>(u - threshold) >> 63);
    uint32_t bits;
    std::memcpy(&bits, &scale, sizeof bits);
    bits &= keep;
    float factor;
    std::memcpy(&factor, &bits, sizeof factor);
    y[i] = x[i] * factor;
  }
}

}  // namespace striate::cpu
