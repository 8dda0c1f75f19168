// Portable SGEMM microkernel: plain C++ the compiler vectorizes over NR with
// whatever the baseline ISA offers (SSE2 on x86-64).
#include "sgemm_driver.h"

namespace striate::cpu {
namespace {

struct MicroBaseline {
  static constexpr int MR = 4, NR = 16, KC = 256, MC = 128, NC = 1024;
  static constexpr bool kDirectC = false;
  static constexpr int64_t kApack = MC * KC;
  static void run(int64_t kc, const float* __restrict a, const float* __restrict b,
                  int64_t ldb, float* __restrict out) {
    float acc[MR * NR] = {};
    for (int64_t k = 0; k < kc; ++k)
      for (int r = 0; r < MR; ++r) {
        const float av = a[k * MR + r];
        for (int q = 0; q < NR; ++q) acc[r * NR + q] += av * b[k * ldb + q];
      }
    for (int i = 0; i < MR * NR; ++i) out[i] = acc[i];
  }
};

}  // namespace

using MBase = MicroBaseline;
const SgemmImpl sgemm_baseline_impl = {"sgemm_4x16_baseline", MBase::MR, MBase::NR, MBase::KC,
                                       MBase::MC, MBase::NC, MBase::kApack, gemm_entry<MBase>};

}  // namespace striate::cpu
