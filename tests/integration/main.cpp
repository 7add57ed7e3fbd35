// Entry point of berth_integration_tests. Exits 77 (CTest's SKIP_RETURN_CODE) when dockerd does
// not answer on /var/run/docker.sock, unless BERTH_REQUIRE_DOCKER=1 (set by .ci/run): then it
// fails, so CI can never go green by skipping. Listing tests (catch_discover_tests at build
// time) never needs dockerd.

#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <string_view>

// Listeners (TestEventListenerBase) are among Catch2's external interfaces.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

#include "tests/support/catch_run.hpp"
#include "tests/support/dockerd.hpp"
#include "tests/support/test_status.hpp"

namespace {

/// Feeds tests/support/test_status so fixtures know, in their destructors, that the test failed.
class FailureTracker : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    berth::test::reset_current_test_status();
    TestEventListenerBase::testCaseStarting(info);
  }

  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!stats.assertionResult.isOk()) {
      berth::test::mark_current_test_failed();
    }
    return TestEventListenerBase::assertionEnded(stats);
  }
};

bool only_listing(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("--list") || a == "-l" || a == "-t" || a == "-h" || a == "--help" ||
        a == "-?") {
      return true;
    }
  }
  return false;
}

}  // namespace

CATCH_REGISTER_LISTENER(FailureTracker)

int main(int argc, char** argv) {
  // Writing to a client that has gone (a CLI killed at its timeout) must be an error code.
  ::signal(SIGPIPE, SIG_IGN);
  if (!only_listing(argc, argv) && !berth::test::dockerd_answers()) {
    const char* require = std::getenv("BERTH_REQUIRE_DOCKER");
    if (require != nullptr && std::string_view(require) == "1") {
      std::cerr << "dockerd does not answer on " << berth::test::dockerd_socket
                << " and BERTH_REQUIRE_DOCKER=1: failing\n";
      return 1;
    }
    std::cerr << "dockerd does not answer on " << berth::test::dockerd_socket
              << ": skipping (exit 77)\n";
    return 77;
  }
  return berth::test::run_catch(argc, argv);
}
