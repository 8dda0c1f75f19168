// Portable Winograd GEMM strip: plain C++ the compiler vectorizes over the
// 16 columns with whatever the baseline ISA offers (SSE2 on x86-64).
#include "conv2d_winograd_driver.h"

namespace striate::cpu {
namespace {

struct WinoMicroBaseline : WinoGenericHoriz {
  // 4 x 16 blocks: 64 accumulators, as sgemm_4x16_baseline.
  static void block(int64_t k, const float* __restrict a, const float* __restrict b, int64_t ldb,
                    float* __restrict c, int64_t ldc, int rows) {
    float acc[4][16] = {};
    for (int64_t kk = 0; kk < k; ++kk)
      for (int r = 0; r < 4; ++r) {
        const float av = a[kk * kWinoPanelRows + r];
        for (int q = 0; q < 16; ++q) acc[r][q] += av * b[kk * ldb + q];
      }
    for (int r = 0; r < rows; ++r)
      for (int q = 0; q < 16; ++q) c[r * ldc + q] = acc[r][q];
  }
  static void strip(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                    int rows) {
    for (int r0 = 0; r0 < rows; r0 += 4)
      for (int q0 = 0; q0 < kWinoStrip; q0 += 16)
        block(k, a + r0, b + q0, ldb, c + r0 * ldc + q0, ldc, rows - r0 < 4 ? rows - r0 : 4);
  }
};

}  // namespace

const WinogradImpl winograd_baseline_impl = {"winograd_baseline",
                                             winograd_entry<WinoMicroBaseline>,
                                             wgrad_block_entry<WinoMicroBaseline>,
    filter_run, filter_grad_entry};

}  // namespace striate::cpu
