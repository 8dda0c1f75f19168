// Baseline (portable) level of the small-batch linear (gemv_isa.h): a 4-lane
// array per accumulator, which the compiler maps onto SSE2 registers on
// x86-64; separate multiply and add (no FMA at this level).
#include <cstring>

#include "gemv_isa.h"
#include "striate/isa.h"

namespace striate::cpu {
namespace {

struct VBase {
  struct reg {
    float v[4];
  };
  static constexpr int L = 4, R = 4, X = 2;
  static reg zero() { return reg{{0.0f, 0.0f, 0.0f, 0.0f}}; }
  static reg load(const float* p) {
    reg r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static reg load_tail(const float* p, int n) {
    reg r = zero();
    std::memcpy(r.v, p, sizeof(float) * static_cast<size_t>(n));
    return r;
  }
  static reg fma(reg a, reg b, reg c) {
    for (int l = 0; l < 4; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
  }
  static float sum(reg a) { return (a.v[0] + a.v[2]) + (a.v[1] + a.v[3]); }
};

}  // namespace

const GemvImpl gemv_baseline_impl = {"gemv_4x2_baseline", gemv_rows<VBase>};

const GemvImpl& gemv_impl() {
  switch (isa_selected()) {
#ifdef STRIATE_HAVE_X86_ISA
    case Isa::avx512: return gemv_avx512_impl;
    case Isa::avx2: return gemv_avx2_impl;
#endif
    default: return gemv_baseline_impl;
  }
}

}  // namespace striate::cpu
