#!/bin/bash
# Sets up and runs every berth test: installs dependencies (scripts/install-deps.sh), configures
# and builds with warnings as errors, builds berth-proxy twice more under sanitizers
# (BUILD-asan: ASan+UBSan, BUILD-tsan: TSan) for the hostile-client suite, then runs CTest once
# in BUILD: unit, differential, integration, metering, hostile (also against the sanitizer
# builds) and fuzz tests. Its exit status, and the summary it ends with, are CTest's.
#
#   scripts/test.sh                # everything
#   scripts/test.sh -L unit        # extra arguments go to ctest
#
# In CI (CI=true) BERTH_REQUIRE_DOCKER=1 is exported, so integration tests fail instead of
# skipping when dockerd does not answer: CI can never go green by skipping.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${CI:-} == true ]]; then
  export BERTH_REQUIRE_DOCKER=1
  export BERTH_REQUIRE_SANITIZERS=1
fi

build_dir=${BERTH_BUILD_DIR:-build}
jobs=${BERTH_JOBS:-2}

scripts/install-deps.sh
build_abs=$(realpath -m "$build_dir")
sanitizer_builds="$build_abs-asan;$build_abs-tsan"
# Line tables (-g1) rather than full debug information: backtraces keep file and line, and the
# two cores CI has compile Boost-heavy code about a third faster.
cmake -S . -B "$build_dir" -DBERTH_WERROR=ON "-DBERTH_SANITIZER_BUILDS=$sanitizer_builds" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
cmake --build "$build_dir" -j"$jobs"
echo "test.sh: dependencies and the main tree built at ${SECONDS} s"
# Only what run_sanitized.sh needs (target berth_sanitizer_suite: berth-proxy, and the fuzz corpus
# replays under ASan; the hostile suite's clients are the main tree's), at -O1 as the sanitizers'
# documentation advises: less than half the compile time of -O2 -g under instrumentation.
# mimalloc would stand in front of the sanitizers' allocators.
for sanitizer in asan:address,undefined tsan:thread; do
  tree="$build_abs-${sanitizer%%:*}"
  cmake -S . -B "$tree" -DBERTH_WERROR=ON "-DBERTH_SANITIZE=${sanitizer#*:}" -DBERTH_MIMALLOC=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
  cmake --build "$tree" -j"$jobs" --target berth_sanitizer_suite
  echo "test.sh: $tree built at ${SECONDS} s"
done

status=0
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" "$@" || status=$?
exit "$status"
