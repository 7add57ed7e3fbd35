#!/bin/bash
# The hostile-client suite (label hostile) against berth-proxy built with a sanitizer, in the
# build tree scripts/test.sh makes for it (BUILD-asan: ASan+UBSan, BUILD-tsan: TSan), and, in
# an ASan tree, the fuzz corpus replays (label replay) over policy/ built the same way.
#
#   run_sanitized.sh SANITIZER_BUILD_DIR MAIN_BUILD_DIR
#
# The suite's own program is the main tree's (the clients need no sanitizer; only the proxy
# they attack does), pointed at the sanitizer tree's berth-proxy with BERTH_PROXY_BIN. Every
# hostile test fails on a sanitizer report in the proxy's log, a crash, or a stop that is not
# clean; every replay on a sanitizer report.
#
# Exit 77 (skipped) when that tree has not been built, unless BERTH_REQUIRE_SANITIZERS=1
# (scripts/test.sh sets it: CI never goes green by skipping).
set -euo pipefail
dir=$1
main=$2
if [[ ! -x $dir/proxy/berth-proxy ]]; then
  if [[ ${BERTH_REQUIRE_SANITIZERS:-0} == 1 ]]; then
    echo "run_sanitized: $dir has no sanitizer build of berth-proxy" >&2
    exit 1
  fi
  echo "run_sanitized: $dir not built (scripts/test.sh builds it): skipping" >&2
  exit 77
fi
# A sanitizer's report ends the proxy (halt_on_error), which the suite's fixture notices.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
status=0
BERTH_PROXY_BIN=$dir/proxy/berth-proxy "$main/tests/hostile/berth_hostile_tests" || status=$?
if [[ $status == 77 ]]; then
  exit 77  # no dockerd, and BERTH_REQUIRE_DOCKER unset
fi
if grep -q '^BERTH_SANITIZE:STRING=.*address' "$dir/CMakeCache.txt"; then
  ctest --test-dir "$dir" -L replay --output-on-failure || status=1
fi
exit "$status"
