#!/bin/bash
# The hostile-client suite (label hostile) against berth-proxy built with a sanitizer, and the
# fuzz corpus replays (label replay) over policy/ built the same way, in the build tree
# scripts/test.sh makes for it (BUILD-asan: ASan+UBSan, BUILD-tsan: TSan). Every hostile test
# there fails on a sanitizer report in the proxy's log, a crash, or a stop that is not clean;
# every replay on a sanitizer report.
#
#   run_sanitized.sh BUILD_DIR
#
# Exit 77 (skipped) when that tree has not been built, unless BERTH_REQUIRE_SANITIZERS=1
# (scripts/test.sh sets it: CI never goes green by skipping).
set -euo pipefail
dir=$1
if [[ ! -x $dir/proxy/berth-proxy || ! -x $dir/tests/hostile/berth_hostile_tests ]]; then
  if [[ ${BERTH_REQUIRE_SANITIZERS:-0} == 1 ]]; then
    echo "run_sanitized: $dir has no sanitizer build of berth-proxy and the hostile suite" >&2
    exit 1
  fi
  echo "run_sanitized: $dir not built (scripts/test.sh builds it): skipping" >&2
  exit 77
fi
exec ctest --test-dir "$dir" -L 'hostile|replay' --output-on-failure
