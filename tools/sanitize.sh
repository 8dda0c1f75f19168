#!/usr/bin/env bash
# Build striate with sanitizers and run the test suite under them.
#
#   tools/sanitize.sh [SANITIZERS] [pytest args...]
#
# SANITIZERS: a comma list for -fsanitize=, default
# address,undefined,float-cast-overflow (ASan + UBSan); "thread" for TSan.
# With no test path among the pytest args, the whole of tests/ runs.
# Needs: gcc or clang with the sanitizer runtimes (Debian/Ubuntu: part of
# gcc; libasan8/libubsan1/libtsan2), CMake, and a python3 ($PYTHON) with pip,
# numpy, pytest and the test extras (pip install ".[test]"). scikit-build-core
# and pybind11 are used from $PYTHON when it has them, otherwise pip fetches
# them into an isolated build environment.
# Environment: PYTHON (default python3), STRIATE_SAN_DIR (install target,
# default /tmp/striate-san-<kind>), STRIATE_SAN_BUILD_DIR (default
# /tmp/build-san-<kind>), STRIATE_SAN_SKIP_BUILD=1 to reuse the last build.
# Details and the last recorded run: docs/robustness.md.
set -euo pipefail

# float-cast-overflow (a NaN or out-of-range float converted to an integer) is
# undefined behaviour that neither gcc's nor clang's "undefined" group checks.
kind="address,undefined,float-cast-overflow"
if [ $# -gt 0 ] && [[ "$1" != -* ]] && [ ! -e "${1%%::*}" ]; then
  kind="$1"
  shift
fi
case "$kind" in
  *[!a-z,-]*) echo "usage: $0 [SANITIZERS (comma list)] [pytest args...]" >&2; exit 2 ;;
  *thread*) tag=tsan ;;
  *address*) tag=asan ;;
  *) tag=ubsan ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-python3}"
target="${STRIATE_SAN_DIR:-/tmp/striate-san-$tag}"
build="${STRIATE_SAN_BUILD_DIR:-/tmp/build-san-$tag}"

if [ "${STRIATE_SAN_SKIP_BUILD:-0}" != 1 ]; then
  isolation=()
  if "$py" -c "import scikit_build_core, pybind11" 2>/dev/null; then
    isolation=(--no-build-isolation)
  fi
  # RelWithDebInfo: -O2 -g, so reports have line numbers and the suite still
  # runs in minutes. --target keeps this build away from any installed striate.
  "$py" -m pip install -q --upgrade --no-deps "${isolation[@]}" \
    -Cbuild-dir="$build" -Ccmake.build-type=RelWithDebInfo \
    -Ccmake.define.STRIATE_SANITIZE="$kind" --target "$target" "$repo"
fi

# CPython and NumPy are not instrumented, so the sanitizer runtime must be
# loaded before them (ASan and TSan replace malloc and must see every
# allocation); UBSan's runtime needs no preload. Ask the compiler that built
# the extension where its runtime lives.
cxx="${CXX:-c++}"
runtime=""
case "$tag" in
  asan) runtime="$("$cxx" -print-file-name=libasan.so)" ;;
  tsan) runtime="$("$cxx" -print-file-name=libtsan.so)" ;;
esac
if [ -n "$runtime" ] && [ ! -e "$runtime" ]; then
  echo "$0: sanitizer runtime not found ($runtime); install it for $cxx" >&2
  exit 2
fi
# The python executable does not link libstdc++, so without this ASan finds no
# __cxa_throw to wrap when it starts and dies at the first C++ exception
# ("CHECK failed: ... real___cxa_throw != 0"), i.e. at the first bad-input test.
runtime="${runtime:+$runtime:}$("$cxx" -print-file-name=libstdc++.so)"

# detect_leaks=0: CPython frees neither interned objects nor module state at
#   exit by design, so LeakSanitizer reports thousands of Python-owned blocks;
#   leaks in striate are checked by tools/valgrind_train.sh instead.
# allocator_may_return_null=1: tests ask NumPy for absurd sizes and expect
#   MemoryError; ASan and TSan would otherwise abort the process on the malloc.
# halt_on_error / -fno-sanitize-recover=all (CMakeLists.txt): every finding
#   kills the test process, so a finding cannot pass silently.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export TSAN_OPTIONS="halt_on_error=1:allocator_may_return_null=1:second_deadlock_stack=1:suppressions=$repo/tools/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
# Tests that need more memory than the sanitizer's shadow leaves, or that
# measure resident memory (which the sanitizer's allocator inflates), skip on this.
export STRIATE_SANITIZED=1
# The thread build has no OpenMP (CMakeLists.txt: libgomp is not instrumented,
# so TSan cannot see its barriers); it checks races between Python threads that
# call striate at once: thread-local workspaces, global settings, caches.
# PyTorch's races on libgomp threads are suppressed (tools/tsan.supp), and one
# OpenMP thread keeps it from starting them at all where the tests allow.
if [ "$tag" = tsan ]; then
  export OMP_NUM_THREADS=1
fi

# Paths among the pytest arguments are made absolute before the cd below; with
# none, the whole suite runs.
args=()
have_path=0
for a in "$@"; do
  if [ -e "${a%%::*}" ]; then
    a="$(cd "$(dirname "${a%%::*}")" && pwd)/$(basename "$a")"
    have_path=1
  fi
  args+=("$a")
done
[ "$have_path" = 1 ] || args=("$repo/tests" "${args[@]}")

# --capture=sys: pytest's default fd-level capture would swallow a report that
# the runtime writes to fd 2 just before it ends the process.
cd "$target"  # not the repository: its python/striate must not shadow the build
LD_PRELOAD="$runtime${LD_PRELOAD:+:$LD_PRELOAD}" PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" \
  "$py" -m pytest -q --capture=sys "${args[@]}"
