// Validation helpers shared by the op-layer files (private to src/ops).
#pragma once

#include <cstdint>
#include <vector>

#include <string>

#include "striate/errors.h"
#include "striate/ops.h"
#include "striate/shape.h"

namespace striate::ops {

// Bound on every size-like scalar argument (stride, padding, dilation,
// kernel size, ...). Anything larger cannot describe a tensor that fits in
// memory, and the bound keeps all index arithmetic far from int64 overflow.
constexpr int64_t kMaxScalar = int64_t{1} << 40;

void check_rank(const char* op, const char* name, const Shape& s, size_t rank,
                const char* layout);
// Value must be in [lo, kMaxScalar].
void check_scalar(const char* op, const char* name, int64_t v, int64_t lo);
// Both halves of an (h, w) argument such as stride or padding.
void check_pair(const char* op, const char* name, int64_t h, int64_t w, int64_t lo);
// Every dimension of s must be >= 1 except those listed as possibly empty.
void check_nonempty(const char* op, const char* name, const Shape& s,
                    size_t first_dim);

// Per-thread scratch owned by the op layer and reused across calls, so
// steady-state training allocates nothing; thread-local so concurrent calls
// from several Python threads never share it.
float* workspace_floats(int64_t count);

// A loss's reduction argument: "mean", "sum" or "none" (ValueError otherwise).
Reduction parse_reduction(const char* op, const std::string& reduction);

}  // namespace striate::ops
