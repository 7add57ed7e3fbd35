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
# The sanitizers' options (halt_on_error) come from the CTest test that runs this
# (tests/hostile/CMakeLists.txt), as for the suite's own tests.
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
status=0
BERTH_PROXY_BIN=$dir/proxy/berth-proxy "$main/tests/hostile/berth_hostile_tests" || status=$?
if [[ $status == 77 ]]; then
  exit 77  # no dockerd, and BERTH_REQUIRE_DOCKER unset
fi
if grep -q '^BERTH_SANITIZE:STRING=.*address' "$dir/CMakeCache.txt"; then
  ctest --test-dir "$dir" -L replay --output-on-failure || status=1
fi
exit "$status"
