#!/bin/bash
# Builds the libFuzzer target with clang (a separate build tree: g++ builds everything else)
# and fuzzes policy/ for a bounded time, starting from the corpus. Any crash, leak, hang or
# sanitizer report fails the test; the reproducer is left in the build tree.
#
#   run_libfuzzer.sh SOURCE_DIR BUILD_DIR [SECONDS]
set -euo pipefail
src=$1
build=$2
seconds=${3:-60}
clang=$(command -v clang++-16 || true)
if [[ -z $clang ]]; then
  echo "run_libfuzzer: clang++-16 is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
# libstdc++ 12 hides std::expected unless __cpp_concepts says 202002L; clang 16 implements
# what <expected> needs but still reports 201907L.
cmake -S "$src" -B "$build" -DCMAKE_CXX_COMPILER="$clang" -DBERTH_FUZZ=ON \
  "-DCMAKE_CXX_FLAGS=-U__cpp_concepts -D__cpp_concepts=202002L -Wno-builtin-macro-redefined" \
  >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" --target berth_fuzz_policy -j2 >"$build.build.log" 2>&1 ||
  { tail -50 "$build.build.log"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$build"
"$build/tests/fuzz/berth_fuzz_policy" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work" "$src/tests/fuzz/corpus/policy" 2>&1 | tail -20
