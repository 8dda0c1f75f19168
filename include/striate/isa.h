// Runtime ISA dispatch. Kernels with ISA-specific variants are compiled once
// per level, each in its own translation unit with its own flags (never the
// host's -march), and the level is chosen once at import from CPUID. The
// environment variable STRIATE_ISA=baseline|avx2|avx512 forces a lower level
// (a higher one than the CPU supports is an error, not a crash).
#pragma once

#include <string>
#include <vector>

namespace striate {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
// Parses "baseline" / "avx2" / "avx512"; throws ValueError naming `what`.
Isa isa_parse(const std::string& name, const char* what);
// Levels compiled into this build, lowest first.
std::vector<Isa> isa_compiled();
// The best level both compiled and supported by this CPU and OS.
Isa isa_best_supported();
// The level the kernels use now.
Isa isa_selected();
// Select a level; throws ValueError if it is not compiled or not supported.
void isa_select(Isa isa);
// Select from STRIATE_ISA if set (else the best supported); called at import.
void isa_init_from_env();

}  // namespace striate
