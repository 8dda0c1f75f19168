#include "striate/isa.h"

#include <atomic>
#include <cstdlib>

#include "striate/errors.h"

namespace striate {
namespace {
std::atomic<int> g_selected{-1};

bool cpu_supports(Isa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // libgcc's cpu model also checks XCR0, i.e. that the OS saves the
  // AVX/AVX-512 register state, not only the CPUID bits.
  __builtin_cpu_init();
  switch (isa) {
    case Isa::baseline: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }
  return false;
#else
  return isa == Isa::baseline;
#endif
}
}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa isa_parse(const std::string& name, const char* what) {
  for (Isa i : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (name == isa_name(i)) return i;
  throw_value_error(what, " must be 'baseline', 'avx2' or 'avx512', got '", name, "'");
}

std::vector<Isa> isa_compiled() {
  std::vector<Isa> out{Isa::baseline};
#ifdef STRIATE_HAVE_X86_ISA
  out.push_back(Isa::avx2);
  out.push_back(Isa::avx512);
#endif
  return out;
}

Isa isa_best_supported() {
  Isa best = Isa::baseline;
  for (Isa i : isa_compiled())
    if (cpu_supports(i)) best = i;
  return best;
}

Isa isa_selected() {
  int s = g_selected.load(std::memory_order_relaxed);
  if (s < 0) {
    isa_init_from_env();
    s = g_selected.load(std::memory_order_relaxed);
  }
  return static_cast<Isa>(s);
}

void isa_select(Isa isa) {
  const Isa best = isa_best_supported();
  if (static_cast<int>(isa) > static_cast<int>(best))
    throw_value_error("ISA level '", isa_name(isa), "' is not available here (the best this ",
                      "build and CPU support is '", isa_name(best), "')");
  g_selected.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void isa_init_from_env() {
  const char* env = std::getenv("STRIATE_ISA");
  if (env && *env)
    isa_select(isa_parse(env, "STRIATE_ISA"));
  else
    g_selected.store(static_cast<int>(isa_best_supported()), std::memory_order_relaxed);
}

}  // namespace striate
