#pragma once
// What every hostile test checks at its end.

#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/proxy_under_test.hpp"

namespace berth::test {

// What a sanitizer or the C++ runtime writes when something went wrong inside the proxy.
inline std::string sanitizer_report(const ProxyUnderTest& p) {
  std::ifstream in(p.log_file());
  std::stringstream all;
  all << in.rdbuf();
  const std::string log = all.str();
  for (const char* marker : {"ERROR: AddressSanitizer", "runtime error:",
                             "WARNING: ThreadSanitizer", "ERROR: LeakSanitizer",
                             "terminate called", "Segmentation fault", " error session "}) {
    if (const auto at = log.find(marker); at != std::string::npos) {
      return log.substr(at > 2000 ? at - 2000 : 0, 6000);
    }
  }
  return {};
}

// The end of every hostile test: the proxy is still there, stops on SIGTERM with status 0 in
// time, and said nothing a sanitizer says.
inline void check_clean_stop(ProxyUnderTest& p) {
  CHECK(p.running());
  CHECK(p.stop());
  CHECK(p.process().term_signal() == 0);
  CHECK(p.process().exit_code() == 0);
  const std::string report = sanitizer_report(p);
  INFO(report);
  CHECK(report.empty());
}

}  // namespace berth::test
