// Local response normalization across channels of x viewed as (n, c, spatial):
//
//   d_c = k + alpha / size * sum_{c' = c - lo}^{c + hi} x_{c'}^2,   lo = size / 2,
//   y_c = x_c * d_c^(-beta)                                        hi = (size - 1) / 2
//
// with channels outside [0, C) contributing 0.
//
// Layout of the work: one thread owns a block of up to kBlock spatial columns
// of one image and walks the channels, keeping the window sums of the whole
// block in small stack arrays (inner loops contiguous over the block, no heap
// allocation). The window sum slides: entering the next channel adds one
// square and drops one, so the cost is O(C) per column for any size. Squares
// of floats are exact in double, and sums are accumulated in double.
//
// Non-finite values: a sliding sum that once saw an Inf or NaN stays
// non-finite, while the true window sums further on do not. The fast path
// therefore checks its accumulators at the end of a block and, if any is
// non-finite, recomputes the block with accumulators that count the Inf/NaN
// terms in the window separately (the exact semantics of summing each window
// from scratch, as the reference and PyTorch do).
#include <cmath>
#include <cstdint>
#include <limits>

#include "striate/kernels_cpu.h"

namespace striate::cpu {
namespace {

constexpr int64_t kBlock = 64;

// Plain double accumulator (fast path).
struct FastSum {
  double s = 0.0;
  void add(double v) { s += v; }
  void sub(double v) { s -= v; }
  double value() const { return s; }
  bool finite() const { return std::isfinite(s); }
};

// Accumulator whose value is that of summing the current window directly:
// Inf/NaN terms are counted rather than added, so removing them restores a
// finite sum.
struct SafeSum {
  double s = 0.0;
  int64_t nan = 0, pinf = 0, ninf = 0;
  void add(double v) {
    if (std::isnan(v)) ++nan;
    else if (std::isinf(v)) ++(v > 0 ? pinf : ninf);
    else s += v;
  }
  void sub(double v) {
    if (std::isnan(v)) --nan;
    else if (std::isinf(v)) --(v > 0 ? pinf : ninf);
    else s -= v;
  }
  double value() const {
    if (nan > 0 || (pinf > 0 && ninf > 0)) return std::numeric_limits<double>::quiet_NaN();
    if (pinf > 0) return std::numeric_limits<double>::infinity();
    if (ninf > 0) return -std::numeric_limits<double>::infinity();
    return s;
  }
  bool finite() const { return true; }
};

inline double sq(float v) {
  const double d = v;
  return d * d;
}

// Geometry and constants shared by the forward and backward passes.
struct Lrn {
  int64_t c, sp, lo, hi;
  double k, a, beta;  // a = alpha / size

  explicit Lrn(const LrnParams& p)
      : c(p.c), sp(p.spatial), lo(p.size / 2), hi((p.size - 1) / 2), k(p.k),
        a(static_cast<double>(p.alpha) / static_cast<double>(p.size)), beta(p.beta) {}

  // d from a window sum of squares; rounding in the sliding sum can leave a
  // tiny negative value where the true sum is 0, which is clamped (NaN passes).
  double denom(double s) const { return k + a * (s < 0.0 ? 0.0 : s); }

  // Window sums of one block before channel 0: channels [0, hi).
  template <class Acc>
  void init(Acc* acc, const float* x, int64_t len) const {
    for (int64_t j = 0; j < len; ++j) acc[j] = Acc{};
    const int64_t top = hi < c ? hi : c;
    for (int64_t cc = 0; cc < top; ++cc) {
      const float* xr = x + cc * sp;
      for (int64_t j = 0; j < len; ++j) acc[j].add(sq(xr[j]));
    }
  }

  // Window sums of channel i-1 -> channel i.
  template <class Acc>
  void slide(Acc* acc, const float* x, int64_t len, int64_t i) const {
    if (i + hi < c) {
      const float* xr = x + (i + hi) * sp;
      for (int64_t j = 0; j < len; ++j) acc[j].add(sq(xr[j]));
    }
    if (i - lo - 1 >= 0) {
      const float* xr = x + (i - lo - 1) * sp;
      for (int64_t j = 0; j < len; ++j) acc[j].sub(sq(xr[j]));
    }
  }
};

template <class Acc>
bool all_finite(const Acc* acc, int64_t len) {
  bool ok = true;
  for (int64_t j = 0; j < len; ++j) ok = ok && acc[j].finite();
  return ok;
}

// Forward on one block: x, y point at column s0 of channel 0 of one image.
template <class Acc>
bool lrn_block(const Lrn& L, const float* x, float* y, int64_t len) {
  Acc S[kBlock];
  L.init(S, x, len);
  for (int64_t ch = 0; ch < L.c; ++ch) {
    L.slide(S, x, len, ch);
    const float* xr = x + ch * L.sp;
    float* yr = y + ch * L.sp;
    for (int64_t j = 0; j < len; ++j)
      yr[j] = static_cast<float>(xr[j] * std::pow(L.denom(S[j].value()), -L.beta));
  }
  return all_finite(S, len);
}

// Backward on one block. With t_c = g_c * x_c * d_c^(-beta-1):
//   gx_j = g_j * d_j^(-beta) - 2 alpha beta / size * x_j * T_j,
//   T_j  = sum_{c = j - hi}^{j + lo} t_c            (the transposed window).
// T slides too: it gains t_{j+lo} and loses t_{j-hi-1}. Rather than storing
// the t values of a whole window, three window-sum accumulators run at
// channels j + lo (lead), j (mid) and j - hi - 1 (lag); they perform the
// same operations in the same order, so the lag recomputes bitwise the t it
// removes.
template <class Acc>
bool lrn_backward_block(const Lrn& L, const float* gy, const float* x, float* gx,
                        int64_t len) {
  Acc lead[kBlock], mid[kBlock], lag[kBlock], T[kBlock];
  L.init(lead, x, len);
  L.init(mid, x, len);
  L.init(lag, x, len);
  for (int64_t j = 0; j < len; ++j) T[j] = Acc{};
  const double coef = 2.0 * L.a * L.beta;
  const double e1 = -L.beta - 1.0;

  auto t_add = [&](Acc* acc, int64_t ch, bool remove) {
    const float* xr = x + ch * L.sp;
    const float* gr = gy + ch * L.sp;
    for (int64_t j = 0; j < len; ++j) {
      const double t = static_cast<double>(gr[j]) * xr[j] *
                       std::pow(L.denom(acc[j].value()), e1);
      if (remove) T[j].sub(t);
      else T[j].add(t);
    }
  };

  // T before channel 0 holds t over [0, lo).
  const int64_t pre = L.lo < L.c ? L.lo : L.c;
  for (int64_t ch = 0; ch < pre; ++ch) {
    L.slide(lead, x, len, ch);
    t_add(lead, ch, false);
  }
  for (int64_t ch = 0; ch < L.c; ++ch) {
    const int64_t in = ch + L.lo, out = ch - L.hi - 1;
    if (in < L.c) {
      L.slide(lead, x, len, in);
      t_add(lead, in, false);
    }
    if (out >= 0) {
      L.slide(lag, x, len, out);
      t_add(lag, out, true);
    }
    L.slide(mid, x, len, ch);
    const float* xr = x + ch * L.sp;
    const float* gr = gy + ch * L.sp;
    float* outr = gx + ch * L.sp;
    for (int64_t j = 0; j < len; ++j) {
      const double d = L.denom(mid[j].value());
      outr[j] = static_cast<float>(gr[j] * std::pow(d, -L.beta) -
                                   coef * xr[j] * T[j].value());
    }
  }
  return all_finite(lead, len) && all_finite(mid, len) && all_finite(lag, len) &&
         all_finite(T, len);
}

}  // namespace

void local_response_norm(const LrnParams& p, const float* x, float* y) {
  const Lrn L(p);
  const int64_t blocks = (p.spatial + kBlock - 1) / kBlock;
  const int64_t plane = p.c * p.spatial;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t s0 = b * kBlock;
      const int64_t len = p.spatial - s0 < kBlock ? p.spatial - s0 : kBlock;
      const float* xb = x + n * plane + s0;
      float* yb = y + n * plane + s0;
      if (!lrn_block<FastSum>(L, xb, yb, len)) lrn_block<SafeSum>(L, xb, yb, len);
    }
}

void local_response_norm_backward(const LrnParams& p, const float* gy,
                                  const float* x, float* gx) {
  const Lrn L(p);
  const int64_t blocks = (p.spatial + kBlock - 1) / kBlock;
  const int64_t plane = p.c * p.spatial;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t s0 = b * kBlock;
      const int64_t len = p.spatial - s0 < kBlock ? p.spatial - s0 : kBlock;
      const int64_t off = n * plane + s0;
      if (!lrn_backward_block<FastSum>(L, gy + off, x + off, gx + off, len))
        lrn_backward_block<SafeSum>(L, gy + off, x + off, gx + off, len);
    }
}

}  // namespace striate::cpu
