#!/usr/bin/env bash
# valgrind memcheck of a small end-to-end training run (tools/valgrind_train.py)
# on the normal, unsanitized build.
#
#   tools/valgrind_train.sh [extra valgrind args...]
#
# Needs valgrind (>= 3.19) and a python3 ($PYTHON) with pip and numpy.
# Environment: PYTHON (default python3), STRIATE_VG_DIR (install target,
# default /tmp/striate-valgrind), STRIATE_VG_BUILD_DIR (default
# /tmp/build-valgrind), STRIATE_VG_SKIP_BUILD=1 to reuse the last build,
# STRIATE_THREADS (OpenMP threads in the run, default 2).
# Exit status: valgrind's (1 on any memcheck error or definite leak).
# Details and the last recorded run: docs/robustness.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-python3}"
target="${STRIATE_VG_DIR:-/tmp/striate-valgrind}"
build="${STRIATE_VG_BUILD_DIR:-/tmp/build-valgrind}"

if [ "${STRIATE_VG_SKIP_BUILD:-0}" != 1 ]; then
  isolation=()
  if "$py" -c "import scikit_build_core, pybind11" 2>/dev/null; then
    isolation=(--no-build-isolation)
  fi
  # RelWithDebInfo: the same -O2 code paths as a release build, plus line
  # numbers in valgrind's stacks.
  "$py" -m pip install -q --upgrade --no-deps "${isolation[@]}" \
    -Cbuild-dir="$build" -Ccmake.build-type=RelWithDebInfo --target "$target" "$repo"
fi

# Python's own allocator (pymalloc) stays on. Under PYTHONMALLOC=malloc,
#   CPython 3.11's int code reads the (never written) digit of a freshly made 0
#   (medium_value in longobject.c; multiplied by a size of 0, so harmless), and
#   the small-int pointer computed from it makes memcheck report every later use
#   of that object across the interpreter: thousands of errors in CPython frames
#   that no narrow suppression covers. pymalloc's arenas are mmap'd, hence
#   "defined" to memcheck. striate is still fully checked: its C++ allocations
#   and NumPy's array buffers (inputs, outputs, gradients) use malloc directly.
#   On another Python, PYTHONMALLOC=malloc set by the caller is passed through.
# --errors-for-leak-kinds=definite: blocks still reachable at exit (interned
#   strings, module state, libgomp's thread pool) are not errors; a block whose
#   last pointer was lost is.
# Valgrind's virtual CPU has no AVX-512 (its CPUID hides it), so striate
#   selects AVX2 on its own; STRIATE_ISA=baseline exercises the plain kernels.
cd "$target"  # not the repository: its python/striate must not shadow the build
PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" \
  valgrind --tool=memcheck --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --track-origins=yes --num-callers=30 \
    --suppressions="$repo/tools/valgrind.supp" "$@" \
    "$py" "$repo/tools/valgrind_train.py"
