#!/bin/bash
# Sets up and runs every berth test: installs dependencies (scripts/install-deps.sh), configures
# and builds with warnings as errors, then runs CTest. Its exit status is CTest's.
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
fi

build_dir=${BERTH_BUILD_DIR:-build}
jobs=${BERTH_JOBS:-2}

scripts/install-deps.sh
cmake -S . -B "$build_dir" -DBERTH_WERROR=ON
cmake --build "$build_dir" -j"$jobs"

status=0
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" "$@" || status=$?
exit "$status"
