#!/bin/bash
# Builds one libFuzzer target with clang (a build tree of its own: g++ builds everything else)
# and fuzzes it for a bounded time, starting from its corpus. Any crash, leak, hang, sanitizer
# report or broken invariant (abort) fails the test; the reproducer is left in the build tree.
#
#   run_libfuzzer_target.sh SOURCE_DIR BUILD_DIR TARGET CORPUS_DIR [SECONDS]
set -euo pipefail
src=$1
build=$2
target=$3
corpus=$4
seconds=${5:-60}
clang=$(command -v clang++-16 || true)
if [[ -z $clang ]]; then
  echo "run_libfuzzer_target: clang++-16 is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
# libstdc++ 12 hides std::expected unless __cpp_concepts says 202002L; clang 16 implements
# what <expected> needs but still reports 201907L.
# -O1 with line tables: what libFuzzer's documentation builds with, and half the compile time of
# -O2 -g on CI's two cores.
cmake -S "$src" -B "$build" -DCMAKE_CXX_COMPILER="$clang" -DBERTH_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  "-DCMAKE_CXX_FLAGS=-U__cpp_concepts -D__cpp_concepts=202002L -Wno-builtin-macro-redefined" \
  >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" --target "$target" -j"${BERTH_JOBS:-2}" >"$build.$target.build.log" 2>&1 ||
  { tail -50 "$build.$target.build.log"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$build"
"$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=200000 -print_final_stats=1 "$work" "$corpus" 2>&1 | tail -20
