#pragma once
// berthctl's commands: ca init, cert issue and revoke, policy check, and usage (from
// metering/, when it is built). The operator's tool is a module of its own, so that the proxy
// (the request path) and the meter (billing) never include each other: ctl/ may use policy/
// and metering/; proxy/ and metering/ use neither ctl/ nor each other
// (tests/check_boundaries.sh).

#include <string>
#include <vector>

namespace berth::ctl {

/// Runs one berthctl command line (without the program name); returns the exit status.
[[nodiscard]] int run(const std::vector<std::string>& args);

}  // namespace berth::ctl
